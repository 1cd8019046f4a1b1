"""TD SYNNEX StreamOne Ion v1: invoices and their lines, limit/offset paged and checked for truncation.

Ion has no v3 invoicing API, so this reads v1 with HTTP Basic auth (API key and secret). An API key does
not rotate: Ion's single-use OAuth refresh tokens belong to v3, so this hook has no refresh token to keep
(:mod:`plugins.hooks.refresh_token` is how one would be kept). Paths below the connection host (default
``https://ion.tdsynnex.com``):

- ``GET /api/v1/invoices/myinvoices?limit=&offset=&sort[id]=asc`` (+ ``filter[billingStartDate:gte]``,
  ``filter[billingEndDate:lte]``): documented by TD SYNNEX's SDK. Sorted by id so that offset paging
  stays stable while new invoices appear.
- ``GET /api/v1/invoices/{id}/detailed``: documented; the invoice is ``data.invoice``; 404 means an
  unknown invoice.
- ``GET /api/v1/invoices/{id}/lines?limit=&offset=``: **assumed**. Ion's line JSON is not public; the
  SDK only shows ``relations=lines`` on ``myinvoices``, which pages invoices, not lines. If a real
  account serves lines elsewhere, change ``LINES_PATH`` (and, if need be, :meth:`_pages`).

Both lists are read in the page envelope ``{"items": [...], "total": <items in all>, "limit", "offset"}``
(assumed). Every page must hold exactly ``min(limit, total - offset)`` items and ``total`` must not
change while paging; anything else raises :class:`InvalidProviderData`, so an invoice never arrives
silently truncated. Invoice field names live in :mod:`include.providers.synnex.normaliser`.

Connection ``streamone_ion_default`` (type ``streamone_ion``): host, login/password = API key/secret; extra
``account_id`` (invoices of any other account are refused), ``page_size`` (default 100, Ion's default
limit), ``billing_start_from`` (ISO date: :meth:`list_invoices` skips older billing periods), plus the
retry settings of :mod:`plugins.hooks.http`.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from functools import cached_property
from typing import Any
from urllib.parse import quote

import requests

from include.model import InvalidProviderData, InvoiceNotFound, parse_date
from include.providers import conn_id_of
from include.providers.synnex.normaliser import HEADER_FIELDS
from plugins.hooks.http import ProviderHttpHook

MYINVOICES_PATH = "/api/v1/invoices/myinvoices"
DETAILED_PATH = "/api/v1/invoices/{invoice_id}/detailed"
LINES_PATH = "/api/v1/invoices/{invoice_id}/lines"
LINE_SOURCE = "ion/invoice_lines"
DEFAULT_PAGE_SIZE = 100


class StreamOneIonHook(ProviderHttpHook):
    """Reads invoices and invoice lines from TD SYNNEX StreamOne Ion (v1)."""

    conn_name_attr = "conn_id"
    provider = "synnex"
    default_conn_name = conn_id_of(provider)
    conn_type = "streamone_ion"
    hook_name = "TD SYNNEX StreamOne Ion"
    default_host = "https://ion.tdsynnex.com"

    def __init__(self, conn_id: str = default_conn_name, **kwargs: Any):
        super().__init__(conn_id, **kwargs)

    @cached_property
    def page_size(self) -> int:
        size = int(self.extras.get("page_size", DEFAULT_PAGE_SIZE))
        if size < 1:
            raise ValueError(f"Connection {self.conn_id}: page_size must be at least 1, got {size}.")
        return size

    def _get(self, path: str, params: dict) -> Any:
        return self.get_json(self.url(path), params=params, auth=(self.connection.login, self.connection.password))

    def probe(self) -> str:
        """One page of one invoice: the key, the secret and the invoice list in a single request."""
        _, total = _checked_page(self._get(MYINVOICES_PATH, {"limit": 1, "offset": 0}), "invoices", 0)
        return f"the API key was accepted and the invoice list answered with {total} invoice(s)"

    # -- invoices ---------------------------------------------------------------------------------

    def list_invoices(
        self, *, billing_start_from: date | None = None, billing_end_to: date | None = None
    ) -> list[dict]:
        """Every invoice of the account (billing periods starting on/after ``billing_start_from``, if given
        here or in the connection, and ending on/before ``billing_end_to``)."""
        since = billing_start_from or parse_date(self.extras.get("billing_start_from"))
        params = {"sort[id]": "asc"}
        if since:
            params["filter[billingStartDate:gte]"] = since.isoformat()
        if billing_end_to:
            params["filter[billingEndDate:lte]"] = billing_end_to.isoformat()
        invoices = [self._own(invoice) for invoice in self._pages(MYINVOICES_PATH, params, "invoices")]
        return self.listed(invoices, HEADER_FIELDS["invoice_id"])

    def get_invoice(self, invoice_id: str) -> dict:
        path = DETAILED_PATH.format(invoice_id=quote(self.check_invoice_id(invoice_id), safe=""))
        try:
            reply = self._get(path, {})
        except requests.HTTPError as exc:
            if exc.response is not None and exc.response.status_code == 404:
                raise InvoiceNotFound(f"TD SYNNEX StreamOne Ion does not know invoice {invoice_id}.") from None
            raise
        data = reply.get("data") if isinstance(reply, dict) else None
        invoice = data.get("invoice") if isinstance(data, dict) else None
        if not isinstance(invoice, dict):
            raise InvalidProviderData(f"GET {path} answered without a data.invoice object.")
        return self._own(invoice)

    def _own(self, invoice: dict) -> dict:
        """The invoice, unless it belongs to another Ion account than the connection's ``account_id``."""
        expected, actual = self.extras.get("account_id"), invoice.get(HEADER_FIELDS["account_id"])
        if expected and actual is not None and str(actual) != str(expected):
            raise InvalidProviderData(
                f"Invoice {invoice.get(HEADER_FIELDS['invoice_id'])} belongs to Ion account {actual}, "
                f"but connection {self.conn_id} is for account {expected}."
            )
        return invoice

    # -- lines ------------------------------------------------------------------------------------

    def iter_line_items(self, invoice: dict) -> Iterator[tuple[str, dict]]:
        """``(source, raw_line)`` for every line of the invoice, page by page."""
        invoice_id = str(invoice[HEADER_FIELDS["invoice_id"]])
        path = LINES_PATH.format(invoice_id=quote(invoice_id, safe=""))
        for line in self._pages(path, {}, f"lines of invoice {invoice_id}"):
            yield LINE_SOURCE, line

    def _pages(self, path: str, params: dict, what: str) -> Iterator[dict]:
        """Every item of a limit/offset paged list, refusing short, long or shifting pages."""
        offset, total = 0, None
        while True:
            page = self._get(path, {**params, "limit": self.page_size, "offset": offset})
            items, page_total = _checked_page(page, what, offset)
            if total is not None and page_total != total:
                raise InvalidProviderData(
                    f"Ion's total of {what} changed from {total} to {page_total} while paging; try again later."
                )
            total = page_total
            owed = min(self.page_size, total - offset)
            if len(items) != owed:
                raise InvalidProviderData(
                    f"Ion returned {len(items)} {what} at offset {offset}, but its total of {total} at "
                    f"{self.page_size} per page means {owed}: the list would be incomplete."
                )
            yield from items
            offset += owed
            if offset >= total:
                return


def _checked_page(page: Any, what: str, offset: int) -> tuple[list[dict], int]:
    """The page's items and total, refusing an envelope without them."""
    items = page.get("items") if isinstance(page, dict) else None
    total = page.get("total") if isinstance(page, dict) else None
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise InvalidProviderData(f"Ion returned {what} at offset {offset} without an items list.")
    if isinstance(total, bool) or not isinstance(total, int) or total < 0:
        raise InvalidProviderData(f"Ion returned {what} at offset {offset} without a total count ({total!r}).")
    return items, total
