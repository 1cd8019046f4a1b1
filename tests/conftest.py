"""Test environment: a throw-away Airflow home, and the invoice database on SQLite and PostgreSQL.

The environment is set before anything imports Airflow, because Airflow reads its configuration
once, at import. PostgreSQL tests run whenever 127.0.0.1:5432 answers; with ``CI=true`` an
unreachable PostgreSQL fails them instead of skipping them.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import uuid
from contextlib import ExitStack
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_HOME = Path(tempfile.mkdtemp(prefix="invoice-sync-airflow-"))
os.environ.update(
    {
        "AIRFLOW_HOME": str(_HOME),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "INVOICE_DATA_DOCS_DIR": str(_HOME / "data_docs"),
        "GX_ANALYTICS_ENABLED": "False",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
)

PG_HOST = os.environ.get("INVOICE_TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("INVOICE_TEST_PG_PORT", "5432"))
PG_USER = os.environ.get("INVOICE_TEST_PG_USER", "postgres")
PG_DATABASE = f"invoice_sync_test_{os.getpid()}"
"""One database per test session, so concurrent sessions never drop each other's tables."""


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """An initialised Airflow metadata database (``dag.test()`` needs one)."""
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        check=True,
        capture_output=True,
        env=os.environ.copy(),
    )
    return _HOME


def _postgres_reachable() -> str | None:
    import psycopg

    try:
        with psycopg.connect(
            host=PG_HOST, port=PG_PORT, user=PG_USER, dbname="postgres", connect_timeout=3, autocommit=True
        ) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (PG_DATABASE,)).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{PG_DATABASE}"')
        return None
    except psycopg.OperationalError as err:
        return str(err).strip()


def _drop_test_database() -> None:
    import psycopg

    with psycopg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname="postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{PG_DATABASE}" WITH (FORCE)')


@pytest.fixture(scope="session")
def postgres_available():
    problem = _postgres_reachable()
    if problem is None:
        yield
        _drop_test_database()  # WITH (FORCE) also closes the connections pooled by cached engines
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"PostgreSQL at {PG_HOST}:{PG_PORT} is required on CI but unreachable: {problem}")
    pytest.skip(f"PostgreSQL at {PG_HOST}:{PG_PORT} is unreachable: {problem}")


def _connection_json(backend: str, tmp_path: Path) -> dict:
    if backend == "sqlite":
        return {"conn_type": "sqlite", "host": str(tmp_path / f"invoices-{uuid.uuid4().hex[:8]}.db")}
    return {
        "conn_type": "postgres",
        "host": PG_HOST,
        "port": PG_PORT,
        "login": PG_USER,
        "schema": PG_DATABASE,
    }


def reset_database(url: str) -> None:
    """Drop every table of the invoice database at ``url`` (stages and schema revision included)."""
    from sqlalchemy import MetaData, create_engine

    from include.sql.stage import drop_stage_table, open_stages

    engine = create_engine(url)
    try:
        with engine.begin() as conn:  # a stage first, with the checksum view that may depend on it
            for name in open_stages(engine):
                drop_stage_table(conn, name)
            if conn.dialect.name == "postgresql":  # with their partitions, which drop_all would drop once more
                conn.exec_driver_sql("DROP TABLE IF EXISTS provider_invoice_line, provider_invoice_usage_line")
        everything = MetaData()
        everything.reflect(engine)
        everything.drop_all(engine)
    finally:
        engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def invoice_db(request, tmp_path, monkeypatch):
    """The ``invoice_db`` connection on each backend, migrated to the current schema; yields the InvoiceStore."""
    import json

    if request.param == "postgres":
        request.getfixturevalue("postgres_available")
    monkeypatch.setenv("AIRFLOW_CONN_INVOICE_DB", json.dumps(_connection_json(request.param, tmp_path)))
    from include.sql.migrate import upgrade
    from include.sql.stage import open_stages
    from plugins.hooks.invoice_db import InvoiceDbHook

    url = InvoiceDbHook().get_url().render_as_string(hide_password=False)
    reset_database(url)
    upgrade(url)
    store = InvoiceDbHook().get_store()
    yield store
    left = open_stages(store.engine)
    store.engine.dispose()
    assert left == [], f"the test left stage tables behind: {left}"


@pytest.fixture(scope="session")
def demo_data_dir(tmp_path_factory) -> Path:
    from include.sandbox.demo_data import write_demo_data

    root = tmp_path_factory.mktemp("demo-data")
    write_demo_data(root)
    return root


@pytest.fixture(scope="session")
def demo_sandbox(demo_data_dir):
    """The provider sandbox on the bundled demo data, for the whole session."""
    from include.sandbox import SandboxServer

    with SandboxServer(demo_data_dir, export_retry_after=0) as server:
        yield server


@pytest.fixture
def provider_connections(demo_sandbox, monkeypatch):
    """Every provider connection pointed at the sandbox (as ``AIRFLOW_CONN_*`` variables)."""
    for name, value in demo_sandbox.env().items():
        monkeypatch.setenv(name, value)
    demo_sandbox.clear_faults()
    demo_sandbox.clear_requests()  # each test reads only its own requests from the log
    return demo_sandbox


@pytest.fixture
def serve(monkeypatch):
    """``serve(data_dir, **options)`` starts a sandbox and points the provider connections at it."""
    from include.sandbox import SandboxServer
    from tests.hooks.helpers import FAST_RETRIES

    with ExitStack() as stack:

        def start(data_dir, **options) -> SandboxServer:
            server = stack.enter_context(SandboxServer(data_dir, **{"export_retry_after": 0, **options}))
            for name, value in server.env(FAST_RETRIES).items():
                monkeypatch.setenv(name, value)
            return server

        yield start


def pytest_sessionfinish(session, exitstatus):
    """The throw-away Airflow home goes with the session."""
    import shutil

    shutil.rmtree(_HOME, ignore_errors=True)
