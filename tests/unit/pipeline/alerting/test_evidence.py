"""An alert's evidence: log-odds rising words, distinct examples, customer turns only."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from pipeline.alerting.evidence import distinct_texts, firing_of, read_evidence
from pipeline.alerting.model import AlertEvent
from pipeline.alerting.payloads import alert_annotations
from pipeline.alerting.rising_words import log_odds_z, rising
from pipeline.schema import EnrichedEvent, LabelScore, ModelRef, SourceRef, TaskResult, WordWeight
from pipeline.store import Store, open_store

T0 = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)


def masses(total: float, shares: dict[str, float]) -> dict[str, float]:
    """Attention masses of a side of ``total`` messages with these word shares (rest: "other")."""
    out = {w: total * s for w, s in shares.items()}
    out["other"] = total - sum(out.values())
    return out


def test_a_frequent_function_word_does_not_rise_but_a_rising_content_word_does() -> None:
    # Token-equivalent masses of 925 and 273 ten-word messages.  "thanks" holds 30% of
    # both sides and gains a point; "declined" goes from 0.5% to 1.2%.  Ranking by the
    # gain in share (the former rule) put "thanks" first.
    baseline = masses(9250, {"thanks": 0.30, "please": 0.10, "i'm": 0.08, "declined": 0.005})
    current = masses(2730, {"thanks": 0.31, "please": 0.102, "i'm": 0.081, "declined": 0.012})
    gain = {w: current[w] / 2730 - baseline[w] / 9250 for w in ("thanks", "declined")}
    assert gain["thanks"] > gain["declined"]  # what the share gain ranked first
    z = log_odds_z(current, baseline)
    assert z["declined"] > 3.0
    assert z["thanks"] < 1.645 and z["please"] < 1.645 and z["i'm"] < 1.645
    assert [s.word for s in rising(current, baseline, 5)] == ["declined"]


def test_unchanged_words_score_zero_and_direction_is_kept() -> None:
    same = masses(500, {"thanks": 0.3, "card": 0.1})
    z = log_odds_z(masses(200, {"thanks": 0.3, "card": 0.1}), same)
    assert z["thanks"] == pytest.approx(0.0, abs=1e-9)
    assert z["card"] == pytest.approx(0.0, abs=1e-9)
    fell = log_odds_z(masses(200, {"card": 0.01}), masses(500, {"card": 0.1}))
    assert fell["card"] < -2
    fallen = rising(masses(200, {"card": 0.01}), masses(500, {"card": 0.1}), 5)
    assert [s.word for s in fallen] == ["other"]  # what took the attention "card" lost


def test_the_prior_shrinks_a_word_seen_once() -> None:
    # One message's worth of a new word is weaker evidence than the same share over many.
    rare = log_odds_z({"outage": 1.0, "other": 99.0}, {"other": 1000.0})["outage"]
    common = log_odds_z({"outage": 10.0, "other": 990.0}, {"other": 10_000.0})["outage"]
    assert 0 < rare < common


def test_empty_sides_and_bad_prior() -> None:
    assert log_odds_z({}, {"a": 1.0}) == {"a": 0.0}
    assert rising({"a": 1.0}, {}, 3) == []
    with pytest.raises(ValueError, match="prior_mass"):
        log_odds_z({"a": 1.0}, {"a": 1.0}, prior_mass=0)
    assert all(math.isfinite(v) for v in log_odds_z({"a": 5.0}, {"b": 5.0}).values())


def test_distinct_texts_never_repeat_an_example() -> None:
    rows = [("Card declined!", 0.99), ("card  DECLINED!", 0.98), ("app down", 0.9), ("x", 0.5)]
    assert [r[0] for r in distinct_texts(rows, 2)] == ["Card declined!", "app down"]
    assert [r[0] for r in distinct_texts(rows, 10)] == ["Card declined!", "app down", "x"]


def turn(
    n: int, at: datetime, text: str, role: str, negative: bool, score: float = 0.9
) -> EnrichedEvent:
    words = text.split()
    return EnrichedEvent(
        input_id=f"chat:{n}",
        kind="chat",
        source=SourceRef(topic="chat", partition=0, offset=n),
        message_id=str(n),
        conversation_id=f"c{n}",
        channel="app",
        role=role,  # type: ignore[arg-type]
        text=text,
        sentiment=TaskResult(
            label="negative" if negative else "neutral",
            score=score if negative else 0.2,
            top=[LabelScore(label="negative", score=0.9)],
            attention=[WordWeight(word=w, weight=1.0 / len(words)) for w in words],
        ),
        model=ModelRef(name="m", version="1", tokenizer_hash="h"),
        event_time=at,
        processed_time=at,
        model_latency_ms=1.0,
        end_to_end_latency_ms=1.0,
    )


@pytest.fixture
def store(tmp_path):
    with open_store(f"sqlite:///{tmp_path / 'e.db'}") as opened:
        yield opened


def test_evidence_from_the_store_is_distinct_customer_only_and_ranked(store: Store) -> None:
    events = []
    # Baseline hour: customers thank and ask; agents say thanks.
    for i in range(300):
        at = T0 + timedelta(seconds=12 * i)
        events.append(turn(i, at, "thanks please help with my account", "customer", False))
        events.append(turn(10_000 + i, at, "thanks for waiting", "agent", False))
    start = T0 + timedelta(hours=1)
    # Episode: the same angry message again and again, one other, and agents thanking
    # more than ever (agent turns must not feed the evidence).
    for i in range(120):
        at = start + timedelta(seconds=5 * i)
        text = "my card was declined again thanks" if i % 4 else "the app is down please"
        events.append(turn(20_000 + i, at, text, "customer", True))
        for j in range(3):
            events.append(turn(30_000 + 3 * i + j, at, "sorry thanks thanks", "agent", True))
    # Angrier than any of them, but as common before the episode as in it: not what rose.
    for i in range(0, 300, 10):
        events.append(turn(40_000 + i, T0 + timedelta(seconds=12 * i + 1), "worst service",
                           "customer", True, score=0.99))  # fmt: skip
    for i in range(0, 120, 20):
        events.append(turn(50_000 + i, start + timedelta(seconds=5 * i + 1), "worst service",
                           "customer", True, score=0.99))  # fmt: skip
    store.write(events, [])
    evidence, words = read_evidence(
        store.engine, ("chat", "channel", "app"), start, 3600, messages=5, words=5, sample=2000
    )
    texts = [e.text_excerpt for e in evidence]
    # 120 negative customer turns of two texts and 6 of a third, 360 negative agent turns:
    # three examples, those on the rising words first, whatever their score.
    assert texts[2:] == ["worst service"]
    assert sorted(texts[:2]) == ["my card was declined again thanks", "the app is down please"]
    ranked = [w.word for w in words]
    new_words = {"my", "card", "was", "declined", "again", "the", "app", "is", "down"}
    assert len(ranked) == 5 and set(ranked) <= new_words
    assert {"declined", "card"} <= set(ranked)
    assert "thanks" not in ranked and "please" not in ranked and "sorry" not in ranked
    assert all(w.z is not None and w.z >= 1.645 for w in words)
    assert [w.z for w in words] == sorted((w.z for w in words), reverse=True)  # type: ignore[misc]


def test_a_resolve_event_keeps_what_it_fired_on() -> None:
    fired = AlertEvent(
        alert_id="a", status="firing", scope_kind="channel", scope="app", stream="chat",
        severity="warning", starts_at=T0, summary="s", baseline_share=0.33,
        current_share=0.56, baseline_n=900, current_n=250, statistic=6.1,
        detector="two_proportion_z",
    )  # fmt: skip
    ended = fired.model_copy(
        update={
            "status": "resolved", "ends_at": T0 + timedelta(hours=1), "baseline_share": 0.54,
            "baseline_n": 925, "current_share": 0.49, "current_n": 273,
            "fired": firing_of(fired),
        }
    )  # fmt: skip
    ended = AlertEvent.model_validate_json(ended.model_dump_json())
    assert ended.fired is not None and ended.fired.current_share == 0.56
    description = alert_annotations(ended)["description"]
    assert "fired at 56.0% over 250 messages against 33.0% over 900" in description
    assert "ended at 49.0% over 273 against 54.0% over 925" in description
    assert firing_of(None) is None
