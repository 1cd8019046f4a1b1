"""Microsoft Partner Center invoices and line items -> the canonical model.

Lines arrive as ``(source, raw)`` from :class:`plugins.hooks.partner_center.PartnerCenterHook`, where
``source`` is ``<billingProvider>/<invoiceLineItemType>``. Keys are matched case-insensitively, so
the PascalCase v2 export blobs and the camelCase v1 pages read alike.

The whole field mapping is the tables below: ``FAMILIES`` (amount and category per billing
provider), ``LINE_FIELDS`` (canonical field <- provider keys, first present wins), ``EXTRA_FIELDS``,
``CATEGORY_RULES`` (how a one-time line's category is decided, first rule that holds wins) and
``DOCUMENT_TYPES``. Amounts are the tax-inclusive line totals, the ones that add up to the header's
``totalCharges``.

The category rules were checked against Microsoft's documented sample responses (see
``tests/providers/test_microsoft_samples.py``, which names the source of each shape): a
``reservationOrderId`` is filled on Microsoft 365 and Power BI seat lines too, so it alone does not make
a reservation; older lines name the publisher ``providerName``; a ``meterDescription`` appears on seat,
reservation and third-party lines; and a refund ("Cancel", which is what "Refund" maps to) is negative.
"""

from __future__ import annotations

import functools
import hashlib
import json
import operator
from collections.abc import Callable, Iterable, Iterator
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
    pre_tax_key: str
    """The amount before tax (what daily-rated usage is compared with)."""
    category: str | None
    """None: decided per line by ``CATEGORY_RULES``; otherwise this, or ``credit`` for a refund."""
    declares: str
    """The category an ``invoiceDetails`` entry of this billing provider declares."""
    refunds: bool = False
    """Whether a refund line of this fixed-category provider is a ``credit`` (legacy licence refunds are)."""

    @property
    def amount_lookup(self) -> str:
        return _AMOUNT_LOOKUPS[self.amount_key]

    @property
    def pre_tax_lookup(self) -> str:
        return _AMOUNT_LOOKUPS[self.pre_tax_key]


FAMILIES = {
    "office": Family("totalForCustomer", "subtotal", "licence", "licence", refunds=True),  # LicenseBasedLineItem
    "azure": Family("postTaxTotal", "pretaxCharges", "usage", "usage"),  # legacy UsageBasedLineItem (145P)
    "one_time": Family("totalForCustomer", "subtotal", None, "one_time"),  # new commerce, v1 or v2 export
    "marketplace": Family("totalForCustomer", "subtotal", None, "marketplace"),  # legacy marketplace provider
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
    "order_id": ("orderid",),
    "reference_id": ("referenceid",),
    "reservation_order_id": ("reservationorderid",),
    "credit_reason_code": ("creditreasoncode",),
    "publisher_name": ("publishername", "providername"),
    "quantity": ("quantity",),
    "unit_price": ("unitprice",),
}
"""Provider ids kept in ``InvoiceLine.extra`` (as strings) for reconciliation by hand; older one-time
lines name the publisher ``providerName``."""

REFUND_CHARGE_TYPES = frozenset({"cancel", "refund"})
"""Microsoft maps the charge type Refund to Cancel; with a negative amount such a line gives money back."""
SEAT_PRODUCT_PREFIX = "CFQ7TTC0"
"""Product ids of Microsoft's seat-based new-commerce products (Microsoft 365, Power BI, Dynamics...)."""
AZURE_PLAN = "azure plan"
CATEGORY_RULES = (
    ("marketplace", "the publisher (publisherName, or providerName on older lines) is not Microsoft"),
    ("credit", "a refund: charge type Cancel or Refund and a negative amount"),
    ("credit", "a creditReasonCode, or the charge type customerCredit"),
    ("reserved_instance", "an Azure reservation product (its name says 'Reserved' or 'reservation')"),
    ("licence", f"a seat-based product (product id {SEAT_PRODUCT_PREFIX}...) or a '... commitment' term"),
    ("reserved_instance", "a reservationOrderId on a line that is no seat licence"),
    ("usage", "a meter (meterDescription) or an Azure plan subscription"),
    ("one_time", "anything else"),
)
"""How a one-time (or legacy marketplace) line's category is decided: the first rule that holds wins.
Implemented by :func:`_category`, in this order; the order matters (a third-party refund is marketplace,
a seat line with a reservationOrderId or a meter is a licence)."""

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


_AMOUNT_LOOKUPS = {
    key: f"amount:{key}" for family in FAMILIES.values() for key in (family.amount_key, family.pre_tax_key)
}
_LOOKUPS = {
    **LINE_FIELDS,
    "currency": CURRENCY_KEYS,
    **{f"extra:{name}": keys for name, keys in EXTRA_FIELDS.items()},
    "meter": ("meterdescription", "meterid"),
    "subscription_description": ("subscriptiondescription",),
    "term": ("termandbillingcycle",),
}
"""Every text lookup a line needs, as lower-case provider keys (first present wins). The category rules
also read the reservation order, publisher, credit reason, charge type, product id and description,
which are lookups here already."""
_NAMES = (
    *("customer_id", "customer_name", "subscription_id", "product_id", "sku_id", "charge_type"),
    *("charge_start_date", "charge_end_date", "description", "currency"),
    *(f"extra:{name}" for name in EXTRA_FIELDS),
    *("meter", "subscription_description", "term"),
)
"""The order :func:`normalize_line` unpacks the lookups in."""
if sorted(_NAMES) != sorted(_LOOKUPS):
    raise RuntimeError("_NAMES must list every lookup of _LOOKUPS exactly once")
_EXTRA_NAMES = tuple(EXTRA_FIELDS)
_ABSENT = -1
"""Index of the trailing ``None`` every line's text list gets: where a lookup with no key in the line reads."""


class _Reader(NamedTuple):
    """How to read every lookup of one key set; built once per distinct key set by :func:`_reader`."""

    values: Callable[[dict], tuple]
    """The line's values of every key some lookup reads, in one C call."""
    first: Callable[[list], tuple]
    """From the texts of those values: each lookup's first key's text, in ``_NAMES`` order."""
    fallbacks: tuple[tuple[int, tuple[int, ...]], ...]
    """``(position in _NAMES, indices of its further keys)`` for lookups with more than one key here."""
    amounts: dict[str, object]
    """Amount lookup -> the line's key for it."""


def _tuple_getter(keys: tuple) -> Callable:
    """``operator.itemgetter`` that always returns a tuple (itemgetter of one key returns the value)."""
    if not keys:
        return lambda _: ()
    if len(keys) == 1:
        key = keys[0]
        return lambda item: (item[key],)
    return operator.itemgetter(*keys)


@functools.lru_cache(maxsize=256)
def _reader(keys: tuple) -> _Reader:
    """The :class:`_Reader` of a key set (pages and blobs repeat theirs, so this runs a few times per invoice).

    Keys match case-insensitively; when a line has two spellings of one key the later one wins, as in a
    lower-cased copy of the line. ``keys`` are all of the line's keys, so every key read is present.
    """
    original = {str(key).lower(): key for key in keys}
    read: dict = {}  # the line's key -> its index in the values tuple
    per_lookup = []
    for name in _NAMES:
        present = [original[k] for k in _LOOKUPS[name] if k in original]
        per_lookup.append(tuple(read.setdefault(key, len(read)) for key in present))
    return _Reader(
        values=_tuple_getter(tuple(read)),
        first=_tuple_getter(tuple(indices[0] if indices else _ABSENT for indices in per_lookup)),
        fallbacks=tuple((pos, indices[1:]) for pos, indices in enumerate(per_lookup) if len(indices) > 1),
        amounts={lookup: original[key.lower()] for key, lookup in _AMOUNT_LOOKUPS.items() if key.lower() in original},
    )


def _texts(raw: dict, reader: _Reader) -> list:
    """Each lookup's first non-blank value as text, ``None`` where there is none, in ``_NAMES`` order."""
    # JSON gives str, int, Decimal, bool, list, dict or None; only None and "" are blank, and the text of
    # any other value is non-empty, so "first non-blank" is the first text that is not None.
    texts = [
        None if value is None or value == "" else value if value.__class__ is str else str(value)
        for value in reader.values(raw)
    ]
    texts.append(None)  # _ABSENT
    found = list(reader.first(texts))
    for pos, further in reader.fallbacks:
        if found[pos] is None:
            for index in further:
                if texts[index] is not None:
                    found[pos] = texts[index]
                    break
    return found


@functools.lru_cache(maxsize=4096)
def _cached_date(value: str):
    """:func:`parse_date`, remembered per string: a blob repeats a handful of charge dates."""
    return parse_date(value)


def _is_refund(charge_type: str | None, amount: Decimal) -> bool:
    return amount < 0 and (charge_type or "").lower() in REFUND_CHARGE_TYPES


def _category(
    amount: Decimal,
    reservation_order: str | None,
    publisher: str | None,
    credit_reason: str | None,
    charge_type: str | None,
    meter: str | None,
    subscription_description: str | None,
    term: str | None,
    product_id: str | None,
    product_name: str | None,
) -> str:
    """``CATEGORY_RULES`` applied to a line's non-blank texts (None: absent or blank), in their order."""
    if not _is_microsoft(publisher):
        return "marketplace"
    if _is_refund(charge_type, amount):
        return "credit"
    if credit_reason or (charge_type or "").lower() == "customercredit":
        return "credit"
    name = (product_name or "").lower()
    if name.startswith("reserved") or "reservation" in name:
        return "reserved_instance"
    if (product_id or "").upper().startswith(SEAT_PRODUCT_PREFIX) or "commitment" in (term or "").lower():
        return "licence"
    if reservation_order:
        return "reserved_instance"
    if meter or AZURE_PLAN in (subscription_description or "").lower():
        return "usage"
    return "one_time"


@functools.lru_cache(maxsize=64)
def _family(source: str) -> Family | None:
    return FAMILIES.get(source.split("/", 1)[0].lower())


def normalize_line(header: InvoiceHeader, line_no: int, source: str, raw: dict) -> InvoiceLine:
    """One raw line as an :class:`InvoiceLine`; a missing or non-numeric amount is refused."""
    family = _family(source)
    if family is None:
        raise InvalidProviderData(f"Line {line_no} of invoice {header.invoice_id} comes from unknown {source!r}.")
    reader = _reader(tuple(raw))
    (
        customer_id,
        customer_name,
        subscription_id,
        product_id,
        sku_id,
        charge_type,
        charge_start_date,
        charge_end_date,
        description,
        currency,
        order_id,
        reference_id,
        reservation_order_id,
        credit_reason_code,
        publisher_name,
        quantity,
        unit_price,
        meter,
        subscription_description,
        term,
    ) = found = _texts(raw, reader)
    amount_key = reader.amounts.get(family.amount_lookup)
    amount = raw.get(amount_key) if amount_key is not None else None
    if type(amount) is not Decimal or not amount.is_finite():  # noqa: E721  (exactly what the JSON parser makes)
        amount = parse_money(amount, field_name=f"{family.amount_key} of line {line_no} of invoice {header.invoice_id}")
    pre_tax_key = reader.amounts.get(family.pre_tax_lookup)
    pre_tax = raw.get(pre_tax_key) if pre_tax_key is not None else None
    if pre_tax is not None and pre_tax != "":
        where = f"{family.pre_tax_key} of line {line_no} of invoice {header.invoice_id}"
        pre_tax = (
            pre_tax if type(pre_tax) is Decimal and pre_tax.is_finite() else parse_money(pre_tax, field_name=where)
        )  # noqa: E721
    else:
        pre_tax = None
    if family.category is None:
        category = _category(
            amount,
            reservation_order_id,
            publisher_name,
            credit_reason_code,
            charge_type,
            meter,
            subscription_description,
            term,
            product_id,
            description,
        )
    else:
        category = "credit" if family.refunds and _is_refund(charge_type, amount) else family.category
    return InvoiceLine(
        line_no,
        category,
        amount,
        currency or header.currency_code,
        customer_id,
        customer_name,
        subscription_id,
        product_id,
        sku_id,
        charge_type,
        None if charge_start_date is None else _cached_date(charge_start_date),
        None if charge_end_date is None else _cached_date(charge_end_date),
        description,
        source,
        pre_tax,
        {name: text for name, text in zip(_EXTRA_NAMES, found[10:17], strict=True) if text is not None},
    )


def normalize_lines(
    header: InvoiceHeader, raw_lines: Iterable[tuple[str, dict]], first_line_no: int = 1
) -> Iterator[InvoiceLine]:
    """Canonical lines numbered from ``first_line_no`` (a later batch of the invoice) in the order given."""
    for line_no, (source, raw) in enumerate(raw_lines, start=first_line_no):
        yield normalize_line(header, line_no, source, raw)


def normalize_batch(header: InvoiceHeader, batch, first_line_no: int):
    """A whole JSON-lines batch as an Arrow table of staged rows, or ``None``: then :func:`normalize_lines`.

    Same mapping, same values, at a quarter of the cost per line (:mod:`.vectorised`); imported only here,
    so the line-by-line path never loads Arrow.
    """
    from include.providers.microsoft.vectorised import batch_table

    return batch_table(header, batch, first_line_no)
