"""One SQLAlchemy engine per invoice-database URL and process, on a database whose schema is current.

Free of Airflow imports: :class:`plugins.hooks.invoice_db.InvoiceDbHook` turns the connection into a
URL, and the staging worker processes of :mod:`include.staging` open the same database from that URL.
"""

from __future__ import annotations

import functools
from pathlib import Path

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine, make_url

from include.sql.migrate import require_current


@functools.cache
def engine_for(url: str) -> Engine:
    """The engine of ``url`` (password included); fails naming the migrate command if the schema is behind.

    Tasks never create or alter tables: ``python -m include.sql.migrate`` does, once per deployment.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed, connect_args={"timeout": 60})
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
    else:
        engine = create_engine(parsed, pool_pre_ping=True)
    try:
        require_current(engine)
    except BaseException:
        engine.dispose()
        raise
    return engine


IMMEDIATE = "invoice_immediate"
"""Execution option: on SQLite, begin the transaction with ``BEGIN IMMEDIATE`` (take the write lock first)."""


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    """WAL lets parallel mapped tasks read while one writes; the busy timeout makes writers queue.

    The driver's own transaction handling is switched off (``isolation_level = None``) so that
    :func:`_sqlite_begin` says how each transaction begins, as SQLAlchemy's pysqlite notes recommend.
    """
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=60000")
    cursor.close()


def _sqlite_begin(conn) -> None:
    """``BEGIN IMMEDIATE`` for a transaction that asked for it, so that it waits for the write lock up front
    instead of failing with "database is locked" when it turns from reading to writing; ``BEGIN`` otherwise."""
    conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get(IMMEDIATE) else "BEGIN")
