"""``attnwatch config``: the effective settings, or the reference table of all of them.

The effective settings are printed with every secret masked: ``SecretStr`` settings
(SASL password, dashboard token), the password inside a store URL, and the path and
query of alert receiver URLs (a Slack webhook's path is its credential).  The view is
nested like the settings (``kafka``, ``stream``, ``store``, ...).
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any
from urllib.parse import urlsplit

import typer
from pydantic import BaseModel, SecretStr, TypeAdapter
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from attnwatch.cli.app import app, state
from attnwatch.settings import Settings, settings_markdown

MASK = "**********"
#: ``store`` settings holding a database URL, whose password is masked.
URL_SETTINGS = ("url", "raw_url")
#: ``scheme://user:password@`` in a URL SQLAlchemy could not parse.
_USERINFO_PASSWORD = re.compile(r"(?P<head>://[^/@:]*:)[^/@]*@")


def mask_store_url(url: str) -> str:
    """``url`` with its password replaced by ``***``; safe to print or log."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return _USERINFO_PASSWORD.sub(r"\g<head>***@", url)


def mask_receiver_url(url: str) -> str:
    """Scheme, host and port of ``url`` only: the path, query and user info may be secrets."""
    parts = urlsplit(url)
    if not parts.scheme or not parts.hostname:
        return MASK
    netloc = parts.hostname if parts.port is None else f"{parts.hostname}:{parts.port}"
    hidden = "/" + MASK if parts.path.strip("/") or parts.query or parts.fragment else ""
    return f"{parts.scheme}://{netloc}{hidden}"


def _mask_secrets(value: Any) -> Any:
    """``value`` (a dumped model) with every ``SecretStr`` masked, recursively."""
    if isinstance(value, BaseModel):
        out: dict[str, Any] = {}
        for name in type(value).model_fields:
            item = getattr(value, name)
            out[name] = MASK if isinstance(item, SecretStr) else _mask_secrets(item)
        return out
    if isinstance(value, list):
        return [_mask_secrets(item) for item in value]
    return TypeAdapter(Any).dump_python(value, mode="json")


def masked_settings(settings: Settings) -> dict[str, Any]:
    """The nested settings as JSON-ready values, every secret masked."""
    values: dict[str, Any] = _mask_secrets(settings)
    store = values["store"]
    for name in URL_SETTINGS:
        if isinstance(store.get(name), str):
            store[name] = mask_store_url(store[name])
    for receiver in values["alerts"]["receivers"]:
        receiver["url"] = mask_receiver_url(str(receiver["url"]))
    return values


@app.command()
def config(
    markdown: Annotated[bool, typer.Option(help="Print the reference table instead.")] = False,
) -> None:
    """Show the effective configuration (secrets masked)."""
    if markdown:
        typer.echo(settings_markdown())
        return
    typer.echo(json.dumps(masked_settings(state.settings), indent=2))
