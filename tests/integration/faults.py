"""Fault injection for the reliability tests: a classifier that raises, kills or dawdles.

``python -m tests.integration.faults`` runs the real run loop (``service`` + ``Runner``,
settings from ``ATTNWATCH_*`` variables, as ``attnwatch run`` does) with the model wrapped
in :class:`FaultyClassifier`, so a test can kill the process on a marker message.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Sequence

from models.classifier import Prediction, TextClassifier
from models.saving import ModelInfo

log = logging.getLogger(__name__)


class ModelFault(RuntimeError):
    """What the faulty model raises on its marker."""


class FaultyClassifier:
    """Wraps a real classifier; misbehaves on texts containing a marker."""

    def __init__(
        self,
        inner: TextClassifier,
        *,
        raise_marker: str | None = None,
        crash_marker: str | None = None,
        delay_s: float = 0.0,
    ) -> None:
        self._inner = inner
        self._raise_marker = raise_marker
        self._crash_marker = crash_marker
        self._delay_s = delay_s
        self.calls = 0

    @property
    def info(self) -> ModelInfo:
        return self._inner.info

    def predict(self, texts: Sequence[str], tasks: Sequence[str] | None = None) -> list[Prediction]:
        self.calls += 1
        if self._crash_marker and any(self._crash_marker in t for t in texts):
            os._exit(86)  # a hard crash: no cleanup, no commit, like a segfault
        if self._raise_marker and any(self._raise_marker in t for t in texts):
            raise ModelFault("marker seen")
        if self._delay_s:
            # The fault itself, a model this slow (not a wait for anything): a caller must
            # keep its group membership, and a stopping one must wait for the call.  The
            # log line tells a test that a batch is in the model now.
            log.info("slow model call", extra={"texts": len(texts), "delay_s": self._delay_s})
            time.sleep(self._delay_s)
        return self._inner.predict(texts, tasks)


def main(argv: list[str] | None = None) -> None:
    from attnwatch.cli.app import stop_on_signals
    from attnwatch.service import load_classifier, service
    from attnwatch.settings import load_settings
    from pipeline.logs import configure_logging

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--crash-marker")
    parser.add_argument("--raise-marker")
    parser.add_argument("--delay-s", type=float, default=0.0)
    parser.add_argument("--idle-exit", type=float)
    args = parser.parse_args(argv)
    settings = load_settings()
    configure_logging("INFO", "json")
    stop = stop_on_signals(settings.shutdown_timeout_s)
    classifier = FaultyClassifier(
        load_classifier(settings),
        raise_marker=args.raise_marker,
        crash_marker=args.crash_marker,
        delay_s=args.delay_s,
    )
    with service(settings, settings.kafka(), classifier=classifier) as svc:
        report = svc.runner.run(stop, idle_exit_s=args.idle_exit)
    print(json.dumps({"enriched": report.enriched, "dead_letters": report.dead_letters}))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
