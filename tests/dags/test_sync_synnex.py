"""TD SYNNEX's own cases of the sync through Airflow (``dag.test()``), on SQLite and PostgreSQL."""

from __future__ import annotations

import json

from include.providers.synnex.demo import (
    EXPECTED as SYNNEX_DEMO,
)
from include.providers.synnex.demo import (
    SYNNEX_DEMO_HEADER_TAX,
    SYNNEX_HEADER_TAX_SETTINGS,
    synnex_demo_invoices,
)
from tests.dags.helpers import assert_synced, run_dag, task_states

DAG_ID = "provider_invoice_sync_synnex"
CREDIT_ID = next(
    str(demo.invoice["id"])
    for demo in synnex_demo_invoices()
    if any(line["chargeType"] == "customerCredit" for line in demo.lines)
)
"""An active demo invoice with customerCredit lines."""
FAST_RETRIES = {"max_retries": 1, "retry_backoff": 0.01, "max_retry_wait": 1}


def test_header_tax_setting_activates_the_tax_invoice(airflow_db, invoice_db, provider_connections, monkeypatch):
    first = run_dag(DAG_ID)
    credits = [line for line in invoice_db.lines("synnex", CREDIT_ID) if line["category"] == "credit"]
    assert credits and all(line["amount"] < 0 for line in credits)  # customerCredit lines load as credits
    taxed = [i for i, e in SYNNEX_DEMO.items() if e.status != SYNNEX_DEMO_HEADER_TAX[i].status]
    assert len(taxed) == 1
    assert invoice_db.get_invoice("synnex", taxed[0])["status"] == "checksum_error"

    monkeypatch.setenv("AIRFLOW_VAR_INVOICE_SYNC_SETTINGS", json.dumps(SYNNEX_HEADER_TAX_SETTINGS))
    second = run_dag(DAG_ID)

    assert_synced(
        invoice_db, second, "synnex", {i: e for i, e in SYNNEX_DEMO_HEADER_TAX.items() if e.status != "active"}
    )
    assert_synced(invoice_db, second, "synnex", {taxed[0]: SYNNEX_DEMO_HEADER_TAX[taxed[0]]})
    tax_attempts = invoice_db.attempts("synnex", taxed[0])
    assert [a["run_id"] for a in tax_attempts] == [first.run_id, second.run_id]
    assert tax_attempts[0]["difference"] == SYNNEX_DEMO[taxed[0]].difference
    assert invoice_db.get_invoice("synnex", taxed[0])["detail_total"] == tax_attempts[-1]["header_total"]


def test_a_malformed_response_fails_only_its_invoice(airflow_db, invoice_db, provider_connections, monkeypatch):
    for name, value in provider_connections.env(FAST_RETRIES).items():
        monkeypatch.setenv(name, value)
    broken = CREDIT_ID
    provider_connections.add_fault("truncate", rf"/invoices/{broken}/lines$", times=FAST_RETRIES["max_retries"] + 1)

    dag_run = run_dag(DAG_ID)

    invoice = invoice_db.get_invoice("synnex", broken)
    assert invoice["status"] == "failed"
    assert invoice_db.lines("synnex", broken) == []
    attempt = invoice_db.attempts("synnex", broken)[-1]
    assert attempt["outcome"] == "failed"
    assert "TD SYNNEX StreamOne Ion sent unusable data for invoice 4100003" in attempt["message"]
    assert "not valid JSON or was cut off" in attempt["message"]
    assert task_states(dag_run, "fetch")[f"synnex {broken}"] == "failed"
    assert_synced(invoice_db, dag_run, "synnex", {i: e for i, e in SYNNEX_DEMO.items() if i != broken})
