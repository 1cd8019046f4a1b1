"""Override rules: which tolerance a run uses, and one sentence for each way an override is wrong."""

from __future__ import annotations

from decimal import Decimal

import pytest

from include.checksum.tolerance import InvalidOverride, effective_tolerance, override_note, parse_override
from include.settings import ProviderSettings


@pytest.mark.parametrize(
    ("tolerance", "reason", "expected"),
    [
        (None, None, (None, None)),
        (None, "  why  ", (None, "why")),
        ("", "", (None, None)),
        (1329.7525, " credit note ", (Decimal("1329.7525"), "credit note")),
        ("0.01", "x", (Decimal("0.01"), "x")),
        (5, 42, (Decimal(5), "42")),
    ],
)
def test_good_overrides(tolerance, reason, expected):
    assert parse_override(tolerance, reason) == expected


@pytest.mark.parametrize(
    ("tolerance", "reason", "sentence"),
    [
        (5, None, "override_reason is required when override_tolerance is set."),
        (5, "   ", "override_reason is required when override_tolerance is set."),
        ("abc", "x", "override_tolerance must be a number, got 'abc'."),
        (True, "x", "override_tolerance must be a number, got True."),
        (0, "x", "override_tolerance must be a number greater than 0, got 0."),
        (-1, "x", "override_tolerance must be a number greater than 0, got -1."),
        ("NaN", "x", "override_tolerance must be a number greater than 0, got NaN."),
        ("Infinity", "x", "override_tolerance must be a number greater than 0, got Infinity."),
    ],
)
def test_bad_overrides_are_refused_with_one_sentence(tolerance, reason, sentence):
    with pytest.raises(InvalidOverride) as caught:
        parse_override(tolerance, reason)
    assert str(caught.value) == sentence


def test_the_override_is_rounded_up_to_whole_units_and_noted():
    settings = ProviderSettings(usage_mismatch_tolerance=Decimal("1"))
    assert effective_tolerance(settings, None) == Decimal(1)
    assert effective_tolerance(settings, Decimal("1329.7525")) == Decimal(1330)
    assert effective_tolerance(settings, Decimal("1330")) == Decimal(1330)
    assert (
        override_note(Decimal("1329.7525"), Decimal(1330), "ok") == "Override tolerance 1329.7525 (applied as 1330): ok"
    )
    assert override_note(None, Decimal(1), None) is None
