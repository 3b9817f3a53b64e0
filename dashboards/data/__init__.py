"""The dashboard's reads and writes of the analyst store, without any web framework.

Request filters (``filters``), the feed's keyset reads (``queries``), counts over time and
alert episodes (``aggregates``), relabelling (``corrections``), CSV/Parquet (``exports``), the
dashboard's own indexes (``indexes``), the model directory's files (``model_info``) and the
operational alerts Alertmanager posts (``ops_alerts``).
May import ``pipeline`` and ``models``; never ``dashboards.web``.
"""
