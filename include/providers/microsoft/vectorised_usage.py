"""The daily-rated usage mapping (:mod:`.usage`) applied to a whole JSON-lines batch at once, with Arrow, exactly.

Line by line, a billed-usage export line costs about 55 µs (exact JSON parsing, the mapping, each amount's
check, the ``COPY`` row); Arrow parses a batch in C, the three amounts straight into ``decimal128(38, 16)``
(a JSON number is converted from its text; one finer than ``USAGE_SCALE`` places fails the read). The keys
come from ``USAGE_FIELDS`` (first non-blank wins), the usage date from the normaliser's ``parse_date`` (once
per distinct text), the currency is upper-cased (once per distinct text) and defaults to the header's.

A batch is taken only where Arrow and :func:`.usage.normalize_usage_line` must agree
(:mod:`include.arrow_batches`); otherwise, and for anything :func:`include.sql.usage.append_usage` would
refuse (a ``billingPreTaxTotal`` missing, an amount wider than ``USAGE_PRECISION`` digits, which Arrow lets
through, a text longer than its column, a date that does not parse), this returns ``None`` and the batch goes
line by line, which raises the sentence.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from include.arrow_batches import dates, first_line, first_text, holds_nul, plan, read, whole_lines, wider_than
from include.daily_usage import USAGE_PRECISION, USAGE_SCALE
from include.exact_json import LineBatch
from include.model import InvalidProviderData, InvoiceHeader, parse_date
from include.providers.microsoft.usage import AMOUNT_FIELDS, USAGE_FIELDS
from include.sql.schema import USAGE_COLUMNS, provider_invoice_usage_line, text_limits

USAGE_AMOUNT_TYPE = pa.decimal128(USAGE_PRECISION, USAGE_SCALE)
_INTEGER_DIGITS = USAGE_PRECISION - USAGE_SCALE
_TEXT_FIELDS = tuple(name for name in USAGE_FIELDS if name not in AMOUNT_FIELDS)
_TEXT_KEYS = tuple(dict.fromkeys(key for name in _TEXT_FIELDS for key in USAGE_FIELDS[name]))
_AMOUNT_KEYS = tuple(dict.fromkeys(key for name in AMOUNT_FIELDS for key in USAGE_FIELDS[name]))
_LIMITS = {
    column: limit for column, limit in text_limits(provider_invoice_usage_line).items() if column in USAGE_COLUMNS
}


def usage_table(header: InvoiceHeader, batch: LineBatch, first_line_no: int) -> pa.Table | None:
    """The batch's staged usage rows (``USAGE_COLUMNS``) as an Arrow table, or ``None``: normalise it line by line."""
    if not whole_lines(batch):
        return None
    planned = plan(first_line(batch.content), _TEXT_KEYS, _AMOUNT_KEYS, USAGE_AMOUNT_TYPE)
    if planned is None:
        return None
    table = read(batch.content, planned.schema)
    if table is None or table.num_rows != batch.count or holds_nul(table, planned.texts):
        return None
    amounts = {name: _first_amount(table, planned.amounts, USAGE_FIELDS[name]) for name in AMOUNT_FIELDS}
    if amounts["billing_pre_tax_total"].null_count or any(
        wider_than(amount, _INTEGER_DIGITS) for amount in amounts.values()
    ):
        return None
    texts = {name: first_text(table, planned.texts, USAGE_FIELDS[name]) for name in _TEXT_FIELDS}
    try:
        usage_date = dates(texts.pop("usage_date"), parse_date)
    except InvalidProviderData:
        return None
    rows = table.num_rows
    columns = {
        "line_no": pa.array(range(first_line_no, first_line_no + rows), pa.int64()),
        **texts,
        "usage_date": usage_date,
        **amounts,
        "currency_code": _upper(pc.fill_null(texts["currency_code"], header.currency_code)),
    }
    if any(_longest(columns[column]) > limit for column, limit in _LIMITS.items()):
        return None
    return pa.table([columns[name] for name in USAGE_COLUMNS], names=list(USAGE_COLUMNS))


def _first_amount(table: pa.Table, amounts: dict[str, str], keys: tuple[str, ...]) -> pa.Array:
    """The first present amount of ``keys`` per line (a blank text is no decimal: Arrow already refused it)."""
    found = [table[amounts[key]].combine_chunks() for key in keys if key in amounts]
    if not found:
        return pa.nulls(table.num_rows, USAGE_AMOUNT_TYPE)
    return found[0] if len(found) == 1 else pc.coalesce(*found)


def _upper(texts: pa.Array) -> pa.Array:
    """Python's ``str.upper`` of each distinct text (the normaliser's; Arrow's differs on a few letters)."""
    encoded = pc.dictionary_encode(texts)
    upper = pa.array([text.upper() for text in encoded.dictionary.to_pylist()], pa.string())
    return pc.take(upper, encoded.indices)


def _longest(column: pa.Array) -> int:
    return pc.max(pc.utf8_length(column)).as_py() or 0
