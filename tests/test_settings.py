"""The invoice_sync_settings variable: documented defaults, and one clear error per bad value."""

from __future__ import annotations

from decimal import Decimal

import pytest

from include.settings import InvalidSettings, ProviderSettings, parse_accounts, parse_settings

DEFAULT = ProviderSettings(Decimal("1"), None, "lines", account="partner_center_default")


def test_missing_keys_take_the_documented_defaults():
    assert parse_settings(None, "microsoft") == DEFAULT
    assert parse_settings('{"synnex": {"tax": "header"}}', "microsoft") == DEFAULT


def test_without_accounts_a_provider_has_one_its_default_connection():
    assert parse_accounts(None, "microsoft") == {"partner_center_default": DEFAULT}
    assert parse_accounts('{"synnex": {"tax": "header"}}', "synnex") == {
        "streamone_ion_default": ProviderSettings(tax="header", account="streamone_ion_default")
    }
    assert parse_settings(None, "microsoft", "partner_center_default") == DEFAULT


def test_accounts_inherit_the_provider_section_and_override_it():
    raw = """{"microsoft": {"usage_mismatch_tolerance": 1, "active_currencies": ["EUR"], "accounts": {
        "partner_center_emea": {"usage_mismatch_tolerance": 2.5},
        "partner_center_apac": {"active_currencies": ["AUD"], "usage_escalation_day": 15}}}}"""
    accounts = parse_accounts(raw, "microsoft")

    assert list(accounts) == ["partner_center_emea", "partner_center_apac"]  # the first is the default account
    emea, apac = accounts.values()
    assert (emea.account, emea.usage_mismatch_tolerance, emea.active_currencies) == (
        "partner_center_emea",
        Decimal("2.5"),
        ("EUR",),
    )
    assert (apac.usage_mismatch_tolerance, apac.active_currencies, apac.usage_escalation_day) == (
        Decimal("1"),
        ("AUD",),
        15,
    )
    assert parse_settings(raw, "microsoft") == emea
    assert parse_settings(raw, "microsoft", "partner_center_apac") == apac


def test_a_list_of_accounts_takes_the_provider_section_as_it_is():
    raw = '{"synnex": {"tax": "header", "accounts": ["ion_us", "ion_ca"]}}'
    assert parse_accounts(raw, "synnex") == {
        "ion_us": ProviderSettings(tax="header", account="ion_us"),
        "ion_ca": ProviderSettings(tax="header", account="ion_ca"),
    }


@pytest.mark.parametrize(
    "raw, message",
    [
        ('{"microsoft": {"accounts": []}}', "invoice_sync_settings.microsoft.accounts must name at least one"),
        ('{"microsoft": {"accounts": "pc_emea"}}', "invoice_sync_settings.microsoft.accounts must name at least one"),
        ('{"microsoft": {"accounts": ["a", 1]}}', "must name at least one connection: a list of connection ids, or"),
        ('{"microsoft": {"accounts": ["pc_emea", "pc_apac", "pc_emea"]}}', "accounts names pc_emea more than once."),
        (
            '{"microsoft": {"accounts": {"pc_emea": {}, "pc_emea": {"usage_mismatch_tolerance": 5}}}}',
            "Variable invoice_sync_settings names 'pc_emea' twice in one object.",
        ),
        (
            '{"microsoft": {"accounts": ["pc emea"]}}',
            "accounts names 'pc emea', which is not a connection id: letters, digits, _, . and - only",
        ),
        ('{"microsoft": {"accounts": {"pc_emea": {"tolerance": 2}}}}', "pc_emea has unknown key(s) tolerance."),
        ('{"microsoft": {"accounts": {"pc_emea": {"accounts": []}}}}', "accounts.pc_emea has unknown key(s) accounts."),
        ('{"microsoft": {"accounts": {"pc_emea": 2}}}', "accounts.pc_emea must be a JSON object of that account's"),
        (
            '{"microsoft": {"accounts": {"pc_emea": {"usage_mismatch_tolerance": -1}}}}',
            "invoice_sync_settings.microsoft.accounts.pc_emea.usage_mismatch_tolerance must be zero or more, got -1.",
        ),
        (
            '{"microsoft": {"accounts": ["shared"]}, "synnex": {"accounts": ["shared"]}}',
            "names connection shared as an account of both microsoft and synnex; a connection belongs to one provider.",
        ),
    ],
)
def test_bad_accounts_are_refused_with_one_sentence(raw, message):
    for provider in ("microsoft", "synnex"):  # any sync reads the whole variable
        with pytest.raises(InvalidSettings) as excinfo:
            parse_settings(raw, provider)
        assert message in str(excinfo.value)


def test_an_account_the_settings_do_not_name_is_refused_naming_the_accounts():
    raw = '{"microsoft": {"accounts": ["pc_emea", "pc_apac"]}}'
    with pytest.raises(InvalidSettings) as excinfo:
        parse_settings(raw, "microsoft", "pc_amer")
    assert str(excinfo.value) == (
        "'pc_amer' is not an account of Microsoft Partner Center: its accounts are pc_emea, pc_apac "
        "(the invoice_sync_settings variable names them)."
    )


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
