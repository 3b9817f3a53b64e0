"""A lease row in the store: exactly one holder of a named job across processes.

Every run-loop replica may start the alert evaluator; only the holder of the
``alert-evaluator`` lease evaluates.  A holder renews on every evaluation; a crashed holder's
lease expires after ``ttl_s`` and another replica takes over.  One conditional UPDATE (or
INSERT for the first holder) in one transaction, so it works the same on SQLite and PostgreSQL
without advisory locks.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from pipeline.errors import StoreError
from pipeline.store.engine import describe, store_errors
from pipeline.store.tables import UTCDateTime, metadata

leases_table = sa.Table(
    "leases",
    metadata,
    sa.Column("name", sa.Text, primary_key=True),
    sa.Column("owner", sa.Text, nullable=False),
    sa.Column("expires", UTCDateTime, nullable=False),
)


class Lease:
    """``acquire()`` is True while this process holds the lease ``name``."""

    def __init__(self, engine: Engine, name: str, owner: str, ttl_s: float = 60.0) -> None:
        if ttl_s <= 0:
            msg = f"ttl_s must be > 0, got {ttl_s}"
            raise ValueError(msg)
        self._engine = engine
        self.name = name
        self.owner = owner
        self._ttl = timedelta(seconds=ttl_s)

    def acquire(self, now: datetime | None = None) -> bool:
        """Take or renew the lease; False if another owner holds an unexpired one."""
        now = now or datetime.now(UTC)
        table = leases_table
        expires = now + self._ttl
        try:
            with self._engine.begin() as conn:
                taken = conn.execute(
                    sa.update(table)
                    .where(table.c.name == self.name)
                    .where(sa.or_(table.c.owner == self.owner, table.c.expires < now))
                    .values(owner=self.owner, expires=expires)
                ).rowcount
                if taken:
                    return True
                exists = conn.execute(
                    sa.select(table.c.name).where(table.c.name == self.name)
                ).first()
                if exists:
                    return False
                conn.execute(
                    sa.insert(table).values(name=self.name, owner=self.owner, expires=expires)
                )
                return True
        except IntegrityError:
            return False  # another process inserted the first row at the same moment
        except SQLAlchemyError as exc:
            msg = f"lease {self.name}: {describe(exc)}"
            raise StoreError(msg) from exc

    def release(self) -> None:
        """Give the lease up (on shutdown), so another replica takes over at once."""
        table = leases_table
        with store_errors(f"lease {self.name}"), self._engine.begin() as conn:
            conn.execute(
                sa.delete(table).where(table.c.name == self.name).where(table.c.owner == self.owner)
            )
