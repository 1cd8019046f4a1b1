"""Exact JSON (every non-integer number a ``Decimal``), and (gzip) JSON-lines exports cut into batches.

Kept free of Airflow and HTTP imports: the worker processes that parse and stage a large export's
batches (:mod:`include.staging`) import this module and nothing heavier. Any provider whose invoices
come as gzip JSON-lines files (Partner Center's v2 export today) reads them with
:func:`gzip_line_batches`.
"""

from __future__ import annotations

import json
import re
import zlib
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


_LINE_NOT_AN_OBJECT = re.compile(rb"\n[^{]")
"""A line end followed by a line that does not start with ``{``: one pass of a search for ``\\n``, about
three times faster than counting the ``\\n{`` pairs (a second pass over every batch of the export)."""


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
    def of(cls, source: str, origin: str, lines_before: int, content: bytes, lines: int | None = None) -> LineBatch:
        """``lines``: the line ends of ``content`` when the caller counted them already (a cutter does)."""
        lines = content.count(b"\n") if lines is None else lines
        # A line starting with "{" is not blank: when every line does (an export), no line needs decoding.
        if lines and content.startswith(b"{") and not _LINE_NOT_AN_OBJECT.search(content):
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


def gzip_line_batches(
    raw: Any,
    *,
    source: str,
    origin: str,
    batch_lines: int,
    read_errors: tuple[type[Exception], ...] = (),
) -> Iterator[LineBatch]:
    """The gzip JSON-lines stream ``raw`` (anything with ``read(n)``) as batches of ``batch_lines`` lines
    (the last one shorter).

    At most ``_CONTENT_SIZE`` of decompressed bytes and one batch are held at a time. A stream that
    cannot be read to its end (corrupt, truncated, or one of ``read_errors`` from the transport) raises
    :class:`InvalidProviderData` naming ``origin`` and the lines read, whatever was yielded before.
    """
    parts: list[bytes] = []  # whole lines not in a batch yet
    buffered = lines_before = 0
    try:
        for block in _line_blocks(_gunzip(raw)):
            lines = block.count(b"\n")
            while buffered + lines >= batch_lines:
                wanted = batch_lines - buffered
                cut = _after_line(block, wanted)
                yield LineBatch.of(source, origin, lines_before, b"".join((*parts, block[:cut])), batch_lines)
                lines_before += batch_lines
                block, lines = block[cut:], lines - wanted
                parts, buffered = [], 0
            if block:
                parts.append(block)
                buffered += lines
    except (EOFError, OSError, zlib.error, ValueError, *read_errors) as exc:
        raise InvalidProviderData(corrupt(origin, lines_before + buffered, exc)) from None
    if parts:
        yield LineBatch.of(source, origin, lines_before, b"".join(parts), buffered)


_READ_SIZE = 16 * 1024
"""Compressed bytes read from a blob at a time."""
_CONTENT_SIZE = 256 * 1024
"""At most this many decompressed bytes at a time, whatever the compression ratio."""


def _gunzip(raw: Any) -> Iterator[bytes]:
    """The decompressed content of the gzip stream ``raw``, in chunks, checked as :class:`gzip.GzipFile` checks it.

    Each member's CRC and length are verified by zlib (``zlib.error`` otherwise); several members are
    read one after another, zero bytes between or after members are skipped, anything else after a
    member must be another member; a stream that ends inside a member raises ``EOFError`` (truncated). An
    empty stream is empty content. One ``decompressobj`` call per ``_CONTENT_SIZE`` instead of GzipFile's
    Python-level reads of 8 KiB, which at a million lines is measurable.
    """
    decompressor = None
    started = False
    while data := raw.read(_READ_SIZE):
        while data:
            if decompressor is None:
                if started:
                    data = data.lstrip(b"\x00")
                    if not data:
                        break
                decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
                started = True
            while True:  # until zlib has taken all of data and given out all it can
                content = decompressor.decompress(data, _CONTENT_SIZE)
                if content:
                    yield content
                data = decompressor.unconsumed_tail
                if decompressor.eof or (not data and len(content) < _CONTENT_SIZE):
                    break
            if decompressor.eof:
                data, decompressor = decompressor.unused_data, None
    if decompressor is not None:
        raise EOFError("Compressed file ended before the end-of-stream marker was reached")


def _line_blocks(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """``chunks`` regrouped into blocks of whole lines, each line ending in ``\\n``, the way
    :class:`io.TextIOWrapper` reads lines (universal newlines: ``\\r\\n`` and ``\\r`` end a line too,
    and a last line without a line end is a line). Bytes stay bytes: a ``\\n`` or ``\\r`` byte never
    occurs inside a UTF-8 sequence, so the lines are cut right before anything is decoded."""
    pending: list[bytes] = []  # the start of a line that continues in the next chunk
    for chunk in chunks:
        end = chunk.rfind(b"\n") + 1
        if not end:
            pending.append(chunk)
            continue
        block = b"".join((*pending, chunk[:end])) if pending else chunk[:end]
        pending = [chunk[end:]] if end < len(chunk) else []
        yield _universal(block)
    if pending:
        rest = _universal(b"".join(pending))
        yield rest if rest.endswith(b"\n") else rest + b"\n"


def _universal(block: bytes) -> bytes:
    return block.replace(b"\r\n", b"\n").replace(b"\r", b"\n") if b"\r" in block else block


def _after_line(block: bytes, line: int) -> int:
    """The position just after the ``line``-th line end of ``block``."""
    position = 0
    for _ in range(line):
        position = block.index(b"\n", position) + 1
    return position
