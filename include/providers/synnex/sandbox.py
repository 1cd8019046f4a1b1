"""Sandbox TD SYNNEX StreamOne Ion v1: invoice list, invoice detail and invoice lines, Basic auth.

Served from ``DIR/synnex/<invoiceId>/invoice.json`` and ``lines.jsonl`` (a missing ``lines.jsonl`` is
an invoice without lines). Lists use the page envelope :mod:`plugins.hooks.streamone_ion` expects,
``{"items", "total", "limit", "offset"}``, so the server's ``drop_items`` fault yields a short page.
URL layout below the sandbox root:

- ``/ion/api/v1/invoices/myinvoices?limit=&offset=&sort[field]=&filter[field:modifier]=``
- ``/ion/api/v1/invoices/<id>/detailed`` (``{"success": true, "data": {"invoice": ...}}``)
- ``/ion/api/v1/invoices/<id>/lines?limit=&offset=``
"""

from __future__ import annotations

import base64
import binascii
import operator
import re
from collections.abc import Callable
from pathlib import Path

from include.sandbox.server import Request, Response, Route, error, loads

API_KEY = "sandbox-ion-api-key"
API_SECRET = "sandbox-ion-api-secret"
ACCOUNT_ID = "sandbox-account"
MAX_LIMIT = 1000
MODIFIERS = {
    "exact": operator.eq,
    "gt": operator.gt,
    "lt": operator.lt,
    "gte": operator.ge,
    "lte": operator.le,
    "min": operator.ge,
    "max": operator.le,
}
FILTER = re.compile(r"filter\[(?P<field>\w+)(?::(?P<modifier>\w+))?\]")
SORT = re.compile(r"sort\[(?P<field>\w+)\]")


def connection(base_url: str) -> dict:
    """The connection (its id is in the provider registry) pointing at this sandbox."""
    return {
        "conn_type": "streamone_ion",
        "host": f"{base_url}/ion",
        "login": API_KEY,
        "password": API_SECRET,
        "extra": {"account_id": ACCOUNT_ID},
    }


def _folder(request: Request) -> Path:
    return request.server.data_dir / "synnex"


def _invoice(request: Request, invoice_id: str) -> dict | None:
    path = _folder(request) / invoice_id / "invoice.json"
    return loads(path.read_bytes()) if path.is_file() else None


def _not_found(invoice_id: str) -> Response:
    return error(404, "NotFound", f"Invoice {invoice_id} was not found.")


def requires_basic_auth(handler: Callable[[Request], Response]) -> Callable[[Request], Response]:
    """Handler decorator: 401 unless the request carries the sandbox API key and secret (HTTP Basic)."""

    def guarded(request: Request) -> Response:
        scheme, _, encoded = (request.headers.get("Authorization") or "").partition(" ")
        try:
            presented = base64.b64decode(encoded, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            presented = ""
        if scheme.lower() != "basic" or presented != f"{API_KEY}:{API_SECRET}":
            challenge = {"WWW-Authenticate": 'Basic realm="StreamOne Ion"'}
            return error(401, "Unauthorized", "A valid API key and secret are required.", challenge)
        return handler(request)

    return guarded


def _page(request: Request, items: list[dict]) -> Response:
    """One limit/offset page of ``items`` in the Ion list envelope."""
    try:
        limit, offset = int(request.query.get("limit", 100)), int(request.query.get("offset", 0))
    except ValueError:
        return error(400, "BadRequest", "limit and offset must be whole numbers.")
    if not 1 <= limit <= MAX_LIMIT or offset < 0:
        return error(400, "BadRequest", f"limit must be 1 to {MAX_LIMIT} and offset at least 0.")
    page = items[offset : offset + limit]
    return Response(200, {"items": page, "total": len(items), "limit": limit, "offset": offset})


@requires_basic_auth
def my_invoices(request: Request) -> Response:
    root = _folder(request)
    ids = sorted(p.parent.name for p in root.glob("*/invoice.json")) if root.is_dir() else []
    invoices = [_invoice(request, invoice_id) for invoice_id in ids]
    for name, value in request.query.items():
        if match := FILTER.fullmatch(name):
            compare = MODIFIERS.get(match["modifier"] or "exact")
            if compare is None:
                return error(400, "BadRequest", f"Unknown filter modifier in {name}.")
            invoices = [i for i in invoices if match["field"] in i and compare(str(i[match["field"]]), value)]
        elif match := SORT.fullmatch(name):
            invoices.sort(key=lambda i: i.get(match["field"]) or 0, reverse=value.lower() == "desc")
    return _page(request, invoices)


@requires_basic_auth
def detailed(request: Request) -> Response:
    invoice = _invoice(request, request.match["invoice"])
    if invoice is None:
        return _not_found(request.match["invoice"])
    return Response(200, {"success": True, "data": {"invoice": invoice}})


@requires_basic_auth
def lines(request: Request) -> Response:
    invoice_id = request.match["invoice"]
    if _invoice(request, invoice_id) is None:
        return _not_found(invoice_id)
    path = _folder(request) / invoice_id / "lines.jsonl"
    text = path.read_text(encoding="utf-8") if path.is_file() else ""
    return _page(request, [loads(line) for line in text.splitlines() if line.strip()])


ROUTES: list[Route] = [
    ("GET", r"/ion/api/v1/invoices/myinvoices", my_invoices),
    ("GET", r"/ion/api/v1/invoices/(?P<invoice>[^/]+)/detailed", detailed),
    ("GET", r"/ion/api/v1/invoices/(?P<invoice>[^/]+)/lines", lines),
]
