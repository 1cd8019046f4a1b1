"""Reading a JSON-lines batch with Arrow only where it must agree with a line-by-line normaliser."""

from __future__ import annotations

from decimal import Decimal

import pyarrow as pa

from include.arrow_batches import first_text, holds_nul, plan, read, wider_than

AMOUNT = pa.decimal128(38, 16)
FIRST = b'{"Name":"a","Amount":1.5}\n'


def test_the_plan_reads_the_first_lines_spellings_and_types_what_is_read():
    planned = plan(b'{"Name":"a","Other":"b","Amount":1,"Count":2}\n', ("name", "missing"), ("amount",), AMOUNT)

    assert planned.texts == {"name": "Name"} and planned.amounts == {"amount": "Amount"}
    assert [str(field.type) for field in planned.schema] == ["string", "string", "decimal128(38, 16)", "double"]
    assert plan(b'{"Name":"a","name":"b"}\n', ("name",), (), AMOUNT) is None  # two spellings of one key
    assert plan(b"{not json\n", ("name",), (), AMOUNT) is None


def test_a_later_line_that_disagrees_with_the_plan_declines_the_batch():
    planned = plan(FIRST, ("name",), ("amount",), AMOUNT)
    agreeing = read(FIRST + b'{"Name":"","Amount":"2"}\n', planned.schema)

    assert agreeing["Amount"].to_pylist() == [Decimal("1.5"), Decimal("2")]
    assert first_text(agreeing, planned.texts, ("name",)).to_pylist() == ["a", None]  # blank is no text
    for later in (b'{"name":"b","Amount":1}', b'{"Name":1,"Amount":1}', b'{"Name":"b","Amount":0.12345678901234567}'):
        assert read(FIRST + later + b"\n", planned.schema) is None


def test_an_amount_wider_than_its_integer_digits_is_found():
    schema = pa.schema([("Amount", AMOUNT)])

    assert not wider_than(read(b'{"Amount":-1234567890123456789012.5}\n{"Amount":null}\n', schema)["Amount"], 22)
    assert wider_than(read(b'{"Amount":12345678901234567890123}\n', schema)["Amount"], 22)  # read, over 38 digits
    assert not wider_than(pa.nulls(2, AMOUNT), 22)


def test_a_nul_is_found_in_the_texts_read_only():
    planned = plan(b'{"Name":"a","Other":"b"}\n', ("name",), (), AMOUNT)
    in_a_text_read = b'{"Name":"a","Other":"b"}\n{"Name":"x\\u0000y","Other":"b"}\n'
    in_a_key_nobody_reads = b'{"Name":"a","Other":"b"}\n{"Name":"c","Other":"x\\u0000y"}\n'

    assert holds_nul(read(in_a_text_read, planned.schema), planned.texts)
    assert not holds_nul(read(in_a_key_nobody_reads, planned.schema), planned.texts)
