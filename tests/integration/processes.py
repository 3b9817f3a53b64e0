"""The run loop as a real process, for the crash tests: its environment, start, stop and logs.

:class:`Worker` starts ``python -m <module> ...`` (``attnwatch run`` or
``tests.integration.faults``) with settings passed the way an operator passes them,
as ``ATTNWATCH_*`` variables; stderr (JSON log lines) and stdout go to files, so a
chatty child never blocks on a full pipe.  :func:`store_counts` reads the store
while a worker writes to it.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self, TypeVar

import sqlalchemy as sa
from pydantic import BaseModel, SecretStr

from attnwatch.settings import Settings
from pipeline.config_compat import FLAT
from pipeline.store.engine import create_engine, normalise_url
from tests.support.waiting import wait_for

#: The repository root: the child imports ``pipeline`` and ``tests`` from here.
ROOT = Path(__file__).resolve().parents[2]

T = TypeVar("T")


def worker_env(settings: Settings, **overrides: object) -> dict[str, str]:
    """This process's environment with ``settings`` as ``ATTNWATCH_<GROUP>__<FIELD>`` variables.

    Only the settings that were given explicitly (``model_fields_set``, in every group)
    are passed, then ``overrides`` (flat 0.1 names, e.g. ``max_redeliveries``; ``None``
    leaves one out); inherited ``ATTNWATCH_*`` variables are dropped so nothing from the
    test runner's shell leaks into the child.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("ATTNWATCH_")}
    values: dict[tuple[str, ...], object] = {}

    def walk(model: BaseModel, path: tuple[str, ...]) -> None:
        for name in model.model_fields_set:
            value = getattr(model, name)
            if isinstance(value, BaseModel):
                walk(value, (*path, name))
            else:
                values[(*path, name)] = value

    walk(settings, ())
    for flat, value in overrides.items():
        values[FLAT.get(flat, (flat,))] = value
    for path, value in values.items():
        if value is None:
            continue
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        elif isinstance(value, list):
            value = json.dumps(
                [v.model_dump(mode="json") if isinstance(v, BaseModel) else v for v in value]
            )
        env["ATTNWATCH_" + "__".join(path).upper()] = str(value)
    env["PYTHONUNBUFFERED"] = "1"
    return env


class Worker:
    """One run of ``python -m <args>``; a context manager that SIGKILLs it if still running."""

    def __init__(self, args: Sequence[str], env: Mapping[str, str], log_dir: Path) -> None:
        log_dir.mkdir(parents=True, exist_ok=True)
        number = len(list(log_dir.glob("*.stderr")))
        self.stderr_path = log_dir / f"{number:02d}.stderr"
        self.stdout_path = log_dir / f"{number:02d}.stdout"
        self._stderr: IO[bytes] = self.stderr_path.open("wb")
        self._stdout: IO[bytes] = self.stdout_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", *args],
            cwd=ROOT,
            env=dict(env),
            stdout=self._stdout,
            stderr=self._stderr,
        )

    @property
    def returncode(self) -> int | None:
        """The exit status, ``None`` while it runs (negative: killed by that signal)."""
        return self.process.poll()

    def signal(self, signum: signal.Signals) -> None:
        """Send ``signum`` unless it has exited already."""
        if self.process.poll() is None:
            self.process.send_signal(signum)

    def kill(self) -> int:
        """SIGKILL it (no cleanup, no commit) and wait for it to be gone."""
        self.signal(signal.SIGKILL)
        return self.wait(30)

    def wait(self, timeout_s: float) -> int:
        """Its exit status; raises ``subprocess.TimeoutExpired`` if still running."""
        code = self.process.wait(timeout_s)
        self._stderr.close()
        self._stdout.close()
        return code

    def stdout(self) -> str:
        """What it printed so far."""
        return self.stdout_path.read_text(errors="replace")

    def logs(self) -> list[dict[str, Any]]:
        """Its JSON log lines so far (other stderr lines, such as tracebacks, left out)."""
        entries = []
        for line in self.stderr_path.read_text(errors="replace").splitlines():
            with contextlib.suppress(ValueError):
                entry = json.loads(line)
                if isinstance(entry, dict):
                    entries.append(entry)
        return entries

    def tail(self, lines: int = 30) -> str:
        """The end of its stderr, for assertion messages."""
        return "\n".join(self.stderr_path.read_text(errors="replace").splitlines()[-lines:])

    def wait_for_log(self, message: str, timeout_s: float) -> dict[str, Any]:
        """The first log entry with ``message``; fails if it exits or the time runs out."""

        def found() -> dict[str, Any] | None:
            return next((e for e in self.logs() if e.get("message") == message), None)

        return self.until(found, timeout_s, f"a {message!r} log")

    def until(self, check: Callable[[], T], timeout_s: float, what: str) -> T:
        """The first truthy ``check()`` within ``timeout_s``; fails if it exits first.

        The failure names ``what`` and shows the end of the worker's log.
        """

        def reached() -> T:
            value = check()
            if not value and self.returncode is not None:
                msg = f"exited with {self.returncode} before {what}"
                raise AssertionError(msg)
            return value

        try:
            return wait_for(reached, timeout_s, what)
        except AssertionError as exc:
            msg = f"{exc}:\n{self.tail()}"
            raise AssertionError(msg) from None

    def until_or_exit(self, check: Callable[[], object], timeout_s: float, what: str) -> None:
        """Wait until ``check()`` holds or the worker has exited (a crash the test expects)."""
        wait_for(lambda: check() or self.returncode is not None, timeout_s, what)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.kill()


def store_counts(store_url: str) -> tuple[int, int]:
    """(events, dead letters) in the store now; (0, 0) before the worker created the tables.

    A plain read, so polling it never migrates or locks the store a worker is writing.
    """
    engine = create_engine(normalise_url(store_url))
    try:
        with engine.connect() as conn:
            tables = set(sa.inspect(conn).get_table_names())
            if not {"events", "dead_letters"} <= tables:
                return 0, 0
            events = conn.execute(sa.text("SELECT count(*) FROM events")).scalar_one()
            letters = conn.execute(sa.text("SELECT count(*) FROM dead_letters")).scalar_one()
            return int(events), int(letters)
    finally:
        engine.dispose()
