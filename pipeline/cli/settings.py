"""``attnwatch config``: the effective settings, or the reference table of all of them."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from pipeline.cli.app import app, state
from pipeline.config import settings_markdown


@app.command()
def config(
    markdown: Annotated[bool, typer.Option(help="Print the reference table instead.")] = False,
) -> None:
    """Show the effective configuration (secrets masked)."""
    if markdown:
        typer.echo(settings_markdown())
        return
    values = state.settings.model_dump(mode="json")
    if values.get("sasl_password"):
        values["sasl_password"] = "***"  # noqa: S105 - a mask, not a password
    typer.echo(json.dumps(values, indent=2))
