"""The invoice_sync_settings variable: documented defaults, and one clear error per bad value."""

from __future__ import annotations

from decimal import Decimal

import pytest

from include.settings import InvalidSettings, ProviderSettings, parse_settings


def test_missing_keys_take_the_documented_defaults():
    assert parse_settings(None, "microsoft") == ProviderSettings(Decimal("1"), None, "lines")
    assert parse_settings('{"synnex": {"tax": "header"}}', "microsoft") == ProviderSettings()


def test_usage_escalation_day_defaults_to_11_and_is_read():
    assert ProviderSettings().usage_escalation_day == 11
    assert parse_settings('{"microsoft": {"usage_escalation_day": 20}}', "microsoft").usage_escalation_day == 20


def test_values_are_read_exactly():
    settings = parse_settings(
        '{"microsoft": {"usage_mismatch_tolerance": 0.1, "active_currencies": ["eur", "USD"], "tax": "header"}}',
        "microsoft",
    )
    assert settings.usage_mismatch_tolerance == Decimal("0.1")  # not 0.1000000000000000055...
    assert settings.currency_is_active("EUR") and not settings.currency_is_active("CHF")
    assert settings.tax == "header"


@pytest.mark.parametrize(
    "raw, message",
    [
        ("{not json", "is not valid JSON"),
        ("[1, 2]", "must be a JSON object keyed by provider"),
        ('{"microsoft": 5}', "invoice_sync_settings.microsoft must be a JSON object"),
        ('{"microsoft": {"tolerance": 1}}', "invoice_sync_settings.microsoft has unknown key(s) tolerance"),
        ('{"microsoft": {"usage_mismatch_tolerance": -1}}', "usage_mismatch_tolerance must be zero or more, got -1"),
        ('{"microsoft": {"usage_mismatch_tolerance": "lots"}}', "usage_mismatch_tolerance must be a number"),
        ('{"microsoft": {"usage_mismatch_tolerance": true}}', "usage_mismatch_tolerance must be a number"),
        ('{"microsoft": {"active_currencies": "EUR"}}', "active_currencies must be a list of three-letter ISO"),
        ('{"microsoft": {"active_currencies": ["EURO"]}}', "active_currencies must be a list of three-letter ISO"),
        ('{"microsoft": {"tax": "sometimes"}}', "invoice_sync_settings.microsoft.tax must be one of lines, header"),
        ('{"microsoft": {"stage_processes": 0}}', "stage_processes must be a whole number of 1 or more, got 0"),
        (
            '{"microsoft": {"usage_escalation_day": 0}}',
            "usage_escalation_day must be a day of the month (1 to 31), got 0",
        ),
        ('{"microsoft": {"usage_escalation_day": 32}}', "usage_escalation_day must be a day of the month"),
        ('{"microsoft": {"usage_escalation_day": "11"}}', "usage_escalation_day must be a day of the month"),
        ('{"microsoft": {"stage_processes": 2.5}}', "stage_processes must be a whole number of 1 or more, got"),
        ('{"microsoft": {"stage_parallel_from_lines": "10k"}}', "stage_parallel_from_lines must be a whole number"),
    ],
)
def test_bad_settings_name_the_key_and_the_reason(raw, message):
    with pytest.raises(InvalidSettings) as excinfo:
        parse_settings(raw, "microsoft")
    assert message in str(excinfo.value)
