from consumers.source import SourceRecord
from pipeline.stream.batching import MicroBatcher


class FakeSource:
    """Delivers scripted poll results and advances a fake clock by the poll timeout."""

    def __init__(self, script, clock):
        self.script = list(script)
        self.clock = clock
        self.polls = []

    def poll(self, timeout_s, max_records):
        self.polls.append((round(timeout_s, 3), max_records))
        if self.script:
            records = self.script.pop(0)[:max_records]
            self.clock[0] += 0.01
            return records
        self.clock[0] += timeout_s
        return []


def rec(offset):
    return SourceRecord("chat", 0, offset, None, b"{}", 0)


def test_batch_stops_at_max_size():
    clock = [0.0]
    source = FakeSource([[rec(0), rec(1)], [rec(2), rec(3)], [rec(4)]], clock)
    batch = MicroBatcher(source, max_size=3, max_wait_s=10, clock=lambda: clock[0]).next_batch(1)
    assert [r.offset for r in batch] == [0, 1, 2]
    assert source.polls[1][1] == 1  # asks only for what still fits


def test_batch_stops_at_max_wait():
    clock = [0.0]
    source = FakeSource([[rec(0)]], clock)
    batch = MicroBatcher(source, max_size=10, max_wait_s=0.2, clock=lambda: clock[0]).next_batch(1)
    assert [r.offset for r in batch] == [0]
    assert clock[0] < 0.5


def test_idle_source_gives_an_empty_batch():
    clock = [0.0]
    batcher = MicroBatcher(
        FakeSource([], clock), max_size=4, max_wait_s=0.2, clock=lambda: clock[0]
    )
    assert batcher.next_batch(0.5) == []


def test_prefetched_records_start_the_next_batch_and_keep_their_wait():
    clock = [0.0]
    source = FakeSource([[rec(0), rec(1)], [], [rec(2)]], clock)
    batcher = MicroBatcher(source, max_size=4, max_wait_s=0.2, clock=lambda: clock[0])
    assert batcher.prefetch(0.0) == 2 and batcher.pending == 2 and not batcher.full
    clock[0] += 0.5  # the batch in flight took longer than max_wait: no more waiting
    batch = batcher.next_batch(1)
    assert [r.offset for r in batch] == [0, 1]
    assert batcher.pending == 0


def test_prefetch_stops_when_full_and_revoked_partitions_are_dropped():
    clock = [0.0]
    other = SourceRecord("chat", 1, 7, None, b"{}", 0)
    source = FakeSource([[rec(0), other], [rec(1)]], clock)
    batcher = MicroBatcher(source, max_size=2, max_wait_s=0.2, clock=lambda: clock[0])
    batcher.prefetch(0.0)
    assert batcher.full and batcher.prefetch(0.0) == 0
    assert len(source.polls) == 1  # a full batch does not poll again
    assert batcher.drop({("chat", 1)}) == 1
    assert [r.offset for r in batcher.next_batch(1)] == [0, 1]
