"""``attnwatch config``: the effective settings, or the reference table of all of them.

The effective settings are printed with every secret masked: ``SecretStr`` settings
(SASL password, dashboard token), the password inside a store URL, and the path and
query of alert receiver URLs (a Slack webhook's path is its credential).
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any
from urllib.parse import urlsplit

import typer
from pydantic import SecretStr
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from pipeline.cli.app import app, state
from pipeline.config import Settings, settings_markdown

MASK = "**********"
#: Settings holding a database URL, whose password is masked.
URL_SETTINGS = ("store_url", "raw_store_url")
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


def mask_receivers(raw: str) -> str:
    """``alert_receivers`` (a JSON list) with every receiver URL masked, still as JSON."""
    try:
        receivers = json.loads(raw)
    except ValueError:
        return MASK  # unparseable: it may still hold a webhook URL, so show none of it
    if not isinstance(receivers, list):
        return MASK
    masked: list[Any] = []
    for receiver in receivers:
        if isinstance(receiver, dict):
            receiver = dict(receiver)
            if isinstance(receiver.get("url"), str):
                receiver["url"] = mask_receiver_url(receiver["url"])
            masked.append(receiver)
        else:
            masked.append(MASK)
    return json.dumps(masked)


def masked_settings(settings: Settings) -> dict[str, Any]:
    """The settings as JSON-ready values, every secret masked."""
    values = settings.model_dump(mode="json")
    for name in type(settings).model_fields:
        if isinstance(getattr(settings, name), SecretStr):
            values[name] = MASK
    for name in URL_SETTINGS:
        if isinstance(values.get(name), str):
            values[name] = mask_store_url(values[name])
    values["alert_receivers"] = mask_receivers(settings.alert_receivers)
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
