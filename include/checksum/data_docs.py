"""GX Data Docs pages as a browser opens them from the Airflow API server: over HTTP, offline, readable.

GX writes static HTML files that load Bootstrap, jQuery, Font Awesome and Vega from public CDNs and
show the checksum bounds as integer micros. The invoices workspace serves those files under
``/provider-invoices/data-docs/``; this module owns the three things that takes:

* :func:`data_docs_url`: the HTTP address of a page, built from Airflow's ``[api] base_url``, for the
  extra link, the on-call report and the workspace (a ``file://`` path opens in no deployed browser);
* :func:`resolve_page`: a requested path inside the Data Docs folder, or ``None`` (no traversal);
* :func:`offline_page` and :func:`with_amounts`: the CDN tags removed (a local stylesheet instead) and
  a summary of the amounts in currency units at the top, next to the micros GX shows.
"""

from __future__ import annotations

import html
import os
import re
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from urllib.parse import quote, unquote, urlparse

WORKSPACE_PREFIX = "/provider-invoices"
DATA_DOCS_ROUTE = f"{WORKSPACE_PREFIX}/data-docs"
LOCAL_STYLESHEET = f"{WORKSPACE_PREFIX}/static/data-docs.css"

_REMOTE_ASSET = re.compile(
    r"""<script\b[^>]*\bsrc\s*=\s*["']?(?:https?:)?//[^>]*>\s*</script>"""
    r"""|<link\b[^>]*\bhref\s*=\s*["']?(?:https?:)?//[^>]*>"""
    r"""|<img\b[^>]*\bsrc\s*=\s*["']?(?:https?:)?//[^>]*>""",
    re.IGNORECASE,
)
_REMOTE_CSS_URL = re.compile(r"""url\(\s*["']?(?:https?:)?//[^)]*\)""", re.IGNORECASE)
REMOTE_LOAD = re.compile(
    r"""<(?:script|link|img|iframe)\b[^>]*\b(?:src|href)\s*=\s*["']?(?:https?:)?//|url\(\s*["']?(?:https?:)?//""",
    re.IGNORECASE,
)
"""Anything in a page that makes a browser fetch from another host (links a person clicks are fine)."""
_SUMMARY_MARK = "<!-- invoice-amounts -->"


def data_docs_root() -> Path:
    """Where Data Docs pages are written: ``$INVOICE_DATA_DOCS_DIR`` or ``$AIRFLOW_HOME/data_docs``."""
    configured = os.environ.get("INVOICE_DATA_DOCS_DIR")
    if configured:
        return Path(configured)
    return Path(os.environ.get("AIRFLOW_HOME", Path.home() / "airflow")) / "data_docs"


def base_url() -> str:
    """Airflow's ``[api] base_url`` (what ``ti.log_url`` is built from), without a trailing slash."""
    from airflow.sdk.configuration import conf

    return conf.get("api", "base_url", fallback="http://localhost:8080/").rstrip("/")


def data_docs_url(page: str | None, *, root: Path | None = None) -> str | None:
    """The HTTP address of a page GX reported as a ``file://`` URL (or path) under the Data Docs folder."""
    if not page:
        return None
    path = Path(unquote(urlparse(page).path)) if page.startswith("file:") else Path(page)
    try:
        relative = path.resolve().relative_to((root or data_docs_root()).resolve())
    except ValueError:
        return page  # somewhere else: leave it as GX wrote it
    return f"{base_url()}{DATA_DOCS_ROUTE}/{quote(relative.as_posix())}"


def resolve_page(relative: str, *, root: Path | None = None) -> Path | None:
    """The file ``relative`` names inside the Data Docs folder, or ``None`` when it is outside or missing."""
    folder = (root or data_docs_root()).resolve()
    if not relative or "\x00" in relative:
        return None
    candidate = (folder / relative).resolve()
    if candidate != folder and folder not in candidate.parents:
        return None
    return candidate if candidate.is_file() else None


def offline_page(page_html: str) -> str:
    """The page without CDN scripts and stylesheets, styled by the workspace's own stylesheet instead."""
    stripped = _REMOTE_CSS_URL.sub("none", _REMOTE_ASSET.sub("", page_html))
    link = f'<link rel="stylesheet" href="{LOCAL_STYLESHEET}">'
    if LOCAL_STYLESHEET in stripped:
        return stripped
    return re.sub(r"</head>", link + "</head>", stripped, count=1, flags=re.IGNORECASE)


@dataclass(frozen=True)
class AmountRow:
    label: str
    amount: Decimal
    micros: int | None = None


def with_amounts(page_html: str, title: str, currency: str, rows: list[AmountRow]) -> str:
    """The page with a table of the checksum amounts in currency units (and the micros GX shows) on top."""
    if _SUMMARY_MARK in page_html:
        return page_html
    body = "".join(
        f"<tr><th>{html.escape(row.label)}</th><td>{row.amount:f} {html.escape(currency)}</td>"
        f"<td>{'' if row.micros is None else f'{row.micros} micros'}</td></tr>"
        for row in rows
    )
    summary = (
        f'{_SUMMARY_MARK}<section class="invoice-amounts"><h2>{html.escape(title)}</h2>'
        "<p>GX checks the sum of the lines in integer micros (1 micro = 0.000001 of the currency unit) "
        "so that no binary float ever adds money. The same amounts in currency units:</p>"
        f"<table>{body}</table></section>"
    )
    return re.sub(r"(<body[^>]*>)", lambda m: m.group(1) + summary, page_html, count=1, flags=re.IGNORECASE)


def rewrite_page(page: str | None, title: str, currency: str, rows: list[AmountRow]) -> None:
    """Make the page GX just wrote offline and readable, in place (later index rebuilds leave it alone)."""
    if not page:
        return
    path = Path(unquote(urlparse(page).path)) if page.startswith("file:") else Path(page)
    if path.is_file():
        path.write_text(with_amounts(offline_page(path.read_text()), title, currency, rows))
