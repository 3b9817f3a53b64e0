"""The throughput harness of issue 14: the run loop against the model's limit and a naive loop.

``python -m bench.harness`` runs three sides back to back on one stated message mix
(:mod:`bench.harness.mix`) through a real embedded broker: the encoder + heads forward alone on
pre-tokenised, length-sorted units (:mod:`~bench.harness.limit`), a kafka-python loop calling
``predict`` per message and inserting each row (:mod:`~bench.harness.naive`), and the real run
loop at several batch sizes plus paced runs for end-to-end latency, in a child process of its
own so its peak RSS is its own (:mod:`~bench.harness.pipeline_run`, :mod:`~bench.harness.rss`).
:mod:`~bench.harness.report` prints the table and writes markdown, JSON and a PNG;
:mod:`~bench.harness.machine` records the machine it ran on.

May import ``consumers``, ``models`` and ``pipeline``; nothing imports it but its tests.
"""
