"""``python -m include.sql.migrate``: bring the ``invoice_db`` connection's database to this code's schema.

Alembic revisions live in :mod:`include.sql.migrations` (no ``alembic.ini``: the configuration is built
here). Every schema change comes with a revision; ``tests/sql/test_migrations.py`` fails when
``include/sql/schema.py`` and the migrated database disagree. The whole upgrade runs in one
transaction (SQLite too: DDL is transactional there once pysqlite stops managing transactions), so a
failed upgrade leaves the database as it was, and on PostgreSQL an advisory lock makes a second
``migrate`` started at the same moment wait instead of racing.

Tasks never migrate: :func:`require_current` makes them fail with one sentence naming this command.
"""

from __future__ import annotations

import argparse
import functools
import sys
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, event, inspect, text
from sqlalchemy.engine import Engine, make_url

VERSION_TABLE = "invoice_schema_version"
"""Not Alembic's default ``alembic_version``: the invoice database may share a server database with
Airflow's metadata, whose own Alembic revision lives in that name."""
MIGRATE_COMMAND = "python -m include.sql.migrate"
_MIGRATIONS = Path(__file__).with_name("migrations")
_PG_LOCK_KEY = 7_316_201_611
"""Arbitrary constant: ``pg_advisory_xact_lock`` key serialising concurrent upgrades."""


class SchemaNotCurrent(RuntimeError):
    """The invoice database is not at the revision this code was written for."""


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    config.set_main_option("version_table", VERSION_TABLE)
    return config


@functools.cache
def head_revision() -> str:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    """The database's schema revision (``None``: no version table, or an empty one).

    Read with plain SQL: every task checks it, and Alembic's MigrationContext would log two INFO lines
    into each task log doing the same.
    """
    with engine.connect() as conn:
        if not inspect(conn).has_table(VERSION_TABLE):
            return None
        return conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar()


def require_current(engine: Engine) -> None:
    """Raise :class:`SchemaNotCurrent` (one sentence, naming the command) unless the database is at head."""
    current, head = current_revision(engine), head_revision()
    if current == head:
        return
    where = engine.url.render_as_string(hide_password=True)
    if current is None:
        found = "has no schema revision (new, or created before migrations)"
    elif ScriptDirectory.from_config(alembic_config()).get_revision(current) is None:
        raise SchemaNotCurrent(
            f"The invoice database {where} is at schema revision {current}, which this code does not know: "
            "deploy the code that migrated it."
        )
    else:
        found = f"is at schema revision {current}"
    raise SchemaNotCurrent(f"The invoice database {where} {found} but this code needs {head}: run `{MIGRATE_COMMAND}`.")


def upgrade(url: str, revision: str = "head") -> None:
    """Upgrade the database at ``url`` (password included) to ``revision``, all in one transaction."""
    engine = _migration_engine(url)
    try:
        with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_LOCK_KEY})")
            config = alembic_config()
            config.attributes["connection"] = conn
            command.upgrade(config, revision)
    finally:
        engine.dispose()


def _migration_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(parsed)
    Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(parsed, connect_args={"timeout": 60})

    @event.listens_for(engine, "connect")
    def _sqlite_owns_transactions(dbapi_connection, _record):
        dbapi_connection.isolation_level = None  # pysqlite would commit before every DDL statement

    @event.listens_for(engine, "begin")
    def _begin(conn):
        conn.exec_driver_sql("BEGIN IMMEDIATE")  # take the write lock first: no other writer mid-upgrade

    return engine


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=MIGRATE_COMMAND, description=__doc__.splitlines()[0])
    parser.add_argument("--conn-id", default="invoice_db", help="the Airflow connection of the invoice database")
    parser.add_argument("--revision", default="head", help="target revision (default: head)")
    args = parser.parse_args(argv)
    from plugins.hooks.invoice_db import InvoiceDbHook

    url = InvoiceDbHook(args.conn_id).get_url()
    upgrade(url.render_as_string(hide_password=False), args.revision)
    engine = _migration_engine(url.render_as_string(hide_password=False))
    try:
        print(f"{url.render_as_string(hide_password=True)} is at schema revision {current_revision(engine)}.")
    finally:
        engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
