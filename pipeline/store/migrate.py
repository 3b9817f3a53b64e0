"""Create or migrate every table of the run loop's store at once: ``attnwatch migrate``.

The run loop creates what it needs on start anyway; a deployment runs this first (a
Kubernetes Job, a compose one-shot) so that several replicas starting together do not race
to create tables, and so a schema problem stops the rollout before any replica starts.
Creation is idempotent and the versioned migration holds a lock (an advisory lock on
PostgreSQL), so running it twice, or beside a running replica, is harmless.  The dashboard's
own tables (corrections, operational alerts) are created by the dashboard.
"""

from __future__ import annotations

import sqlalchemy as sa

from pipeline.store.alerts import AlertTable
from pipeline.store.attempts import AttemptLog
from pipeline.store.engine import create_tables, store_errors
from pipeline.store.lease import leases_table
from pipeline.store.outbox import Outbox
from pipeline.store.tables import STORE_SCHEMA_VERSION
from pipeline.store.writes import open_store


def migrate(url: str) -> tuple[int, list[str]]:
    """Bring the store at ``url`` to this version's schema; (schema version, table names)."""
    with open_store(url) as store:
        engine = store.engine
        AttemptLog(engine)
        AlertTable(engine)
        Outbox(engine)
        with store_errors("lease table"):
            create_tables(engine, leases_table.metadata)
        with store_errors("table list"):
            names = sorted(sa.inspect(engine).get_table_names())
    return STORE_SCHEMA_VERSION, names
