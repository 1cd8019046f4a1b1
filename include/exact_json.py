"""Exact JSON (every non-integer number a ``Decimal``), and JSON-lines exports cut into batches.

Kept free of Airflow and HTTP imports: the worker processes that parse and stage a large export's
batches (:mod:`include.staging`) import this module and nothing heavier.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from include.model import InvalidProviderData


def _refuse_constant(name: str) -> Any:
    """NaN and Infinity are a provider's data error, not a cut-off body: refused, and never retried."""
    raise InvalidProviderData(f"{name} where a number belongs; JSON numbers must be finite.")


_EXACT_DECODER = json.JSONDecoder(parse_float=Decimal, parse_constant=_refuse_constant)
"""One decoder for every call: ``json.loads`` with options builds a new one (and its scanner) each time,
which is measurable when a million export lines are parsed one by one."""


_SCAN = _EXACT_DECODER.scan_once
_WHITESPACE = json.decoder.WHITESPACE.match


def loads_exact(text: str | bytes) -> Any:
    """JSON with every non-integer number as ``Decimal``; NaN/Infinity are refused, money must be finite."""
    if not isinstance(text, str):
        return json.loads(text, parse_float=Decimal, parse_constant=_refuse_constant)
    # What JSONDecoder.decode does, without its two Python-level calls per document when the text starts
    # with the value (an export line): scan the value at 0, then only whitespace may follow. Anything
    # else (leading whitespace, no value, extra data) goes through decode, which accepts or raises as usual.
    try:
        value, end = _SCAN(text, 0)
    except StopIteration:
        return _EXACT_DECODER.decode(text)
    if end == len(text) or _WHITESPACE(text, end).end() == len(text):
        return value
    return _EXACT_DECODER.decode(text)


def is_blank(text: str) -> bool:
    """A line with nothing to parse; JSON-lines files may have them, they are no line item."""
    return not text or text.isspace()


@dataclass(frozen=True)
class LineBatch:
    """Consecutive lines of one JSON-lines file, as UTF-8 bytes: cheap to hand to another process to parse.

    ``count`` (the non-blank lines, i.e. the line items) is known without parsing, so whoever numbers
    the invoice's lines can give the next batch its first line number before this one is parsed.
    """

    source: str
    """What the normaliser is told the lines come from, e.g. ``one_time/billing_line_items``."""
    origin: str
    """The file, for messages: ``Blob x.json.gz of the reconciliation export of invoice y``."""
    lines_before: int
    """Lines of the file before this batch."""
    content: bytes
    """Whole lines, each ending in ``\\n`` (other line ends already turned into ``\\n``)."""
    lines: int
    count: int

    @classmethod
    def of(cls, source: str, origin: str, lines_before: int, content: bytes) -> LineBatch:
        lines = content.count(b"\n")
        # A line starting with "{" is not blank: when every line does (an export), no line needs decoding.
        starting_an_object = content.startswith(b"{") + content.count(b"\n{")
        if starting_an_object == lines:
            count = lines
        else:
            count = sum(1 for text in _texts(content, origin, lines_before) if not is_blank(text))
        return cls(source, origin, lines_before, content, lines, count)

    def items(self) -> Iterator[tuple[str, dict]]:
        """``(source, line)`` for every non-blank line, parsed exactly; a malformed line names its file."""
        source = self.source
        texts = _texts(self.content, self.origin, self.lines_before)
        for lines_read, text in enumerate(texts, start=self.lines_before + 1):
            if is_blank(text):
                continue
            try:
                yield source, loads_exact(text)
            except ValueError as exc:
                raise InvalidProviderData(corrupt(self.origin, lines_read, exc)) from None


def _texts(content: bytes, origin: str, lines_before: int) -> list[str]:
    try:
        texts = content.decode("utf-8").split("\n")
    except UnicodeDecodeError as exc:
        lines_read = lines_before + content.count(b"\n", 0, exc.start) + 1
        raise InvalidProviderData(corrupt(origin, lines_read, exc)) from None
    texts.pop()  # what follows the last line end
    return texts


def corrupt(origin: str, lines_read: int, exc: Exception) -> str:
    """The one sentence for a file that cannot be read to its end."""
    return f"{origin} is truncated or corrupt after {lines_read} lines ({type(exc).__name__}: {exc})."
