"""Analyst dashboards: the web app over the analyst store, the report, and Grafana.

Reads the store through ``pipeline.store`` (the engine and the row conversion of
``read_events``), the model directory's files and the ``alerts`` table; writes only its
own ``corrections`` table and indexes.  May import ``pipeline``, ``consumers`` and
``models``; nothing imports this package.  Subpackages: ``data`` (reads and writes of the
store, no web framework) and ``web`` (routes, pages, charts, live updates, access).  Here:
``cli`` (serving it; the report command), ``report`` (the self-contained HTML report),
``command`` (the ``attnwatch`` script: the pipeline's commands plus these), ``screenshots``
(the README's pictures), ``grafana/`` (the operators' dashboard).
"""
