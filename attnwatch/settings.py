"""The root settings: every group nested, read from flags, environment and a TOML file.

:class:`Settings` nests one model per component (``kafka``, ``stream``, ``store``,
``alerts``, ``privacy``, ``retention``, ``dashboard``, ``model``; defined in
:mod:`pipeline.config`).  Values come, highest priority first, from CLI flags,
environment variables (``ATTNWATCH_<GROUP>__<FIELD>``, e.g.
``ATTNWATCH_STREAM__BATCH_MAX_SIZE``), a TOML file (``--config`` or ``ATTNWATCH_CONFIG``,
one ``[group]`` table per component) and the defaults.  The flat names of 0.1
(``ATTNWATCH_BATCH_MAX_SIZE``, ``batch_max_size = 64``) still work for one release, with
a deprecation warning; :mod:`pipeline.config_compat` maps them.  ``attnwatch config
--markdown`` prints the reference table.

Only the composition root reads these: below it, each component is handed its group.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, Field, ValidationError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from pipeline.config import (
    AlertingSettings,
    DashboardSettings,
    KafkaSettings,
    ModelSettings,
    PrivacySettings,
    RetentionSettings,
    StoreSettings,
    StreamSettings,
)
from pipeline.config_compat import FlatEnvSource, FlatNames, flat_to_nested, read_flat
from pipeline.errors import ConfigError

CONFIG_FILE_ENV = "ATTNWATCH_CONFIG"
ENV_PREFIX = "ATTNWATCH_"
NESTED_DELIMITER = "__"

__all__ = ["Settings", "describe_errors", "load_settings", "settings_markdown"]


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
