"""A JSON-lines batch read with Arrow exactly as a line-by-line normaliser reads it, or not at all.

Shared by the batch readers of Microsoft's billing lines (:mod:`include.providers.microsoft.vectorised`)
and daily-rated usage (:mod:`include.providers.microsoft.vectorised_usage`), each with its own lookup
table (``name -> lower-case provider keys, first non-blank wins``). Arrow matches keys by their exact
spelling, a normaliser case-insensitively and with every value type; so a reader takes a batch only
when both must agree (:func:`plan`, :func:`read`) and otherwise returns ``None``, and the batch goes
through the normaliser line by line, which also raises its own sentences for bad data.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from datetime import date
from decimal import Decimal
from typing import NamedTuple

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from include.exact_json import LineBatch


class Plan(NamedTuple):
    """How to read a batch: the schema every line must have, and the spelling of each key read."""

    schema: pa.Schema
    texts: dict[str, str]
    """Lower-case text key -> its spelling in the batch (only the keys present)."""
    amounts: dict[str, str]
    """Lower-case amount key -> its spelling in the batch (only the keys present)."""


def whole_lines(batch: LineBatch) -> bool:
    """A batch Arrow may read: lines, none blank (blank lines are rare: line by line), and no NUL byte (JSON
    holds none unescaped; an escaped one, ``\\u0000``, is found in the texts read: :func:`holds_nul`)."""
    return bool(batch.count) and batch.lines == batch.count and b"\x00" not in batch.content


def plan(
    first_line: bytes, text_keys: Collection[str], amount_keys: Collection[str], amount_type: pa.DataType
) -> Plan | None:
    """The :class:`Plan` of a batch from its first line (its keys, exactly as spelled); ``None`` if the first
    line already disagrees with the normaliser (unreadable, or two spellings of one key).

    :func:`read` uses ``unexpected_field_behavior="error"``: a key the first line lacks, or spelled another
    way, fails the read, so a key is read on every line exactly as the normaliser reads it. The keys read
    are text (or an exact amount of ``amount_type``); the others keep the types Arrow infers from the first
    line (integers widened to floats; a later value of another type fails the read, which only sends the
    batch line by line).
    """
    try:
        inferred = pj.read_json(pa.BufferReader(first_line)).schema
    except pa.ArrowInvalid:
        return None
    spellings = {name.lower(): name for name in inferred.names}
    if len(spellings) != len(inferred.names):  # two spellings of one key
        return None
    texts = {key: spellings[key] for key in text_keys if key in spellings}
    amounts = {key: spellings[key] for key in amount_keys if key in spellings}
    fields = []
    for field in inferred:
        key = field.name.lower()
        if key in amounts:
            field = field.with_type(amount_type)
        elif key in texts:
            field = field.with_type(pa.string())
        elif pa.types.is_integer(field.type):
            field = field.with_type(pa.float64())
        fields.append(field)
    return Plan(pa.schema(fields), texts, amounts)


def first_line(content: bytes) -> bytes:
    return content[: content.index(b"\n") + 1]


def read(content: bytes, schema: pa.Schema) -> pa.Table | None:
    """The batch as a table of ``schema``, or ``None`` when any line disagrees with it (another key or
    spelling, a value of another type, an amount finer than its scale)."""
    try:
        return pj.read_json(
            pa.BufferReader(content),
            read_options=pj.ReadOptions(use_threads=False, block_size=max(len(content), 1 << 20)),
            parse_options=pj.ParseOptions(explicit_schema=schema, unexpected_field_behavior="error"),
        )
    except pa.ArrowInvalid:
        return None


def holds_nul(table: pa.Table, texts: dict[str, str]) -> bool:
    """Whether a text read holds a NUL character (PostgreSQL text holds none: the normaliser's path refuses it).
    Searched in the texts read rather than in the batch's bytes: a fraction of them, and a NUL in a key
    nobody reads is staged nowhere."""
    return any(pc.any(pc.match_substring(table[name], "\x00")).as_py() for name in texts.values())


def wider_than(amounts: pa.Array, integer_digits: int) -> bool:
    """Whether an amount has more than ``integer_digits`` digits before the point: Arrow's JSON reader lets
    through more than its decimal type's precision (``decimal128(38, 16)`` reads 23 such digits), where the
    normaliser refuses them."""
    low, high = pc.min_max(amounts).values()
    return low.is_valid and max(-low.as_py(), high.as_py()) >= Decimal(10) ** integer_digits


def first_text(table: pa.Table, texts: dict[str, str], keys: Iterable[str]) -> pa.Array:
    """The first non-blank text of ``keys`` per line (blank: absent, null or ""), as the normaliser reads it."""
    found = [non_blank(table[texts[key]]) for key in keys if key in texts]
    if not found:
        return pa.nulls(table.num_rows, pa.string())
    return found[0] if len(found) == 1 else pc.coalesce(*found)


def non_blank(column: pa.ChunkedArray) -> pa.Array:
    column = column.combine_chunks()
    return pc.if_else(pc.equal(column, ""), pa.scalar(None, pa.string()), column)


def dates(texts: pa.Array, parse: Callable[[str], date | None]) -> pa.Array:
    """Each distinct text through the normaliser's date parser once; an unparsable one raises its error."""
    encoded = pc.dictionary_encode(texts)
    parsed = pa.array([parse(text) for text in encoded.dictionary.to_pylist()], pa.date32())
    return pc.take(parsed, encoded.indices)
