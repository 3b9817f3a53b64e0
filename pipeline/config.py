"""All runtime configuration in one typed, validated place, shaped like the system.

One pydantic model per component (``kafka``, ``stream``, ``store``, ``alerts``,
``privacy``, ``retention``, ``dashboard``, ``model``), each exactly what that component
takes; :class:`Settings` nests them.  Values come, highest priority first, from CLI
flags, environment variables (``ATTNWATCH_<GROUP>__<FIELD>``, e.g.
``ATTNWATCH_STREAM__BATCH_MAX_SIZE``), a TOML file (``--config`` or ``ATTNWATCH_CONFIG``,
one ``[group]`` table per component) and the defaults.  The flat names of 0.1
(``ATTNWATCH_BATCH_MAX_SIZE``, ``batch_max_size = 64``) still work for one release, with
a deprecation warning; :mod:`pipeline.config_compat` maps them.  Every option is
documented once, here (``attnwatch config --markdown`` prints the reference table).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from consumers.connection import KafkaConnection
from pipeline.config_compat import FlatEnvSource, FlatNames, flat_to_nested, read_flat
from pipeline.config_groups import (
    AlertingSettings,
    AlertReceiver,
    DashboardSettings,
    ModelSettings,
    PrivacySettings,
    RetentionSettings,
    StoreSettings,
    StreamSettings,
)
from pipeline.errors import ConfigError

CONFIG_FILE_ENV = "ATTNWATCH_CONFIG"
ENV_PREFIX = "ATTNWATCH_"
NESTED_DELIMITER = "__"

__all__ = [
    "AlertReceiver",
    "AlertingSettings",
    "DashboardSettings",
    "KafkaSettings",
    "ModelSettings",
    "PrivacySettings",
    "RetentionSettings",
    "Settings",
    "StoreSettings",
    "StreamSettings",
    "TopicSettings",
    "load_settings",
    "settings_markdown",
]


class TopicSettings(BaseModel):
    """Names of the topics attnwatch reads and writes."""

    model_config = ConfigDict(extra="forbid")

    chat: str = Field("chat", description="Input topic of chat events.")
    news: str = Field("news", description="Input topic of news events.")
    enriched: str = Field("enriched", description="Output topic of enriched events.")
    deadletter: str = Field("deadletter", description="Topic of dead-letter records.")
    alerts: str = Field("alerts", description="Topic of alert events.")

    def names(self) -> list[str]:
        """Every topic attnwatch uses."""
        return [self.chat, self.news, self.enriched, self.deadletter, self.alerts]


class KafkaSettings(BaseModel):
    """The Kafka connection, topics and consumer-group member settings."""

    model_config = ConfigDict(extra="forbid")

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
    topics: TopicSettings = Field(default_factory=TopicSettings)
    partitions: int = Field(3, ge=1, le=1024, description="Partitions per topic created.")
    group_id: str = Field("attnwatch", description="Kafka consumer group id of `run`.")
    fetch_max_wait_ms: int = Field(
        100,
        ge=0,
        le=10_000,
        description="Longest time the broker may hold a fetch waiting for data, in ms "
        "(Kafka's fetch.max.wait.ms; its default 500 adds up to that to a quiet stream's "
        "latency).",
    )
    max_poll_interval_ms: int = Field(
        300_000, ge=1000, description="Kafka max.poll.interval.ms of the consumer group member."
    )
    session_timeout_ms: int = Field(
        10_000, ge=1000, description="Kafka session.timeout.ms of the consumer group member."
    )

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

    def connection(self, bootstrap_servers: str | None = None) -> KafkaConnection:
        """Connection settings for kafka-python clients."""
        servers = bootstrap_servers or self.bootstrap_servers
        if servers is None:
            msg = (
                "no Kafka bootstrap servers: set --bootstrap-servers or "
                "ATTNWATCH_KAFKA__BOOTSTRAP_SERVERS"
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

    def __call__(self, bootstrap_servers: str | None = None) -> KafkaConnection:
        """Deprecated spelling of :meth:`connection` (``settings.kafka()`` of 0.1)."""
        return self.connection(bootstrap_servers)


class Settings(BaseSettings):
    """attnwatch settings: one group per component; see ``attnwatch config --markdown``."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter=NESTED_DELIMITER,
        extra="forbid",
    )

    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    stream: StreamSettings = Field(default_factory=StreamSettings)
    store: StoreSettings = Field(default_factory=StoreSettings)
    alerts: AlertingSettings = Field(default_factory=AlertingSettings)
    privacy: PrivacySettings = Field(default_factory=PrivacySettings)
    retention: RetentionSettings = Field(default_factory=RetentionSettings)
    dashboard: DashboardSettings = Field(default_factory=DashboardSettings)
    model: ModelSettings = Field(default_factory=ModelSettings)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="Log level."
    )
    log_format: Literal["json", "console"] = Field("json", description="Log line format.")

    #: The TOML file read (set on a subclass by :func:`load_settings`).
    config_file: ClassVar[Path | None] = None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Flags beat environment (nested, then old flat names), which beats the TOML file."""
        toml_file = getattr(settings_cls, "config_file", None)
        return (
            FlatNames(settings_cls, init_settings, warn=False),
            env_settings,
            FlatEnvSource(settings_cls, ENV_PREFIX),
            FlatNames(settings_cls, TomlConfigSettingsSource(settings_cls, toml_file=toml_file)),
        )

    def replace(self, **changes: Any) -> Settings:
        """A copy with ``changes`` (group names with dicts, or flat 0.1 names) validated in."""
        nested = flat_to_nested(changes, warn=False)
        groups: dict[str, Any] = {}
        for name, value in nested.items():
            current = getattr(self, name)
            if isinstance(current, BaseModel) and isinstance(value, dict):
                merged = _deep_merge(current.model_dump(), value)
                groups[name] = type(current).model_validate(merged)
            else:
                groups[name] = value
        return self.model_copy(update=groups)

    def topics(self) -> list[str]:
        """Every topic attnwatch uses."""
        return self.kafka.topics.names()

    if not __import__("typing").TYPE_CHECKING:

        def __getattr__(self, name: str) -> Any:
            # Old flat attribute names (``settings.batch_max_size``) read the nested value
            # for one release; see pipeline.config_compat.
            found, value = read_flat(self, name)
            if found:
                return value
            return super().__getattr__(name)

    else:  # pragma: no cover - typing only

        def __getattr__(self, name: str) -> Any: ...


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Build settings from flags (``overrides``; ``None`` means unset), env and file.

    ``overrides`` take group names with a dict or model (``stream={"batch_max_size": 7}``)
    or the flat names of 0.1 (``batch_max_size=7``), which CLI flags use.
    """
    if config_file is None and os.environ.get(CONFIG_FILE_ENV):
        config_file = Path(os.environ[CONFIG_FILE_ENV])
    cls = Settings
    if config_file is not None:
        if not config_file.is_file():
            msg = f"config file {config_file} does not exist"
            raise ConfigError(msg)

        class FromFile(Settings):
            pass

        FromFile.config_file = config_file

        cls = FromFile
    given = flat_to_nested(
        {key: value for key, value in overrides.items() if value is not None}, warn=False
    )
    try:
        return cls(**given)
    except ValidationError as exc:
        raise ConfigError(describe_errors(exc)) from exc
    except ValueError as exc:
        msg = f"invalid configuration: {exc}"
        raise ConfigError(msg) from exc


def _deep_merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def describe_errors(exc: ValidationError) -> str:
    """A one-line description of ``exc`` that never repeats the input (it may be a secret)."""
    parts = []
    for error in exc.errors(include_url=False, include_input=False):
        where = ".".join(str(part) for part in error["loc"])
        parts.append(f"{where}: {error['msg']}")
    return "invalid configuration: " + "; ".join(parts)


def settings_markdown() -> str:
    """The configuration reference as a Markdown table (for the docs)."""
    rows = ["| setting | env | default | description |", "|---|---|---|---|"]

    def walk(model: type[BaseModel], path: tuple[str, ...]) -> None:
        for name, field in model.model_fields.items():
            kind = field.annotation
            if isinstance(kind, type) and issubclass(kind, BaseModel):
                walk(kind, (*path, name))
                continue
            dotted = ".".join((*path, name))
            env = ENV_PREFIX + NESTED_DELIMITER.join((*path, name)).upper()
            default = field.get_default(call_default_factory=True)
            shown = "unset" if default is None else f"`{default}`"
            rows.append(f"| `{dotted}` | `{env}` | {shown} | {field.description or ''} |")

    walk(Settings, ())
    return "\n".join(rows)
