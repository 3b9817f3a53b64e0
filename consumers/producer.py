"""The one Kafka producer configuration: used by the run loop's sinks and by replay."""

from __future__ import annotations

from kafka import KafkaProducer

from consumers.connection import KafkaConnection

#: Bytes a record may take beyond its key and value (headers, batch framing).
RECORD_OVERHEAD_BYTES = 16_384
#: Bytes of records the producer gathers per partition into one request.
BATCH_BYTES = 512 * 1024


def make_producer(
    connection: KafkaConnection, *, max_message_bytes: int = 1_000_000, timeout_s: float = 30.0
) -> KafkaProducer:
    """A producer that waits for all in-sync replicas and keeps per-key order.

    Every blocking call is bounded by ``timeout_s``: waiting for metadata or buffer space
    (``max_block_ms``), one request, and a record's whole delivery including retries.
    """
    timeout_ms = int(timeout_s * 1000)
    request_timeout_ms = min(timeout_ms, 30_000)
    linger_ms = 5
    return KafkaProducer(
        **connection.client_kwargs(),
        acks="all",
        linger_ms=linger_ms,
        # One request carries a whole batch's records (kafka-python's default, 16 KiB, is
        # 5-10 enriched events), and no client-side metrics nobody reads (Sensor.record
        # ran on every send and every request): decision 0021.
        batch_size=BATCH_BYTES,
        metrics_enabled=False,
        retries=5,
        max_in_flight_requests_per_connection=1,
        max_request_size=max_message_bytes + RECORD_OVERHEAD_BYTES,
        max_block_ms=timeout_ms,
        request_timeout_ms=request_timeout_ms,
        # kafka-python requires delivery >= linger + request timeout.
        delivery_timeout_ms=max(timeout_ms, linger_ms + request_timeout_ms),
    )
