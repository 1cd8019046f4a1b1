"""Exact JSON parsing, and JSON-lines batches that are counted before they are parsed."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from include import exact_json
from include.exact_json import LineBatch, loads_exact
from include.model import InvalidProviderData


def test_json_numbers_are_decimal_and_non_finite_ones_are_refused():
    assert loads_exact('{"a": 0.1, "b": 2, "c": "3.30"}') == {"a": Decimal("0.1"), "b": 2, "c": "3.30"}
    with pytest.raises(ValueError, match="NaN"):
        loads_exact('{"a": NaN}')


@pytest.mark.parametrize(
    "text",
    ['{"a": 1.10}', '{"a": 1.10}  \n', '  {"a": 1.10}', '[1.5, "x"]\r\n', '"only a string"', "12.5", "-0.0"],
)
def test_exact_parse_agrees_with_the_json_module(text):
    assert loads_exact(text) == json.loads(text, parse_float=Decimal)


@pytest.mark.parametrize("text", ['{"a": 1} {"b": 2}', '{"a": 1', "", "   ", '{"a": 1}x'])
def test_exact_parse_refuses_what_the_json_module_refuses(text):
    with pytest.raises(json.JSONDecodeError):
        loads_exact(text)


TEXTS = ['{"n": 1, "amount": 0.10}', "", '{"n": 2, "amount": 0.20}', " \t", '{"n": 3, "amount": -0.30}']


def _content(texts: list[str]) -> bytes:
    return "".join(f"{text}\n" for text in texts).encode()


def test_a_batch_counts_its_items_without_parsing_and_skips_blank_lines():
    batch = LineBatch.of("one_time/billing_line_items", "Blob b1", 40, _content(TEXTS))
    assert (batch.lines, batch.count) == (5, 3)
    items = list(batch.items())
    assert [source for source, _ in items] == ["one_time/billing_line_items"] * 3
    assert [line["n"] for _, line in items] == [1, 2, 3]
    assert sum(line["amount"] for _, line in items) == Decimal(0)  # exact: 0.1 + 0.2 - 0.3 is not 0 in float


def test_a_malformed_line_names_its_file_and_position():
    batch = LineBatch.of("one_time/billing_line_items", "Blob b7", 40, _content([*TEXTS, '{"n": 4, "amount": ']))
    with pytest.raises(InvalidProviderData, match=r"^Blob b7 is truncated or corrupt after 46 lines \(JSONDecodeError"):
        list(batch.items())


def test_a_batch_of_objects_only_is_counted_without_decoding():
    texts = ['{"n": 1}', '{"n": 2, "name": "Zürich"}', '{"n": 3}']
    assert LineBatch.of("s", "Blob b2", 0, _content(texts)).count == 3
    assert LineBatch.of("s", "Blob b2", 0, _content([" ", *texts, "[1]"])).count == 4


def test_bytes_that_are_no_utf8_name_their_line():
    content = _content(['{"n": 1}', '{"n": 2}']) + b'{"n": "\xff"}\n'
    expected = r"^Blob b3 is truncated or corrupt after 13 lines \(UnicodeDecodeError"
    with pytest.raises(InvalidProviderData, match=expected):
        list(LineBatch.of("s", "Blob b3", 10, content).items())


@pytest.mark.parametrize(
    "text",
    [
        '{"a": 1}\n{"b": "Zürich"}\n',
        '{"a": 1}\r\n\r\n{"b": 2}\r\n',
        '{"a": 1}\r{"b": 2}\r',
        '{"a": 1}\n   \n{"b": "€"}',  # blank line, no line end after the last line
        "",
    ],
)
@pytest.mark.parametrize("chunk_size", [1, 3, 1000])
def test_blob_lines_are_cut_as_a_text_reader_cuts_them(text, chunk_size):
    import io

    data = text.encode()
    chunks = (data[i : i + chunk_size] for i in range(0, len(data), chunk_size))
    blocks = b"".join(exact_json._line_blocks(chunks))

    assert blocks.decode().split("\n")[:-1] == [line.rstrip("\n") for line in io.StringIO(text, newline=None)]


def test_gzip_line_batches_cut_a_stream_into_counted_batches_and_refuse_a_truncated_one():
    import gzip
    import io

    data = gzip.compress("".join(f'{{"n": {n}}}\n' for n in range(7)).encode())
    batches = list(exact_json.gzip_line_batches(io.BytesIO(data), source="s", origin="Blob b", batch_lines=3))

    assert [(b.lines_before, b.count) for b in batches] == [(0, 3), (3, 3), (6, 1)]
    assert [b.lines for b in batches] == [b.content.count(b"\n") for b in batches] == [3, 3, 1]  # counted once
    assert [line["n"] for b in batches for _, line in b.items()] == list(range(7))
    with pytest.raises(InvalidProviderData, match=r"^Blob b is truncated or corrupt after \d+ lines \(EOFError"):
        list(exact_json.gzip_line_batches(io.BytesIO(data[:-9]), source="s", origin="Blob b", batch_lines=3))


def test_gzip_line_batches_count_line_ends_of_any_kind_and_blank_lines_alike():
    import gzip
    import io

    data = gzip.compress(b'{"n": 1}\r\n\r\n{"n": 2}\r{"n": 3}\n   \n{"n": 4}')
    batches = list(exact_json.gzip_line_batches(io.BytesIO(data), source="s", origin="Blob b", batch_lines=2))

    assert [(b.lines, b.count) for b in batches] == [(2, 1), (2, 2), (2, 1)]
    assert [b.lines for b in batches] == [b.content.count(b"\n") for b in batches]
