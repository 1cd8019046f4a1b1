"""Hook for the invoice database (``invoice_db``): the one place a connection becomes a SQLAlchemy URL."""

from __future__ import annotations

import os
from pathlib import Path

from airflow.sdk import BaseHook
from sqlalchemy import URL
from sqlalchemy.engine import Engine, make_url

from include.sql.engine import engine_for
from include.sql.store import InvoiceStore


def default_sqlite_path() -> Path:
    """``invoices.db`` in the Airflow home: what a fresh machine uses without an ``invoice_db`` connection."""
    home = os.environ.get("AIRFLOW_HOME") or str(Path.home() / "airflow")
    return Path(home) / "invoices.db"


class InvoiceDbHook(BaseHook):
    conn_name_attr = "invoice_db_conn_id"
    default_conn_name = "invoice_db"
    hook_name = "Invoice database"

    def __init__(self, invoice_db_conn_id: str = default_conn_name):
        super().__init__()
        self.invoice_db_conn_id = invoice_db_conn_id

    def get_url(self) -> URL:
        """``sqlite`` (path in host or schema) or ``postgres``; a missing connection means the default SQLite file."""
        from airflow.exceptions import AirflowNotFoundException

        try:
            conn = self.get_connection(self.invoice_db_conn_id)
        except AirflowNotFoundException:
            return make_url(f"sqlite:///{default_sqlite_path()}")
        if conn.conn_type == "sqlite":
            path = conn.host or conn.schema
            if not path:
                raise ValueError(f"Connection {self.invoice_db_conn_id} of type sqlite names no database file.")
            return make_url(f"sqlite:///{path}")
        if conn.conn_type in ("postgres", "postgresql"):
            return URL.create(
                "postgresql+psycopg",
                username=conn.login or None,
                password=conn.password or None,
                host=conn.host or "127.0.0.1",
                port=conn.port or 5432,
                database=conn.schema or "postgres",
            )
        raise ValueError(f"Connection {self.invoice_db_conn_id} has type {conn.conn_type!r}; use sqlite or postgres.")

    def get_engine(self) -> Engine:
        return engine_for(str(self.get_url().render_as_string(hide_password=False)))

    def get_store(self) -> InvoiceStore:
        return InvoiceStore(self.get_engine())
