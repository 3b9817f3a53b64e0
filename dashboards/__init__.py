"""Analyst dashboards: the web app over the analyst store, and its access control.

Reads the store through ``pipeline.store`` (the engine and the row conversion of
``read_events``), the model directory's files and the ``alerts`` table; writes only its
own ``corrections`` table and indexes.  May import ``pipeline``, ``consumers`` and
``models``; nothing imports this package.  Modules: ``app`` (FastAPI routes), ``filters``
(request parameters), ``forms`` (the posted form), ``queries`` (the feed's reads),
``aggregates`` (counts over time), ``pages`` (what each chart page shows), ``charts``
(plotly.js figures), ``shading`` (attention as HTML), ``live`` (server-sent events),
``exports`` (CSV, Parquet), ``corrections`` (relabelling), ``model_info`` (the model
page), ``indexes`` (the dashboard's own indexes), ``views`` (templates), ``auth`` (a
bearer token beyond loopback), ``cli`` (serving it; the report command), ``report`` (the
self-contained HTML report), ``command`` (the ``attnwatch`` script: the pipeline's commands
plus these), ``screenshots`` (the README's pictures).
"""
