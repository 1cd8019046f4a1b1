"""The invoices workspace through a real API server: JSON, permissions, actions as DAG runs, Data Docs.

One deployment for the module (``workspace_airflow``): the scheduled Microsoft sync has run over the
demo data, so the database holds active and ``checksum_error`` invoices; a deactivation through the
workspace adds an inactive one. The tests run in file order and build on each other; the browser
test (``test_browser_*``) comes last and uses what is left (the credit-note invoice).
"""

from __future__ import annotations

import csv
import http.client
import io
import json
import re
import time
from decimal import Decimal
from urllib.parse import urlparse

import pytest
import requests

from include.checksum.data_docs import REMOTE_LOAD
from include.checksum.usage import CSV_COLUMNS as MISMATCH_COLUMNS
from include.providers.microsoft.demo import EXPECTED as MICROSOFT_DEMO
from tests.e2e.airflow_processes import VIEWER, AirflowApi
from tests.e2e.workspace_deployment import DEACTIVATE, MANUAL, SYNC

pytestmark = pytest.mark.timeout(900)

CREDIT_NOTE = "G0526A0003"  # checksum_error, -1329.7525 EUR explained by a credit note (the browser test's)
MARKETPLACE = "G0523A0004"  # checksum_error, 1476.03 EUR of undeclared marketplace lines
CHECKSUM_ERRORS = {i for i, e in MICROSOFT_DEMO.items() if e.status == "checksum_error"}
BALANCED = "D0526A0001"  # active
DRIFT = "G0525A0005"  # active with a sub-euro drift
PARTIAL_USAGE = next(  # checksum_error: the daily-rated usage of one subscription stops early
    i for i, e in MICROSOFT_DEMO.items() if e.status == "checksum_error" and e.usage_difference
)
WS = "/provider-invoices"


def _session(airflow, token: str | None = None) -> requests.Session:
    http_ = requests.Session()
    http_.trust_env = False
    if token:
        http_.headers["Authorization"] = f"Bearer {token}"
    return http_


@pytest.fixture(scope="module")
def admin(workspace_airflow):
    airflow = workspace_airflow[0]
    return _session(airflow, airflow.token())


def _wait_run(admin, airflow, dag_id: str, run_id: str, timeout: float = 300) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        airflow.check_alive()
        state = admin.get(f"{airflow.url}{WS}/api/runs/{dag_id}/{run_id}", timeout=30).json()
        if state["state"] in ("success", "failed"):
            return state
        time.sleep(2)
    raise AssertionError(f"{dag_id} {run_id} did not finish in {timeout}s\n{airflow.log_tails()}")


def test_anonymous_requests_get_no_data(workspace_airflow):
    airflow = workspace_airflow[0]
    anonymous = _session(airflow)
    for path in (
        "/api/invoices",
        f"/api/invoices/microsoft/{CREDIT_NOTE}",
        "/api/invoices.csv",
        f"/api/invoices/microsoft/{PARTIAL_USAGE}/usage-mismatches.csv",
        "/api/providers/microsoft/available",
        "/data-docs/index.html",
    ):
        response = anonymous.get(f"{airflow.url}{WS}{path}", timeout=30)
        assert response.status_code in (401, 403), (path, response.status_code)
        assert CREDIT_NOTE not in response.text
    sync = anonymous.post(
        f"{airflow.url}{WS}/api/invoices/microsoft/{CREDIT_NOTE}/sync",
        json={"override_tolerance": 1330, "override_reason": "x"},
        timeout=30,
    )
    assert sync.status_code in (401, 403)
    page = anonymous.get(f"{airflow.url}{WS}/", timeout=30, allow_redirects=False)
    assert page.status_code in (302, 307) and "/auth/login" in page.headers["location"]
    forged = anonymous.get(f"{airflow.url}{WS}/api/invoices", headers={"Authorization": "Bearer forged"}, timeout=30)
    assert forged.status_code in (401, 403)


def test_list_and_record_as_stored(workspace_airflow, admin):
    airflow, _, store, _ = workspace_airflow
    listed = admin.get(f"{airflow.url}{WS}/api/invoices", timeout=30).json()
    by_id = {row["invoice_id"]: row for row in listed["invoices"]}
    assert set(by_id) == set(MICROSOFT_DEMO), by_id.keys()
    for invoice_id, expected in MICROSOFT_DEMO.items():
        row = by_id[invoice_id]
        assert row["status"] == expected.status
        assert Decimal(row["difference"]) == expected.difference
        assert row["last_attempt"]["dag_id"] == SYNC and row["last_attempt"]["by"] == "scheduled"
    assert by_id[DRIFT]["difference"] == "-0.1397"  # every stored digit, no float rounding
    updated = [row["updated_at"] for row in listed["invoices"]]
    assert updated == sorted(updated, reverse=True), "newest first"

    errors = admin.get(f"{airflow.url}{WS}/api/invoices", params={"status": "checksum_error"}, timeout=30).json()
    assert {row["invoice_id"] for row in errors["invoices"]} == CHECKSUM_ERRORS >= {CREDIT_NOTE, MARKETPLACE}
    paged = admin.get(f"{airflow.url}{WS}/api/invoices", params={"page_size": 2, "page": 3}, timeout=30).json()
    assert (paged["total"], len(paged["invoices"])) == (len(MICROSOFT_DEMO), min(2, len(MICROSOFT_DEMO) - 4))
    bad = admin.get(f"{airflow.url}{WS}/api/invoices", params={"period": "2026-13"}, timeout=30)
    assert bad.status_code == 400 and bad.json()["detail"] == "period must be a month as YYYY-MM, got '2026-13'."

    record = admin.get(f"{airflow.url}{WS}/api/invoices/microsoft/{CREDIT_NOTE}", timeout=30).json()
    assert record["invoice"]["difference"] == "-1329.7525"
    assert record["hints"][0]["cause"] == "credit_note" and record["next_step"]
    assert sum(Decimal(b["amount"]) for b in record["breakdown"]) == Decimal(record["invoice"]["detail_total"])
    assert record["failed_task_log"].startswith(airflow.url)
    assert record["data_docs"].startswith(f"{airflow.url}{WS}/data-docs/validations/")
    assert record["attempts"][0]["outcome"] == "checksum_error" and record["referenced_lines"] == 0
    assert admin.get(f"{airflow.url}{WS}/api/invoices/microsoft/NOPE", timeout=30).status_code == 404
    assert admin.get(f"{airflow.url}{WS}/api/invoices/aws/{CREDIT_NOTE}", timeout=30).status_code == 404

    csv_text = admin.get(f"{airflow.url}{WS}/api/invoices.csv", timeout=30).text
    assert csv_text.splitlines()[0].startswith("provider,invoice_id,") and "-1329.7525" in csv_text
    breakdown = admin.get(f"{airflow.url}{WS}/api/invoices/microsoft/{CREDIT_NOTE}/breakdown.csv", timeout=30)
    assert breakdown.text.splitlines()[0] == "category,lines,amount,currency_code"

    assert record["invoice"]["line_count"] == MICROSOFT_DEMO[CREDIT_NOTE].line_count  # validated, none loaded
    assert by_id[CREDIT_NOTE]["line_count"] == MICROSOFT_DEMO[CREDIT_NOTE].line_count

    partial = admin.get(f"{airflow.url}{WS}/api/invoices/microsoft/{PARTIAL_USAGE}", timeout=30).json()
    assert partial["usage_mismatch_run"] == partial["diagnosed_by_run"] and record["usage_mismatch_run"] is None
    mismatch = admin.get(f"{airflow.url}{WS}/api/invoices/microsoft/{PARTIAL_USAGE}/usage-mismatches.csv", timeout=30)
    assert mismatch.status_code == 200 and mismatch.headers["content-type"].startswith("text/csv")
    assert mismatch.text.splitlines()[0] == ",".join(MISMATCH_COLUMNS)
    rows = list(csv.DictReader(io.StringIO(mismatch.text)))
    assert rows and {row["run_id"] for row in rows} == {partial["usage_mismatch_run"]}
    assert sum(Decimal(row["difference"]) for row in rows) == MICROSOFT_DEMO[PARTIAL_USAGE].usage_difference
    differences = [abs(Decimal(row["difference"])) for row in rows]
    assert differences == sorted(differences, reverse=True), "largest difference first"
    none = admin.get(f"{airflow.url}{WS}/api/invoices/microsoft/{CREDIT_NOTE}/usage-mismatches.csv", timeout=30)
    assert none.status_code == 404 and none.json()["detail"] == (
        f"The last checksum of invoice {CREDIT_NOTE} did not fail on Azure usage."
    )

    available = admin.get(f"{airflow.url}{WS}/api/providers/microsoft/available", timeout=30).json()["invoices"]
    assert {row["invoice_id"]: row["status"] for row in available} == {
        invoice_id: expected.status for invoice_id, expected in MICROSOFT_DEMO.items()
    }


def test_failed_checksum_log_leads_with_the_report(workspace_airflow):
    airflow, api, _, run = workspace_airflow
    tis = api.task_instances(SYNC, run["dag_run_id"])
    fetch_of = {ti["map_index"]: ti["rendered_map_index"].split()[-1] for ti in tis if ti["task_id"] == "fetch"}
    ti = next(t for t in tis if t["task_id"] == "checksum_validation" and fetch_of[t["map_index"]] == CREDIT_NOTE)
    log = api.task_log(SYNC, run["dag_run_id"], "checksum_validation", ti["try_number"], ti["map_index"])
    events = [json.loads(line).get("event", "") if line.startswith("{") else line for line in log.splitlines()]
    report_at = next(i for i, event in enumerate(events) if event.startswith("Checksum FAILED"))
    assert events[report_at].count("Microsoft Partner Center") == 1, events[report_at]
    before = "\n".join(str(e) for e in events[:report_at])
    assert "great_expectations" not in log and "Validation result not found" not in log
    assert "Data Docs: http" in events[report_at], events[report_at]
    assert "Traceback" not in before
    # a recorded outcome: the runner's failure line carries our sentence, no stack (error_detail) after the report
    after = [json.loads(line) if line.startswith("{") else {"event": line} for line in log.splitlines()][report_at:]
    assert not any("error_detail" in record for record in after), log[-3000:]
    assert "Task failed with exception" not in log
    assert any(str(record.get("event")).startswith("Task failed: Checksum error on") for record in after)
    links = api.extra_links(SYNC, run["dag_run_id"], "checksum_validation", ti["map_index"])
    assert links["GX Data Docs"].startswith(f"{airflow.url}{WS}/data-docs/"), links


def test_a_viewer_reads_but_cannot_start_a_sync(workspace_airflow):
    airflow = workspace_airflow[0]
    viewer = _session(airflow, airflow.token(VIEWER))
    assert viewer.get(f"{airflow.url}{WS}/api/invoices", timeout=30).status_code == 200
    response = viewer.post(
        f"{airflow.url}{WS}/api/invoices/microsoft/{MARKETPLACE}/sync",
        json={"override_tolerance": 1477, "override_reason": "marketplace fees"},
        timeout=30,
    )
    assert response.status_code == 403, response.text
    assert AirflowApi(airflow).dag_runs(MANUAL) == []


def test_cookie_only_actions_must_come_from_the_workspace(workspace_airflow):
    airflow = workspace_airflow[0]
    browser = _session(airflow)
    browser.cookies.set("_token", airflow.token())
    url = f"{airflow.url}{WS}/api/invoices/microsoft/{MARKETPLACE}/sync"
    body = {"override_tolerance": 1477, "override_reason": "marketplace fees"}
    assert browser.get(f"{airflow.url}{WS}/api/invoices", timeout=30).status_code == 200  # reading is fine
    for headers in ({}, {"Origin": "https://evil.example"}, {"Referer": "https://evil.example/page"}):
        response = browser.post(url, json=body, headers=headers, timeout=30)
        assert response.status_code == 403, (headers, response.text)
    assert AirflowApi(airflow).dag_runs(MANUAL) == []


def test_bad_action_input_is_one_sentence(workspace_airflow, admin):
    airflow = workspace_airflow[0]
    url = f"{airflow.url}{WS}/api/invoices/microsoft/{MARKETPLACE}"
    cases = [
        ("sync", {"override_tolerance": 10, "override_reason": "  "}, "override_reason is required"),
        ("sync", {"override_tolerance": -1, "override_reason": "x"}, "greater than 0"),
        ("sync", {"override_tolerance": "abc", "override_reason": "x"}, "must be a number"),
        ("deactivate", {"reason": ""}, "reason is required"),
    ]
    for action, body, sentence in cases:
        response = admin.post(f"{url}/{action}", json=body, timeout=30)
        assert response.status_code == 400 and sentence in response.json()["detail"], (body, response.text)
    assert AirflowApi(airflow).dag_runs(MANUAL) == []


def test_sync_with_override_runs_the_dag_as_the_user(workspace_airflow, admin):
    airflow, api, store, _ = workspace_airflow
    response = admin.post(
        f"{airflow.url}{WS}/api/invoices/microsoft/{MARKETPLACE}/sync",
        json={"override_tolerance": 1476.5, "override_reason": "marketplace fees billed without lines"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    run_id = response.json()["dag_run_id"]
    dag_run = api.get(f"/dags/{MANUAL}/dagRuns/{run_id}")
    assert dag_run["triggering_user_name"] == "admin"
    assert "admin" in dag_run["note"] and "marketplace fees billed without lines" in dag_run["note"]
    assert dag_run["conf"]["override_tolerance"] == 1476.5
    assert _wait_run(admin, airflow, MANUAL, run_id)["state"] == "success"
    invoice = store.get_invoice("microsoft", MARKETPLACE)
    assert (invoice["status"], invoice["tolerance_applied"]) == ("active", Decimal(1477))
    attempt = store.attempts("microsoft", MARKETPLACE)[-1]
    assert (attempt["run_id"], attempt["triggered_by"], attempt["override_reason"]) == (
        run_id,
        "admin",
        "marketplace fees billed without lines",
    )
    assert store.notes("microsoft", MARKETPLACE)[-1]["author"] == "admin"


def test_deactivate_and_the_dags_refusals_reach_the_page(workspace_airflow, admin):
    airflow, _, store, _ = workspace_airflow
    url = f"{airflow.url}{WS}/api/invoices/microsoft"
    response = admin.post(f"{url}/{BALANCED}/deactivate", json={"reason": "re-download for a fix"}, timeout=30)
    assert response.status_code == 200, response.text
    assert _wait_run(admin, airflow, DEACTIVATE, response.json()["dag_run_id"])["state"] == "success"
    assert store.get_invoice("microsoft", BALANCED)["status"] == "inactive"
    assert store.notes("microsoft", BALANCED)[-1]["author"] == "admin"
    inactive = admin.get(f"{airflow.url}{WS}/api/invoices", params={"status": "inactive"}, timeout=30).json()
    assert [row["invoice_id"] for row in inactive["invoices"]] == [BALANCED]

    with store.engine.begin() as conn:  # downstream billing invoiced one line of the drift invoice
        conn.exec_driver_sql(
            "UPDATE provider_invoice_line SET customer_invoice_ref = 'C-1' "
            f"WHERE invoice_id = '{DRIFT}' AND line_no = 1"
        )
    refused = admin.post(f"{url}/{DRIFT}/deactivate", json={"reason": "try"}, timeout=30).json()
    outcome = _wait_run(admin, airflow, DEACTIVATE, refused["dag_run_id"])
    assert outcome["state"] == "failed"
    assert "cannot be deactivated" in outcome["message"] and "customer invoice C-1" in outcome["message"]
    active = admin.post(f"{url}/{DRIFT}/sync", json={}, timeout=30).json()
    outcome = _wait_run(admin, airflow, MANUAL, active["dag_run_id"])
    assert outcome["state"] == "failed" and "is active" in outcome["message"], outcome
    assert store.get_invoice("microsoft", DRIFT)["status"] == "active"


def test_data_docs_are_served_inside_their_folder_only(workspace_airflow, admin):
    airflow = workspace_airflow[0]
    record = admin.get(f"{airflow.url}{WS}/api/invoices/microsoft/{CREDIT_NOTE}", timeout=30).json()
    page = admin.get(record["data_docs"], timeout=30)
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "-1329.7525 EUR" in page.text  # the amounts in currency units, next to GX's micros
    assert REMOTE_LOAD.search(page.text) is None, REMOTE_LOAD.search(page.text)  # nothing from a CDN
    assert "script-src 'none'" in page.headers["content-security-policy"]  # provider data cannot run as script
    host = urlparse(airflow.url)
    for path in ("../../etc/passwd", "%2e%2e/%2e%2e/etc/passwd", "..%2f..%2fetc%2fpasswd", "/etc/passwd"):
        conn = http.client.HTTPConnection(host.hostname, host.port, timeout=30)
        conn.request("GET", f"{WS}/data-docs/{path}", headers={"Authorization": admin.headers["Authorization"]})
        answer = conn.getresponse()
        body = answer.read().decode(errors="replace")
        conn.close()
        assert answer.status == 404 and "root:" not in body, (path, answer.status)


def test_browser_finds_understands_and_syncs_the_failing_invoice(workspace_airflow):
    """Log in, open the workspace, filter to checksum errors, open the credit-note invoice, read its
    difference and top cause, sync it with an override and a reason, see the run; open its Data Docs."""
    from playwright.sync_api import expect, sync_playwright

    from tests.e2e.browser import CHROMIUM_ARGS, OUTPUT, ensure_chromium, only_local_requests

    airflow, _, store, _ = workspace_airflow
    chromium = ensure_chromium()
    OUTPUT.mkdir(parents=True, exist_ok=True)
    shots = []

    def shot(page, name):
        path = OUTPUT / f"{len(shots) + 1:02d}-{name}.png"
        page.screenshot(path=str(path), full_page=True)
        shots.append(path)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS, headless=True)
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 900})
            page = context.new_page()
            blocked = only_local_requests(page, airflow.url)

            page.goto(f"{airflow.url}{WS}/")  # anonymous: Airflow's login page first
            page.locator("input[name=username]").fill("admin")
            page.locator("input[name=password]").fill(airflow.password)
            shot(page, "login")
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_url(f"{airflow.url}{WS}/**")
            expect(page.locator("#invoices tbody tr")).to_have_count(len(MICROSOFT_DEMO))
            shot(page, "workspace")

            page.get_by_label("Status").select_option("checksum_error")
            rows = page.locator("#invoices tbody tr")
            # the marketplace invoice was synced with an override above
            expect(rows).to_have_count(len(CHECKSUM_ERRORS - {MARKETPLACE}))
            expect(rows.filter(has_text=CREDIT_NOTE)).to_have_count(1)
            shot(page, "checksum-errors")

            page.get_by_role("link", name=CREDIT_NOTE).click()
            expect(page.locator("#difference")).to_contain_text("-1329.7525 EUR")
            expect(page.locator("#verdict")).to_contain_text("most likely credit_note (exact match)")
            expect(page.locator("svg.chart")).to_be_visible()
            expect(page.locator("#data-docs-link")).to_have_attribute("href", re.compile(r"/data-docs/validations/"))
            expect(page.locator("main")).not_to_contain_text("null")
            shot(page, "invoice")

            form = page.locator("#sync-form")
            form.locator("input[name=override_tolerance]").fill("1330")
            form.locator("textarea[name=override_reason]").fill("Credit note G0526A0903 amends this invoice")
            form.get_by_role("button").click()
            status = page.locator("#run-status")
            expect(status).to_contain_text("Started run")
            run_id = status.get_by_role("link").inner_text()
            shot(page, "sync-started")
            expect(status).to_contain_text("success", timeout=240_000)
            expect(page.locator("h2 .status")).to_have_text("active")  # the record reloaded by itself
            expect(page.locator("#attempts tbody tr").first).to_contain_text("1330.00: Credit note G0526A0903")
            shot(page, "sync-finished")

            docs_href = page.locator("#data-docs-link").get_attribute("href")
            with context.expect_page() as opened:
                page.locator("#data-docs-link").click()
            docs = opened.value
            only_local_requests(docs, airflow.url)
            docs.wait_for_load_state()
            assert docs.url == docs_href
            expect(docs.locator(".invoice-amounts")).to_contain_text("passed")
            expect(docs.locator(".invoice-amounts")).to_contain_text("-1329.7525 EUR")
            expect(docs.locator(".invoice-amounts")).to_contain_text("1330 EUR")
            expect(docs.locator("body")).to_contain_text("sum must be greater than or equal to")
            shot(docs, "data-docs")

            page.goto(f"{airflow.url}{WS}/#/available?provider=microsoft")
            expect(page.locator("#available tbody tr")).to_have_count(len(MICROSOFT_DEMO))
            expect(page.locator("#available")).to_contain_text("inactive")  # deactivated above, waits for a sync
            shot(page, "available")

            page.goto(f"{airflow.url}{WS}/#/invoice/microsoft/{PARTIAL_USAGE}")
            expect(page.locator(".facts")).to_contain_text(str(MICROSOFT_DEMO[PARTIAL_USAGE].line_count))
            # a usage-only error: the headline names the usage difference, not the header's zero difference
            usage_difference = MICROSOFT_DEMO[PARTIAL_USAGE].usage_difference
            expect(page.locator("#verdict")).to_contain_text(
                f"Azure usage difference (reconciliation − daily-rated) {usage_difference} EUR"
            )
            expect(page.locator("#verdict")).to_contain_text("most likely usage_mismatch")
            with page.expect_download() as download:
                page.locator("#usage-mismatches-link").click()
            mismatches = download.value.path().read_text()
            assert mismatches.splitlines()[0] == ",".join(MISMATCH_COLUMNS) and len(mismatches.splitlines()) > 1
            shot(page, "usage-mismatches")

            page.goto(f"{airflow.url}/plugin/provider-invoices")  # the workspace in Airflow's own navigation
            frame = page.frame_locator("iframe").first
            expect(frame.locator("#invoices tbody tr").first).to_be_visible(timeout=30_000)
            frame.get_by_role("link", name=CREDIT_NOTE).click()
            expect(frame.locator("#difference")).to_contain_text("-1329.7525 EUR")
            shot(page, "airflow-navigation")
        finally:
            browser.close()
    print(f"\nBrowser screenshots: {OUTPUT}")
    assert blocked == [], blocked
    attempt = store.attempts("microsoft", CREDIT_NOTE)[-1]
    assert (attempt["run_id"], attempt["triggered_by"]) == (run_id, "admin")
    assert store.get_invoice("microsoft", CREDIT_NOTE)["status"] == "active"
    assert all(path.stat().st_size > 0 for path in shots)
