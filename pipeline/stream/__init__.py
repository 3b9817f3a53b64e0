"""The run loop.

Micro-batches from a source, decoding into good and bad streams, classification, enrichment,
and the checkpoint that commits offsets only after every sink has flushed.  The runner takes
the ``stream`` settings group and its collaborators; the composition root
(:mod:`attnwatch.service`) wires it.  May import the top ``pipeline`` modules,
``pipeline.sinks``, ``pipeline.alerting``, ``pipeline.store``, ``pipeline.privacy``,
``consumers`` and ``models``; not ``demo``.
"""
