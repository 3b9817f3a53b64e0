"""The run loop.

Micro-batches from a source, decoding into good and bad streams, classification, enrichment,
and the checkpoint that commits offsets only after every sink has flushed; ``service`` wires a
runner from settings. May import the top ``pipeline`` modules, ``pipeline.sinks``,
``pipeline.store``, ``consumers`` and ``models``; not ``demo`` or ``cli``.
"""
