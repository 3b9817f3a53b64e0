"""The analyst store, on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

import json
import socket
import threading
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa

from models.words import word_spans
from pipeline.errors import StoreError
from pipeline.schema import (
    ENRICHED_SCHEMA_VERSION,
    DeadLetter,
    EnrichedEvent,
    LabelScore,
    ModelRef,
    SourceRef,
    TaskResult,
    WordWeight,
)
from pipeline.sinks.store import StoreSink
from pipeline.store import Store, open_store, read_dead_letters, read_events
from pipeline.store.engine import create_engine, normalise_url
from pipeline.store.tables import (
    ADDED_COLUMNS,
    STORE_SCHEMA_VERSION,
    UTCDateTime,
    event_row,
    events_table,
    store_meta_table,
)
from tests.support.events import chat_event, news_event

T0 = datetime(2025, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)


def task(
    label: str, score: float = 0.9, words: tuple[str, ...] = ("refund", "please")
) -> TaskResult:
    return TaskResult(
        label=label,
        score=score,
        top=[LabelScore(label=label, score=score), LabelScore(label="other", score=1 - score)],
        attention=[WordWeight(word=w, weight=1 / len(words)) for w in words],
    )


def make_event(
    n: int,
    *,
    kind: str = "chat",
    intent: str | None = "refund",
    sentiment: str = "negative",
    tickers: list[str] | None = None,
    at: datetime | None = None,
) -> EnrichedEvent:
    """An enriched event numbered ``n``, ``n`` minutes after T0 unless ``at`` is given."""
    event_time = at if at is not None else T0 + timedelta(minutes=n)
    common: dict[str, Any] = {
        "source": SourceRef(topic=kind, partition=n % 3, offset=10_000_000_000 + n),
        "text": f"message number {n} — ünïcode",
        "sentiment": task(sentiment, 0.7, ("bad", "service", "today")),
        "model": ModelRef(name="attn-mini", version="1.2.3", tokenizer_hash="abc123"),
        "processed_time": event_time + timedelta(milliseconds=250),
        "model_latency_ms": 12.5,
        "end_to_end_latency_ms": 250.0,
    }
    if kind == "chat":
        return chat_event(
            n,
            event_time,
            input_id=f"chat:m{n}",
            message_id=f"m{n}",
            conversation_id=f"c{n // 2}",
            channel="web",
            intent=task(intent) if intent else None,
            **common,
        )
    return news_event(
        n, event_time, input_id=f"news:a{n}", article_id=f"a{n}", tickers=tickers or [], **common
    )


def make_dead_letter(offset: int, raw: bytes | None = b"\xff\x00not json") -> DeadLetter:
    return DeadLetter(
        source=SourceRef(topic="chat", partition=1, offset=offset),
        reason="invalid_json",
        detail="Expecting value: line 1 column 1 (char 0)",
        raw=raw,
        received_time=T0 + timedelta(seconds=offset),
    )


def test_open_creates_store_and_schema_version(store: Store, store_url: str) -> None:
    assert store.count() == 0
    with store.engine.connect() as conn:
        version = conn.execute(sa.select(store_meta_table.c.value)).scalar_one()
    assert int(version) == STORE_SCHEMA_VERSION == 4
    # The store has its own version; the enriched event's stays where it was.
    assert ENRICHED_SCHEMA_VERSION == 1
    if store_url.startswith("sqlite"):
        with store.engine.connect() as conn:
            mode = conn.exec_driver_sql("PRAGMA journal_mode").scalar_one()
            busy = conn.exec_driver_sql("PRAGMA busy_timeout").scalar_one()
            sync = conn.exec_driver_sql("PRAGMA synchronous").scalar_one()
        assert (mode, busy > 0, sync) == ("wal", True, 2)  # 2 = FULL
    else:
        assert store.url.startswith("postgresql+psycopg://")
    # Re-opening an existing store is fine and keeps one meta row.
    with open_store(store_url) as again, again.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(store_meta_table)).scalar() == 1


def test_write_is_idempotent(store: Store) -> None:
    batch = [make_event(1), make_event(2), make_event(3, kind="news", tickers=["AAPL"])]
    letters = [make_dead_letter(7), make_dead_letter(8, raw=None)]
    assert store.write(batch, letters) == 3
    assert store.write(batch, letters) == 0
    assert store.write([*batch, make_event(4)], letters) == 1
    assert store.write([], []) == 0
    assert store.count() == 4
    assert store.count("chat") == 3
    assert store.count("news") == 1
    assert len(read_dead_letters(store)) == 2


def test_read_events_filters(store: Store) -> None:
    store.write(
        [
            make_event(1, intent="refund", sentiment="negative"),
            make_event(2, intent="delivery", sentiment="positive"),
            make_event(3, intent="refund", sentiment="positive"),
            make_event(4, kind="news", sentiment="negative", tickers=["AAPL", "MSFT"]),
            make_event(5, kind="news", sentiment="positive", tickers=["AAPLX"]),
            make_event(6, kind="news", sentiment="neutral", tickers=[]),
        ],
        [],
    )

    def ids(**filters: Any) -> list[str]:
        return list(read_events(store, **filters)["input_id"])

    # Newest first.
    assert ids() == ["news:a6", "news:a5", "news:a4", "chat:m3", "chat:m2", "chat:m1"]
    assert ids(kind="chat") == ["chat:m3", "chat:m2", "chat:m1"]
    assert ids(intent="refund") == ["chat:m3", "chat:m1"]
    assert ids(sentiment="positive") == ["news:a5", "chat:m3", "chat:m2"]
    assert ids(ticker="AAPL") == ["news:a4"]  # not AAPLX
    assert ids(ticker="MSFT", kind="news") == ["news:a4"]
    assert ids(ticker="GOOG") == []
    assert ids(since=T0 + timedelta(minutes=4)) == ["news:a6", "news:a5", "news:a4"]
    # since is inclusive, until exclusive, and zones other than UTC compare by instant.
    plus2 = timezone(timedelta(hours=2))
    window = {
        "since": (T0 + timedelta(minutes=2)).astimezone(plus2),
        "until": T0 + timedelta(minutes=4),
    }
    assert ids(**window) == ["chat:m3", "chat:m2"]
    assert ids(limit=2) == ["news:a6", "news:a5"]
    assert ids(kind="chat", intent="refund", sentiment="negative") == ["chat:m1"]


def test_json_columns_round_trip(store: Store) -> None:
    chat = make_event(1)
    news = make_event(2, kind="news", tickers=["BRK.B", "AAPL"])
    store.write([chat, news], [])
    frame = read_events(store).set_index("input_id")

    row = frame.loc["chat:m1"]
    assert chat.intent is not None
    assert row["intent_label"] == "refund"
    assert row["intent_score"] == pytest.approx(0.9)
    assert row["intent_top"] == [t.model_dump() for t in chat.intent.top]
    assert row["intent_attention"] == [  # words without offsets, as older events have
        {"word": "refund", "weight": 0.5, "start": None, "end": None},
        {"word": "please", "weight": 0.5, "start": None, "end": None},
    ]
    assert row["sentiment_attention"] == [a.model_dump() for a in chat.sentiment.attention]
    assert row["tickers"] == []
    assert row["text"] == chat.text
    assert row["source_offset"] == 10_000_000_001

    news_row = frame.loc["news:a2"]
    assert news_row["tickers"] == ["BRK.B", "AAPL"]
    assert news_row["intent_top"] is None
    assert news_row["sentiment_top"] == [t.model_dump() for t in news.sentiment.top]


def test_word_offsets_round_trip(store: Store) -> None:
    event = make_event(1)
    spans = word_spans(event.text)
    words = [
        WordWeight(word=event.text[s:e], weight=1 / len(spans), start=s, end=e) for s, e in spans
    ]
    sentiment = event.sentiment.model_copy(update={"attention": words})
    store.write([event.model_copy(update={"sentiment": sentiment})], [])
    stored = read_events(store).set_index("input_id").loc["chat:m1", "sentiment_attention"]
    assert stored == [w.model_dump() for w in words]
    assert [event.text[w["start"] : w["end"]] for w in stored] == [
        "message",
        "number",
        "1",
        "—",
        "ünïcode",
    ]


def test_timestamps_are_tz_aware_utc(store: Store) -> None:
    # Written in +05:30: must come back as the same instant, in UTC.
    local = timezone(timedelta(hours=5, minutes=30))
    event = make_event(1, at=T0.astimezone(local))
    store.write([event], [make_dead_letter(3)])

    frame = read_events(store)
    for column in ("event_time", "processed_time"):
        assert isinstance(frame[column].dtype, pd.DatetimeTZDtype)
        assert str(frame[column].dt.tz) == "UTC"
    assert frame["event_time"].iloc[0] == pd.Timestamp(T0)
    assert frame["processed_time"].iloc[0] == pd.Timestamp(T0 + timedelta(milliseconds=250))

    letters = read_dead_letters(store)
    assert str(letters["received_time"].dt.tz) == "UTC"
    assert letters["received_time"].iloc[0] == pd.Timestamp(T0 + timedelta(seconds=3))

    # Empty results are typed the same way.
    empty = read_events(store, kind="news")
    assert empty.empty
    assert str(empty["event_time"].dt.tz) == "UTC"


def test_naive_timestamps_are_refused(store: Store) -> None:
    with pytest.raises(StoreError, match="naive datetime"):
        store.write([make_event(1, at=datetime(2025, 1, 1))], [])  # noqa: DTZ001
    assert store.count() == 0


def test_dead_letters_round_trip(store: Store) -> None:
    store.write([], [make_dead_letter(1), make_dead_letter(2, raw=None), make_dead_letter(1)])
    frame = read_dead_letters(store)
    assert list(frame["source_offset"]) == [2, 1]
    assert frame["raw"].iloc[1] == b"\xff\x00not json"
    assert frame["raw"].iloc[0] is None
    assert set(frame["reason"]) == {"invalid_json"}
    assert len(read_dead_letters(store, limit=1)) == 1


def test_read_by_url(store: Store, store_url: str) -> None:
    store.write([make_event(1)], [make_dead_letter(1)])
    assert list(read_events(store_url)["input_id"]) == ["chat:m1"]
    assert len(read_dead_letters(store_url)) == 1


def test_sink_flushes_atomically(store: Store) -> None:
    sink = StoreSink(store)
    assert sink.name == "store"
    sink.add(make_event(1))
    sink.add(make_dead_letter(1))
    sink.add(make_event(2, kind="news", tickers=["AAPL"]))
    assert store.count() == 0  # nothing is written before flush
    sink.flush()
    assert (store.count(), len(read_dead_letters(store)), sink.pending) == (2, 1, 0)
    sink.flush()  # an empty flush is a no-op

    # The dead letter fails after the events went in: the whole batch is rolled back.
    bad = DeadLetter(
        source=SourceRef(topic="chat", partition=0, offset=99),
        reason="invalid_json",
        detail="",
        raw=b"{",
        received_time=datetime(2025, 1, 1),  # noqa: DTZ001 - naive on purpose
    )
    sink.add(make_event(3))
    sink.add(bad)
    with pytest.raises(StoreError):
        sink.flush()
    assert (store.count(), len(read_dead_letters(store)), sink.pending) == (2, 1, 2)


def test_failing_flush_keeps_its_buffer(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    sink = StoreSink(store)
    sink.add(make_event(1))
    sink.add(make_dead_letter(1))
    real_write = store.write
    calls = 0

    def flaky_write(events: Any, dead_letters: Any) -> int:
        nonlocal calls
        calls += 1
        if calls == 1:
            msg = "database went away"
            raise StoreError(msg)
        return real_write(events, dead_letters)

    monkeypatch.setattr(store, "write", flaky_write)
    with pytest.raises(StoreError, match="went away"):
        sink.flush()
    assert sink.pending == 2
    assert store.count() == 0
    sink.add(make_event(2))
    sink.flush()
    assert (store.count(), len(read_dead_letters(store)), sink.pending) == (2, 1, 0)


def test_newer_schema_version_is_refused(store_url: str) -> None:
    with open_store(store_url) as store, store.engine.begin() as conn:
        conn.execute(
            sa.update(store_meta_table)
            .where(store_meta_table.c.key == "schema_version")
            .values(value=str(STORE_SCHEMA_VERSION + 1))
        )
    with pytest.raises(StoreError, match="newer than"):
        open_store(store_url)


@pytest.mark.parametrize(
    "url",
    [
        "not a url",
        "mysql://user@localhost/db",
        "postgresql+psycopg2://user@localhost/db",
        "sqlite:///:memory:",
    ],
)
def test_bad_urls_raise_store_error(url: str) -> None:
    with pytest.raises(StoreError):
        open_store(url)


def test_unreachable_postgres_raises_store_error_without_password() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # Nothing listens on the port any more: the connection is refused at once.
    with pytest.raises(StoreError, match="could not open store") as info:
        open_store(f"postgresql://user:s3cret@127.0.0.1:{port}/nothing")
    assert "s3cret" not in str(info.value)
    assert "***" in str(info.value)


# ---------------------------------------------------------------------------
# Store schema version 2: the original record, replay marks, and migrating version 1

HEADERS = (("trace-id", b"\x00\xff\x10"), ("tenant", b"acme"), ("tenant", b""))


def original_letter(
    offset: int,
    *,
    raw: bytes | None = b"{not json",
    key: bytes | None = b"conv-7",
    headers: tuple[tuple[str, bytes], ...] = HEADERS,
    topic: str = "chat",
    reason: str = "invalid_json",
) -> DeadLetter:
    """A dead letter carrying its input record's key, headers and timestamp."""
    return DeadLetter(
        source=SourceRef(topic=topic, partition=0, offset=offset),
        reason=reason,
        detail="bad",
        raw=raw,
        received_time=T0 + timedelta(seconds=offset),
        key=key,
        headers=headers,
        source_timestamp=T0 - timedelta(milliseconds=offset),
    )


V3_COLUMNS = {column for _, column in ADDED_COLUMNS[3]}


def v1_metadata() -> sa.MetaData:
    """The version-1 layout, as version 1 of the store created it."""
    old = sa.MetaData()
    # events was unchanged in version 2; version 3 added the faithfulness verdicts
    sa.Table(
        "events",
        old,
        *(
            sa.Column(c.name, c.type, primary_key=c.primary_key, nullable=c.nullable)
            for c in events_table.columns
            if c.name not in V3_COLUMNS
        ),
    )
    sa.Table(
        "dead_letters",
        old,
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("source_topic", sa.Text, nullable=False),
        sa.Column("source_partition", sa.Integer, nullable=False),
        sa.Column("source_offset", sa.BigInteger, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("raw", sa.LargeBinary),
        sa.Column("received_time", UTCDateTime, nullable=False),
        sa.UniqueConstraint(
            "source_topic", "source_partition", "source_offset", name="uq_dead_letters_source"
        ),
    )
    sa.Table(
        "store_meta",
        old,
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    return old


def create_v1_store(url: str) -> None:
    """A version-1 store holding one event and one dead letter."""
    old = v1_metadata()
    engine = create_engine(normalise_url(url))
    try:
        with engine.begin() as conn:
            old.create_all(conn)
            row = {k: v for k, v in event_row(make_event(1)).items() if k not in V3_COLUMNS}
            conn.execute(old.tables["events"].insert(), [row])
            conn.execute(
                old.tables["dead_letters"].insert(),
                [
                    {
                        "source_topic": "chat",
                        "source_partition": 1,
                        "source_offset": 41,
                        "reason": "invalid_utf8",
                        "detail": "not valid UTF-8 at byte 0",
                        "raw": b"\xff old",
                        "received_time": T0,
                    }
                ],
            )
            conn.execute(
                old.tables["store_meta"].insert(), [{"key": "schema_version", "value": "1"}]
            )
    finally:
        engine.dispose()


def test_version_1_store_is_migrated_on_open(store_url: str) -> None:
    create_v1_store(store_url)
    with open_store(store_url) as store:
        with store.engine.connect() as conn:
            columns = {c["name"] for c in sa.inspect(conn).get_columns("dead_letters")}
            version = conn.execute(sa.select(store_meta_table.c.value)).scalar_one()
            event_columns = {c["name"] for c in sa.inspect(conn).get_columns("events")}
        assert {"key", "headers", "source_timestamp", "replayed_time"} <= columns
        assert V3_COLUMNS <= event_columns
        assert version == str(STORE_SCHEMA_VERSION)
        # The old rows are kept, their new fields unknown.
        assert list(read_events(store)["input_id"]) == ["chat:m1"]
        assert read_events(store)["sentiment_faithful"].isna().all()
        # New events carry the model's verdict on its attention.
        new_event = make_event(2)
        verdict = new_event.sentiment.model_copy(update={"attention_faithful": False})
        store.write([new_event.model_copy(update={"sentiment": verdict})], [])
        stored = read_events(store).set_index("input_id")["sentiment_faithful"]
        assert not bool(stored["chat:m2"]) and stored["chat:m2"] is not None
        (old,) = read_dead_letters(store).to_dict("records")
        assert (old["source_offset"], old["raw"], old["key"], old["headers"]) == (
            41,
            b"\xff old",
            None,
            None,
        )
        assert pd.isna(old["source_timestamp"]) and pd.isna(old["replayed_time"])
        # New dead letters keep their original record.
        store.write([], [original_letter(42)])
        new = read_dead_letters(store, limit=1).iloc[0]
        assert (new["source_offset"], new["key"], new["headers"]) == (42, b"conv-7", HEADERS)
        assert new["source_timestamp"] == pd.Timestamp(T0 - timedelta(milliseconds=42))
        assert store.mark_replayed([int(old["id"])], T0) == 1
    # Opening again changes nothing.
    with open_store(store_url) as again, again.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(store_meta_table)).scalar() == 1
        assert len(read_dead_letters(again, replayed=True)) == 1


def test_concurrent_opens_of_a_version_1_store_migrate_it_once(store_url: str) -> None:
    create_v1_store(store_url)
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def open_once() -> None:
        barrier.wait()
        try:
            open_store(store_url).close()
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=open_once) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert len(read_dead_letters(store_url)) == 1


def test_original_record_round_trips_null_and_empty_apart(store: Store) -> None:
    store.write(
        [],
        [
            original_letter(1, raw=None, key=b"k"),
            original_letter(2, raw=b"", key=b""),
            original_letter(3, raw=b"\x00\xff", key=None, headers=()),
        ],
    )
    rows = {r["source_offset"]: r for r in read_dead_letters(store).to_dict("records")}
    assert (rows[1]["raw"], rows[2]["raw"], rows[3]["raw"]) == (None, b"", b"\x00\xff")
    assert (rows[1]["key"], rows[2]["key"], rows[3]["key"]) == (b"k", b"", None)
    # Order, repeated names, empty and non-UTF-8 values survive; no headers is not unknown.
    assert rows[1]["headers"] == HEADERS
    assert rows[3]["headers"] == ()
    assert rows[2]["source_timestamp"] == pd.Timestamp(T0 - timedelta(milliseconds=2))
    with store.engine.connect() as conn:
        stored = conn.exec_driver_sql("SELECT headers FROM dead_letters WHERE source_offset = 1")
        # The documented encoding: a JSON list of [name, base64 value].
        assert json.loads(stored.scalar_one()) == [
            ["trace-id", "AP8Q"],
            ["tenant", "YWNtZQ=="],
            ["tenant", ""],
        ]


def test_read_dead_letters_filters(store: Store) -> None:
    store.write(
        [],
        [
            original_letter(1, reason="invalid_json"),
            original_letter(2, reason="invalid_utf8"),
            original_letter(3, reason="schema_violation", topic="news"),
            original_letter(4, reason="invalid_json", topic="news"),
            original_letter(5, reason="too_large"),
        ],
    )
    ids = dict(zip(read_dead_letters(store)["source_offset"], read_dead_letters(store)["id"]))
    assert store.mark_replayed([int(ids[2]), int(ids[4])], T0 + timedelta(hours=1)) == 2

    def offsets(*args: Any, **filters: Any) -> list[int]:
        return list(read_dead_letters(store, *args, **filters)["source_offset"])

    assert offsets() == [5, 4, 3, 2, 1]
    assert offsets(2) == [5, 4]  # the old positional limit
    assert offsets(reasons=["invalid_json"]) == [4, 1]
    assert offsets(reasons=["invalid_json", "too_large"]) == [5, 4, 1]
    assert offsets(reasons=[]) == []
    assert offsets(topic="news") == [4, 3]
    # since inclusive, until exclusive, compared as instants.
    plus2 = timezone(timedelta(hours=2))
    assert offsets(since=(T0 + timedelta(seconds=2)).astimezone(plus2)) == [5, 4, 3, 2]
    assert offsets(until=T0 + timedelta(seconds=2)) == [1]
    assert offsets(replayed=True) == [4, 2]
    assert offsets(replayed=False) == [5, 3, 1]
    assert offsets(oldest_first=True, limit=2, replayed=False) == [1, 3]
    assert offsets(reasons=["invalid_json"], topic="news", replayed=True) == [4]
    frame = read_dead_letters(store, replayed=True)
    assert str(frame["replayed_time"].dt.tz) == "UTC"
    assert set(frame["replayed_time"]) == {pd.Timestamp(T0 + timedelta(hours=1))}


def test_mark_replayed(store: Store) -> None:
    store.write([], [original_letter(1), original_letter(2)])
    first = int(read_dead_letters(store, oldest_first=True)["id"].iloc[0])
    assert store.mark_replayed([], T0) == 0
    assert store.mark_replayed([first, first, 999_999], T0) == 1  # unknown ids are ignored
    with pytest.raises(StoreError, match="naive datetime"):
        store.mark_replayed([first], datetime(2025, 1, 1))  # noqa: DTZ001
    # Marking again moves the time (replay --again).
    later = T0 + timedelta(days=1)
    assert store.mark_replayed([first], later) == 1
    assert list(read_dead_letters(store, replayed=True)["replayed_time"]) == [pd.Timestamp(later)]


def with_evidence(event: EnrichedEvent, sentence: str) -> EnrichedEvent:
    words = [
        WordWeight(word="fell", weight=0.75, start=7, end=11),
        WordWeight(word="Shares", weight=0.25, start=0, end=6),
    ]
    sentiment = event.sentiment.model_copy(
        update={"evidence": sentence, "evidence_attention": words}
    )
    return event.model_copy(update={"sentiment": sentiment})


def test_the_evidence_sentence_words_round_trip(store: Store) -> None:
    news = with_evidence(make_event(1, kind="news"), "Shares fell.")
    store.write([news, make_event(2, kind="news")], [])
    frame = read_events(store).set_index("input_id")
    assert frame.loc["news:a1", "sentiment_evidence"] == "Shares fell."
    assert frame.loc["news:a1", "sentiment_evidence_attention"] == [
        {"word": "fell", "weight": 0.75, "start": 7, "end": 11},
        {"word": "Shares", "weight": 0.25, "start": 0, "end": 6},
    ]
    assert frame.loc["news:a2", "sentiment_evidence_attention"] is None


def test_a_version_3_store_gains_the_evidence_words_column(store_url: str) -> None:
    with open_store(store_url) as store, store.engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE events DROP COLUMN sentiment_evidence_attention")
        old = event_row(make_event(1))
        del old["sentiment_evidence_attention"]
        conn.execute(sa.insert(events_table).values(old))
        conn.execute(sa.update(store_meta_table).values(value="3"))
    with open_store(store_url) as store:
        store.write([with_evidence(make_event(2, kind="news"), "Shares fell.")], [])
        frame = read_events(store).set_index("input_id")
        with store.engine.connect() as conn:
            version = conn.execute(sa.select(store_meta_table.c.value)).scalar_one()
    assert int(version) == STORE_SCHEMA_VERSION
    assert frame.loc["chat:m1", "sentiment_evidence_attention"] is None
    assert len(frame.loc["news:a2", "sentiment_evidence_attention"]) == 2
