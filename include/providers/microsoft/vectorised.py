"""The normaliser's mapping applied to a whole JSON-lines batch at once, with Arrow, exactly.

The line-by-line normaliser (:mod:`.normaliser`) costs about 16 µs per export line in Python (exact
JSON parsing, the mapping, the ``COPY`` row); Arrow's JSON reader parses a batch in C at about 4 µs
per line, reading the amount straight into ``decimal128(24, 6)`` (exact: a JSON number is converted
from its text, and an amount finer than six places or wider than the column is refused). Everything
else is the normaliser's own: the keys come from its tables (``FAMILIES``, ``LINE_FIELDS``,
``CURRENCY_KEYS`` through ``_LOOKUPS``), first non-blank key wins, the category is its
``_category`` (called once per distinct combination of the texts it reads and the amount's sign), the
pre-tax amount its family's key (``subtotal``), the dates its
``parse_date`` (once per distinct text).

Arrow matches keys by their exact spelling, the normaliser case-insensitively and with every value
type; so this path takes a batch only when both must agree, and returns ``None`` otherwise, and the
batch goes through the normaliser line by line (which also raises its own sentences for bad data):
every line has only keys of the first line, spelled as there (:func:`include.arrow_batches.plan`), each
at most once; the keys read are text on every line, the amount a number present on every line; no NUL
character; the family of the batch's source is known, and every date parses.
"""

from __future__ import annotations

from decimal import Decimal

import pyarrow as pa
import pyarrow.compute as pc

from include.arrow_batches import dates, first_line, first_text, holds_nul, plan, read, whole_lines, wider_than
from include.exact_json import LineBatch
from include.model import MAX_INTEGER_DIGITS, MONEY_SCALE, InvalidProviderData, InvoiceHeader
from include.providers.microsoft.normaliser import _LOOKUPS, _cached_date, _category, _family
from include.sql.schema import LINE_COLUMNS

AMOUNT_TYPE = pa.decimal128(24, MONEY_SCALE)
"""The stage's ``NUMERIC(24, 6)``."""
_CATEGORY_INPUTS = (
    *("extra:reservation_order_id", "extra:publisher_name", "extra:credit_reason_code", "charge_type"),
    *("meter", "subscription_description", "term", "product_id", "description"),
)
"""The lookups :func:`_category` reads after the amount, in its argument order."""
_NEGATIVE = "-"
"""The sign input of :func:`_categories`: a refund is a negative amount."""
_TEXT_COLUMNS = {
    # staged column: the lookup it comes from
    "customer_id": "customer_id",
    "customer_name": "customer_name",
    "subscription_id": "subscription_id",
    "product_id": "product_id",
    "sku_id": "sku_id",
    "charge_type": "charge_type",
    "description": "description",
}
_DATE_COLUMNS = ("charge_start_date", "charge_end_date")
_TEXT_KEYS = tuple(
    dict.fromkeys(
        key
        for name in (*_TEXT_COLUMNS.values(), *_DATE_COLUMNS, "currency", *_CATEGORY_INPUTS)
        for key in _LOOKUPS[name]
    )
)
"""Every key (lower case) this path reads as text."""


def batch_table(header: InvoiceHeader, batch: LineBatch, first_line_no: int) -> pa.Table | None:
    """The batch's staged rows (``LINE_COLUMNS``) as an Arrow table, or ``None``: normalise it line by line."""
    family = _family(batch.source)
    if family is None or not whole_lines(batch):
        return None
    amount_key, pre_tax_key = family.amount_key.lower(), family.pre_tax_key.lower()
    planned = plan(first_line(batch.content), _TEXT_KEYS, (amount_key, pre_tax_key), AMOUNT_TYPE)
    if planned is None or amount_key not in planned.amounts:
        return None
    table = read(batch.content, planned.schema)
    amount_key, pre_tax_key = planned.amounts[amount_key], planned.amounts.get(pre_tax_key)
    if (
        table is None
        or table.num_rows != batch.count
        or table[amount_key].null_count
        or holds_nul(table, planned.texts)
    ):
        return None
    wide = [table[amount_key], *([table[pre_tax_key]] if pre_tax_key else [])]
    if any(wider_than(column.combine_chunks(), MAX_INTEGER_DIGITS) for column in wide):  # the normaliser refuses it
        return None
    texts = {name: _first_text(table, planned.texts, name) for name in {*_TEXT_COLUMNS.values(), *_CATEGORY_INPUTS}}
    try:
        parsed = {column: dates(_first_text(table, planned.texts, column), _cached_date) for column in _DATE_COLUMNS}
    except InvalidProviderData:
        return None
    rows = table.num_rows
    amount = table[amount_key].combine_chunks()
    sign = pc.if_else(pc.less(amount, pa.scalar(0, AMOUNT_TYPE)), _NEGATIVE, pa.scalar(None, pa.string()))
    columns = {
        "line_no": pa.array(range(first_line_no, first_line_no + rows), pa.int64()),
        "category": _categories(family.category, [sign, *(texts[name] for name in _CATEGORY_INPUTS)], rows),
        "amount": amount,
        "pre_tax_amount": table[pre_tax_key] if pre_tax_key else pa.nulls(rows, AMOUNT_TYPE),
        "currency_code": pc.fill_null(_first_text(table, planned.texts, "currency"), header.currency_code),
        **{column: texts[lookup] for column, lookup in _TEXT_COLUMNS.items()},
        **parsed,
        "source": pa.array([batch.source] * rows, pa.string()),
    }
    return pa.table([columns[name] for name in LINE_COLUMNS], names=list(LINE_COLUMNS))


def _first_text(table: pa.Table, texts: dict[str, str], lookup: str) -> pa.Array:
    """The lookup's first non-blank text per line, as the normaliser reads it."""
    return first_text(table, texts, _LOOKUPS[lookup])


def _categories(fixed: str | None, inputs: list[pa.Array], rows: int) -> pa.Array:
    """The family's category, or :func:`_category` of each distinct combination of its inputs (the first is
    the amount's sign: a refund is decided by it, a legacy fixed category never is on this path)."""
    if fixed is not None:
        return pa.array([fixed] * rows, pa.string())
    # "" never occurs in the inputs (blank is null), so filling nulls with it keeps every key distinct.
    names = [f"k{index}" for index in range(len(inputs))]
    keys = pa.table([pc.fill_null(column, "") for column in inputs], names=names)
    combos = keys.group_by(names, use_threads=False).aggregate([])
    category = [
        _category(Decimal(-1) if sign == _NEGATIVE else Decimal(0), *(text or None for text in texts))
        for sign, *texts in zip(*combos.to_pydict().values(), strict=True)
    ]
    lookup = combos.append_column("category", pa.array(category, pa.string()))
    keyed = keys.append_column("row", pa.array(range(rows), pa.int64()))
    joined = keyed.join(lookup, keys=names, join_type="inner", use_threads=False).sort_by("row")
    return joined["category"].combine_chunks()
