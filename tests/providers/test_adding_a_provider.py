"""The README's "Adding a provider", followed to the letter with a throw-away third provider.

Everything of the provider is written here into a temporary directory: its package (normaliser,
sandbox endpoints, demo data), its hook, its GX suite and its three-line DAG file; the only other
change is one ``ProviderSpec`` in the registry. The sync DAG then runs through Airflow against the
sandbox and every demo invoice ends as its demo data promises. If adding a provider ever needs a
change anywhere else (an operator, the sandbox server, the demo data writer), this test fails.
"""

from __future__ import annotations

import json
import sys

import pytest

from include.checksum.validation import SUITES_DIR
from include.providers import PROVIDERS, ProviderSpec

PACKAGE = {
    "__init__.py": '"""Acme Cloud: a throw-away provider."""\n',
    "normaliser.py": """
from include.model import InvoiceHeader, InvoiceLine, parse_date, parse_money


def normalize_header(raw):
    return InvoiceHeader(
        provider="acme",
        invoice_id=str(raw["id"]),
        currency_code=raw["currency"],
        header_total=parse_money(raw["total"]),
        billing_period_start=parse_date(raw["period"]),
        fingerprint=str(raw["total"]),
    )


def normalize_lines(header, raw_lines, first_line_no=1):
    for line_no, (source, raw) in enumerate(raw_lines, start=first_line_no):
        yield InvoiceLine(line_no, raw["kind"], parse_money(raw["amount"]), header.currency_code, source=source)
""",
    "sandbox.py": """
from include.sandbox.server import Response, loads


def connection(base_url):
    return {"conn_type": "http", "host": f"{base_url}/acme", "login": "", "password": "", "extra": {}}


def _read(request, *parts):
    return loads(request.server.data_dir.joinpath("acme", *parts).read_bytes())


def invoices(request):
    return Response(200, [_read(request, p.parent.name, "invoice.json") for p in
                          sorted((request.server.data_dir / "acme").glob("*/invoice.json"))])


def invoice(request):
    return Response(200, _read(request, request.match["invoice"], "invoice.json"))


def lines(request):
    path = request.server.data_dir / "acme" / request.match["invoice"] / "lines.jsonl"
    return Response(200, [loads(text) for text in path.read_text().splitlines()])


ROUTES = [
    ("GET", r"/acme/invoices", invoices),
    ("GET", r"/acme/invoices/(?P<invoice>[^/]+)", invoice),
    ("GET", r"/acme/invoices/(?P<invoice>[^/]+)/lines", lines),
]
""",
    "demo.py": """
from decimal import Decimal

from include.sandbox.demo_data import DemoExpectation, write_invoice_dir

LINES = [{"kind": "licence", "amount": Decimal("100.25")}, {"kind": "usage", "amount": Decimal("19.75")}]
EXPECTED = {
    "A-1": DemoExpectation("active", Decimal("0.00"), 2, "balanced"),
    "A-2": DemoExpectation("checksum_error", Decimal("5.00"), 2, "header above its lines"),
}
VARIANTS = []


def write_demo(data_dir):
    for invoice_id, expected in EXPECTED.items():
        total = sum(line["amount"] for line in LINES) + expected.difference
        header = {"id": invoice_id, "currency": "EUR", "total": total, "period": "2026-01-01"}
        write_invoice_dir(data_dir, "acme", header, {"lines.jsonl": LINES})
    return EXPECTED
""",
}
HOOK = """
from include.providers import conn_id_of
from plugins.hooks.http import ProviderHttpHook


class AcmeHook(ProviderHttpHook):
    conn_name_attr = "conn_id"
    provider = "acme"
    default_conn_name = conn_id_of(provider)
    conn_type = "http"
    hook_name = "Acme Cloud"

    def __init__(self, conn_id=default_conn_name, **kwargs):
        super().__init__(conn_id, **kwargs)

    def list_invoices(self):
        return self.get_json(self.url("/invoices"))

    def get_invoice(self, invoice_id):
        return self.get_json(self.url(f"/invoices/{self.check_invoice_id(invoice_id)}"))

    def iter_line_items(self, invoice):
        for line in self.get_json(self.url(f"/invoices/{invoice['id']}/lines")):
            yield "acme/lines", line
"""
DAG_FILE = '''"""Airflow DAG: daily import of Acme Cloud invoices (built by include/dag_builder.py)."""

from include.dag_builder import build_sync_dag

dag = build_sync_dag("acme")
'''


@pytest.fixture
def acme(tmp_path, monkeypatch):
    """The provider's files in ``tmp_path`` (importable), and its spec in the registry."""
    package = tmp_path / "acme_provider"
    package.mkdir()
    for name, source in PACKAGE.items():
        (package / name).write_text(source)
    (tmp_path / "acme_hook.py").write_text(HOOK)
    suite = json.loads((SUITES_DIR / "microsoft.json").read_text()) | {"name": "acme_invoice_checksum"}
    (tmp_path / "acme.json").write_text(json.dumps(suite))
    (tmp_path / "dags").mkdir()
    (tmp_path / "dags" / "provider_invoice_sync_acme.py").write_text(DAG_FILE)
    monkeypatch.syspath_prepend(str(tmp_path))
    import airflow.settings

    monkeypatch.setattr(airflow.settings, "DAGS_FOLDER", str(tmp_path / "dags"))  # what dag.test() syncs
    monkeypatch.setitem(
        PROVIDERS,
        "acme",
        ProviderSpec(
            name="acme",
            display_name="Acme Cloud",
            hook_path="acme_hook.AcmeHook",
            conn_id="acme_default",
            package="acme_provider",
            suite_file=str(tmp_path / "acme.json"),
            invoice_id_pattern=r"A-[0-9]{1,8}",
            invoice_id_max_length=10,
        ),
    )
    yield tmp_path
    for name in [name for name in sys.modules if name.split(".")[0] in ("acme_provider", "acme_hook")]:
        del sys.modules[name]


def test_a_third_provider_syncs_with_only_its_own_files_and_one_registry_entry(airflow_db, invoice_db, acme):
    from airflow.dag_processing.dagbag import DagBag

    from include.sandbox import SandboxServer
    from include.sandbox.demo_data import write_demo_data
    from tests.dags.helpers import assert_synced

    expected = write_demo_data(acme / "data")["acme"]
    with SandboxServer(acme / "data") as sandbox, pytest.MonkeyPatch.context() as env:
        for name, value in sandbox.env().items():
            env.setenv(name, value)
        dagbag = DagBag(dag_folder=str(acme / "dags" / "provider_invoice_sync_acme.py"))
        assert dagbag.import_errors == {}
        dag_run = dagbag.dags["provider_invoice_sync_acme"].test()

        assert {r["path"] for r in sandbox.requests} >= {"/acme/invoices", "/acme/invoices/A-1/lines"}
    assert "AIRFLOW_CONN_ACME_DEFAULT" in sandbox.env()
    assert_synced(invoice_db, dag_run, "acme", expected)
