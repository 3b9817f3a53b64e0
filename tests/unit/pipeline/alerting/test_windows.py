"""Event-time buckets read from a real store (SQLite and PostgreSQL) and the windows over them."""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from pipeline.alerting.windows import (
    SCOPE_KINDS,
    Bucket,
    Window,
    align,
    read_buckets,
    scope_filter,
)
from pipeline.schema import EnrichedEvent, LabelScore, TaskResult, WordWeight
from pipeline.store import Store
from tests.support.events import chat_event, news_event

T0 = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)
LABELS = ("negative", "neutral", "positive")
INTENTS = ("refund", "cancel", "unknown")


def task(label: str, score: float) -> TaskResult:
    return TaskResult(
        label=label,
        score=score,
        top=[LabelScore(label=label, score=score)],
        attention=[WordWeight(word="word", weight=1.0)],
    )


def make_event(n: int, rng: random.Random, at: datetime) -> EnrichedEvent:
    """A random chat turn or news article numbered ``n`` at event time ``at``."""
    kind = rng.choice(("chat", "news"))
    fields: dict[str, Any]
    if kind == "chat":
        role = rng.choice(("customer", "customer", "agent"))
        fields = {
            "input_id": f"chat:m{n}",
            "message_id": f"m{n}",
            "conversation_id": f"c{n // 3}",
            "channel": rng.choice(("web", "app")),
            "role": role,
            "intent": task(rng.choice(INTENTS), rng.random()) if role == "customer" else None,
        }
    else:
        fields = {
            "input_id": f"news:a{n}",
            "article_id": f"a{n}",
            "news_source": rng.choice(("wire", "blog")),
            # Repeats on purpose: a ticker listed twice counts once.
            "tickers": rng.choices(("AAPL", "MSFT", "TSLA"), k=rng.randint(0, 3)),
        }
    build = chat_event if kind == "chat" else news_event
    return build(
        n,
        at,
        text=f"text {n}",
        sentiment=task(rng.choice(LABELS), round(rng.random(), 3)),
        processed_time=at + timedelta(seconds=1),
        **fields,
    )


def expected_buckets(
    events: list[EnrichedEvent], since: datetime, until: datetime, bucket_s: int
) -> dict[tuple[str, str, str, datetime], dict[str, float]]:
    """The buckets computed in Python, straight from the events."""
    out: dict[tuple[str, str, str, datetime], dict[str, float]] = defaultdict(Counter)
    for e in events:
        if not since <= e.event_time < until or e.role == "agent":
            continue  # chats count as customer turns only
        start = datetime.fromtimestamp(int(e.event_time.timestamp()) // bucket_s * bucket_s, UTC)
        scopes = [("overall", "")]
        if e.channel:
            scopes.append(("channel", e.channel))
        if e.news_source:
            scopes.append(("news_source", e.news_source))
        if e.role == "customer" and e.intent:
            scopes.append(("intent", e.intent.label))
        scopes.extend(("ticker", t) for t in set(e.tickers))
        for scope_kind, scope in scopes:
            counts = out[(e.kind, scope_kind, scope, start)]
            counts["n"] += 1
            counts[e.sentiment.label] += 1
            counts["score_sum"] += e.sentiment.score
            if e.intent:
                counts["confidence_sum"] += e.intent.score
                counts["n_intent"] += 1
                counts["unknown"] += e.intent.label == "unknown"
    return out


def as_dict(buckets: list[Bucket]) -> dict[tuple[str, str, str, datetime], dict[str, float]]:
    fields = ("n", "negative", "neutral", "positive", "score_sum", "confidence_sum")
    return {
        (b.stream, b.scope_kind, b.scope, b.start): {
            f: getattr(b, f) for f in (*fields, "n_intent", "unknown") if getattr(b, f)
        }
        for b in buckets
    }


def assert_same(actual: list[Bucket], expected: dict[Any, dict[str, float]]) -> None:
    got = as_dict(actual)
    assert got.keys() == expected.keys()
    for key, counts in expected.items():
        assert got[key].keys() == {k for k, v in counts.items() if v}, key
        for name, value in counts.items():
            assert got[key].get(name, 0) == pytest.approx(value), (key, name)


@pytest.mark.parametrize("bucket_s", [60, 300])
def test_buckets_match_python_on_random_events(store: Store, bucket_s: int) -> None:
    rng = random.Random(bucket_s)
    events = [
        make_event(n, rng, T0 + timedelta(seconds=rng.uniform(-600, 3600), microseconds=7))
        for n in range(600)
    ]
    store.write(events, [])
    since, until = T0 + timedelta(seconds=90), T0 + timedelta(minutes=50, seconds=30)
    buckets = read_buckets(store.engine, since, until, bucket_s)
    # since is rounded down to its bucket; until cuts the last bucket.
    expected = expected_buckets(events, align(since, bucket_s), until, bucket_s)
    assert len(expected) > 100
    assert_same(buckets, expected)
    assert {b.scope_kind for b in buckets} == set(SCOPE_KINDS)
    assert all(b.start.tzinfo is UTC for b in buckets)


def test_late_event_lands_in_its_event_time_bucket(store: Store) -> None:
    rng = random.Random(3)
    on_time = [make_event(n, rng, T0 + timedelta(minutes=10, seconds=n)) for n in range(20)]
    store.write(on_time, [])
    # Written after later events, but its event time is in minute 2.
    late = make_event(99, rng, T0 + timedelta(minutes=2, seconds=59, microseconds=999_999))
    store.write([late], [])
    buckets = read_buckets(store.engine, T0, T0 + timedelta(hours=1), scope_kinds=["overall"])
    starts = {b.start: b.n for b in buckets if b.stream == late.kind}
    assert starts[T0 + timedelta(minutes=2)] == 1
    expected = expected_buckets([*on_time, late], T0, T0 + timedelta(hours=1), 60)
    assert_same(buckets, {k: v for k, v in expected.items() if k[1] == "overall"})


def test_agent_turns_count_in_no_scope(store: Store) -> None:
    """Agent turns would dilute a customer shift: chats count as customer turns only."""
    rng = random.Random(5)
    events = [make_event(n, rng, T0 + timedelta(seconds=n)) for n in range(200)]
    chats = [e for e in events if e.kind == "chat"]
    agents = [e.model_copy(update={"role": "agent", "intent": None}) for e in chats]
    customers = [e.model_copy(update={"role": "customer"}) for e in chats]
    store.write(agents, [])
    assert [b for b in read_buckets(store.engine, T0, T0 + timedelta(hours=1))
            if b.stream == "chat"] == []  # fmt: skip
    with store.engine.connect() as conn:
        scoped = conn.execute(
            sa.select(sa.func.count()).where(scope_filter(("chat", "channel", "web")))
        ).scalar_one()
    assert scoped == 0
    store.write([e.model_copy(update={"input_id": e.input_id + "c"}) for e in customers], [])
    buckets = read_buckets(store.engine, T0, T0 + timedelta(hours=1), scope_kinds=["overall"])
    assert sum(b.n for b in buckets if b.stream == "chat") == len(chats)


def test_empty_store_and_bad_arguments(store: Store) -> None:
    assert read_buckets(store.engine, T0, T0 + timedelta(hours=1)) == []
    with pytest.raises(ValueError, match="bucket_s"):
        read_buckets(store.engine, T0, T0 + timedelta(hours=1), bucket_s=0)
    with pytest.raises(ValueError, match="naive"):
        read_buckets(store.engine, T0.replace(tzinfo=None), T0)


def bucket(start: datetime, n: int, negative: int, scope: str = "web") -> Bucket:
    return Bucket(
        scope_kind="channel", scope=scope, stream="chat", start=start, n=n, negative=negative,
        neutral=n - negative, positive=0, score_sum=0.5 * n, confidence_sum=0.0, n_intent=0,
        unknown=0,
    )  # fmt: skip


def test_window_splits_current_and_baseline_without_overlap() -> None:
    window = Window(current_s=900, baseline_s=3600, lateness_s=120)
    now = T0 + timedelta(minutes=120, seconds=30)
    buckets = [bucket(T0 + timedelta(minutes=m), 10, m % 3) for m in range(0, 125)]
    pair = window.compare(buckets, now)[("chat", "channel", "web")]
    # Current: minutes 106..120 (15 buckets, the last still filling); baseline: 46..105.
    assert pair.current.buckets == 15
    assert pair.baseline.buckets == 60
    assert pair.current.negative == sum(m % 3 for m in range(106, 121))
    assert pair.baseline.negative == sum(m % 3 for m in range(46, 106))
    assert pair.current.negative_share == pytest.approx(pair.current.negative / 150)
    assert window.baseline_start(now) == T0 + timedelta(minutes=46)


def test_open_buckets_count_in_the_current_window_but_are_not_closed() -> None:
    window = Window(current_s=900, baseline_s=3600, lateness_s=120)
    now = T0 + timedelta(minutes=30, seconds=10)
    buckets = [bucket(T0 + timedelta(minutes=m), 5, 1) for m in (26, 27, 28, 29, 30)]
    closed = window.closed(buckets, now)
    # Minute 27 ended at 28:00, final from 30:00; minute 28 ends at 29:00, open until 31:00.
    assert [b.start.minute for b in closed] == [26, 27]
    assert window.compare(buckets, now)[("chat", "channel", "web")].current.buckets == 5


def test_window_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="multiple"):
        Window(current_s=90)
    with pytest.raises(ValueError, match="lateness"):
        Window(current_s=60, lateness_s=120)
