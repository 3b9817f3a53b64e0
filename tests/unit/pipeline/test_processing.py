"""The classify thread's job on one batch: isolation, redelivery limit, retries (no broker)."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime

import pytest

from consumers.source import SourceRecord
from models.classifier import AttentionTextClassifier
from pipeline.errors import StoreError
from pipeline.metrics import Metrics
from pipeline.schema import DeadLetter, EnrichedEvent
from pipeline.sinks.base import Record
from pipeline.store import open_store
from pipeline.store.attempts import AttemptLog
from pipeline.stream.checkpoint import Checkpoint
from pipeline.stream.processing import BatchCollaborators, BatchProcessor, Limits, RunReport
from pipeline.stream.retry import Abandoned, Backoff
from tests.integration.faults import FaultyClassifier

MARKER = "zz-poison-zz"


class ListSink:
    """Keeps what was flushed; can be told to fail the next N flushes."""

    name = "list"

    def __init__(self) -> None:
        self.pending: list[Record] = []
        self.flushed: list[Record] = []
        self.failures = 0

    def add(self, record: Record, topic: str = "", partition: int = 0) -> None:
        self.pending.append(record)

    def flush(self) -> None:
        if self.failures:
            self.failures -= 1
            msg = "database is away"
            raise StoreError(msg)
        self.flushed.extend(self.pending)
        self.pending = []


def chat(offset: int, text: str) -> SourceRecord:
    payload = {
        "message_id": f"m{offset}",
        "conversation_id": "c1",
        "channel": "web",
        "role": "customer",
        "text": text,
        "ts": datetime(2026, 11, 25, 10, 0, tzinfo=UTC).isoformat(),
    }
    return SourceRecord("chat", 0, offset, b"c1", json.dumps(payload).encode(), 1_700_000_000_000)


class NoSource:
    """A source whose commit is never reached (these tests flush, never commit)."""

    def commit(self, offsets):
        msg = f"unexpected commit of {offsets}"
        raise AssertionError(msg)


@pytest.fixture(scope="module")
def classifier(tiny_model):
    return AttentionTextClassifier(tiny_model, "cpu")


def processor(classifier, sink, *, attempts=None, raise_marker=None, limits=None):
    faulty = FaultyClassifier(classifier, raise_marker=raise_marker)
    checkpoint = Checkpoint([sink], NoSource())
    return faulty, BatchProcessor(
        classifier=faulty,
        checkpoint=checkpoint,
        topic_kinds={"chat": "chat"},
        metrics=Metrics(),
        tasks=["intent", "sentiment"],
        limits=limits,
        backoff=Backoff(0.01, 0.02),
        collaborators=BatchCollaborators(attempts=attempts),
    )


def by_type(sink):
    events = [r for r in sink.flushed if isinstance(r, EnrichedEvent)]
    letters = [r for r in sink.flushed if isinstance(r, DeadLetter)]
    return events, letters


def test_model_errors_are_isolated_by_bisection(classifier):
    sink = ListSink()
    texts = [f"my card was declined {i}" for i in range(16)]
    texts[5] += f" {MARKER}"
    texts[12] += f" {MARKER}"
    records = [chat(i, t) for i, t in enumerate(texts)]
    faulty, proc = processor(classifier, sink, raise_marker=MARKER)
    report = RunReport()
    offsets = proc.process(records, report, threading.Event())
    events, letters = by_type(sink)
    assert sorted(e.source.offset for e in events) == [i for i in range(16) if i not in (5, 12)]
    assert [(d.source.offset, d.reason, d.detail) for d in letters] == [
        (5, "model_error", "ModelFault"),
        (12, "model_error", "ModelFault"),
    ]
    assert offsets == {("chat", 0): 16}
    assert (report.enriched, report.dead_letters) == (14, 2)
    # Bisection, not one call per message: far fewer than 16 calls for 2 culprits.
    assert faulty.calls < 16


def test_dead_letter_keeps_the_original_record(classifier):
    sink = ListSink()
    record = SourceRecord("chat", 0, 7, b"k1", None, 1_700_000_000_000, (("trace", b"abc"),))
    _, proc = processor(classifier, sink)
    proc.process([record], RunReport(), threading.Event())
    (letter,) = by_type(sink)[1]
    assert letter.raw is None and letter.key == b"k1" and letter.headers == (("trace", b"abc"),)
    assert letter.source_timestamp == datetime.fromtimestamp(1_700_000_000, UTC)


def test_a_record_that_kept_killing_the_process_is_dead_lettered(classifier, tmp_path):
    sink = ListSink()
    with open_store(f"sqlite:///{tmp_path / 's.db'}") as store:
        log = AttemptLog(store.engine)
        records = [chat(i, f"lost my card {i}") for i in range(4)]
        # Two earlier runs died with this batch in flight; record 2 then died alone again.
        log.begin([("chat", 0, i) for i in range(4)])
        log.start_one(("chat", 0, 2))
        _, proc = processor(classifier, sink, attempts=log, limits=Limits(max_redeliveries=2))
        offsets = proc.process(records, RunReport(), threading.Event())
        events, letters = by_type(sink)
        assert sorted(e.source.offset for e in events) == [0, 1, 3]
        assert [(d.source.offset, d.reason) for d in letters] == [(2, "redelivery_limit")]
        assert offsets == {("chat", 0): 4}
        assert log.counts() == {}  # finished records are forgotten


def test_previously_started_records_are_retried_one_at_a_time(classifier, tmp_path):
    sink = ListSink()
    with open_store(f"sqlite:///{tmp_path / 's.db'}") as store:
        log = AttemptLog(store.engine)
        log.begin([("chat", 0, 0), ("chat", 0, 1)])
        faulty, proc = processor(classifier, sink, attempts=log)
        proc.process([chat(0, "hello"), chat(1, "thanks"), chat(2, "card")], RunReport(),
                     threading.Event())
        # One call for the fresh record, one each for the two suspects.
        assert faulty.calls == 3
        assert len(by_type(sink)[0]) == 3
        assert log.counts() == {}


def test_a_failing_sink_is_retried_and_nothing_is_lost(classifier):
    sink = ListSink()
    sink.failures = 3
    _, proc = processor(classifier, sink)
    offsets = proc.process([chat(i, "where is my transfer") for i in range(5)], RunReport(),
                           threading.Event())
    assert len(by_type(sink)[0]) == 5 and offsets == {("chat", 0): 5}


def test_a_stop_while_retrying_abandons_the_batch_uncommitted(classifier):
    sink = ListSink()
    sink.failures = 10**6
    _, proc = processor(classifier, sink)
    abort = threading.Event()
    threading.Timer(0.2, abort.set).start()
    with pytest.raises(Abandoned):
        proc.process([chat(0, "hello")], RunReport(), abort)
    assert sink.flushed == []


def test_long_news_is_capped_and_forward_passes_are_bounded(classifier):
    from pipeline.schema import NewsEvent
    from pipeline.stream.enrich import classify_events

    body = " ".join(f"Sentence number {i} says shares rose." for i in range(300))
    event = NewsEvent(article_id="a", source="wire", headline="Shares rise", body=body,
                      ts=datetime(2026, 11, 25, tzinfo=UTC))
    sizes: list[int] = []

    class Counting(FaultyClassifier):
        def predict(self, texts, tasks=None):
            sizes.append(len(texts))
            return super().predict(texts, tasks)

    classify_events(Counting(classifier), [event] * 3, ["sentiment"], max_sentences=10,
                    max_texts_per_forward=8)
    assert sum(sizes) == 30 and max(sizes) <= 8


def test_a_redelivered_batch_skips_what_is_already_stored(classifier, tmp_path):
    from pipeline.sinks.store import StoreSink
    from pipeline.store.dedup import StoredLookup

    with open_store(f"sqlite:///{tmp_path / 's.db'}") as store:
        records = [chat(0, "my card was declined"), SourceRecord("chat", 0, 1, None, b"{", 0),
                   chat(2, "thanks a lot")]
        first = ListSink()
        checkpoint = Checkpoint([first, StoreSink(store)], NoSource())
        proc = BatchProcessor(classifier=classifier, checkpoint=checkpoint,
                              topic_kinds={"chat": "chat"}, metrics=Metrics(),
                              tasks=["intent", "sentiment"],
                              collaborators=BatchCollaborators(lookup=StoredLookup(store.engine)))
        proc.process(records[:2], RunReport(), threading.Event())
        assert len(first.flushed) == 2
        # The crash came after the store commit: the whole batch is redelivered.
        again = ListSink()
        checkpoint = Checkpoint([again, StoreSink(store)], NoSource())
        faulty = FaultyClassifier(classifier)
        proc = BatchProcessor(classifier=faulty, checkpoint=checkpoint,
                              topic_kinds={"chat": "chat"}, metrics=Metrics(),
                              tasks=["intent", "sentiment"],
                              collaborators=BatchCollaborators(lookup=StoredLookup(store.engine)))
        report = RunReport()
        offsets = proc.process(records, report, threading.Event())
        assert [r.source.offset for r in again.flushed] == [2]  # nothing produced twice
        assert report.skipped == 2 and offsets == {("chat", 0): 3}
        assert faulty.calls == 1 and store.count() == 2


def test_counts_left_by_a_crash_after_the_store_commit_are_cleared(classifier, tmp_path):
    from pipeline.sinks.store import StoreSink
    from pipeline.store.dedup import StoredLookup

    with open_store(f"sqlite:///{tmp_path / 's.db'}") as store:
        log = AttemptLog(store.engine)
        record = chat(0, "my card was declined")
        checkpoint = Checkpoint([StoreSink(store)], NoSource())
        BatchProcessor(classifier=classifier, checkpoint=checkpoint, topic_kinds={"chat": "chat"},
                       metrics=Metrics(), tasks=["sentiment"]).process(
            [record], RunReport(), threading.Event())
        log.begin([("chat", 0, 0)])  # the process died before forgetting the count
        proc = BatchProcessor(classifier=classifier, checkpoint=checkpoint,
                              topic_kinds={"chat": "chat"}, metrics=Metrics(),
                              tasks=["sentiment"], collaborators=BatchCollaborators(
                                  attempts=log, lookup=StoredLookup(store.engine)))
        report = RunReport()
        proc.process([record], report, threading.Event())
        assert report.skipped == 1 and log.counts() == {}


def test_raw_rows_reach_the_raw_store_as_an_ordinary_sink(classifier):
    from pipeline.privacy import PrivacyPolicy
    from pipeline.sinks.raw import RawSink

    class RawStore:
        def __init__(self) -> None:
            self.events: list = []
            self.letters: list = []

        def write(self, events, letters) -> None:
            self.events += events
            self.letters += letters

    raw_store, sink = RawStore(), ListSink()
    checkpoint = Checkpoint([RawSink(raw_store), sink], NoSource())  # type: ignore[arg-type]
    proc = BatchProcessor(classifier=classifier, checkpoint=checkpoint,
                          topic_kinds={"chat": "chat"}, metrics=Metrics(),
                          tasks=["intent", "sentiment"],
                          collaborators=BatchCollaborators(privacy=PrivacyPolicy()))
    secret = "jane.doe@example.com"
    bad = SourceRecord("chat", 0, 1, None, f'{{"text": "{secret}"'.encode(), 0)
    records = [chat(0, f"my card was declined, write to {secret}"), bad, chat(2, "hi")]
    offsets = proc.process(records, RunReport(), threading.Event())
    assert offsets == {("chat", 0): 3}
    assert [(e.input_id, secret in e.text) for e in raw_store.events] == [("chat:m0", True)]
    assert [(d.offset, secret.encode() in (d.value or b"")) for d in raw_store.letters] == [
        (1, True)
    ]
    events, letters = by_type(sink)
    assert len(events) == 2 and len(letters) == 1
    assert not any(secret in e.model_dump_json() for e in events)
    assert secret.encode() not in (letters[0].raw or b"")
