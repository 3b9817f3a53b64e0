"""The one Kafka producer configuration: used by the run loop's sinks and by replay."""

from __future__ import annotations

from kafka import KafkaProducer

from consumers.connection import KafkaConnection


def make_producer(connection: KafkaConnection) -> KafkaProducer:
    """A producer that waits for all in-sync replicas and keeps per-key order."""
    return KafkaProducer(
        **connection.client_kwargs(),
        acks="all",
        linger_ms=5,
        retries=5,
        max_in_flight_requests_per_connection=1,
    )
