"""The one store schema: every table of the analyst store in one ``MetaData``.

Importing this module imports every module that declares a table on
:data:`pipeline.store.tables.metadata` (the run loop's, the alerting's and the
dashboard's), so ``metadata`` here is complete: what Alembic's revisions must produce,
checked by ``tests/unit/pipeline/store/test_migrate.py``.  The opt-in raw store is a
separate database with its own tables (:mod:`pipeline.store.raw`).
"""

from __future__ import annotations

from pipeline.store import alert_state, alerts, attempts, dashboard_tables, lease, outbox
from pipeline.store.tables import metadata

#: Modules whose tables are in ``metadata`` (imported for that side effect).
TABLE_MODULES = (alert_state, alerts, attempts, dashboard_tables, lease, outbox)

__all__ = ["TABLE_MODULES", "metadata"]
