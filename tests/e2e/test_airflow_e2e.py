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
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

from include.providers.microsoft.demo import MICROSOFT_DEMO
from tests.e2e.airflow_processes import postgres_reachable

MANUAL = "provider_invoice_manual_sync"
SYNC = "provider_invoice_sync_microsoft"
NOTIFY = "provider_invoice_daily_notification"
CONTRACT_DAGS = {MANUAL, SYNC, NOTIFY, "provider_invoice_deactivate"}
INVOICE_BACKEND = "postgres" if postgres_reachable() else "sqlite"
"""One backend for the invoice DB (each run of this test starts a whole Airflow): PostgreSQL when reachable."""

BALANCED = next(i for i, e in MICROSOFT_DEMO.items() if e.status == "active" and e.difference == 0)
CHECKSUM_ERRORS = {i for i, e in MICROSOFT_DEMO.items() if e.status == "checksum_error"}


def _amount_texts(amount: Decimal) -> set[str]:
    """How a difference may be written in a log: as the Decimal prints, and with at least two decimals."""
    two_decimals = amount.quantize(Decimal("0.01")) if amount.as_tuple().exponent > -2 else amount
    return {str(amount), f"{amount:f}", f"{two_decimals:f}"}


def _by_invoice(task_instances: list[dict], task_id: str) -> dict[str, dict]:
    """``invoice id -> task instance`` of one task of the mapped group.

    The group is mapped once per invoice, so a map index is the same invoice in every task; the
    invoice ids come from ``fetch`` (rendered map index ``"microsoft <id>"``), which runs for every
    invoice. A task that never ran (upstream_failed) has no rendered map index of its own.
    """
    invoice_of = {
        ti["map_index"]: ti["rendered_map_index"].split()[-1] for ti in task_instances if ti["task_id"] == "fetch"
    }
    return {invoice_of[ti["map_index"]]: ti for ti in task_instances if ti["task_id"] == task_id}


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
    tis = api.task_instances(SYNC, run_id)
    checksum = _by_invoice(tis, "checksum_validation")
    states = {invoice_id: ti["state"] for invoice_id, ti in checksum.items()}
    assert sync_run["state"] == "failed", states  # red because two demo invoices do not add up
    assert set(states) == set(MICROSOFT_DEMO) - {BALANCED}, "an active invoice is not downloaded again"
    assert {i for i, state in states.items() if state == "failed"} == CHECKSUM_ERRORS, states
    assert {i for i, state in states.items() if state == "success"} == set(states) - CHECKSUM_ERRORS, states
    activate = {i: ti["state"] for i, ti in _by_invoice(tis, "activate").items()}
    assert activate == {i: "upstream_failed" if i in CHECKSUM_ERRORS else "success" for i in states}

    # -- what an on-call engineer sees on a red checksum task ------------------------------------
    missing_pages: list[str] = []
    for invoice_id in sorted(CHECKSUM_ERRORS):
        ti = checksum[invoice_id]
        log = api.task_log(SYNC, run_id, "checksum_validation", ti["try_number"], ti["map_index"])
        expected = MICROSOFT_DEMO[invoice_id].difference
        assert "Checksum failed" in log and invoice_id in log, log[-3000:]
        assert any(text in log for text in _amount_texts(expected)), (expected, log[-3000:])
        links = api.extra_links(SYNC, run_id, "checksum_validation", ti["map_index"])
        assert links.get("GX Data Docs"), links
        page = urlparse(links["GX Data Docs"])
        if page.scheme in ("", "file") and not Path(unquote(page.path)).is_file():
            missing_pages.append(links["GX Data Docs"])  # asserted last, so the other checks still run

    # -- the invoice database --------------------------------------------------------------------
    workers_from = json.loads(os.environ["AIRFLOW_VAR_INVOICE_SYNC_SETTINGS"])["microsoft"]["stage_parallel_from_lines"]
    fetch = _by_invoice(tis, "fetch")
    workers_checked = False
    for invoice_id, expected in MICROSOFT_DEMO.items():
        invoice = invoice_db.get_invoice("microsoft", invoice_id)
        assert (invoice["status"], invoice["difference"]) == (expected.status, expected.difference), invoice_id
        attempt = invoice_db.attempts("microsoft", invoice_id)[-1]
        if invoice_id != BALANCED:
            assert (attempt["dag_id"], attempt["run_id"]) == (SYNC, run_id)
        assert attempt["outcome"] == ("activated" if expected.status == "active" else "checksum_error")
        loaded = invoice_db.lines("microsoft", invoice_id)
        assert len(loaded) == (expected.line_count if expected.status == "active" else 0), invoice_id
        if expected.status == "active" and expected.line_count >= workers_from and invoice_id != BALANCED:
            ti = fetch[invoice_id]  # a large export: parsed and staged by worker processes of the task
            log = api.task_log(SYNC, run_id, "fetch", ti["try_number"], ti["map_index"])
            assert f"worker processes parse and stage invoice {invoice_id}" in log, log[-3000:]
            assert [line["line_no"] for line in loaded] == list(range(1, expected.line_count + 1))
            workers_checked = True
    assert workers_checked, "no demo invoice went through the staging workers"

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
