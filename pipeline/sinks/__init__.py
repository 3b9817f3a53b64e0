"""Where results go before offsets are committed.

The ``Sink`` interface the checkpoint flushes, the ``BatchingSink`` base class that owns the
per-partition batches (a sink implements only ``take`` and ``write``), and the sinks: the
opt-in raw store, the enriched topic, the dead-letter topic, the analyst store. May import
``pipeline.schema`` and ``pipeline.store``; not the run loop, which imports it.
"""
