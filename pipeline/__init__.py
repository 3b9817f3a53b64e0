"""The pipeline: from raw Kafka records to stored, explained, measured results.

Top-level modules are shared by every subpackage: ``schema`` (versioned input and
output events), ``config`` (the settings groups, one per component), ``metrics``
(every Prometheus name), ``health`` (liveness and readiness), ``server`` (``/metrics``,
``/healthz`` and ``/readyz`` on one uvicorn server), ``backoff`` (capped exponential backoff,
tenacity's), ``logs`` (structured logs) and ``errors`` (one exception hierarchy).  The
subpackages are layered; each may import only those below it:

- ``store``: the analyst store (SQLite / PostgreSQL) and its pandas read API;
- ``sinks``: the sink interface and the store and Kafka topic sinks;
- ``stream``: micro-batching, the run loop, the checkpoint, enrichment;
- ``demo``: the demo's stream (scenario, simulated day), pure generators.

``pipeline`` may import ``consumers`` and ``models``; neither imports ``pipeline``.  No
component here reads the global settings: each takes its own group (:mod:`pipeline.config`)
and its collaborators.  The composition root ``attnwatch`` (top level) holds the root
settings, the CLI, the demo and the run service's wiring; it may import everything and
nothing here imports it (``.importlinter``).
"""
