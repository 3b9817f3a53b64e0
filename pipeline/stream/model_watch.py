"""Hot model reload: notice a new model at the model path, load and test it aside, swap it in.

The model path (``model_dir``) is usually a link that ``attnwatch model promote`` repoints
atomically.  :class:`ModelWatcher` checks it every ``interval_s`` (and at once after
:meth:`ModelWatcher.request`, which the ``run`` command calls on SIGHUP).  A change is the
link's target or the model's version (``config.json``); on one, a loader thread loads the new
model and smoke-tests it while the old model keeps serving, so a reload costs the stream no
pause beyond the swap itself.  The run loop calls :meth:`ModelWatcher.ready` between batches
(no batch in flight, the last one committed) and swaps: every record is classified by exactly
one model, each event names the version that produced it, and nothing is lost or repeated.

A model that fails to load, fails the smoke test, or has other tasks than the one serving
(the run loop's outputs would change shape) is refused: logged, counted in
``attnwatch_model_reloads_total{result="refused"}``, and not tried again until the path
changes once more.  The old model keeps running.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from models.classifier import TextClassifier
from models.saving import ModelDirError, read_config
from models.smoke import SmokeTestError, smoke_test
from pipeline.metrics import Metrics

log = logging.getLogger(__name__)

Loader = Callable[[Path], TextClassifier]


@dataclass(frozen=True)
class ModelIdentity:
    """Which model a path names now: the resolved directory and its version."""

    directory: str
    version: str


def identify(path: Path) -> ModelIdentity | None:
    """The model at ``path`` (following links), or None while it is not a readable model."""
    try:
        directory = os.path.realpath(path)
        version = str(read_config(Path(directory)).get("version", ""))
    except (ModelDirError, OSError, ValueError):
        return None
    return ModelIdentity(directory, version)


class ModelWatcher:
    """Loads the model at ``path`` aside whenever it changes; see the module docstring."""

    def __init__(
        self,
        path: Path,
        serving: TextClassifier,
        load: Loader,
        metrics: Metrics,
        interval_s: float = 5.0,
    ) -> None:
        self.path = path
        self._load = load
        self._metrics = metrics
        self._interval_s = interval_s
        self._tasks = _task_names(serving)
        self._seen = identify(path)
        self._next_check = time.monotonic() + interval_s
        self._requested = threading.Event()
        self._lock = threading.Lock()
        self._loading: threading.Thread | None = None
        self._ready: TextClassifier | None = None

    def request(self) -> None:
        """Check at the next opportunity (signal-safe: only sets an event)."""
        self._requested.set()

    def ready(self) -> TextClassifier | None:
        """A new, tested model to swap in now, once; starts a check when one is due."""
        with self._lock:
            model, self._ready = self._ready, None
        if model is not None:
            return model
        self._maybe_check()
        return None

    def close(self, timeout_s: float = 5.0) -> None:
        """Wait (bounded) for a load in progress; its model is dropped."""
        loading = self._loading
        if loading is not None:
            loading.join(timeout_s)

    def _maybe_check(self) -> None:
        now = time.monotonic()
        if not self._requested.is_set() and now < self._next_check:
            return
        self._requested.clear()
        self._next_check = now + self._interval_s
        if self._loading is not None and self._loading.is_alive():
            return
        found = identify(self.path)
        if found is None or found == self._seen:
            return
        self._seen = found
        self._loading = threading.Thread(
            target=self._load_aside, args=(found,), name="model-load", daemon=True
        )
        self._loading.start()

    def _load_aside(self, found: ModelIdentity) -> None:
        started = time.monotonic()
        try:
            model = self._load(Path(found.directory))
            if _task_names(model) != self._tasks:
                msg = (
                    f"tasks {sorted(_task_names(model))} differ from the serving model's "
                    f"{sorted(self._tasks)}; restart the run loop to change tasks"
                )
                raise SmokeTestError(msg)
            smoke_test(model)
        except Exception as exc:  # noqa: BLE001 - any failure of a new model is a refusal
            self._metrics.model_reloads.labels("refused").inc()
            log.error(
                "new model refused; the serving model keeps running",
                extra={"model_dir": found.directory, "error": f"{type(exc).__name__}: {exc}"},
            )
            return
        log.info(
            "new model loaded and tested",
            extra={
                "model_dir": found.directory,
                "model_version": model.info.version,
                "load_s": round(time.monotonic() - started, 2),
            },
        )
        with self._lock:
            self._ready = model


def _task_names(classifier: TextClassifier) -> frozenset[str]:
    return frozenset(t.name for t in classifier.info.tasks)
