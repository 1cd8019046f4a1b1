"""A GX expectation that adds Decimals exactly: the column's sum lies within ``tolerance`` of ``target``.

GX's own ``expect_column_sum_to_be_between`` turns Decimals into floats before it sums, and its bounds
pass through float as well, so it is exact only for integers below 2**53. Daily-rated usage carries 16
decimals, where that limit is 0.9 currency units. This expectation sums the column's Decimals in a
context that raises instead of rounding, and takes ``target`` and ``tolerance`` as decimal strings (a
run-time parameter that is a bare name is substituted as it is, so no float ever holds them).
"""

from __future__ import annotations

import decimal
from decimal import Decimal
from typing import ClassVar

from great_expectations.core.suite_parameters import SuiteParameterDict
from great_expectations.execution_engine import PandasExecutionEngine
from great_expectations.expectations.expectation import ColumnAggregateExpectation
from great_expectations.expectations.metrics.column_aggregate_metric_provider import (
    ColumnAggregateMetricProvider,
    column_aggregate_value,
)

_EXACT = decimal.Context(prec=80, traps=[decimal.Inexact, decimal.Overflow, decimal.InvalidOperation])


def exact_decimal_sum(values) -> Decimal:
    """The exact sum of ``values`` (Decimals, ints or decimal strings); raises rather than round."""
    total = Decimal(0)
    for value in values:
        total = _EXACT.add(total, value if isinstance(value, Decimal) else Decimal(str(value)))
    return total


class ColumnExactDecimalSum(ColumnAggregateMetricProvider):
    """``column.exact_decimal_sum``: the column's exact sum as a decimal string (JSON-safe, no float)."""

    metric_name = "column.exact_decimal_sum"

    @column_aggregate_value(engine=PandasExecutionEngine)
    def _pandas(cls, column, **kwargs):
        return str(exact_decimal_sum(column))


class ExpectColumnExactSumToBeWithin(ColumnAggregateExpectation):
    """Expect the exact sum of the column's decimals to lie within ``tolerance`` of ``target`` (both strings)."""

    target: str | SuiteParameterDict
    tolerance: str | SuiteParameterDict

    library_metadata: ClassVar[dict] = {"maturity": "experimental", "tags": ["exact money"], "contributors": []}
    metric_dependencies = ("column.exact_decimal_sum",)
    success_keys = ("target", "tolerance")
    args_keys = ("column", "target", "tolerance")

    def _validate(self, metrics: dict, runtime_configuration: dict | None = None, execution_engine=None) -> dict:
        observed = Decimal(metrics["column.exact_decimal_sum"])
        target, tolerance = Decimal(str(self.target)), Decimal(str(self.tolerance))
        difference = _EXACT.subtract(target, observed)
        return {
            "success": abs(difference) <= tolerance,
            "result": {"observed_value": str(observed), "details": {"difference": str(difference)}},
        }
