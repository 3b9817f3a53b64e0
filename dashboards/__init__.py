"""Analyst dashboards: the web app over the analyst store, the report, and Grafana.

Reads the store through ``pipeline.store`` (the engine and the row conversion of
``read_events``), the model directory's files and the ``alerts`` table; writes only its
own ``corrections`` table and indexes.  May import ``pipeline``, ``consumers`` and
``models``; nothing imports this package.  Subpackages: ``data`` (reads and writes of the
store, no web framework) and ``web`` (routes, pages, charts, live updates, access).  Here:
``cli`` (serving it, also on a thread for the demo; the report command), ``report`` (the
self-contained HTML report), ``screenshots`` (the docs' pictures), ``grafana/`` (the
operators' dashboard).  The ``attnwatch`` package (the composition root) registers the
commands on the one CLI.
"""
