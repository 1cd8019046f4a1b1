"""Data Docs over HTTP: addresses from ``[api] base_url``, no path outside the folder, offline pages."""

from __future__ import annotations

from decimal import Decimal

from include.checksum.data_docs import (
    REMOTE_LOAD,
    AmountRow,
    data_docs_url,
    offline_page,
    resolve_page,
    with_amounts,
)

GX_HEAD = (
    '<html><head><link rel="stylesheet" href="https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css"/>'
    '<script src="https://cdn.jsdelivr.net/npm/vega@5"></script>'
    '<script src="//code.jquery.com/jquery-3.7.1.min.js" crossorigin="anonymous"></script>'
    '<link rel="stylesheet" href="../static/styles/data_docs_custom_styles_template.css">'
    "<style>body{}</style><style>a{background: url('https://s3.example/logo.png') 0 0}</style></head>"
    '<body><img class="x" src="https://s3.example/logo-long.png" alt="GX"><h1>Validation</h1>'
    '<a href="https://greatexpectations.io/">GX</a></body></html>'
)


def test_a_page_url_is_built_from_the_api_base_url(tmp_path, monkeypatch):
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "https://airflow.example.com/")
    page = tmp_path / "validations" / "suite" / "run 1" / "p.html"
    url = data_docs_url(f"file://{page}", root=tmp_path)
    assert url == "https://airflow.example.com/provider-invoices/data-docs/validations/suite/run%201/p.html"
    assert data_docs_url("file:///elsewhere/p.html", root=tmp_path) == "file:///elsewhere/p.html"
    assert data_docs_url(None, root=tmp_path) is None


def test_only_files_inside_the_folder_are_served(tmp_path):
    root = tmp_path / "docs"
    (root / "validations").mkdir(parents=True)
    (root / "validations" / "p.html").write_text("ok")
    (tmp_path / "secret.txt").write_text("no")
    (root / "link.html").symlink_to(tmp_path / "secret.txt")
    assert resolve_page("validations/p.html", root=root) == (root / "validations" / "p.html").resolve()
    for path in (
        "../secret.txt",
        "validations/../../secret.txt",
        str(tmp_path / "secret.txt"),
        "link.html",
        "",
        "a\x00b",
    ):
        assert resolve_page(path, root=root) is None, path
    assert resolve_page("validations", root=root) is None  # a folder is not a page
    assert resolve_page("missing.html", root=root) is None


def test_offline_page_drops_every_cdn_asset_and_keeps_local_ones():
    page = offline_page(GX_HEAD)
    assert REMOTE_LOAD.search(GX_HEAD) and REMOTE_LOAD.search(page) is None
    assert "bootstrapcdn" not in page and "jsdelivr" not in page and "s3.example" not in page
    assert '<a href="https://greatexpectations.io/">' in page  # a link a person may click stays
    assert "data_docs_custom_styles_template.css" in page and "<style>body{}</style>" in page
    assert page.count("/provider-invoices/static/data-docs.css") == 1
    assert offline_page(page) == page


def test_amounts_in_currency_units_lead_the_page():
    rows = [
        AmountRow("Header total", Decimal("19389.8075"), 19389807500),
        AmountRow("Difference", Decimal("-1329.7525")),
    ]
    page = with_amounts(GX_HEAD, "Checksum G0526A0003: FAILED", "EUR", rows)
    body = page.split("<body>", 1)[1]
    assert body.startswith("<!-- invoice-amounts -->")
    assert "19389.8075 EUR" in body and "19389807500 micros" in body and "-1329.7525 EUR" in body
    assert with_amounts(page, "again", "EUR", rows) == page
