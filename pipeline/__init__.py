"""The pipeline: from raw Kafka records to stored, explained, measured results.

Top-level modules are shared by every subpackage: ``schema`` (versioned input and
output events), ``config`` (every setting, one group per component), ``metrics``
(every Prometheus name), ``health`` (liveness and readiness), ``server`` (``/metrics``,
``/healthz`` and ``/readyz`` on one uvicorn server), ``backoff`` (capped exponential backoff,
tenacity's), ``logs`` (structured logs) and ``errors`` (one exception hierarchy).  The
subpackages are layered; each may import only those below it:

- ``store``: the analyst store (SQLite / PostgreSQL) and its pandas read API;
- ``sinks``: the sink interface and the store and Kafka topic sinks;
- ``stream``: micro-batching, the run loop, the checkpoint, enrichment, wiring;
- ``demo``: the demo's scenario, live view and one-process runner;
- ``cli``: the pipeline's commands of the ``attnwatch`` command line (nothing in
  ``pipeline`` imports it).

``pipeline`` may import ``consumers`` and ``models``; neither imports ``pipeline``.  The
composition root ``attnwatch`` (top level) may import everything; nothing imports it.
"""
