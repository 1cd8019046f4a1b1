"""The GX suite run: exact at tolerance 0 where a float sum is not, and a Data Docs page per run."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest

from include.checksum.validation import validate_lines
from include.model import to_micros

# Ten 0.1s, and cents that binary floats cannot hold: summed as floats they miss the header.
AMOUNTS = [Decimal("0.1")] * 10 + [Decimal("1329.7525"), Decimal("-0.07"), Decimal("0.01")] * 300
HEADER_TOTAL = sum(AMOUNTS)


def _frame(amounts=AMOUNTS) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "line_no": range(1, len(amounts) + 1),
            "category": ["usage"] * len(amounts),
            "currency_code": ["EUR"] * len(amounts),
            "amount_micros": [to_micros(a) for a in amounts],
        }
    )


def _validate(frame, header_total, tolerance, tmp_path: Path):
    return validate_lines(
        "microsoft.json",
        frame,
        header_total_micros=to_micros(header_total),
        tolerance_micros=to_micros(tolerance),
        invoice_currencies=["EUR"],
        validation_name="G1",
        run_name="test",
        docs_dir=tmp_path,
    )


def test_float_summation_would_get_this_wrong():
    assert sum(float(a) for a in AMOUNTS) != float(HEADER_TOTAL)


def test_exact_sum_passes_at_tolerance_zero(tmp_path):
    outcome = _validate(_frame(), HEADER_TOTAL, Decimal(0), tmp_path)

    assert outcome.success, outcome.failed_expectations
    assert outcome.observed_sum_micros == to_micros(HEADER_TOTAL)
    page = Path(outcome.data_docs_page.removeprefix("file://"))
    assert page.is_file() and tmp_path in page.parents


def test_one_micro_off_fails_at_tolerance_zero(tmp_path):
    outcome = _validate(_frame(), HEADER_TOTAL + Decimal("0.000001"), Decimal(0), tmp_path)

    assert not outcome.success
    assert outcome.failed_expectations == ("expect_column_sum_to_be_between",)


@pytest.mark.parametrize("tolerance, passes", [(Decimal("0.99"), False), (Decimal("1"), True)])
def test_tolerance_is_inclusive(tmp_path, tolerance, passes):
    assert _validate(_frame(), HEADER_TOTAL + 1, tolerance, tmp_path).success is passes


def test_foreign_currency_and_duplicate_lines_fail_the_suite(tmp_path):
    frame = _frame()
    frame.loc[3, "currency_code"] = "USD"
    frame.loc[5, "line_no"] = 1
    outcome = _validate(frame, HEADER_TOTAL, Decimal(1), tmp_path)

    assert set(outcome.failed_expectations) == {
        "expect_column_values_to_be_in_set",
        "expect_column_values_to_be_unique",
    }


def test_each_validation_keeps_its_data_docs_page(tmp_path):
    pages = [Path(_validate(_frame(), HEADER_TOTAL, Decimal(0), tmp_path).data_docs_page[7:]) for _ in range(3)]

    assert len(set(pages)) == 3
    assert all(page.is_file() for page in pages)  # earlier pages survive later site builds
