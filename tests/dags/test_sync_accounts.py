"""Several accounts per provider through Airflow (``dag.test()``), on SQLite and PostgreSQL.

Two Partner Center accounts are two sandboxes (one per CSP region), each serving its own demo invoices;
``partner_center_default`` is not set at all, so nothing can come from it by accident.
"""

from __future__ import annotations

import json
from contextlib import ExitStack
from decimal import Decimal

import pytest
from sqlalchemy import select

from include.providers import get_provider
from include.providers.microsoft.demo import EXPECTED
from include.sandbox import SandboxServer
from include.sql.schema import provider_invoice_listing
from tests.dags.helpers import run_dag, task_states
from tests.hooks.helpers import FAST_RETRIES

DAG_ID, MANUAL = "provider_invoice_sync_microsoft", "provider_invoice_manual_sync"
EMEA, APAC = "partner_center_emea", "partner_center_apac"
DRIFT = "G0525A0005"
"""Sub-euro rounding drift: active under the default tolerance 1, a checksum error under 0."""
BALANCED = "D0526A0001"
MARKETPLACE = "G0523A0004"
"""1476.03 of marketplace fees without lines: a checksum error under 1, active under 1500."""
APAC_BALANCED = "G0523A0006"
INVOICES = {EMEA: (BALANCED, DRIFT), APAC: (MARKETPLACE, APAC_BALANCED)}
SETTINGS = {
    "microsoft": {
        "accounts": {EMEA: {"usage_mismatch_tolerance": 0}, APAC: {"usage_mismatch_tolerance": 1500}},
    }
}


@pytest.fixture
def regions(demo_data_dir, tmp_path, monkeypatch):
    """account -> a sandbox serving that account's invoices; its connection is set, the default one removed."""
    monkeypatch.delenv("AIRFLOW_CONN_PARTNER_CENTER_DEFAULT", raising=False)
    monkeypatch.setenv("AIRFLOW_VAR_INVOICE_SYNC_SETTINGS", json.dumps(SETTINGS))
    with ExitStack() as stack:
        servers = {}
        for account, invoice_ids in INVOICES.items():
            data = tmp_path / account / "microsoft"
            data.mkdir(parents=True)
            for invoice_id in invoice_ids:
                (data / invoice_id).symlink_to(demo_data_dir / "microsoft" / invoice_id)
            servers[account] = stack.enter_context(SandboxServer(tmp_path / account, export_retry_after=0))
            point(monkeypatch, account, servers[account].url)
        yield servers


def point(monkeypatch, account: str, base_url: str) -> None:
    """Set ``account``'s connection to the Partner Center sandbox at ``base_url``."""
    conn = get_provider("microsoft").sandbox().connection(base_url)
    conn["extra"] = {**conn["extra"], **FAST_RETRIES}
    monkeypatch.setenv(f"AIRFLOW_CONN_{account.upper()}", json.dumps(conn))


def _state(dag_run, task_id: str) -> str:
    [ti] = [ti for ti in dag_run.get_task_instances() if ti.task_id == task_id]
    return ti.state


def _listing(store) -> set[tuple[str, str]]:
    t = provider_invoice_listing
    with store.engine.connect() as conn:
        return set(conn.execute(select(t.c.account, t.c.invoice_id)))


def test_each_account_syncs_its_invoices_with_its_own_tolerance(airflow_db, invoice_db, regions):
    dag_run = run_dag(DAG_ID)

    outcomes = {
        invoice_id: (row["account"], row["status"], row["tolerance_applied"])
        for invoice_id in (BALANCED, DRIFT, MARKETPLACE, APAC_BALANCED)
        for row in [invoice_db.get_invoice("microsoft", invoice_id)]
    }
    assert outcomes == {
        BALANCED: (EMEA, "active", Decimal(0)),
        DRIFT: (EMEA, "checksum_error", Decimal(0)),  # active with one account's default tolerance 1
        MARKETPLACE: (APAC, "active", Decimal(1500)),  # a checksum error under the default tolerance
        APAC_BALANCED: (APAC, "active", Decimal(1500)),
    }
    assert invoice_db.get_invoice("microsoft", DRIFT)["difference"] == EXPECTED[DRIFT].difference
    assert len(invoice_db.lines("microsoft", MARKETPLACE)) == EXPECTED[MARKETPLACE].line_count
    assert {a["account"] for a in invoice_db.attempts("microsoft", MARKETPLACE)} == {APAC}
    assert _listing(invoice_db) == {(account, i) for account, ids in INVOICES.items() for i in ids}
    for account, server in regions.items():  # each invoice was fetched from its own account only
        fetched = {r["path"].rsplit("/", 1)[-1] for r in server.requests if "/v1/invoices/" in r["path"]}
        assert fetched >= set(INVOICES[account]) and not fetched & set(INVOICES[EMEA if account == APAC else APAC])
    assert _state(dag_run, "check_listings") == "success"
    assert task_states(dag_run, "checksum_validation")[f"microsoft {DRIFT}"] == "failed"


def test_a_failing_account_and_a_second_copy_of_one_do_not_hide_the_others(
    airflow_db, invoice_db, regions, monkeypatch, capsys
):
    """APAC's API is down, and a third connection points at the EMEA account again: EMEA's invoices are synced
    from EMEA alone, and check_listings fails with one sentence per problem."""
    copy = "partner_center_emea_copy"
    accounts = {EMEA: {}, APAC: {}, copy: {}}
    monkeypatch.setenv("AIRFLOW_VAR_INVOICE_SYNC_SETTINGS", json.dumps({"microsoft": {"accounts": accounts}}))
    point(monkeypatch, APAC, "http://127.0.0.1:1")  # nothing listens on port 1
    point(monkeypatch, copy, regions[EMEA].url)

    dag_run = run_dag(DAG_ID)

    assert _state(dag_run, "list_invoices") == "success"
    assert _state(dag_run, "check_listings") == "failed"
    assert set(task_states(dag_run, "fetch")) == {f"microsoft {BALANCED}", f"microsoft {DRIFT}"}
    assert {invoice_db.get_invoice("microsoft", i)["account"] for i in INVOICES[EMEA]} == {EMEA}
    assert invoice_db.get_invoice("microsoft", MARKETPLACE) is None
    log = capsys.readouterr().out
    assert f"The listing of Microsoft Partner Center account {APAC} failed: " in log
    assert (
        f"Invoice {DRIFT} of microsoft belongs to account {EMEA}, and account {copy} lists it too; it is left with "
        f"{EMEA}: check that the connections {EMEA} and {copy} are not the same provider account." in log
    )
    assert (EMEA, DRIFT) in _listing(invoice_db)


def test_manual_sync_takes_the_account_and_refuses_one_the_settings_do_not_name(
    airflow_db, invoice_db, regions, capsys
):
    synced = run_dag(MANUAL, {"provider": "microsoft", "invoice_id": MARKETPLACE, "account": APAC})

    assert {ti.state for ti in synced.get_task_instances()} == {"success"}
    invoice = invoice_db.get_invoice("microsoft", MARKETPLACE)
    assert (invoice["account"], invoice["status"], invoice["tolerance_applied"]) == (APAC, "active", Decimal(1500))

    unknown = run_dag(MANUAL, {"provider": "microsoft", "invoice_id": BALANCED, "account": "partner_center_amer"})

    assert task_states(unknown, "fetch") == {"microsoft D0526A0001": "failed"}
    assert (
        "'partner_center_amer' is not an account of Microsoft Partner Center: its accounts are "
        f"{EMEA}, {APAC} (the invoice_sync_settings variable names them)." in capsys.readouterr().out
    )
    assert invoice_db.attempts("microsoft", BALANCED) == []  # nothing fetched or written

    run_dag(MANUAL, {"provider": "microsoft", "invoice_id": BALANCED})  # no account: the first, EMEA
    assert invoice_db.get_invoice("microsoft", BALANCED)["account"] == EMEA
    run_dag(DAG_ID)  # BALANCED is active; the other three are synced from their accounts
    assert invoice_db.get_invoice("microsoft", APAC_BALANCED)["account"] == APAC
