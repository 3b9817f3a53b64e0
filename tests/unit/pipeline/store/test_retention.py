"""Retention and per-conversation deletion, on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

import json
import logging
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from attnwatch.cli import app
from pipeline.errors import StoreError
from pipeline.schema import (
    DeadLetter,
    EnrichedEvent,
    SourceRef,
)
from pipeline.store import Store
from pipeline.store import retention as retention_module
from pipeline.store import retention_worker as worker_module
from pipeline.store.alerts import AlertTable, alerts_table
from pipeline.store.attempts import AttemptLog, attempts_table
from pipeline.store.dashboard_tables import corrections_table
from pipeline.store.lease import Lease
from pipeline.store.outbox import Message, Outbox, outbox_table
from pipeline.store.retention import (
    PurgeReport,
    Retention,
    forget_conversation,
    purge,
)
from pipeline.store.retention_worker import retention_worker
from pipeline.store.tables import dead_letters_table, events_table
from tests.support.events import chat_event
from tests.support.waiting import wait_for

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)
KEEP = Retention(events_days=90, dead_letters_days=30, alerts_days=365)
LONG_TEXT = "my card was declined again after the outage and nobody answers " * 4


def chat(n: int, at: datetime, conversation: str = "c1", text: str | None = None) -> EnrichedEvent:
    return chat_event(
        n,
        at,
        conversation_id=conversation,
        text=text if text is not None else f"message {n} of {conversation}",
    )


def letter(
    offset: int, received: datetime, key: bytes | None = None, raw: bytes | None = b"\xffbad"
) -> DeadLetter:
    return DeadLetter(
        source=SourceRef(topic="chat", partition=0, offset=offset),
        reason="invalid_json",
        detail="Expecting value",
        raw=raw,
        received_time=received,
        key=key,
    )


def payload(evidence: list[str]) -> str:
    return json.dumps(
        {
            "summary": "negative share up",
            "evidence": [
                {"text_excerpt": e, "sentiment_score": 0.9, "top_words": ["declined"]}
                for e in evidence
            ],
        }
    )


def add_alert(
    store: Store, alert_id: str, starts: datetime, ends: datetime | None, evidence: list[str]
) -> None:
    table = AlertTable(store.engine)
    row = {
        "alert_id": alert_id,
        "scope_kind": "channel",
        "scope": "app",
        "stream": "chat",
        "severity": "warning",
        "starts_at": starts,
        "statistic": 5.0,
        "payload": payload(evidence),
    }
    assert table.fire(row, starts)
    if ends is not None:
        assert table.resolve(alert_id, ends, payload(evidence), ends)


def add_attempt(store: Store, offset: int, updated: datetime) -> None:
    AttemptLog(store.engine)  # creates the table
    with store.engine.begin() as conn:
        conn.execute(
            sa.insert(attempts_table).values(
                source_topic="chat",
                source_partition=0,
                source_offset=offset,
                count=1,
                updated_time=updated,
            )
        )


def column(store: Store, col: sa.Column[Any]) -> list[Any]:
    with store.engine.connect() as conn:
        return sorted(conn.execute(sa.select(col)).scalars())


def fill(store: Store, now: datetime) -> None:
    """Old and recent rows of every table, relative to ``now``."""
    store.write(
        [chat(1, now - 100 * DAY), chat(2, now - 91 * DAY), chat(3, now - 10 * DAY)],
        [letter(1, now - 40 * DAY), letter(2, now - 5 * DAY)],
    )
    add_alert(store, "old-resolved", now - 401 * DAY, now - 400 * DAY, ["x"])
    add_alert(store, "recent-resolved", now - 101 * DAY, now - 100 * DAY, ["y"])
    add_alert(store, "ancient-firing", now - 1000 * DAY, None, ["z"])
    Outbox(store.engine).enqueue(
        [
            Message("old-resolved", "firing", "ops", {"n": 1}),
            Message("old-resolved", "resolved", "ops", {"n": 2}),
            Message("ancient-firing", "firing", "ops", {"n": 3}),
        ],
        now - 1000 * DAY,
    )
    add_attempt(store, 1, now - 100 * DAY)
    add_attempt(store, 2, now - DAY)


def test_old_rows_go_recent_rows_stay_and_firing_alerts_stay(store: Store) -> None:
    fill(store, NOW)
    report = purge(store.engine, KEEP, NOW)
    assert report == PurgeReport(events=2, dead_letters=1, alerts=1, outbox=2, attempts=1)
    assert column(store, events_table.c.input_id) == ["chat:3"]
    assert column(store, dead_letters_table.c.source_offset) == [2]
    assert column(store, alerts_table.c.alert_id) == ["ancient-firing", "recent-resolved"]
    assert column(store, outbox_table.c.alert_id) == ["ancient-firing"]
    assert column(store, attempts_table.c.source_offset) == [2]
    # Nothing is left to purge: a second run deletes nothing.
    assert purge(store.engine, KEEP, NOW).total == 0


def test_a_firing_alert_stays_however_old(store: Store) -> None:
    add_alert(store, "firing", NOW - 100_000 * DAY, None, ["z"])
    report = purge(store.engine, Retention(1, 1, 0.001), NOW)
    assert report.alerts == 0
    assert column(store, alerts_table.c.alert_id) == ["firing"]


def test_zero_days_keeps_everything(store: Store) -> None:
    fill(store, NOW)
    forever = Retention(events_days=0, dead_letters_days=0, alerts_days=0)
    assert forever.keeps_everything
    assert purge(store.engine, forever, NOW + 100_000 * DAY) == PurgeReport()
    assert len(column(store, events_table.c.input_id)) == 3
    assert len(column(store, alerts_table.c.alert_id)) == 3
    assert len(column(store, attempts_table.c.source_offset)) == 2


def test_each_period_applies_to_its_own_tables(store: Store) -> None:
    fill(store, NOW)
    report = purge(store.engine, Retention(events_days=0, dead_letters_days=1, alerts_days=0), NOW)
    assert report == PurgeReport(dead_letters=2)


def test_a_dry_run_counts_and_deletes_nothing(store: Store) -> None:
    fill(store, NOW)
    counted = purge(store.engine, KEEP, NOW, dry_run=True)
    assert counted == PurgeReport(events=2, dead_letters=1, alerts=1, outbox=2, attempts=1)
    assert len(column(store, events_table.c.input_id)) == 3
    assert len(column(store, outbox_table.c.id)) == 3
    assert purge(store.engine, KEEP, NOW) == counted


def deletes(store: Store) -> list[str]:
    """Every DELETE statement the store's engine runs from now on."""
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("DELETE"):
            seen.append(statement)

    sa.event.listen(store.engine, "before_cursor_execute", record)
    return seen


@pytest.mark.parametrize(("old", "batches"), [(23, 5), (20, 4), (4, 1)])
def test_deletes_go_in_bounded_batches(store: Store, old: int, batches: int) -> None:
    store.write([chat(n, NOW - 200 * DAY - n * DAY) for n in range(old)], [])
    store.write([chat(1000 + n, NOW - n * DAY) for n in range(7)], [])
    seen = deletes(store)
    report = purge(store.engine, KEEP, NOW, batch_size=5)
    assert report.events == old
    assert len(seen) == batches
    assert len(column(store, events_table.c.input_id)) == 7


def test_stop_ends_the_purge_after_the_current_batch(store: Store) -> None:
    store.write([chat(n, NOW - 200 * DAY) for n in range(12)], [])
    stop = threading.Event()

    def stop_after_first(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("DELETE"):
            stop.set()

    sa.event.listen(store.engine, "before_cursor_execute", stop_after_first)
    assert purge(store.engine, KEEP, NOW, batch_size=5, stop=stop).events == 5
    assert len(column(store, events_table.c.input_id)) == 7


def test_tables_not_created_yet_are_skipped(store: Store) -> None:
    store.write([chat(1, NOW - 100 * DAY)], [])
    # Migrations create every table; a store missing some (dropped by hand) still purges.
    with store.engine.begin() as conn:
        for name in ("outbox", "alerts", "attempts", "corrections"):
            conn.exec_driver_sql(f"DROP TABLE {name}")
    assert not sa.inspect(store.engine).has_table("alerts")
    assert purge(store.engine, KEEP, NOW) == PurgeReport(events=1)
    assert forget_conversation(store.engine, "c1") == PurgeReport()  # already gone


def test_bad_arguments_are_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="events_days"):
        Retention(events_days=-1, dead_letters_days=0, alerts_days=0)
    with pytest.raises(ValueError, match="naive"):
        purge(store.engine, KEEP, datetime(2026, 1, 1))  # noqa: DTZ001
    with pytest.raises(ValueError, match="batch_size"):
        purge(store.engine, KEEP, NOW, batch_size=0)
    with pytest.raises(ValueError, match="empty"):
        forget_conversation(store.engine, "")


def test_a_period_beyond_the_calendar_keeps_everything(store: Store) -> None:
    store.write([chat(1, NOW - 100 * DAY)], [])
    assert purge(store.engine, Retention(1e12, 1e12, 1e12), NOW) == PurgeReport()


def conversation_data(store: Store) -> None:
    store.write(
        [
            chat(1, NOW - 500 * DAY, "c1", text=LONG_TEXT),
            chat(2, NOW, "c1"),
            chat(3, NOW, "c10"),
            chat(4, NOW, "c2", text="the app crashes when I pay"),
        ],
        [
            letter(1, NOW, key=b"c1"),
            # Broken JSON without a key that still names the conversation.
            letter(2, NOW, raw=b'{"conversation_id" : "c1", "text": '),
            letter(3, NOW, raw=json.dumps({"conversation_id": "c10"}).encode()),
            letter(4, NOW, key=b"c2", raw=json.dumps({"conversation_id": "c2"}).encode()),
            letter(5, NOW, raw=None),
        ],
    )
    # The evaluator quotes the first 160 characters of a message.
    add_alert(store, "a1", NOW - DAY, NOW, [LONG_TEXT[:160], "the app crashes when I pay"])
    add_alert(store, "a2", NOW - DAY, None, ["message 3 of c10"])


def test_forget_conversation_removes_only_that_conversation(store: Store) -> None:
    conversation_data(store)
    counted = forget_conversation(store.engine, "c1", dry_run=True)
    assert counted == PurgeReport(events=2, dead_letters=2, alert_evidence=1)
    assert len(column(store, events_table.c.input_id)) == 4
    assert forget_conversation(store.engine, "c1") == counted
    assert column(store, events_table.c.input_id) == ["chat:3", "chat:4"]
    assert column(store, dead_letters_table.c.source_offset) == [3, 4, 5]
    alerts = {row["alert_id"]: row for row in AlertTable(store.engine).rows()}
    assert set(alerts) == {"a1", "a2"}
    excerpts = [e["text_excerpt"] for e in alerts["a1"]["payload"]["evidence"]]
    assert excerpts == ["the app crashes when I pay"]
    assert alerts["a1"]["payload"]["summary"] == "negative share up"
    assert len(alerts["a2"]["payload"]["evidence"]) == 1
    assert forget_conversation(store.engine, "c1") == PurgeReport()


def _correct(store: Store, input_id: str) -> None:
    with store.engine.begin() as conn:
        conn.execute(
            sa.insert(corrections_table).values(
                input_id=input_id,
                task="intent",
                old_label="a",
                new_label="b",
                analyst="ana",
                created_time=NOW,
            )
        )


def test_corrections_go_with_their_events(store: Store) -> None:
    store.write(
        [chat(1, NOW - 100 * DAY), chat(2, NOW - DAY), chat(3, NOW - DAY, conversation="c2")],
        [],
    )
    for input_id in ("chat:1", "chat:2", "chat:3"):
        _correct(store, input_id)
    assert purge(store.engine, KEEP, NOW, dry_run=True).corrections == 1
    assert purge(store.engine, KEEP, NOW).corrections == 1  # chat:1 is past 90 days
    assert column(store, corrections_table.c.input_id) == ["chat:2", "chat:3"]
    assert forget_conversation(store.engine, "c1", dry_run=True).corrections == 1
    assert forget_conversation(store.engine, "c1") == PurgeReport(events=1, corrections=1)
    assert column(store, corrections_table.c.input_id) == ["chat:3"]


def test_forget_matches_an_escaped_non_ascii_id(store: Store) -> None:
    raw = json.dumps({"conversation_id": "çé-1"}, ensure_ascii=True).encode()
    store.write([], [letter(1, NOW, raw=raw), letter(2, NOW, key="çé-2".encode())])
    assert forget_conversation(store.engine, "çé-1").dead_letters == 1
    assert column(store, dead_letters_table.c.source_offset) == [2]


def test_the_worker_purges_on_its_interval_and_stops_promptly(store: Store) -> None:
    now = datetime.now(UTC)
    store.write([chat(1, now - 100 * DAY), chat(2, now)], [])
    with retention_worker(store.engine, KEEP, 0.2, "replica-a") as worker:
        assert worker is not None
        wait_for(lambda: worker.runs >= 1, 10, "worker.runs >= 1")
        assert column(store, events_table.c.input_id) == ["chat:2"]
        store.write([chat(3, now - 200 * DAY)], [])
        # A purge started before the write may miss it; the next one on the interval does not.
        wait_for(
            lambda: column(store, events_table.c.input_id) == ["chat:2"],
            10,
            "only chat:2 left",
        )
        wait_for(lambda: worker.runs >= 2, 10, "worker.runs >= 2")
        started = time.monotonic()
    assert time.monotonic() - started < 2.0


def test_the_worker_stops_promptly_during_a_long_wait(store: Store) -> None:
    with retention_worker(store.engine, KEEP, 3600, "replica-a") as worker:
        assert worker is not None
        wait_for(lambda: worker.runs == 1, 10, "worker.runs == 1")  # the first purge runs at start
        started = time.monotonic()
    assert time.monotonic() - started < 2.0


def test_one_replica_purges_at_a_time(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    tries: dict[str, list[bool]] = {"replica-a": [], "replica-b": []}

    class CountedLease(Lease):
        def acquire(self, now: datetime | None = None) -> bool:
            got = super().acquire(now)
            tries[self.owner].append(got)
            return got

    monkeypatch.setattr(worker_module, "Lease", CountedLease)
    with (
        retention_worker(store.engine, KEEP, 0.05, "replica-a") as a,
        retention_worker(store.engine, KEEP, 0.05, "replica-b") as b,
    ):
        assert a is not None and b is not None
        wait_for(lambda: a.runs + b.runs >= 3, 10, "three purges")
        # Both replicas asked for the lease three times since: the one that never purged
        # had its chances (a positive signal, where a fixed sleep only hoped for one).
        asked = {owner: len(t) for owner, t in tries.items()}
        wait_for(
            lambda: all(len(t) >= asked[o] + 3 for o, t in tries.items()),
            10,
            "each replica asked for the lease three more times",
        )
        assert (a.runs == 0) != (b.runs == 0)
        loser = "replica-b" if b.runs == 0 else "replica-a"
        assert not any(tries[loser])


def test_the_worker_logs_store_errors_and_retries(
    store: Store, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    real = retention_module.purge
    calls = []

    def flaky(*args: Any, **kwargs: Any) -> PurgeReport:
        calls.append(1)
        if len(calls) == 1:
            msg = "purging the store: database is locked"
            raise StoreError(msg)
        if len(calls) > 2:
            # A purge after the retried one waits until the worker is stopped and then fails,
            # so `last` stays the retried purge's report however late the test stops it.
            kwargs["stop"].wait(10)
            msg = "stopped"
            raise StoreError(msg)
        return real(*args, **kwargs)

    monkeypatch.setattr(worker_module, "purge", flaky)
    store.write([chat(1, datetime.now(UTC) - 100 * DAY)], [])
    with caplog.at_level(logging.INFO, logger="pipeline.store.retention_worker"):
        with retention_worker(store.engine, KEEP, 0.1, "replica-a") as worker:
            assert worker is not None
            wait_for(lambda: worker.runs >= 1, 10, "worker.runs >= 1")
    assert worker.last is not None and worker.last.events == 1
    messages = [r.getMessage() for r in caplog.records]
    assert "purge failed" in messages and "purge" in messages
    line = next(r for r in caplog.records if r.getMessage() == "purge")
    assert line.__dict__["events"] == 1


def test_no_worker_when_the_interval_or_every_period_is_zero(store: Store) -> None:
    with retention_worker(store.engine, KEEP, 0, "replica-a") as worker:
        assert worker is None
    with retention_worker(store.engine, Retention(0, 0, 0), 60, "replica-a") as worker:
        assert worker is None


def invoke(store_url: str, *args: str) -> Any:
    return CliRunner().invoke(app, ["--store-url", store_url, "purge", *args])


def test_cli_purge_prints_counts_and_dry_run_deletes_nothing(store: Store, store_url: str) -> None:
    fill(store, datetime.now(UTC))
    dry = invoke(store_url, "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "would delete" in dry.stdout
    assert "  events        2\n" in dry.stdout and "  outbox        2\n" in dry.stdout
    assert len(column(store, events_table.c.input_id)) == 3
    done = invoke(store_url)
    assert done.exit_code == 0, done.output
    assert "deleted (events kept 90 d, dead letters kept 30 d" in done.stdout
    assert "  events        2\n" in done.stdout and "  alerts        1\n" in done.stdout
    assert column(store, events_table.c.input_id) == ["chat:3"]
    # Periods from the command line instead of the settings.
    shorter = invoke(store_url, "--events-days", "1", "--alerts-days", "0")
    assert shorter.exit_code == 0, shorter.output
    assert "  events        1\n" in shorter.stdout
    assert column(store, events_table.c.input_id) == []


def test_cli_purge_a_conversation(store: Store, store_url: str) -> None:
    conversation_data(store)
    dry = invoke(store_url, "--dry-run", "--conversation-id", "c1")
    assert dry.exit_code == 0, dry.output
    assert "conversation c1: would delete" in dry.stdout
    assert len(column(store, events_table.c.input_id)) == 4
    done = invoke(store_url, "--conversation-id", "c1", "--conversation-id", "c2")
    assert done.exit_code == 0, done.output
    assert "conversation c1: deleted\n  events          2\n  dead_letters    2\n" in done.stdout
    assert "conversation c2: deleted" in done.stdout
    assert column(store, events_table.c.input_id) == ["chat:3"]
    mixed = invoke(store_url, "--conversation-id", "c3", "--events-days", "1")
    assert mixed.exit_code == 2
