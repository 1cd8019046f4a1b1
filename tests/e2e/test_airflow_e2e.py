"""The DAGs under a real Airflow: api-server, scheduler (LocalExecutor) and dag-processor as processes.

Everything goes through the REST API v2 as a user would: trigger with conf (and see bad conf refused
with HTTP 400 before a run exists), unpause a scheduled DAG, read task states, task logs and extra
links; then the invoice database and the mail catcher are checked. One deployment, one test: the
steps build on each other (the manual sync activates an invoice that the scheduled sync then skips).
"""

from __future__ import annotations

import json
import os
from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from include.providers.microsoft.demo import EXPECTED as MICROSOFT_DEMO
from tests.e2e.airflow_processes import postgres_reachable
from tests.e2e.sync_checks import CHECKSUM_ERRORS, SYNC, by_invoice, check_sync_run

MANUAL = "provider_invoice_manual_sync"
NOTIFY = "provider_invoice_daily_notification"
CONTRACT_DAGS = {MANUAL, SYNC, NOTIFY, "provider_invoice_deactivate"}
INVOICE_BACKEND = "postgres" if postgres_reachable() else "sqlite"
"""One backend for the invoice DB (each run of this test starts a whole Airflow): PostgreSQL when reachable."""

BALANCED = next(i for i, e in MICROSOFT_DEMO.items() if e.status == "active" and e.difference == 0)


def _amount_texts(amount: Decimal) -> set[str]:
    """How a difference may be written in a log: as the Decimal prints, and with at least two decimals."""
    two_decimals = amount.quantize(Decimal("0.01")) if amount.as_tuple().exponent > -2 else amount
    return {str(amount), f"{amount:f}", f"{two_decimals:f}"}


@pytest.mark.timeout(600)
@pytest.mark.parametrize("invoice_db", [INVOICE_BACKEND], indirect=True)
def test_dags_under_real_scheduler_and_api_server(airflow_api, invoice_db, mail_catcher):
    api = airflow_api
    api.wait_for_dags(CONTRACT_DAGS)
    assert api.get("/importErrors")["total_entries"] == 0

    # -- manual sync: bad conf is refused before a run exists ------------------------------------
    api.set_paused(MANUAL, False)
    bad = api.trigger(MANUAL, {"provider": "microsoft", "invoice_id": BALANCED, "override_tolerance": -1})
    assert bad.status_code == 400, bad.text
    assert "override_tolerance" in bad.text
    missing_id = api.trigger(MANUAL, {"provider": "microsoft"})
    assert missing_id.status_code == 400, missing_id.text
    assert api.dag_runs(MANUAL) == []

    # -- manual sync of a balanced invoice --------------------------------------------------------
    response = api.trigger(MANUAL, {"provider": "microsoft", "invoice_id": BALANCED})
    assert response.status_code == 200, response.text
    manual_run = api.wait_for_run(MANUAL, response.json()["dag_run_id"])
    manual_states = {ti["task_id"]: ti["state"] for ti in api.task_instances(MANUAL, manual_run["dag_run_id"])}
    assert manual_run["state"] == "success", manual_states
    assert manual_states == dict.fromkeys(("fetch", "checksum_validation", "load", "activate"), "success")
    assert [run["dag_run_id"] for run in api.dag_runs(MANUAL)] == [manual_run["dag_run_id"]]
    invoice = invoice_db.get_invoice("microsoft", BALANCED)
    assert (invoice["status"], invoice["difference"]) == ("active", Decimal(0))
    assert invoice_db.attempts("microsoft", BALANCED)[-1]["dag_id"] == MANUAL

    # -- the scheduled Microsoft sync: unpausing makes the scheduler create today's run -----------
    sync_started = datetime.now(UTC)
    api.set_paused(SYNC, False)
    sync_run = api.wait_for_run(SYNC, api.wait_for_first_run(SYNC)["dag_run_id"])
    api.set_paused(SYNC, True)  # no second run while we look
    run_id = sync_run["dag_run_id"]
    assert sync_run["run_type"] == "scheduled"
    tis = check_sync_run(api, invoice_db, sync_run, active_before=frozenset({BALANCED}))
    checksum = by_invoice(tis, "checksum_validation")

    # -- what an on-call engineer sees on a red checksum task ------------------------------------
    missing_pages: list[str] = []
    for invoice_id in sorted(CHECKSUM_ERRORS):
        ti = checksum[invoice_id]
        log = api.task_log(SYNC, run_id, "checksum_validation", ti["try_number"], ti["map_index"])
        expected = MICROSOFT_DEMO[invoice_id].difference
        assert "Checksum FAILED: Microsoft Partner Center invoice " + invoice_id in log, log[-3000:]
        assert any(text in log for text in _amount_texts(expected)), (expected, log[-3000:])
        links = api.extra_links(SYNC, run_id, "checksum_validation", ti["map_index"])
        assert links.get("GX Data Docs"), links
        assert links["GX Data Docs"].startswith(f"{api.airflow.url}/provider-invoices/data-docs/"), links
        if api.http.get(links["GX Data Docs"], timeout=30).status_code != 200:
            missing_pages.append(links["GX Data Docs"])  # asserted last, so the other checks still run

    # -- the daily status mail goes out through the real SMTP catcher ----------------------------
    api.set_paused(NOTIFY, False)
    notify_run = api.wait_for_run(NOTIFY, api.wait_for_first_run(NOTIFY)["dag_run_id"], timeout=120)
    api.set_paused(NOTIFY, True)
    assert notify_run["state"] == "success"
    assert len(mail_catcher.messages) == 1
    mail = mail_catcher.messages[0]
    assert mail.envelope_to == json.loads(os.environ["AIRFLOW_VAR_INVOICE_NOTIFICATION_RECIPIENTS"])
    assert mail.subject
    # The first mail covers the run's data interval (the last 07:00 UTC until now): the sync is in
    # it unless 07:00 UTC passed while this test ran.
    window_start = notify_run.get("data_interval_start")
    if window_start is None or datetime.fromisoformat(window_start) <= sync_started:
        body = mail.body()
        assert all(invoice_id in body for invoice_id in CHECKSUM_ERRORS), body
    assert Counter(ti["state"] for ti in api.task_instances(NOTIFY, notify_run["dag_run_id"])) == {"success": 1}

    # The link must lead to the page, also after later validations rebuilt the Data Docs site.
    assert missing_pages == [], "the GX Data Docs link of a failed checksum points to no page"
