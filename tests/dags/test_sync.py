"""Every registered provider's daily sync through Airflow (``dag.test()``) on its demo data, SQLite and PostgreSQL."""

from __future__ import annotations

from decimal import Decimal

import pytest

from include.providers import PROVIDERS
from tests.dags.helpers import assert_synced, run_dag


@pytest.mark.parametrize("provider", sorted(PROVIDERS))
def test_demo_invoices_sync_end_to_end(airflow_db, invoice_db, provider_connections, provider):
    expected = PROVIDERS[provider].demo().EXPECTED
    dag_run = run_dag(f"provider_invoice_sync_{provider}")

    assert_synced(invoice_db, dag_run, provider, expected)
    accounts = {invoice_db.get_invoice(provider, i)["account"] for i in expected}
    assert accounts == {PROVIDERS[provider].conn_id}  # no accounts in the settings: the one default connection
    for invoice_id in (i for i, e in expected.items() if e.status == "active"):
        amounts = [line["amount"] for line in invoice_db.lines(provider, invoice_id)]
        assert sum(amounts, Decimal(0)) == invoice_db.get_invoice(provider, invoice_id)["detail_total"]
