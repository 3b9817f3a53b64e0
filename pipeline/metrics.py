"""Every Prometheus metric attnwatch exports: names and labels live here and in docs/metrics.md.

Names are part of the operator contract (dashboards and alert rules use
them): change them only with a CHANGELOG entry.  Two gauges follow
``pipeline.health.Health.set``: ``attnwatch_ready`` (1 when every component is ok, else 0)
and ``attnwatch_component_up{component}`` (``model``, ``assignment``, ``broker``, ``store``;
1 or 0).

``Metrics.serve`` answers ``/metrics`` and, given a ``Health``, ``/healthz`` and ``/readyz``
on one port, one uvicorn server (:mod:`pipeline.server`); any other path is 404.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from pipeline.server import Probes, ProbeServer

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


class Metrics:
    """One registry per process (tests make several)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.messages = Counter(
            "attnwatch_messages_total",
            "Input messages handled, by source topic and outcome (enriched, dead_letter).",
            ["topic", "outcome"],
            registry=r,
        )
        self.dead_letters = Counter(
            "attnwatch_dead_letters_total",
            "Messages sent to the dead-letter topic, by reason.",
            ["reason"],
            registry=r,
        )
        self.redactions = Counter(
            "attnwatch_redactions_total",
            "Customer identifiers replaced by a placeholder before classification, by kind.",
            ["kind"],
            registry=r,
        )
        self.labels = Counter(
            "attnwatch_labels_total",
            "Predicted labels, by kind (chat, news), task (intent, sentiment) and label.",
            ["kind", "task", "label"],
            registry=r,
        )
        self.batch_size = Histogram(
            "attnwatch_batch_size",
            "Messages per micro-batch.",
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.model_latency = Histogram(
            "attnwatch_model_latency_seconds",
            "Classifier time per micro-batch.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.end_to_end_latency = Histogram(
            "attnwatch_end_to_end_latency_seconds",
            "From event time to the result being durably written, per message.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.commits = Counter(
            "attnwatch_commits_total",
            "Offset commits, by result (ok, rebalanced).",
            ["result"],
            registry=r,
        )
        self.lag = Gauge(
            "attnwatch_consumer_lag",
            "Messages behind the end of each assigned input partition.",
            ["topic", "partition"],
            registry=r,
        )
        self.model_info = Gauge(
            "attnwatch_model_info",
            "The loaded model (value 1).",
            ["name", "version", "tokenizer_hash"],
            registry=r,
        )
        self.model_reloads = Counter(
            "attnwatch_model_reloads_total",
            "Hot model reloads, by result (loaded: swapped in; refused: old model kept).",
            ["result"],
            registry=r,
        )
        # Prediction cache (pipeline.stream.prediction_cache): repeated texts skip the model.
        self.prediction_cache_hits = Counter(
            "attnwatch_prediction_cache_hits_total",
            "Texts answered from the prediction cache (or a repeat in the same call), no model.",
            registry=r,
        )
        self.prediction_cache_misses = Counter(
            "attnwatch_prediction_cache_misses_total",
            "Texts the prediction cache sent to the model.",
            registry=r,
        )
        self.prediction_cache_entries = Gauge(
            "attnwatch_prediction_cache_entries",
            "Predictions held by the prediction cache.",
            registry=r,
        )
        self.prediction_cache_bytes = Gauge(
            "attnwatch_prediction_cache_bytes",
            "Estimated bytes held by the prediction cache (at most stream.prediction_cache_mb).",
            registry=r,
        )
        # Alerting (pipeline.alerting): set by the evaluator holding the lease.
        scope = ["scope_kind", "scope", "stream"]
        self.negative_share = Gauge(
            "attnwatch_negative_share",
            "Negative share of the current alert window, per scope.",
            scope,
            registry=r,
        )
        self.shift_statistic = Gauge(
            "attnwatch_shift_statistic",
            "The shift detector's statistic (z of current vs baseline negative share).",
            scope,
            registry=r,
        )
        self.shift_active = Gauge(
            "attnwatch_shift_active",
            "1 while a sentiment-shift episode is open for the scope, else 0.",
            scope,
            registry=r,
        )
        self.confidence_mean = Gauge(
            "attnwatch_confidence_mean",
            "Mean top-label probability over the current window, per stream and task.",
            ["stream", "task"],
            registry=r,
        )
        self.alert_watermark_lag = Gauge(
            "attnwatch_alert_watermark_lag_seconds",
            "Processing time minus the stream's alert watermark (how far evaluation is behind).",
            ["stream"],
            registry=r,
        )
        self.unknown_intent_share = Gauge(
            "attnwatch_unknown_intent_share",
            "Share of customer turns labelled unknown over the current window.",
            ["stream"],
            registry=r,
        )
        self.alerts = Counter(
            "attnwatch_alerts_total",
            "Alert events emitted, by status (firing, resolved).",
            ["status"],
            registry=r,
        )
        self.ready = Gauge(
            "attnwatch_ready",
            "1 when every health component is ok (what /readyz answers 200 for), else 0.",
            registry=r,
        )
        self.component_up = Gauge(
            "attnwatch_component_up",
            "1 when the health component (model, assignment, broker, store) is ok, else 0.",
            ["component"],
            registry=r,
        )
        self._server: ProbeServer | None = None

    def serve(self, port: int, host: str = "127.0.0.1", health: Probes | None = None) -> int:
        """Serve ``/metrics`` (and ``/healthz``, ``/readyz`` given ``health``) on ``host:port``.

        One uvicorn server on a daemon thread (:mod:`pipeline.server`); returns the bound
        port (useful with port 0).  A port that is taken or an address that cannot be bound
        raises ``ConfigError``.  Stop with :meth:`close`.
        """
        if self._server is not None:
            msg = "Metrics.serve called twice; close() the running server first"
            raise RuntimeError(msg)
        server = ProbeServer(self.registry, health)
        bound = server.serve(port, host)
        self._server = server
        return bound

    def close(self) -> None:
        """Stop the HTTP server started by :meth:`serve` and free its port (idempotent)."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
