"""The settings groups, one typed pydantic model per component.

``kafka`` (with ``topics``) is defined here; ``stream``, ``store``, ``alerts``,
``privacy``, ``retention``, ``dashboard`` and ``model`` in :mod:`pipeline.config_groups`
and re-exported.  Each group is exactly what its component's constructor takes; every
option is documented once, in its field.  The root :class:`attnwatch.settings.Settings`
nests the groups and reads flags, environment and the TOML file: only the composition
root (``attnwatch``) reads it, and nothing in ``pipeline`` imports it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from consumers.connection import KafkaConnection
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

__all__ = [
    "AlertReceiver",
    "AlertingSettings",
    "DashboardSettings",
    "KafkaSettings",
    "ModelSettings",
    "PrivacySettings",
    "RetentionSettings",
    "StoreSettings",
    "StreamSettings",
    "TopicSettings",
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
