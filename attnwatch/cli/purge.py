"""``attnwatch purge``: apply the retention periods now, or delete one customer's conversations.

``attnwatch run`` applies the same retention every ``retention_interval_s``; this command
is for doing it at once, for trying other periods (``--dry-run``), and for deletion
requests (``--conversation-id``).  See :mod:`pipeline.store.retention` for what goes.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer

from attnwatch.cli.app import app, fail, state
from pipeline.errors import AttnwatchError
from pipeline.store import open_store
from pipeline.store.raw import RawStore
from pipeline.store.retention import (
    PurgeReport,
    Retention,
    cutoff,
    forget_conversation,
    purge,
)

#: What each mode reports, in print order.
RETENTION_TABLES = ("events", "dead_letters", "alerts", "outbox", "attempts", "corrections")
CONVERSATION_TABLES = ("events", "dead_letters", "alert_evidence", "corrections")


@app.command("purge")
def purge_command(
    dry_run: Annotated[
        bool, typer.Option(help="Count what would be deleted; delete nothing.")
    ] = False,
    conversation_id: Annotated[
        list[str] | None,
        typer.Option(
            "--conversation-id",
            metavar="ID",
            help="Delete everything of this conversation, whatever its age, instead of "
            "applying the retention (repeat for several).",
        ),
    ] = None,
    events_days: Annotated[
        float | None,
        typer.Option(
            min=0,
            metavar="DAYS",
            help="Keep events this long; 0 forever. Default: retention_events_days.",
        ),
    ] = None,
    dead_letters_days: Annotated[
        float | None,
        typer.Option(
            min=0,
            metavar="DAYS",
            help="Keep dead letters this long; 0 forever. Default: retention_dead_letters_days.",
        ),
    ] = None,
    alerts_days: Annotated[
        float | None,
        typer.Option(
            min=0,
            metavar="DAYS",
            help="Keep resolved alerts this long; 0 forever. Default: retention_alerts_days.",
        ),
    ] = None,
) -> None:
    """Delete stored rows older than the retention periods (or one conversation's rows).

    Events go by event time, dead letters by received time, alerts only once resolved
    (by end time, with their notification outbox rows); firing alerts always stay.
    Kafka topics are not touched: they keep records until their own retention.
    """
    settings = state.settings
    overrides = (events_days, dead_letters_days, alerts_days)
    if conversation_id and any(days is not None for days in overrides):
        fail(AttnwatchError("--conversation-id deletes regardless of age; drop the --*-days"))
    try:
        retention = Retention(
            events_days=_pick(events_days, settings.retention.events_days),
            dead_letters_days=_pick(dead_letters_days, settings.retention.dead_letters_days),
            alerts_days=_pick(alerts_days, settings.retention.alerts_days),
        )
    except ValueError as exc:
        fail(exc)
    verb = "would delete" if dry_run else "deleted"
    try:
        raw = RawStore(settings.store.raw_url) if settings.store.raw_url and not dry_run else None
        with open_store(settings.store.url) as store:
            if conversation_id:
                for wanted in dict.fromkeys(conversation_id):
                    report = forget_conversation(store.engine, wanted, dry_run=dry_run)
                    typer.echo(f"conversation {wanted}: {verb}")
                    _print(report, CONVERSATION_TABLES)
                    if raw is not None:
                        typer.echo(f"  raw store: {raw.forget_conversation(wanted)}")
                return
            now = datetime.now(UTC)
            report = purge(store.engine, retention, now, dry_run=dry_run)
            if raw is not None:
                removed = raw.purge(
                    cutoff(retention.events_days, now), cutoff(retention.dead_letters_days, now)
                )
                typer.echo(f"raw store: {verb} {removed} rows")
    except (AttnwatchError, ValueError) as exc:
        fail(exc)
    typer.echo(
        f"{verb} (events {_days(retention.events_days)}, dead letters "
        f"{_days(retention.dead_letters_days)}, resolved alerts "
        f"{_days(retention.alerts_days)}):"
    )
    _print(report, RETENTION_TABLES)


def _pick(given: float | None, default: float) -> float:
    return default if given is None else given


def _days(days: float) -> str:
    return f"kept {days:g} d" if days else "kept forever"


def _print(report: PurgeReport, tables: tuple[str, ...]) -> None:
    counts = report.counts()
    width = max(len(name) for name in tables)
    for name in tables:
        typer.echo(f"  {name:<{width}}  {counts[name]}")


@app.command()
def migrate() -> None:
    """Bring the store's schema (--store-url) to this version with Alembic and exit.

    Run it once before a rollout, as a user that may change the schema; the dashboard
    then needs only read access.  Safe to run twice or beside running replicas.
    """
    from pipeline.store.migrate import migrate as migrate_store

    settings = state.settings
    try:
        revision, tables = migrate_store(settings.store.url)
    except AttnwatchError as exc:
        fail(exc)
    typer.echo(f"store schema at revision {revision}: {', '.join(tables)}")
    if settings.store.raw_url:
        try:
            raw = RawStore(settings.store.raw_url)  # upgrades the raw store's schema
        except AttnwatchError as exc:
            fail(exc)
        raw.close()
        typer.echo("raw store schema upgraded")
