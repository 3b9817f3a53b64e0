"""Kafka edges: the consumer-group source, the replay producer and the embedded broker."""
