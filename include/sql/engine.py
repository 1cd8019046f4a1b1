"""One SQLAlchemy engine per invoice-database URL and process, with the schema in place.

Free of Airflow imports: :class:`plugins.hooks.invoice_db.InvoiceDbHook` turns the connection into a
URL, and the staging worker processes of :mod:`include.staging` open the same database from that URL.
"""

from __future__ import annotations

import functools
from pathlib import Path

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine, make_url

from include.sql.schema import create_schema


@functools.cache
def engine_for(url: str) -> Engine:
    """The engine of ``url`` (password included), the schema created (idempotently) on first use."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed, connect_args={"timeout": 60})
        event.listen(engine, "connect", _sqlite_pragmas)
    else:
        engine = create_engine(parsed, pool_pre_ping=True)
    create_schema(engine)
    return engine


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    """WAL lets parallel mapped tasks read while one writes; the busy timeout makes writers queue."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=60000")
    cursor.close()
