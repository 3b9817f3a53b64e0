"""The run service: a :class:`~pipeline.stream.runner.Runner` wired from the root settings.

Source, model, sinks (raw store, enriched and dead-letter topics, analyst store), metrics,
the alert evaluator and the retention worker, each built from its own settings group;
:func:`service_when_ready` retries while the store or the broker is down at start-up.
Used by ``attnwatch run``, the demo, the integration tests and the bench harness.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from kafka.errors import KafkaError
from tenacity import RetryCallState, Retrying, retry_if_exception, wait_exponential

from attnwatch.settings import Settings
from consumers.connection import KafkaConnection
from consumers.producer import make_producer
from consumers.source import KafkaSource
from models.classifier import TextClassifier
from models.fast.loading import open_classifier
from models.saving import ModelDirError
from pipeline.alerting.service import Alerting, alerting
from pipeline.config import ModelSettings, PrivacySettings
from pipeline.errors import AttnwatchError, ConfigError, ModelError, StoreError
from pipeline.metrics import Metrics
from pipeline.privacy import PrivacyPolicy, Redactor
from pipeline.sinks.raw import RawSink
from pipeline.sinks.store import StoreSink
from pipeline.sinks.topics import DeadLetterTopicSink, EnrichedTopicSink
from pipeline.store import Store, open_store
from pipeline.store.attempts import AttemptLog
from pipeline.store.dedup import StoredLookup
from pipeline.store.raw import RawStore
from pipeline.store.retention import Retention
from pipeline.store.retention_worker import retention_worker
from pipeline.stream.model_watch import ModelWatcher
from pipeline.stream.prediction_cache import cached
from pipeline.stream.runner import Collaborators, HealthReporter, Runner

log = logging.getLogger(__name__)


def load_classifier(
    config: ModelSettings | Settings, directory: Path | None = None
) -> TextClassifier:
    """Load the model at ``directory`` (default: ``model.dir``); a clear error if absent.

    Device, runtime and torch threads come from the ``model`` settings (the whole
    :class:`Settings` is accepted too, for callers of 0.1).
    """
    model = config.model if isinstance(config, Settings) else config
    if model.torch_threads:
        torch.set_num_threads(model.torch_threads)
    try:
        return open_classifier(directory or model.dir, model.device, model.runtime)
    except ModelDirError as exc:
        msg = f"{exc} (train one with `attnwatch train`)"
        raise ModelError(msg) from exc


@dataclass
class Service:
    """A runner and the resources it owns."""

    runner: Runner
    store: Store
    metrics: Metrics
    source: KafkaSource
    #: Hot reload of ``model_dir`` (None when disabled or the classifier was passed in).
    model_watch: ModelWatcher | None = None
    #: The alert evaluator's thread (None when alerts are disabled).
    alerting: Alerting | None = None


def privacy_policy(privacy: PrivacySettings) -> PrivacyPolicy:
    """The run loop's redaction from the ``privacy`` settings; unknown kinds: ConfigError."""
    if not privacy.redact:
        return PrivacyPolicy(redactor=None, deadletter_raw=True)
    try:
        redactor = Redactor(privacy.kinds, privacy.phone_regions)
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    return PrivacyPolicy(
        redactor=redactor,
        classify_redacted=privacy.classify_redacted,
        deadletter_raw=privacy.deadletter_raw,
    )


@contextlib.contextmanager
def service(
    settings: Settings,
    connection: KafkaConnection,
    *,
    classifier: TextClassifier | None = None,
    metrics: Metrics | None = None,
    health: HealthReporter | None = None,
    watch_model: bool = False,
) -> Iterator[Service]:
    """Build the run loop's parts and close them (source last, each bounded) on exit.

    The model directory is watched for a new model when ``classifier`` is loaded here or
    ``watch_model`` is true (and ``model.watch_interval_s`` > 0).
    """
    watch = (classifier is None or watch_model) and settings.model.watch_interval_s > 0
    classifier = classifier or load_classifier(settings.model)
    metrics = metrics or Metrics()
    io_s = settings.stream.io_timeout_s
    # Each part is closed if a later one cannot be opened (a dependency down at start-up:
    # the caller may retry, see ``service_when_ready``).
    with contextlib.ExitStack() as opening:
        store = open_store(settings.store.url)
        opening.callback(store.close)
        producer = make_producer(
            connection, max_message_bytes=settings.stream.max_message_bytes, timeout_s=io_s
        )
        opening.callback(producer.close, timeout=io_s)
        source = KafkaSource(
            connection,
            [settings.kafka.topics.chat, settings.kafka.topics.news],
            settings.kafka.group_id,
            max_poll_interval_ms=settings.kafka.max_poll_interval_ms,
            session_timeout_ms=settings.kafka.session_timeout_ms,
            # kafka-python requires request.timeout.ms > session.timeout.ms.
            request_timeout_ms=max(int(io_s * 1000), settings.kafka.session_timeout_ms + 5000),
            fetch_max_wait_ms=settings.kafka.fetch_max_wait_ms,
        )
        opening.callback(source.close, timeout_s=io_s)
        raw_store = RawStore(settings.store.raw_url) if settings.store.raw_url else None
        opening.pop_all()
    raw_sink = RawSink(raw_store) if raw_store is not None else None
    model_watch = (
        ModelWatcher(
            settings.model.dir,
            classifier,
            lambda path: load_classifier(settings.model, path),
            metrics,
            settings.model.watch_interval_s,
        )
        if watch
        else None
    )
    try:
        runner = Runner(
            source=source,
            # Repeated texts cost one forward (issue 27); emptied when the model is reloaded.
            classifier=cached(classifier, settings.stream.prediction_cache_mb, metrics),
            # Topics before the store: a stored row then implies its topic record was
            # acknowledged, so a redelivered batch can skip what is stored (no duplicates).
            # The opt-in raw store first, for the same reason.
            sinks=[
                *([raw_sink] if raw_sink is not None else []),
                EnrichedTopicSink(
                    producer, settings.kafka.topics.enriched, settings.stream.io_timeout_s
                ),
                DeadLetterTopicSink(
                    producer,
                    settings.kafka.topics.deadletter,
                    settings.stream.io_timeout_s,
                    max_value_bytes=settings.stream.max_message_bytes,
                ),
                StoreSink(store),
            ],
            topic_kinds={settings.kafka.topics.chat: "chat", settings.kafka.topics.news: "news"},
            metrics=metrics,
            settings=settings.stream,
            collaborators=Collaborators(
                attempts=AttemptLog(store.engine),
                lookup=StoredLookup(store.engine),
                health=health,
                privacy=privacy_policy(settings.privacy),
                model_watch=model_watch,
            ),
        )
        log.info(
            "run loop ready",
            extra={
                "model": classifier.info.name,
                "model_version": classifier.info.version,
                "store": store.url,
                "group_id": settings.kafka.group_id,
            },
        )

        def publish(key: bytes, value: bytes) -> None:
            producer.send(settings.kafka.topics.alerts, key=key, value=value).get(
                timeout=settings.stream.io_timeout_s
            )

        retention = Retention(
            events_days=settings.retention.events_days,
            dead_letters_days=settings.retention.dead_letters_days,
            alerts_days=settings.retention.alerts_days,
        )
        owner = f"{socket.gethostname()}:{os.getpid()}"
        with (
            alerting(settings.alerts, store.engine, metrics, publish=publish) as alerts,
            retention_worker(store.engine, retention, settings.retention.interval_s, owner),
        ):
            # Everything built so far (the model, torch, transformers, the clients) lives as
            # long as the process: out of the cyclic collector's reach, a full collection
            # no longer walks it.  Zero-cost run: GC 87 -> 18 us a message (decision 0021).
            gc.collect()  # what is garbage now must not be frozen with the rest
            gc.freeze()
            yield Service(runner, store, metrics, source, model_watch, alerts)
    finally:
        if model_watch is not None:
            model_watch.close()
        producer.close(timeout=settings.stream.io_timeout_s)
        source.close(timeout_s=settings.stream.io_timeout_s)
        store.close()
        if raw_store is not None:
            raw_store.close()


def startup_fault(exc: BaseException) -> tuple[str, str] | None:
    """``(component, reason)`` when ``exc`` means a dependency is down, else ``None``.

    A store that cannot be opened and a broker that cannot be reached are worth waiting
    for; a bad configuration or a missing model is not.
    """
    if isinstance(exc, StoreError):
        return "store", str(exc)
    if isinstance(exc, KafkaError | OSError):
        return "broker", f"could not reach Kafka: {type(exc).__name__}: {exc}"
    return None


@contextlib.contextmanager
def service_when_ready(
    settings: Settings,
    connection: KafkaConnection,
    stop: threading.Event,
    *,
    health: HealthReporter,
    metrics: Metrics,
) -> Iterator[Service | None]:
    """:func:`service`, retried with capped exponential backoff while a dependency is down.

    Start-up order stops mattering: while the store or the broker is down the process
    stays up, ``/readyz`` says not ready and why (component ``store`` or ``broker``), and
    opening is retried (0.5 s doubling to ``stream.retry_backoff_max_s``) until it works
    or ``stop`` is set, which yields ``None``.  Other errors (configuration, model) raise.
    """
    classifier = load_classifier(settings.model)
    reported: set[str] = set()

    def waiting(state: RetryCallState) -> None:
        assert state.outcome is not None  # noqa: S101 - tenacity calls this after a failure
        fault = startup_fault(state.outcome.exception() or Exception())
        component, reason = fault or ("store", "unknown")
        if component == "broker" and "store" in reported:
            health.set("store", True, "reachable")  # the store is opened first: it is up
        health.set(component, False, reason)
        reported.add(component)
        wait_s = state.next_action.sleep if state.next_action else 0.0
        log.warning(
            "dependency down at start-up; retrying",
            extra={"component": component, "error": reason[:300], "retry_in_s": wait_s},
        )

    def pause(seconds: float) -> None:
        stop.wait(seconds)  # a signal ends the wait at once

    retrying = Retrying(
        retry=retry_if_exception(lambda exc: startup_fault(exc) is not None),
        wait=wait_exponential(multiplier=0.5, max=settings.stream.retry_backoff_max_s),
        stop=lambda _state: stop.is_set(),
        sleep=pause,
        before_sleep=waiting,
        reraise=True,
    )
    with contextlib.ExitStack() as stack:
        try:
            for attempt in retrying:
                with attempt:
                    svc = stack.enter_context(
                        service(
                            settings,
                            connection,
                            classifier=classifier,
                            metrics=metrics,
                            health=health,
                            watch_model=True,
                        )
                    )
        except (AttnwatchError, KafkaError, OSError):
            if not stop.is_set():
                raise
            yield None
            return
        # Opening the service opened the store and reached the broker: both are up now,
        # whether or not this start-up ever saw them down.  Reported here, not at the first
        # commit: on a quiet topic nothing is committed, and a process that never became
        # ready would never pass an orchestrator's readiness probe.  The run loop reports on.
        for component in ("store", "broker"):
            health.set(component, True, "reachable")
        yield svc
