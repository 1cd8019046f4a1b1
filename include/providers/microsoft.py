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

import functools
import hashlib
import json
from collections.abc import Iterable, Iterator
from decimal import Decimal
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

    @property
    def amount_lookup(self) -> str:
        return _AMOUNT_LOOKUPS[self.amount_key]


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


_AMOUNT_LOOKUPS = {family.amount_key: f"amount:{family.amount_key}" for family in FAMILIES.values()}
_LOOKUPS = {
    **LINE_FIELDS,
    "currency": CURRENCY_KEYS,
    **{f"extra:{name}": (key,) for name, key in EXTRA_FIELDS.items()},
    **{lookup: (key.lower(),) for key, lookup in _AMOUNT_LOOKUPS.items()},
    "reservation_order": ("reservationorderid",),
    "publisher": ("publishername",),
    "credit_reason": ("creditreasoncode",),
    "charge_kind": ("chargetype",),
    "meter": ("meterdescription", "meterid"),
    "subscription_description": ("subscriptiondescription",),
    "term": ("termandbillingcycle",),
}
"""Every lookup a line needs, as lower-case provider keys (first present wins)."""
_EXTRA_LOOKUPS = tuple((name, f"extra:{name}") for name in EXTRA_FIELDS)


@functools.lru_cache(maxsize=256)
def _key_plan(keys: tuple) -> tuple[tuple[tuple[str, tuple], ...], object]:
    """``((lookup name, the line's own keys for it), ...)`` for the lookups this key set can answer,
    and the line's key of each amount lookup.

    Computed once per distinct key set (pages and blobs repeat theirs). Keys match case-insensitively;
    when a line has two spellings of one key the later one wins, as in a lower-cased copy of the line.
    """
    original = {str(key).lower(): key for key in keys}
    plan = ((name, tuple(original[k] for k in wanted if k in original)) for name, wanted in _LOOKUPS.items())
    found = tuple((name, keys) for name, keys in plan if keys)
    amounts = set(_AMOUNT_LOOKUPS.values())
    return tuple((n, k) for n, k in found if n not in amounts), {n: k[0] for n, k in found if n in amounts}


def _texts(raw: dict, plan: tuple[tuple[str, tuple], ...]) -> dict[str, str]:
    """Lookup name -> the first non-blank value among its keys, as text (absent lookups are left out)."""
    texts = {}
    for name, keys in plan:
        for key in keys:
            value = raw.get(key)
            if value is not None and value != "":
                texts[name] = value if type(value) is str else str(value)  # noqa: E721
                break
    return texts


@functools.lru_cache(maxsize=4096)
def _cached_date(value: str):
    return parse_date(value)


def _date(value: str | None):
    """:func:`parse_date`, remembered per string: a blob repeats a handful of charge dates."""
    return None if value is None else _cached_date(value)


def _one_time_category(texts: dict[str, str]) -> str:
    """Category of a new-commerce line; the order matters (an RI credit is an RI, a third-party credit
    is marketplace)."""
    if texts.get("reservation_order"):
        return "reserved_instance"
    if not _is_microsoft(texts.get("publisher")):
        return "marketplace"
    if texts.get("credit_reason") or texts.get("charge_kind", "").lower() == "customercredit":
        return "credit"
    if texts.get("meter") or "azure plan" in texts.get("subscription_description", "").lower():
        return "usage"
    if "commitment" in texts.get("term", "").lower():
        return "licence"
    return "one_time"


def normalize_line(header: InvoiceHeader, line_no: int, source: str, raw: dict) -> InvoiceLine:
    """One raw line as an :class:`InvoiceLine`; a missing or non-numeric amount is refused."""
    family = FAMILIES.get(source.split("/", 1)[0].lower())
    if family is None:
        raise InvalidProviderData(f"Line {line_no} of invoice {header.invoice_id} comes from unknown {source!r}.")
    plan, amount_keys = _key_plan(tuple(raw))
    texts = _texts(raw, plan)
    amount_key = amount_keys.get(family.amount_lookup)
    amount = raw.get(amount_key) if amount_key is not None else None
    if type(amount) is not Decimal or not amount.is_finite():  # noqa: E721  (exactly what the JSON parser makes)
        amount = parse_money(amount, field_name=f"{family.amount_key} of line {line_no} of invoice {header.invoice_id}")
    get = texts.get
    return InvoiceLine(
        line_no=line_no,
        category=family.category or _one_time_category(texts),
        amount=amount,
        currency_code=get("currency") or header.currency_code,
        customer_id=get("customer_id"),
        customer_name=get("customer_name"),
        subscription_id=get("subscription_id"),
        product_id=get("product_id"),
        sku_id=get("sku_id"),
        charge_type=get("charge_type"),
        charge_start_date=_date(get("charge_start_date")),
        charge_end_date=_date(get("charge_end_date")),
        description=get("description"),
        source=source,
        extra={name: texts[lookup] for name, lookup in _EXTRA_LOOKUPS if lookup in texts},
    )


def normalize_lines(header: InvoiceHeader, raw_lines: Iterable[tuple[str, dict]]) -> Iterator[InvoiceLine]:
    """Canonical lines numbered from 1 in the order the hook yields them."""
    for line_no, (source, raw) in enumerate(raw_lines, start=1):
        yield normalize_line(header, line_no, source, raw)
