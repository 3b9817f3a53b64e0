"""The commit protocol, through the method the run loop calls: ``Checkpoint.commit``.

Production drives it as these tests do: ``Runner._commit`` calls
``Checkpoint(sinks, lambda offsets: source.commit(offsets)).commit(source.assignment())``
and retries after a backoff when it raises ``CommitError``; the sinks here share the real
sinks' ``BatchingSink`` base.
"""

from datetime import UTC, datetime

import pytest

from consumers.source import CommitError
from pipeline.schema import DeadLetter, SourceRef
from pipeline.sinks.base import BatchingSink, Record
from pipeline.store.raw import RawDeadLetter
from pipeline.stream.checkpoint import Checkpoint, UnflushedError

OWNED = {("chat", 0), ("news", 1)}


class RecordingSink(BatchingSink[Record]):
    """Takes every record; logs each write; fails while ``fail`` is set."""

    def __init__(self, name, log, fail=False):
        super().__init__()
        self.name = name
        self.log = log
        self.fail = fail

    def take(self, record):
        return record

    def write(self, batch):
        if self.fail:
            raise OSError("disk full")
        self.log.append(("write", self.name, len(batch)))


class Source:
    """The consumer's commit: logs, can fail retriably or report a rebalance."""

    def __init__(self, log):
        self.log = log
        self.error = None
        self.rebalanced = False

    def commit(self, offsets):
        if self.error is not None:
            raise self.error
        self.log.append(("commit", offsets))
        return not self.rebalanced


def letter(offset, partition=0):
    return DeadLetter(
        source=SourceRef(topic="chat", partition=partition, offset=offset),
        reason="r",
        detail="d",
        raw=b"x",
        received_time=datetime.now(UTC),
    )


def test_commit_flushes_every_sink_in_order_then_commits():
    log = []
    source = Source(log)
    checkpoint = Checkpoint(
        [RecordingSink("store", log), RecordingSink("topic", log)], source
    )
    for offset in (5, 3, 4):
        checkpoint.add(letter(offset), "chat", 0, offset)
    checkpoint.mark("news", 1, 9)
    assert checkpoint.commit(OWNED) is True
    assert log == [
        ("write", "store", 3),
        ("write", "topic", 3),
        ("commit", {("chat", 0): 6, ("news", 1): 10}),
    ]
    assert checkpoint.commit(OWNED) is None  # nothing new: nothing committed
    assert len(log) == 3


def test_batches_are_per_partition():
    log = []
    checkpoint = Checkpoint([RecordingSink("store", log)], Source(log))
    checkpoint.add(letter(0), "chat", 0, 0)
    checkpoint.add(letter(1, partition=1), "chat", 1, 1)
    checkpoint.add(letter(2), "chat", 0, 2)
    checkpoint.commit({("chat", 0), ("chat", 1)})
    assert log[:2] == [("write", "store", 2), ("write", "store", 1)]


def test_a_failing_sink_prevents_the_commit_and_loses_nothing():
    log = []
    source = Source(log)
    topic = RecordingSink("topic", log)
    store = RecordingSink("store", log, fail=True)
    checkpoint = Checkpoint([topic, store], source)
    checkpoint.add(letter(0), "chat", 0, 0)
    with pytest.raises(OSError, match="disk full"):
        checkpoint.commit(OWNED)
    assert not [entry for entry in log if entry[0] == "commit"]
    assert store.pending == 1  # kept for the next flush
    store.fail = False
    assert checkpoint.commit(OWNED) is True
    assert log[-2:] == [("write", "store", 1), ("commit", {("chat", 0): 1})]


def test_a_flush_that_leaves_records_behind_commits_nothing():
    class Forgetful(RecordingSink):
        def flush(self):  # returns without writing: a producer that did not flush
            pass

    log = []
    checkpoint = Checkpoint([Forgetful("topic", log)], Source(log))
    checkpoint.add(letter(0), "chat", 0, 0)
    with pytest.raises(UnflushedError, match="topic: 1"):
        checkpoint.commit(OWNED)
    assert log == []


def test_a_failed_commit_keeps_the_offsets_for_the_next_one():
    log = []
    source = Source(log)
    checkpoint = Checkpoint([RecordingSink("store", log)], source)
    checkpoint.add(letter(3), "chat", 0, 3)
    source.error = CommitError("broker away")
    with pytest.raises(CommitError):
        checkpoint.commit(OWNED)
    source.error = None
    # The runner retries after its backoff with nothing new: the kept offsets commit.
    assert checkpoint.commit(OWNED) is True
    checkpoint.add(letter(4), "chat", 0, 4)
    assert checkpoint.commit(OWNED) is True
    # Written once each; the offsets move only forward.
    assert log == [
        ("write", "store", 1),
        ("commit", {("chat", 0): 4}),
        ("write", "store", 1),
        ("commit", {("chat", 0): 5}),
    ]


def test_only_owned_partitions_are_committed_and_revoked_ones_are_forgotten():
    log = []
    source = Source(log)
    checkpoint = Checkpoint([RecordingSink("store", log)], source)
    checkpoint.add(letter(1), "chat", 0, 1)
    checkpoint.mark("news", 1, 7)
    assert checkpoint.commit({("chat", 0)}) is True
    assert log[-1] == ("commit", {("chat", 0): 2})
    checkpoint.mark("news", 1, 8)
    checkpoint.forget({("news", 1)})
    assert checkpoint.commit(OWNED) is None
    source.rebalanced = True
    checkpoint.mark("chat", 0, 5)
    assert checkpoint.commit(OWNED) is False


def test_flush_returns_what_it_made_durable_and_sinks_ignore_kinds_they_do_not_take():
    from pipeline.sinks.store import StoreSink

    class Store:
        written = []

        def write(self, events, letters):
            self.written.append((len(events), len(letters)))

    checkpoint = Checkpoint([StoreSink(Store())], Source([]))  # type: ignore[arg-type]
    raw = RawDeadLetter("chat", 0, 2, b"raw", datetime.now(UTC))
    checkpoint.add(raw, "chat", 0, 2)  # for the raw store only
    checkpoint.add(letter(2), "chat", 0, 2)
    checkpoint.add(letter(4, partition=1), "chat", 1, 4)
    assert checkpoint.flush() == {("chat", 0): 3, ("chat", 1): 5}
    assert Store.written == [(0, 2)]  # both partitions in one transaction
    assert checkpoint.flush() == {}
