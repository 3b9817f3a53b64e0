"""The run loop: micro-batches from a source, decoding into good and bad streams,
classification, enrichment, and the checkpoint that commits offsets only after every sink
has flushed.  ``service`` wires a runner from settings.

May import ``pipeline.schema``/``config``/``metrics``/``errors``, ``pipeline.sinks``,
``pipeline.store``, ``consumers`` and ``models``; not ``demo`` or ``cli``.
"""
