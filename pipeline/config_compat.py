"""The flat setting names of attnwatch 0.1, kept working for one release (until 0.3).

``ATTNWATCH_BATCH_MAX_SIZE``, ``batch_max_size = 64`` at the top of the TOML file,
``load_settings(batch_max_size=64)`` and ``settings.batch_max_size`` all reach
``stream.batch_max_size``; the environment and the file warn (``DeprecationWarning``
and a log line) with the new name.  Delete this module and its three uses in
:mod:`pipeline.config` when the release is over.
"""

from __future__ import annotations

import logging
import os
import warnings
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

log = logging.getLogger("attnwatch.config")

_GROUPS: dict[str, dict[str, str]] = {
    "kafka": {
        name: name
        for name in (
            "bootstrap_servers",
            "security_protocol",
            "sasl_mechanism",
            "sasl_username",
            "sasl_password",
            "ssl_cafile",
            "ssl_certfile",
            "ssl_keyfile",
            "ssl_check_hostname",
            "partitions",
            "group_id",
            "fetch_max_wait_ms",
            "max_poll_interval_ms",
            "session_timeout_ms",
        )
    },
    "kafka.topics": {f"topic_{t}": t for t in ("chat", "news", "enriched", "deadletter", "alerts")},
    "stream": {
        name: name
        for name in (
            "batch_max_size",
            "batch_max_wait_ms",
            "max_message_bytes",
            "max_text_chars",
            "max_body_chars",
            "max_sentences",
            "max_redeliveries",
            "shutdown_timeout_s",
            "retry_backoff_max_s",
            "io_timeout_s",
            "metrics_port",
            "metrics_host",
            "lag_interval_s",
        )
    },
    "store": {"store_url": "url", "raw_store_url": "raw_url"},
    "alerts": {"alerts_enabled": "enabled"}
    | {
        f"alert_{name}": name
        for name in (
            "interval_s",
            "bucket_s",
            "current_s",
            "baseline_s",
            "lateness_s",
            "lease_ttl_s",
            "idle_s",
            "late_after_s",
            "history",
            "z_open",
            "min_current",
            "min_baseline",
            "receivers",
            "retry_max_s",
            "external_url",
        )
    },
    "privacy": {
        "redact": "redact",
        "redact_kinds": "kinds",
        "redact_phone_regions": "phone_regions",
        "classify_redacted": "classify_redacted",
        "deadletter_raw": "deadletter_raw",
    },
    "retention": {
        f"retention_{name}": name
        for name in ("events_days", "dead_letters_days", "alerts_days", "interval_s")
    },
    "dashboard": {f"dashboard_{name}": name for name in ("host", "port", "token")},
    "model": {
        "model_dir": "dir",
        "encoder": "encoder",
        "device": "device",
        "torch_threads": "torch_threads",
        "model_runtime": "runtime",
        "model_watch_interval_s": "watch_interval_s",
    },
}

#: Old flat name -> its path in the nested settings.
FLAT: dict[str, tuple[str, ...]] = {
    flat: (*group.split("."), leaf)
    for group, names in _GROUPS.items()
    for flat, leaf in names.items()
}


def _deprecated(old: str, path: tuple[str, ...], where: str) -> None:
    new = ".".join(path)
    msg = f"setting {old!r} ({where}) is deprecated and goes in 0.3: use {new!r}"
    warnings.warn(msg, DeprecationWarning, stacklevel=4)
    log.warning("deprecated setting name", extra={"old": old, "new": new, "where": where})


def flat_to_nested(
    values: dict[str, Any], *, warn: bool = True, where: str = "config"
) -> dict[str, Any]:
    """``values`` with every flat 0.1 name moved to its nested place.

    A nested value given in the same source wins over the flat one.
    """
    out: dict[str, Any] = {k: v for k, v in values.items() if k not in FLAT}
    for old, value in values.items():
        path = FLAT.get(old)
        if path is None:
            continue
        if warn:
            _deprecated(old, path, where)
        node = out
        for part in path[:-1]:
            child = node.get(part)
            if isinstance(child, BaseModel):
                child = child.model_dump(exclude_unset=True)
            node[part] = child = dict(child) if isinstance(child, dict) else {}
            node = child
        node.setdefault(path[-1], value)
    return out


def read_flat(settings: Any, name: str) -> tuple[bool, Any]:
    """``(True, value)`` of the old flat attribute ``name``, else ``(False, None)``."""
    path = FLAT.get(name)
    if path is None:
        return False, None
    value = settings
    for part in path:
        value = getattr(value, part)
    return True, value


class FlatNames(PydanticBaseSettingsSource):
    """Wraps a source (the TOML file, the init arguments) so flat names reach nested fields."""

    def __init__(
        self, settings_cls: type[BaseSettings], inner: PydanticBaseSettingsSource, warn: bool = True
    ) -> None:
        super().__init__(settings_cls)
        self.inner = inner
        self.warn = warn

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        """Unused: :meth:`__call__` returns the whole mapping."""
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        """The inner source's values, flat names moved to their nested place."""
        return flat_to_nested(self.inner(), warn=self.warn, where=type(self.inner).__name__)


class FlatEnvSource(PydanticBaseSettingsSource):
    """``ATTNWATCH_<FLAT_NAME>`` environment variables of 0.1, below the nested ones."""

    def __init__(self, settings_cls: type[BaseSettings], prefix: str) -> None:
        super().__init__(settings_cls)
        self.prefix = prefix

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        """Unused: :meth:`__call__` returns the whole mapping."""
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        """The flat variables set, as nested values; each one warns."""
        found = {
            flat: os.environ[self.prefix + flat.upper()]
            for flat in FLAT
            if self.prefix + flat.upper() in os.environ
        }
        out = flat_to_nested(found, warn=False)
        for flat in found:
            _deprecated(self.prefix + flat.upper(), FLAT[flat], "environment")
        return out


def is_set(settings: Any, name: str) -> bool:
    """Whether the flat setting ``name`` was given explicitly (flags, environment, file)."""
    node = settings
    for part in FLAT[name]:
        if part not in node.model_fields_set:
            return False
        node = getattr(node, part)
    return True
