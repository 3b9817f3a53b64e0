"""Alerting on sentiment shifts: windowed aggregates over the store, detectors, alerts.

Runs as a periodic evaluation over the analyst store (one active evaluator by lease; see
``docs/decisions/0004-alerting-design.md``): ``windows`` reads event-time buckets per scope,
``detectors`` decides when an episode opens and resolves, ``notify`` delivers alerts through
an outbox. May import the top ``pipeline`` modules and ``pipeline.store``; the run loop and
the CLI import it, never the reverse.
"""
