"""One profiled backlog run's instruments: py-spy on this process, and timers around calls.

:class:`Spy` runs ``py-spy record --pid <this process> --format raw --threads --idle
[--native]`` from the moment the first records are in hand (the wrapper of ``source.poll``
starts it and waits until py-spy says it is sampling, so the group join and start-up are not
in the profile) until the run loop's last commit.  :class:`Counters` wraps the calls the
harness can reach without changing the run loop (the source's poll and commit, the
classifier's predict, each sink's flush, the batch processor, decoding, redaction,
enrichment), each a perf_counter pair around the call, and reads the run loop's own
``attnwatch_model_latency_seconds`` histogram.  Profiling runs are never the measured runs.
"""

from __future__ import annotations

import os
import queue
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import stages as st

#: Samples per second: at 2,000 msg/s a 2,000-message run lasts ~1 s, so ~250 ticks.  Without
#: native frames py-spy's pauses cost little at this rate (a zero-cost run profiled at 250 Hz:
#: 1.77 s against 1.9-2.3 s unprofiled on a loaded machine); with ``--native`` it ran 1.8-6x
#: slower (4.2 s at 100 Hz, 13.6 s at 250 Hz), so native frames are opt-in.
RATE_HZ = 250
READY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 60.0


def py_spy() -> str | None:
    """The py-spy executable: beside this interpreter (a venv), else on PATH."""
    beside = Path(sys.executable).with_name("py-spy")
    return str(beside) if beside.exists() else shutil.which("py-spy")


class Spy:
    """py-spy recording this process between :meth:`start` and :meth:`stop`."""

    def __init__(
        self, rate_hz: int = RATE_HZ, native: bool = False, nonblocking: bool = False
    ) -> None:
        exe = py_spy()
        if exe is None:
            msg = "py-spy is not installed (pip install py-spy; it is in the dev extra)"
            raise RuntimeError(msg)
        self.rate_hz, self.native = rate_hz, native
        self._dir = tempfile.TemporaryDirectory(prefix="attnwatch-spy-")
        self.path = Path(self._dir.name) / "stacks.txt"
        self._argv = [
            exe,
            "record",
            "--pid",
            str(os.getpid()),
            "--format",
            "raw",
            "--threads",
            "--idle",
            "--rate",
            str(rate_hz),
            "--output",
            str(self.path),
            *(["--native"] if native else []),
            *(["--nonblocking"] if nonblocking else []),
        ]
        self._proc: subprocess.Popen[str] | None = None
        self._lines: queue.Queue[str | None] = queue.Queue()
        self.log: list[str] = []
        self.started = self.stopped = 0.0
        #: py-spy's collapsed stacks as written (for flamegraph.pl or speedscope).
        self.text = ""

    def _drain(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None  # noqa: S101 - opened with stdout=PIPE
        for line in proc.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def start(self) -> None:
        """Start py-spy and wait (bounded) until it says it is sampling."""
        # py-spy says "Sampling process" on stdout, errors on stderr: one pipe for both.
        proc = subprocess.Popen(
            self._argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        self._proc = proc
        threading.Thread(
            target=self._drain, args=(proc,), name="bench-spy-log", daemon=True
        ).start()
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            try:
                line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                proc.kill()
                msg = (
                    f"py-spy did not start sampling within {READY_TIMEOUT_S:.0f} s: "
                    f"{''.join(self.log)[-2000:]!r}"
                )
                raise TimeoutError(msg) from None
            if line is None:
                msg = f"py-spy exited with {proc.wait()}: {''.join(self.log)[-2000:]}"
                raise RuntimeError(msg)
            self.log.append(line)
            if "Sampling process" in line:
                self.started = time.perf_counter()
                return

    def signal_stop(self) -> None:
        """Ask py-spy to stop sampling (SIGINT: it then writes its file); does not wait."""
        if self._proc is not None and not self.stopped:
            self.stopped = time.perf_counter()
            self._proc.send_signal(signal.SIGINT)

    def stop(self) -> list[st.Stack]:
        """Stop sampling (if not yet asked to), wait for py-spy and parse the stacks."""
        self.signal_stop()
        proc = self._proc
        if proc is None:
            return []
        try:
            proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            msg = f"py-spy did not stop within {STOP_TIMEOUT_S:.0f} s"
            raise TimeoutError(msg) from None
        while (line := self._lines.get(timeout=5.0)) is not None:
            self.log.append(line)
        self.text = self.path.read_text(encoding="utf-8") if self.path.exists() else ""
        self._dir.cleanup()
        return st.parse_collapsed(self.text.splitlines())


class Counters:
    """Seconds spent inside wrapped calls (a perf_counter pair around each), by label.

    A label with a stage is shown in that stage's row; one without (a call that spans
    several stages, such as the whole batch) is shown below the table.
    """

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.stage: dict[str, str | None] = {}

    def wrap(self, owner: object, name: str, label: str, stage: str | None = None) -> None:
        """Time ``owner.name`` (a method or a module function) under ``label``; absent: skip."""
        inner = getattr(owner, name, None)
        if owner is None or not callable(inner):
            return
        self.seconds.setdefault(label, 0.0)
        self.stage[label] = stage
        seconds = self.seconds

        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return inner(*args, **kwargs)
            finally:
                seconds[label] += time.perf_counter() - started

        setattr(owner, name, timed)

    def attach(self, svc: Any, classifier: object) -> Callable[[], None]:
        """Wrap what the run loop of ``svc`` calls; returns a function undoing the module ones.

        A benchmark may reach into the runner; the run loop itself is not changed.  What is
        missing (the loop is being rewritten) simply has no counter.
        """
        from pipeline.stream import processing

        runner = svc.runner
        processor = getattr(runner, "_processor", None)
        checkpoint = getattr(runner, "_checkpoint", None)
        self.wrap(svc.source, "poll", "source.poll (with waiting for data)", st.FETCH)
        self.wrap(svc.source, "commit", "source.commit", st.COMMIT)
        self.wrap(
            getattr(processor, "_privacy", None),
            "redact_event",
            "PrivacyPolicy.redact_event",
            st.REDACT,
        )
        for sink in getattr(checkpoint, "_sinks", ()):
            kind = type(sink).__name__
            stage = st.STORE if "Store" in kind or "Raw" in kind else st.PRODUCE
            self.wrap(sink, "flush", f"{kind}.flush", stage)
        saved = {
            name: getattr(processing, name, None) for name in ("decode", "enrich", "fit_to_size")
        }
        self.wrap(processing, "decode", "schema.decode", st.DECODE)
        self.wrap(processing, "enrich", "enrich", st.ENRICH)
        self.wrap(processing, "fit_to_size", "fit_to_size", st.ENRICH)
        self.wrap(classifier, "predict", "classifier.predict (tokenisation + forward + words)")
        self.wrap(processor, "process", "BatchProcessor.process (the classify thread's batch)")

        def undo() -> None:
            for name, value in saved.items():
                if value is not None:
                    setattr(processing, name, value)

        return undo


class StageRun:
    """Instruments one backlog run: :meth:`attach` before ``Timing``, :meth:`finish` after."""

    def __init__(self, title: str, rate_hz: int = RATE_HZ, native: bool = False) -> None:
        self.title = title
        self.spy = Spy(rate_hz, native)
        self.counters = Counters()
        self._undo: Callable[[], None] = lambda: None
        self._cpu = 0.0
        self._metrics: Any = None
        #: Set by the run (:func:`~bench.harness.pipeline_run.backlog_run`) once it is done.
        self.table: st.StageTable | None = None

    def attach(self, svc: Any, classifier: object, expected: int) -> None:
        """Counters on the loop's calls; py-spy samples from the first records in hand to the
        commit after the ``expected``-th message (the loop's idle tail is not profiled)."""
        self._undo = self.counters.attach(svc, classifier)
        self._metrics = svc.metrics
        source, runner = svc.source, svc.runner
        poll, commit = source.poll, source.commit

        def commit_then_stop(offsets: Any) -> Any:
            ok = commit(offsets)
            done = runner.totals.enriched + runner.totals.dead_letters
            if self.spy.started and not self.spy.stopped and done >= expected:
                self.spy.signal_stop()
                self._cpu = cpu_seconds() - self._cpu
            return ok

        def poll_then_spy(timeout_s: float, max_records: int) -> Any:
            records = poll(timeout_s, max_records)
            if records and not self.spy.started:
                self.spy.start()
                self._cpu = cpu_seconds()
            return records

        source.poll = poll_then_spy
        source.commit = commit_then_stop

    def finish(self, *, batch_size: int, handled: int, wall_s: float) -> st.StageTable:
        """Stop py-spy and build the table (``wall_s``: first record to last commit)."""
        try:
            stacks = self.spy.stop()
            cpu = self._cpu
        finally:
            self._undo()
        span = self.spy.stopped - self.spy.started
        rows: dict[str, tuple[float, str]] = {}
        spans: list[tuple[str, float]] = []
        for label, seconds in self.counters.seconds.items():
            stage = self.counters.stage[label]
            if stage is None:
                spans.append((label, seconds))
                continue
            before, what = rows.get(stage, (0.0, ""))
            rows[stage] = (before + seconds, f"{what} + {label}" if what else label)
        latency = (
            self._metrics.registry.get_sample_value("attnwatch_model_latency_seconds_sum")
            if self._metrics is not None
            else None
        )
        if latency is not None:
            spans.append(
                (
                    "attnwatch_model_latency_seconds (split + predict + placing words)",
                    float(latency),
                )
            )
        return st.stage_table(
            st.classify_stacks(stacks),
            title=self.title,
            batch_size=batch_size,
            handled=handled,
            wall_s=wall_s,
            profiled_s=span,
            rate_hz=self.spy.rate_hz,
            native=self.spy.native,
            os_cpu_s=cpu,
            counters=rows,
            spans=spans,
        )


def cpu_seconds() -> float:
    """User + system CPU time of this process so far, every thread (torch's pool included)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
