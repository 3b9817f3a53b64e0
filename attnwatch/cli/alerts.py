"""``attnwatch alerts``: open and recent alerts with their evidence, from the store."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from attnwatch.cli.app import app, fail, state, stop_on_signals
from pipeline.errors import AttnwatchError
from pipeline.store import open_store
from pipeline.store.alerts import AlertTable


@app.command()
def alerts(
    status: Annotated[
        str | None, typer.Option(help="Only firing or resolved alerts; default both.")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="Most alerts shown.")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
    follow: Annotated[bool, typer.Option(help="Keep printing state changes until Ctrl-C.")] = False,
    interval: Annotated[float, typer.Option(min=0.1, help="--follow poll interval, s.")] = 2.0,
) -> None:
    """Open and recent sentiment-shift alerts with their evidence (newest first)."""
    if status not in (None, "firing", "resolved"):
        fail(AttnwatchError(f"--status must be firing or resolved, got {status!r}"))
    try:
        with open_store(state.settings.store.url) as store:
            table = AlertTable(store.engine)
            seen: dict[str, str] = {}
            rows = table.rows(status=status, limit=limit)
            for row in reversed(rows):
                _show(row, as_json)
                seen[row["alert_id"]] = row["status"]
            if not follow:
                if not rows and not as_json:
                    typer.echo("no alerts")
                return
            stop = stop_on_signals()
            while not stop.wait(interval):
                for row in reversed(table.rows(status=status, limit=limit)):
                    if seen.get(row["alert_id"]) != row["status"]:
                        _show(row, as_json)
                        seen[row["alert_id"]] = row["status"]
    except AttnwatchError as exc:
        fail(exc)


def _show(row: dict[str, Any], as_json: bool) -> None:
    event = row["payload"]
    if as_json:
        typer.echo(json.dumps(event))
        return
    ends = f" -> {event['ends_at']}" if event.get("ends_at") else ""
    typer.echo(
        f"[{event['status'].upper()}] {event['severity']} {event['summary']} "
        f"(z {event['statistic']:.1f}; {event['starts_at']}{ends})"
    )
    for evidence in event.get("evidence", []):
        words = ", ".join(evidence["top_words"])
        typer.echo(f"    {evidence['sentiment_score']:.2f}  {words}  | {evidence['text_excerpt']}")
    rising = ", ".join(
        f"{w['word']} {w['baseline']:.1%}->{w['current']:.1%}"
        for w in event.get("rising_words", [])
    )
    if rising:
        typer.echo(f"    rising words: {rising}")
