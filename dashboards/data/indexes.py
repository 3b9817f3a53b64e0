"""Indexes on ``events`` that only the dashboard's queries need.

They are part of the one store schema (:mod:`pipeline.store.dashboard_tables`, which says
what each serves) and created by ``attnwatch migrate`` like every other table and index:
the dashboard runs no DDL, so it can start on a read-only store user.
"""

from __future__ import annotations

import sqlalchemy as sa

from pipeline.store.dashboard_tables import DASHBOARD_INDEXES
from pipeline.store.tables import events_table

#: The dashboard's indexes, as declared on the store's ``events`` table.
INDEXES: tuple[sa.Index, ...] = tuple(
    i for i in events_table.indexes if i.name in DASHBOARD_INDEXES
)
