"""cProfile of one run of the loop, both of its threads: where the time goes.

cProfile sees only the thread that enables it, and the run loop has two: the polling
thread (the caller of ``Runner.run``) and a classify thread per batch.  The polling thread
is profiled around ``run``; each batch's ``BatchProcessor.process`` is wrapped so the one
classify profile is enabled inside the classify thread for that call.
"""

from __future__ import annotations

import cProfile
import io
import pstats
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from pipeline.stream.runner import Runner


class RunProfile:
    """Profiles of the polling thread and of every batch on the classify threads."""

    def __init__(self) -> None:
        self.polling = cProfile.Profile()
        self.classify = cProfile.Profile()

    def attach(self, runner: Runner) -> None:
        """Wrap the runner's batch processor so each batch is profiled in its own thread."""
        # A benchmark may reach into the runner; the run loop itself is not changed.
        processor = runner._processor  # noqa: SLF001
        process: Callable[..., Any] = processor.process

        def profiled(*args: Any, **kwargs: Any) -> Any:
            self.classify.enable()
            try:
                return process(*args, **kwargs)
            finally:
                self.classify.disable()

        processor.process = profiled  # type: ignore[method-assign]

    @contextmanager
    def polling_thread(self) -> Iterator[None]:
        """Profile the calling thread (the one that runs ``Runner.run``) inside the block."""
        self.polling.enable()
        try:
            yield
        finally:
            self.polling.disable()

    def report(self, top: int = 15) -> str:
        """The ``top`` entries by cumulative time of each thread, as text."""
        parts = []
        threads = (("classify thread", self.classify), ("polling thread", self.polling))
        for title, profile in threads:
            out = io.StringIO()
            stats = pstats.Stats(profile, stream=out)
            stats.sort_stats("cumulative").print_stats(top)
            parts.append(f"== {title}: top {top} by cumulative time ==\n{out.getvalue()}")
        return "\n".join(parts)
