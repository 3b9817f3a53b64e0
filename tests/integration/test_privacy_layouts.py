"""Issue 23 through the real broker: every identifier kind in every layout leaves no trace.

Generated identifiers (``tests/unit/pipeline/privacy/generated.py``, a seed of its own):
phones from assigned and unassigned ranges in every layout, cards, IBANs, emails, national
ids, account numbers and sort codes, also wrapped across lines and spelled out in words.
They go in as customer chats, as news headlines and bodies, and inside malformed events of
four kinds (schema violation, truncated JSON, invalid UTF-8, the identifier in a field
other than the text).  Afterwards the store files, the enriched and dead-letter topics, the
alerts topic (whatever the run's evaluator published), the evidence an alert on the chat
stream would carry (built from the store by the evaluator) and every log record (DEBUG) are
searched for each identifier (as written, compact, JSON-escaped, and for spelled ones the
digits they say): none may be there.  Look-alike lines (order numbers, amounts, dates,
prices, ...) are stored word for word.
"""

from __future__ import annotations

import json
import logging
import re
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from kafka import KafkaProducer

from attnwatch.service import service
from consumers.broker import EmbeddedBroker
from pipeline.alerting.evaluator import Evaluator
from pipeline.metrics import Metrics
from pipeline.privacy.normalise import normalise
from pipeline.store import open_store, read_dead_letters, read_events
from tests.integration.helpers import handled, make_topics, read_topic, run_until, unique_settings
from tests.unit.pipeline.privacy.corpus import Sample
from tests.unit.pipeline.privacy.generated import REPORT_SEED, build

pytestmark = pytest.mark.integration

SEED = 777  # neither the bench's reported seed nor its development seeds
PER_GROUP = 2


def pick(samples: list[Sample]) -> tuple[list[Sample], list[Sample]]:
    """``PER_GROUP`` identifier lines of every kind/layout, and the look-alike lines."""
    chosen: dict[str, list[Sample]] = defaultdict(list)
    for sample in samples:
        if sample.expected and len(chosen[sample.group]) < PER_GROUP:
            chosen[sample.group].append(sample)
    lookalikes = [s for s in samples if not s.expected]
    return [s for group in sorted(chosen) for s in chosen[group]], lookalikes


def needles(value: str) -> set[str]:
    """The identifier as written, JSON-escaped, compact, and the digits a spelled one says."""
    found = {value, json.dumps(value)[1:-1]}
    compact = re.sub(r"[\s\-.(),]", "", value)
    if len(compact) >= 6:
        found.add(compact)
    copy = normalise(value)
    if copy is not None:
        digits = re.sub(r"\D", "", copy[0])
        if len(digits) >= 6:
            found.add(digits)
    return found


def test_every_layout_of_every_kind_leaves_no_trace(
    broker: EmbeddedBroker, tiny_model: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    assert SEED != REPORT_SEED
    samples, lookalikes = pick(build(SEED, per_kind=80, lookalikes=60))
    groups = {s.group for s in samples}
    layouts = {g.split("/")[1] for g in groups if g.startswith("PHONE/")}
    # Every phone layout (assigned and unassigned), wrapped and spelled forms of each kind.
    assert len(layouts) >= 13 and {"wrapped", "spelled"} <= layouts
    assert {"CARD/wrapped", "CARD/spelled", "IBAN/wrapped", "ACCOUNT/spelled"} <= groups
    db = tmp_path / "layouts.db"
    settings = unique_settings(f"sqlite:///{db}", tiny_model)
    connection = broker.connection
    make_topics(settings, connection)
    now = datetime.now(UTC) - timedelta(seconds=5)
    producer = KafkaProducer(**connection.client_kwargs(), acks="all", linger_ms=5)

    def chat(i: int, text: str, **extra: object) -> dict[str, object]:
        return {"message_id": f"m{i}", "conversation_id": f"c{i}", "channel": "app",
                "role": "customer", "text": text, "ts": now.isoformat(), **extra}  # fmt: skip

    sent = bad = 0
    produced = b""
    for i, sample in enumerate(samples):
        text = sample.text
        topic = settings.topic_chat
        match i % 4:
            case 0:
                value = json.dumps(chat(i, text)).encode()
            case 1:
                topic = settings.topic_news
                article = {"article_id": f"a{i}", "source": "wire", "ts": now.isoformat()}
                article |= {"headline": text} if i % 8 == 1 else {"headline": "A customer wrote",
                                                                   "body": text}  # fmt: skip
                value = json.dumps(article).encode()
            case _:
                bad += 1
                value = [
                    json.dumps({k: v for k, v in chat(i, text).items() if k != "ts"}).encode(),
                    json.dumps(chat(i, text))[:-12].encode(),  # truncated: not JSON
                    b"\xff\xfe" + json.dumps(chat(i, text)).encode(),  # not UTF-8
                    json.dumps(chat(i, "hello", conversation_id=text, role="robot")).encode(),
                ][(i // 4) % 4]
        producer.send(topic, key=f"k{i}".encode(), value=value)
        produced += value
        sent += 1
    for j, sample in enumerate(lookalikes):
        producer.send(settings.topic_chat, key=f"l{j}".encode(),
                      value=json.dumps(chat(10_000 + j, sample.text)).encode())  # fmt: skip
        sent += 1
    producer.flush(timeout=30)
    producer.close(timeout=10)

    caplog.set_level(logging.INFO)
    for name in ("pipeline", "consumers", "models"):
        caplog.set_level(logging.DEBUG, logger=name)
    with service(settings, connection) as svc:
        report = run_until(svc.runner, handled(svc.runner, sent), timeout_s=240)
    logs = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert (report.enriched, report.dead_letters) == (sent - bad, bad)
    assert set(report.by_reason) == {"schema_violation", "invalid_json", "invalid_utf8"}

    stored = b"".join(p.read_bytes() for p in tmp_path.glob("layouts.db*"))
    topics = b""
    for topic, n in (
        (settings.topic_enriched, report.enriched),
        (settings.topic_deadletter, report.dead_letters),
        (settings.topic_alerts, 0),
    ):
        for record in read_topic(connection, topic, n):
            topics += (record.value or b"") + (record.key or b"")
            topics += b"".join(v for _, v in record.headers or [])
    with open_store(settings.store_url) as store:
        evaluator = Evaluator(store.engine, Metrics(), owner="t")
        evidence, rising = evaluator._evidence(("chat", "overall", ""), datetime.now(UTC), now)
    assert evidence, "no evidence read back"
    alert_text = json.dumps(
        [e.model_dump() for e in evidence] + [r.model_dump() for r in rising],
        default=str,
    )

    # Attention weights and scores are long decimals: a 6-digit run would be found in them
    # by chance, so they are taken out before searching.
    def searchable(blob: bytes) -> bytes:
        return re.sub(rb"\d*\.\d{6,}(?:[eE]-?\d+)?", b" ", blob)

    identifiers = {n for s in samples for _, value in s.expected for n in needles(value)}
    # The search can see them: every identifier went out in a form it looks for.
    assert all(
        any(n.encode() in produced for n in needles(value))
        for s in samples
        for _, value in s.expected
    )
    leaks = {
        where: sorted(i for i in identifiers if i.encode() in searchable(blob))
        for where, blob in (
            ("store", stored),
            ("topics", topics),
            ("alerts", alert_text.encode()),
            ("logs", logs.encode()),
        )
    }
    assert leaks == {"store": [], "topics": [], "alerts": [], "logs": []}

    # Placeholders of every kind were stored; look-alike lines are stored word for word.
    for kind in ("CARD", "IBAN", "PHONE", "EMAIL", "NATIONAL_ID", "ACCOUNT", "SORT_CODE"):
        assert f"[{kind}]".encode() in stored, kind
    texts = "\n".join(read_events(settings.store_url)["text"])
    assert all(s.text in texts for s in lookalikes), [
        s.text for s in lookalikes if s.text not in texts
    ]
    letters = read_dead_letters(settings.store_url)
    assert len(letters) == bad and all(b"[" in (raw or b"") for raw in letters["raw"])
