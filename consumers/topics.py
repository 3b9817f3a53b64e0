"""Create attnwatch's topics on any Kafka-compatible cluster (idempotent)."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError

from consumers.connection import KafkaConnection

log = logging.getLogger(__name__)


def ensure_topics(
    connection: KafkaConnection, names: Iterable[str], partitions: int, replication: int = 1
) -> list[str]:
    """Create the topics that do not exist yet; returns the ones created."""
    admin = KafkaAdminClient(**connection.client_kwargs())
    try:
        existing = set(admin.list_topics())
        missing = [n for n in dict.fromkeys(names) if n not in existing]
        if missing:
            try:
                admin.create_topics([NewTopic(n, partitions, replication) for n in missing])
            except TopicAlreadyExistsError:
                # Another instance created them between list and create: that is fine.
                log.info("topics already created concurrently", extra={"topics": missing})
            log.info("created topics", extra={"topics": missing, "partitions": partitions})
        return missing
    finally:
        admin.close()
