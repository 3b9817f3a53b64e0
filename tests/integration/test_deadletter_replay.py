"""``attnwatch deadletter replay`` through a real Tansu broker: the original record comes back."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from kafka import KafkaProducer
from typer.testing import CliRunner

from attnwatch.cli import app
from consumers.topics import ensure_topics
from pipeline.schema import DeadLetter, SourceRef
from pipeline.store import open_store, read_dead_letters
from tests.integration.helpers import read_topic

pytestmark = pytest.mark.integration


def test_replay_resends_the_original_value_key_and_headers(broker, tmp_path: Path) -> None:
    connection = broker.connection
    topic = f"chat-replay-{uuid.uuid4().hex[:8]}"
    ensure_topics(connection, [topic], 1)
    producer = KafkaProducer(**connection.client_kwargs(), acks="all")
    headers = [("trace-id", b"\x00\xff\x10"), ("tenant", b"acme"), ("tenant", b"")]
    producer.send(topic, value=b'{"text": "unterminated', key=b"conv-9", headers=headers)
    # A tombstone: a null value with a key.
    producer.send(topic, value=None, key=b"conv-10", headers=[("trace-id", b"t2")])
    producer.flush(timeout=30)
    producer.close()
    originals = read_topic(connection, topic, expected=2)
    assert [r.value for r in originals] == [b'{"text": "unterminated', None]

    # The dead letters the run loop writes for them.
    store_url = f"sqlite:///{tmp_path / 'attnwatch.db'}"
    with open_store(store_url) as store:
        store.write(
            [],
            [
                DeadLetter(
                    source=SourceRef(topic=r.topic, partition=r.partition, offset=r.offset),
                    reason="invalid_json" if r.value is not None else "empty_value",
                    detail="test",
                    raw=r.value,
                    received_time=datetime.now(UTC),
                    key=r.key,
                    headers=tuple(r.headers),
                    source_timestamp=datetime.fromtimestamp(r.timestamp / 1000, UTC),
                )
                for r in originals
            ],
        )

    def replay(*args: str) -> str:
        result = CliRunner().invoke(
            app,
            [
                "--bootstrap-servers",
                connection.bootstrap_servers,
                "--store-url",
                store_url,
                "deadletter",
                "replay",
                *args,
            ],
        )
        assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
        return result.stdout

    assert "replayed 2 of 2" in replay()
    records = read_topic(connection, topic, expected=4)
    assert len(records) == 4
    for original, replayed in zip(originals, records[2:], strict=True):
        assert replayed.value == original.value
        assert replayed.key == original.key
        assert list(replayed.headers) == list(original.headers)
        assert replayed.offset > original.offset
    assert read_dead_letters(store_url, replayed=False).empty

    # Already replayed: nothing is sent again without --again.
    assert "nothing to replay" in replay()
    # read_topic reads every partition to its end: a fifth record would be in hand.
    assert len(read_topic(connection, topic, expected=4)) == 4
