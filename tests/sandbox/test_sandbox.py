"""The provider sandbox: CLI contract, auth, exact numbers, paging shapes, v2 blobs, faults, demo data."""

from __future__ import annotations

import gzip
import json
import os
import shlex
import signal
import subprocess
import sys
from decimal import Decimal

import pytest
import requests

from include.providers import PROVIDERS
from include.providers.microsoft import sandbox as sandbox_microsoft
from include.providers.microsoft.demo import EXPECTED as MICROSOFT_DEMO
from include.sandbox import SandboxServer
from include.sandbox.demo_data import write_demo_data
from include.sandbox.server import loads
from tests.hooks.helpers import refresh_grant

PC = "/partnercenter/v1"


def test_cli_prints_the_connections_and_stops_on_sigterm(demo_dir):
    process = subprocess.Popen(
        [sys.executable, "-m", "include.sandbox", "--data", str(demo_dir)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=os.getcwd(),
    )
    try:
        line = process.stdout.readline().strip()
        name, _, quoted = line.partition("=")
        assert name == "AIRFLOW_CONN_PARTNER_CENTER_DEFAULT"
        conn = json.loads(shlex.split(quoted)[0])
        assert conn["conn_type"] == "partner_center" and conn["host"].startswith("http://127.0.0.1:")
        assert conn["extra"]["tenant_id"] == sandbox_microsoft.TENANT_ID
        base = conn["host"].rsplit("/partnercenter", 1)[0]
        assert requests.get(f"{base}/_sandbox/requests", timeout=5).json() == []
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0


def test_connections_and_env_point_at_the_server(sandbox):
    conn = sandbox.connections()["partner_center_default"]
    assert conn["host"] == f"{sandbox.url}/partnercenter"
    env = json.loads(sandbox.env({"max_retries": 1})["AIRFLOW_CONN_PARTNER_CENTER_DEFAULT"])
    assert env["extra"]["max_retries"] == 1 and env["extra"]["graph_url"] == f"{sandbox.url}/graph/v1.0"


def test_api_requires_a_token_for_the_right_resource(sandbox, get_token):
    assert requests.get(f"{sandbox.url}{PC}/invoices", timeout=5).status_code == 401
    graph_token = get_token(sandbox, sandbox_microsoft.GRAPH)
    headers = {"Authorization": f"Bearer {graph_token}"}
    assert requests.get(f"{sandbox.url}{PC}/invoices", headers=headers, timeout=5).status_code == 401
    bad = {"grant_type": "refresh_token", "client_id": sandbox_microsoft.CLIENT_ID, "client_secret": "wrong"}
    url = f"{sandbox.url}/login/{sandbox_microsoft.TENANT_ID}/oauth2/token"
    assert requests.post(url, data=bad, timeout=5).status_code == 401


def test_numbers_come_out_exactly_as_in_the_files(sandbox, pc, demo_dir):
    invoice_id = "G0526A0003"
    served = pc.get(f"{sandbox.url}{PC}/invoices/{invoice_id}", timeout=5).text
    assert '"totalCharges":-1329.7525' in served
    on_disk = loads((demo_dir / "microsoft" / invoice_id / "invoice.json").read_text())
    assert loads(served) == on_disk
    assert isinstance(loads(served)["totalCharges"], Decimal)


def test_unknown_invoice_is_a_404_json_error(sandbox, pc):
    response = pc.get(f"{sandbox.url}{PC}/invoices/G404", timeout=5)
    assert response.status_code == 404 and response.json()["errorName"] == "InvoiceNotFound"


def test_offset_pages_in_query_and_path_form(sandbox, pc):
    query = pc.get(
        f"{sandbox.url}{PC}/invoices/D0526A0001/lineitems",
        params={"provider": "office", "invoicelineitemtype": "billinglineitems", "size": 20, "offset": 20},
        timeout=5,
    ).json()
    path = pc.get(
        f"{sandbox.url}{PC}/invoices/Recurring-D0526A0001/lineitems/Office/BillingLineItems?size=20&offset=20",
        timeout=5,
    ).json()
    assert (
        query["items"] == path["items"]
        and query["totalCount"] == len(query["items"]) == 10
        and "next" not in query["links"]
    )


def test_a_declared_set_without_a_file_is_served_empty(sandbox, pc):
    page = pc.get(
        f"{sandbox.url}{PC}/invoices/D0526A0001/lineitems?provider=azure&invoicelineitemtype=usagelineitems",
        timeout=5,
    ).json()
    assert page["totalCount"] == 0 and page["items"] == []


def test_one_time_is_refused_with_an_underscore(sandbox, pc):
    url = f"{sandbox.url}{PC}/invoices/G0526A0002/lineitems?provider=one_time&invoicelineitemtype=billinglineitems"
    assert pc.get(url, timeout=5).status_code == 400


def test_continuation_pages_chain_to_the_end(sandbox, pc):
    url = f"{sandbox.url}{PC}/invoices/G0526A0002/lineitems"
    page = pc.get(url, params={"provider": "onetime", "invoicelineitemtype": "billinglineitems"}, timeout=5).json()
    seen = len(page["items"])
    while page.get("continuationToken"):
        next_link = page["links"]["next"]
        headers = {h["key"]: h["value"] for h in next_link["headers"]}
        page = pc.get(f"{sandbox.url}{PC}{next_link['uri']}", headers=headers, timeout=5).json()
        seen += len(page["items"])
    assert seen == MICROSOFT_DEMO["G0526A0002"].line_count
    bad = pc.get(f"{url}/OneTime/BillingLineItems?seekOperation=Next", headers={"MS-ContinuationToken": "x"})
    assert bad.status_code == 400


def test_v2_export_serves_gzip_json_lines_behind_a_sas(sandbox, get_token):
    graph = requests.Session()
    graph.headers["Authorization"] = f"Bearer {get_token(sandbox, sandbox_microsoft.GRAPH)}"
    base = f"{sandbox.url}/graph/v1.0/reports/partners/billing"
    started = graph.post(f"{base}/reconciliation/billed/export", json={"invoiceId": "G0526A0002"}, timeout=5)
    assert started.status_code == 202
    running = graph.get(started.headers["Location"], timeout=5)
    assert running.json()["status"] == "running" and "Retry-After" in running.headers
    done = graph.get(started.headers["Location"], timeout=5).json()
    assert done["status"] == "succeeded"
    manifest = graph.get(done["resourceLocation@odata.navigationLink"], timeout=5).json()
    assert manifest["blobCount"] == len(manifest["blobs"]) == 3  # 2,345 lines, 1,000 per blob
    lines = []
    for blob in manifest["blobs"]:
        url = f"{manifest['rootDirectory']}/{blob['name']}"
        assert requests.get(f"{url}?sv=1&sig=forged", timeout=5).status_code == 403
        content = requests.get(f"{url}?{manifest['sasToken']}", timeout=5).content
        lines += [loads(line) for line in gzip.decompress(content).splitlines()]
    assert len(lines) == MICROSOFT_DEMO["G0526A0002"].line_count
    assert "TotalForCustomer" in lines[0] and isinstance(lines[0]["TotalForCustomer"], Decimal)


def test_faults_apply_n_times_and_are_logged(sandbox, pc):
    sandbox.add_fault("status", r"/v1/invoices$", status=429, retry_after=1, times=2)
    url = f"{sandbox.url}{PC}/invoices"
    statuses = [pc.get(url, timeout=5) for _ in range(3)]
    assert [r.status_code for r in statuses] == [429, 429, 200]
    assert statuses[0].headers["Retry-After"] == "1"
    assert [(e["method"], e["path"], e["status"], e["fault"]) for e in sandbox.requests[-3:]] == [
        ("GET", f"{PC}/invoices", 429, "status"),
        ("GET", f"{PC}/invoices", 429, "status"),
        ("GET", f"{PC}/invoices", 200, None),
    ]


def test_truncate_and_drop_items_faults(sandbox, pc):
    url = f"{sandbox.url}{PC}/invoices/D0526A0001/lineitems?provider=office&invoicelineitemtype=billinglineitems"
    sandbox.add_fault("truncate", r"/lineitems")
    with pytest.raises(ValueError):
        pc.get(url, timeout=5).json()
    sandbox.add_fault("drop_items", r"/lineitems")
    page = pc.get(url, timeout=5).json()
    assert page["totalCount"] == 30 and len(page["items"]) == 15


def test_faults_over_http(sandbox, pc):
    control = f"{sandbox.url}/_sandbox/faults"
    created = requests.post(control, json={"kind": "status", "path": "/v1/invoices$", "status": 500}, timeout=5)
    assert created.status_code == 201 and created.json()["times"] == 1
    assert requests.post(control, json={"kind": "explode", "path": "x"}, timeout=5).status_code == 400
    requests.post(control, json={"kind": "status", "path": "/v1/invoices/", "times": 5}, timeout=5)
    assert requests.delete(control, timeout=5).status_code == 204
    assert requests.get(control, timeout=5).json() == []
    assert pc.get(f"{sandbox.url}{PC}/invoices", timeout=5).status_code == 200
    log = requests.get(f"{sandbox.url}/_sandbox/requests", timeout=5).json()
    assert log[-1]["path"] == f"{PC}/invoices" and log[-1]["status"] == 200


def test_the_server_stops_at_exit(demo_dir):
    with SandboxServer(demo_dir) as server:
        url = f"{server.url}/_sandbox/requests"
        assert requests.get(url, timeout=5).status_code == 200
    with pytest.raises(requests.ConnectionError):
        requests.get(url, timeout=2)


def test_demo_data_is_deterministic_and_matches_its_metadata(tmp_path, demo_dir):
    assert write_demo_data(tmp_path) == {name: spec.demo().EXPECTED for name, spec in PROVIDERS.items()}
    written = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    assert written == sorted(p.relative_to(demo_dir) for p in demo_dir.rglob("*") if p.is_file())
    assert all((tmp_path / p).read_bytes() == (demo_dir / p).read_bytes() for p in written)
    for invoice_id, expected in MICROSOFT_DEMO.items():
        folder = tmp_path / "microsoft" / invoice_id
        invoice = loads((folder / "invoice.json").read_text())
        totals = Decimal(0)
        for path in folder.glob("*_billing_line_items.jsonl"):
            key = "postTaxTotal" if path.name.startswith("azure") else "totalForCustomer"
            totals += sum((loads(line)[key] for line in path.read_text().splitlines()), Decimal(0))
        assert invoice["totalCharges"] - totals == expected.difference


def test_rotating_token_endpoint_issues_a_new_refresh_token_and_refuses_a_used_one(demo_dir):
    with SandboxServer(demo_dir, rotate_refresh_tokens=True) as server:
        first = refresh_grant(server, sandbox_microsoft.REFRESH_TOKEN).json()["refresh_token"]
        second = refresh_grant(server, first, sandbox_microsoft.GRAPH).json()["refresh_token"]
        assert server.issued_refresh_tokens == [first, second] and first != sandbox_microsoft.REFRESH_TOKEN
        for spent in (sandbox_microsoft.REFRESH_TOKEN, first):
            refused = refresh_grant(server, spent)
            assert (refused.status_code, refused.json()["error"]) == (400, "invalid_grant")
        assert refresh_grant(server, second).status_code == 200


def test_by_default_the_refresh_token_stays_the_same(sandbox, get_token):
    get_token(sandbox, sandbox_microsoft.PARTNER_CENTER)
    get_token(sandbox, sandbox_microsoft.GRAPH)
    assert sandbox.issued_refresh_tokens == []
