"""Where results go before offsets are committed.

The ``Sink`` interface the checkpoint flushes, and its implementations: the analyst store, the
enriched topic, the dead-letter topic. May import ``pipeline.schema`` and ``pipeline.store``;
not the run loop, which imports it.
"""
