from datetime import UTC, datetime

import pytest

from pipeline.schema import DeadLetter, SourceRef
from pipeline.stream.checkpoint import Checkpoint


class RecordingSink:
    def __init__(self, name, log, fail=False):
        self.name = name
        self.log = log
        self.fail = fail
        self.buffer = []

    def add(self, record):
        self.buffer.append(record)

    def flush(self):
        if self.fail:
            raise OSError("disk full")
        self.log.append(("flush", self.name, len(self.buffer)))
        self.buffer.clear()


def letter(offset):
    return DeadLetter(
        source=SourceRef(topic="chat", partition=0, offset=offset),
        reason="r",
        detail="d",
        raw=b"x",
        received_time=datetime.now(UTC),
    )


def test_offsets_are_committed_only_after_every_sink_flushed():
    log = []
    checkpoint = Checkpoint(
        [RecordingSink("store", log), RecordingSink("topic", log)],
        lambda offsets: log.append(("commit", offsets)),
    )
    for offset in (5, 3, 4):
        checkpoint.add(letter(offset), "chat", 0, offset)
    checkpoint.mark("news", 1, 9)
    assert checkpoint.commit() == {("chat", 0): 6, ("news", 1): 10}
    assert log == [
        ("flush", "store", 3),
        ("flush", "topic", 3),
        ("commit", {("chat", 0): 6, ("news", 1): 10}),
    ]
    assert checkpoint.commit() == {}  # nothing new: nothing committed


def test_a_failing_sink_prevents_the_commit():
    log = []
    checkpoint = Checkpoint(
        [RecordingSink("store", log, fail=True)], lambda offsets: log.append(("commit", offsets))
    )
    checkpoint.add(letter(0), "chat", 0, 0)
    with pytest.raises(OSError, match="disk full"):
        checkpoint.commit()
    assert not [entry for entry in log if entry[0] == "commit"]
