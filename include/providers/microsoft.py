"""Microsoft Partner Center invoices and line items -> the canonical model.

Lines arrive as ``(source, raw)`` from :class:`plugins.hooks.partner_center.PartnerCenterHook`, where
``source`` is ``<billingProvider>/<invoiceLineItemType>``. Keys are matched case-insensitively, so
the PascalCase v2 export blobs and the camelCase v1 pages read alike.

The whole field mapping is the tables below: ``FAMILIES`` (amount and category per billing
provider), ``LINE_FIELDS`` (canonical field <- provider keys, first present wins), ``EXTRA_FIELDS``
and ``DOCUMENT_TYPES``. Amounts are the tax-inclusive line totals, the ones that add up to the
header's ``totalCharges``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from typing import NamedTuple

from include.model import (
    Amendment,
    InvalidProviderData,
    InvoiceHeader,
    InvoiceLine,
    parse_date,
    parse_money,
)

PROVIDER = "microsoft"


class Family(NamedTuple):
    amount_key: str
    category: str | None
    """None: decided per line by :func:`_one_time_category`."""
    declares: str
    """The category an ``invoiceDetails`` entry of this billing provider declares."""


FAMILIES = {
    "office": Family("totalForCustomer", "licence", "licence"),  # legacy LicenseBasedLineItem
    "azure": Family("postTaxTotal", "usage", "usage"),  # legacy UsageBasedLineItem (145P)
    "one_time": Family("totalForCustomer", None, "one_time"),  # new commerce, v1 or v2 export
    "marketplace": Family("totalForCustomer", None, "marketplace"),  # legacy marketplace provider
}
LINE_FIELDS = {
    "customer_id": ("customerid",),
    "customer_name": ("customername", "customercompanyname"),
    "subscription_id": ("subscriptionid",),
    "product_id": ("productid", "offerid", "sku"),
    "sku_id": ("skuid", "durableofferid"),
    "charge_type": ("chargetype",),
    "charge_start_date": ("chargestartdate",),
    "charge_end_date": ("chargeenddate",),
    "description": ("productname", "offername", "servicename", "subscriptiondescription"),
}
CURRENCY_KEYS = ("currency", "billingcurrency", "currencycode")
EXTRA_FIELDS = {
    "order_id": "orderid",
    "reference_id": "referenceid",
    "reservation_order_id": "reservationorderid",
    "credit_reason_code": "creditreasoncode",
    "publisher_name": "publishername",
    "quantity": "quantity",
    "unit_price": "unitprice",
}
"""Provider ids kept in ``InvoiceLine.extra`` (as strings) for reconciliation by hand."""

DOCUMENT_TYPES = {
    "": "invoice",
    "none": "invoice",
    "invoice": "invoice",
    "credit note": "credit_note",
    "credit_note": "credit_note",
    "creditnote": "credit_note",
    "adjustment_note": "adjustment_note",
    "void_note": "void_note",
}


def _document_type(value: object, invoice_id: str) -> str:
    try:
        return DOCUMENT_TYPES[str(value or "").strip().lower()]
    except KeyError:
        raise InvalidProviderData(f"Invoice {invoice_id} has an unknown documentType {value!r}.") from None


def _amendment(raw: dict, invoice_id: str) -> Amendment:
    return Amendment(
        document_id=str(raw.get("id")),
        document_type=_document_type(raw.get("documentType"), invoice_id),
        amends_of=raw.get("amendsOf"),
        total=parse_money(raw.get("totalCharges"), field_name=f"totalCharges of amendment {raw.get('id')}"),
    )


def _fingerprint(raw: dict) -> str:
    """Hash of what changes when Microsoft re-issues an invoice: id, total, date, amendments."""

    def money(value: object) -> str:
        return format(parse_money(value, field_name="totalCharges").normalize(), "f")

    basis = [
        raw.get("id"),
        money(raw.get("totalCharges")),
        raw.get("invoiceDate"),
        sorted(
            [a.get("id"), a.get("documentType"), money(a.get("totalCharges")), a.get("invoiceDate")]
            for a in raw.get("amendments") or ()
        ),
    ]
    return hashlib.sha256(json.dumps(basis, default=str).encode()).hexdigest()


def normalize_header(raw: dict) -> InvoiceHeader:
    """The Partner Center Invoice resource as an :class:`InvoiceHeader` (``totalCharges`` is the total)."""
    invoice_id = str(raw.get("id") or "")
    if not invoice_id:
        raise InvalidProviderData("A Partner Center invoice arrived without an id.")
    declared = (
        FAMILIES[provider].declares
        for detail in raw.get("invoiceDetails") or ()
        if str(detail.get("invoiceLineItemType", "")).lower() == "billing_line_items"
        and (provider := str(detail.get("billingProvider", "")).lower()) in FAMILIES
    )
    return InvoiceHeader(
        provider=PROVIDER,
        invoice_id=invoice_id,
        currency_code=str(raw.get("currencyCode") or ""),
        header_total=parse_money(raw.get("totalCharges"), field_name=f"totalCharges of invoice {invoice_id}"),
        invoice_date=parse_date(raw.get("invoiceDate")),
        billing_period_start=parse_date(raw.get("billingPeriodStartDate")),
        billing_period_end=parse_date(raw.get("billingPeriodEndDate")),
        document_type=_document_type(raw.get("documentType"), invoice_id),
        declared_categories=tuple(dict.fromkeys(c for c in declared if c)),
        amendments=tuple(_amendment(a, invoice_id) for a in raw.get("amendments") or ()),
        fingerprint=_fingerprint(raw),
    )


def _text(line: dict, *keys: str) -> str | None:
    for key in keys:
        value = line.get(key)
        if value not in (None, ""):
            return str(value)
    return None


def _is_microsoft(publisher: str | None) -> bool:
    return publisher is None or publisher.strip().lower().startswith("microsoft")


def _one_time_category(line: dict) -> str:
    """Category of a new-commerce line; the order matters (an RI credit is an RI, a third-party credit
    is marketplace)."""
    if _text(line, "reservationorderid"):
        return "reserved_instance"
    if not _is_microsoft(_text(line, "publishername")):
        return "marketplace"
    if _text(line, "creditreasoncode") or (_text(line, "chargetype") or "").lower() == "customercredit":
        return "credit"
    if (
        _text(line, "meterdescription", "meterid")
        or "azure plan" in (_text(line, "subscriptiondescription") or "").lower()
    ):
        return "usage"
    if "commitment" in (_text(line, "termandbillingcycle") or "").lower():
        return "licence"
    return "one_time"


def normalize_line(header: InvoiceHeader, line_no: int, source: str, raw: dict) -> InvoiceLine:
    """One raw line as an :class:`InvoiceLine`; a missing or non-numeric amount is refused."""
    family = FAMILIES.get(source.split("/", 1)[0].lower())
    if family is None:
        raise InvalidProviderData(f"Line {line_no} of invoice {header.invoice_id} comes from unknown {source!r}.")
    line = {str(key).lower(): value for key, value in raw.items()}
    fields = {name: _text(line, *keys) for name, keys in LINE_FIELDS.items()}
    return InvoiceLine(
        line_no=line_no,
        category=family.category or _one_time_category(line),
        amount=parse_money(
            line.get(family.amount_key.lower()),
            field_name=f"{family.amount_key} of line {line_no} of invoice {header.invoice_id}",
        ),
        currency_code=_text(line, *CURRENCY_KEYS) or header.currency_code,
        charge_start_date=parse_date(fields.pop("charge_start_date")),
        charge_end_date=parse_date(fields.pop("charge_end_date")),
        source=source,
        extra={name: value for name, key in EXTRA_FIELDS.items() if (value := _text(line, key)) is not None},
        **fields,
    )


def normalize_lines(header: InvoiceHeader, raw_lines: Iterable[tuple[str, dict]]) -> Iterator[InvoiceLine]:
    """Canonical lines numbered from 1 in the order the hook yields them."""
    for line_no, (source, raw) in enumerate(raw_lines, start=1):
        yield normalize_line(header, line_no, source, raw)
