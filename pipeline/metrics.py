"""Every Prometheus metric attnwatch exports: names and labels live here and in the README.

Names are part of the operator contract (dashboards and alert rules use
them): change them only with a CHANGELOG entry.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from pipeline.errors import ConfigError

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

    def serve(self, port: int, host: str = "127.0.0.1") -> None:
        """Expose ``/metrics`` over HTTP on ``host:port`` (a daemon thread)."""
        try:
            start_http_server(port, addr=host, registry=self.registry)
        except OSError as exc:
            msg = f"cannot serve metrics on {host}:{port} ({exc}); choose --metrics-port or 0"
            raise ConfigError(msg) from exc
