"""podman for the image tests: the image `make image` built, and containers run from it.

Every container runs as ``podman --runtime runc run --network host`` with podman's default
ulimits emptied (``deploy/podman/containers.conf`` through ``CONTAINERS_CONF``, as the
Makefile hands it over), and as the compose file runs it: read-only root, ``/tmp`` a tmpfs.
Every wait has a bound; a missing podman or image fails the test, naming what to run.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

import pytest

ROOT = Path(__file__).resolve().parents[2]
CONTAINERS_CONF = ROOT / "deploy" / "podman" / "containers.conf"
#: podman's own calls (inspect, kill, rm): quick, but never unbounded.
CALL_TIMEOUT_S = 60.0


def image_name() -> str:
    """The tag `make image` gives: ``IMAGE`` as the Makefile exports it, or its default."""
    if name := os.environ.get("IMAGE"):
        return name
    found = re.search(r"^IMAGE \?= (\S+)$", (ROOT / "Makefile").read_text(), re.MULTILINE)
    assert found, "no `IMAGE ?= ...` line in the Makefile"
    return found[1]


def podman(*args: str, timeout_s: float = CALL_TIMEOUT_S) -> subprocess.CompletedProcess[str]:
    """``podman --runtime runc ARGS`` with the project's containers.conf; never raises on rc."""
    executable = shutil.which("podman")
    if executable is None:
        pytest.fail("podman is not installed: run `make image-deps` (Debian packages podman, runc)")
    env = dict(os.environ)
    env.setdefault("CONTAINERS_CONF", str(CONTAINERS_CONF))
    return subprocess.run(
        [executable, "--runtime", "runc", *args],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        env=env,
    )


class Container:
    """``podman run -d`` of the image with ``command``; removed (killed if need be) on exit."""

    def __init__(
        self,
        image: str,
        command: Sequence[str],
        env: Mapping[str, str],
        *,
        volumes: Sequence[str] = (),
        entrypoint: str | None = None,
    ) -> None:
        self.name = f"attnwatch-test-{uuid.uuid4().hex[:12]}"
        args = ["run", "-d", "--name", self.name, "--network", "host", "--read-only",
                "--tmpfs", "/tmp"]  # fmt: skip
        for key, value in env.items():
            args += ["--env", f"{key}={value}"]
        for volume in volumes:
            args += ["--volume", volume]
        if entrypoint is not None:
            args += ["--entrypoint", entrypoint]
        started = podman(*args, image, *command)
        assert started.returncode == 0, f"podman run {command} failed:\n{started.stderr}"

    def logs(self) -> str:
        """Everything it printed so far, stdout and stderr."""
        result = podman("logs", self.name)
        return result.stdout + result.stderr

    def running(self) -> bool:
        """Whether it has not exited yet."""
        state = podman("inspect", "--format", "{{.State.Running}}", self.name)
        return state.stdout.strip() == "true"

    def wait(self, timeout_s: float) -> int:
        """Its exit status once it exits; fails the test after ``timeout_s``."""
        try:
            result = podman("wait", self.name, timeout_s=timeout_s)
        except subprocess.TimeoutExpired:
            pytest.fail(f"{self.name} still running after {timeout_s} s:\n{self.logs()[-3000:]}")
        assert result.returncode == 0, result.stderr
        return int(result.stdout.strip())

    def signal(self, name: str) -> None:
        """Send signal ``name`` (e.g. ``TERM``) to its main process."""
        result = podman("kill", "--signal", name, self.name)
        assert result.returncode == 0, result.stderr

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        podman("rm", "--force", "--time", "0", self.name)


def run_to_completion(
    image: str, command: Sequence[str], env: Mapping[str, str], timeout_s: float
) -> str:
    """Run a one-shot ``command`` in the image; its logs, after asserting it exited 0."""
    with Container(image, command, env) as container:
        code = container.wait(timeout_s)
        logs = container.logs()
        assert code == 0, f"{' '.join(command)} exited {code}:\n{logs[-3000:]}"
        return logs
