"""One real Airflow deployment for the invoices workspace tests, shared by the module that uses it.

Starting Airflow costs about a minute, so the workspace's API tests and its browser test share one
deployment (module scope) on which the scheduled Microsoft sync has run over the demo data: active and
``checksum_error`` invoices, the provider's listing and the Data Docs pages exist before any test.
"""

from __future__ import annotations

import json
import os

import pytest

from tests.e2e.airflow_processes import PG_HOST, PG_PORT, PG_USER, AirflowApi, AirflowDeployment, postgres_reachable

SYNC = "provider_invoice_sync_microsoft"
MANUAL = "provider_invoice_manual_sync"
DEACTIVATE = "provider_invoice_deactivate"


@pytest.fixture(scope="module")
def workspace_airflow(tmp_path_factory, demo_sandbox):
    """``(deployment, admin api, invoice store)`` after one scheduled Microsoft sync of the demo data."""
    from include.sql.migrate import upgrade
    from plugins.hooks.invoice_db import InvoiceDbHook

    backend = "postgres" if postgres_reachable() else "sqlite"
    db_dir = tmp_path_factory.mktemp("workspace-invoice-db")
    with pytest.MonkeyPatch.context() as patch:
        if backend == "postgres":
            conn = {"conn_type": "postgres", "host": PG_HOST, "port": PG_PORT, "login": PG_USER}
            conn["schema"] = f"invoice_ws_{os.getpid()}"
            _create_pg_database(conn["schema"])
        else:
            conn = {"conn_type": "sqlite", "host": str(db_dir / "invoices.db")}
        patch.setenv("AIRFLOW_CONN_INVOICE_DB", json.dumps(conn))
        for name, value in demo_sandbox.env().items():
            patch.setenv(name, value)
        upgrade(InvoiceDbHook().get_url().render_as_string(hide_password=False))
        store = InvoiceDbHook().get_store()
        home = tmp_path_factory.mktemp("workspace-airflow-home")
        try:
            with AirflowDeployment(home, dict(os.environ), use_postgres=backend == "postgres") as airflow:
                api = AirflowApi(airflow)
                api.wait_for_dags({SYNC, MANUAL, DEACTIVATE})
                for dag_id in (MANUAL, DEACTIVATE):
                    api.set_paused(dag_id, False)
                api.set_paused(SYNC, False)
                run = api.wait_for_run(SYNC, api.wait_for_first_run(SYNC)["dag_run_id"])
                api.set_paused(SYNC, True)
                yield airflow, api, store, run
        finally:
            store.engine.dispose()
            if backend == "postgres":
                _drop_pg_database(conn["schema"])


def _create_pg_database(name: str) -> None:
    from tests.e2e.airflow_processes import _admin_pg

    _admin_pg(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    _admin_pg(f'CREATE DATABASE "{name}"')


def _drop_pg_database(name: str) -> None:
    from tests.e2e.airflow_processes import _admin_pg

    _admin_pg(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
