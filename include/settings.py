"""Per-provider settings from the ``invoice_sync_settings`` Airflow Variable, validated when read.

Example value::

    {"microsoft": {"usage_mismatch_tolerance": 0, "active_currencies": ["EUR", "USD"], "tax": "lines"}}

Provider sections must be named after a provider of :mod:`include.providers`; any other section (a
misspelt ``"microsfot"``) is refused rather than silently ignored. Keys and defaults (per provider):

- ``usage_mismatch_tolerance`` (number >= 0, default 1): the largest |header - detail| that still passes;
  at most six decimals (the money scale) and at most ``MAX_TOLERANCE``.
- ``active_currencies`` (list of ISO 4217 codes, default: every currency is active): an invoice in a
  currency outside the list is not activated.
- ``tax`` (``"lines"`` or ``"header"``, default ``"lines"``): ``"lines"`` means the lines carry the tax
  the header total includes; ``"header"`` means the provider states tax/levies on the header only, and
  the header tax is added to the detail total as category ``tax``.
- ``stage_processes`` (integer >= 1, default: one per core, under the CeleryExecutor the cores divided by
  ``[celery] worker_concurrency``): how many processes parse and stage a large JSON-lines export on
  PostgreSQL (:func:`include.staging.default_processes`); 1 keeps it in the task's own process.
- ``stage_parallel_from_lines`` (integer >= 1, default 20000): the size from which an export is large.
- ``usage_escalation_day`` (whole number 1-31, default 11): from this day of the month after the billing
  period, a failing usage checksum (daily-rated usage against the reconciliation lines) needs attention in
  the daily mail and fires the optional alert; before it, it is retried by the next scheduled run. In a
  shorter month the last day stands in for a later one.
- ``accounts`` (default: one account, the provider's ``_default`` connection): the provider accounts the sync
  lists, each an Airflow connection, e.g. one Partner Center account per CSP region. Either a list of
  connection ids, or an object of connection id -> that account's own values of the keys above, which override
  the provider section's (the rest is inherited)::

      {"microsoft": {"usage_mismatch_tolerance": 1, "accounts": {
          "partner_center_emea": {"usage_mismatch_tolerance": 2},
          "partner_center_apac": {"active_currencies": ["AUD", "JPY"]}}}}

  The first account is the provider's default account (a manual sync that names none). The connection id is
  the account's identity in the invoice database (``provider_invoice.account``): an invoice stays with the
  account it was first imported from, so keep a connection's id when you change its credentials.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

SETTINGS_VARIABLE = "invoice_sync_settings"
TAX_MODES = ("lines", "header")
_CURRENCY = re.compile(r"^[A-Z]{3}$")
MAX_TOLERANCE = Decimal(1_000_000)
"""A tolerance above this would let any plausible invoice pass: a typo, not a setting."""
ACCOUNT_ID_PATTERN = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}"
"""An account's connection id: letters, digits, ``_``, ``.`` and ``-``, at most 64 characters (the database column)."""
_KEYS = (
    "usage_mismatch_tolerance",
    "active_currencies",
    "tax",
    "stage_processes",
    "stage_parallel_from_lines",
    "usage_escalation_day",
)


class InvalidSettings(ValueError):
    pass


@dataclass(frozen=True)
class ProviderSettings:
    """One account's settings: the provider section's values, overridden by the account's own."""

    usage_mismatch_tolerance: Decimal = Decimal("1")
    active_currencies: tuple[str, ...] | None = None
    """``None`` means every currency is active."""
    tax: str = "lines"
    stage_processes: int | None = None
    """``None`` means :func:`include.staging.default_processes`."""
    stage_parallel_from_lines: int = 20_000
    usage_escalation_day: int = 11
    account: str | None = None
    """The connection id of the account; ``None`` only where no account is meant (a settings object built by hand)."""

    def currency_is_active(self, currency_code: str) -> bool:
        return self.active_currencies is None or currency_code.upper() in self.active_currencies


def parse_settings(raw: str | dict | None, provider: str, account: str | None = None) -> ProviderSettings:
    """The settings of ``provider``'s ``account`` (default: its first account); a bad value fails naming the key
    and the reason, an account the settings do not name fails naming the provider's accounts."""
    accounts = parse_accounts(raw, provider)
    if account is None:
        return next(iter(accounts.values()))
    if account not in accounts:
        from include.providers import get_provider

        raise InvalidSettings(
            f"{account!r} is not an account of {get_provider(provider).display_name}: its accounts are "
            f"{', '.join(accounts)} (the {SETTINGS_VARIABLE} variable names them)."
        )
    return accounts[account]


def parse_accounts(raw: str | dict | None, provider: str) -> dict[str, ProviderSettings]:
    """Connection id -> settings of every account of ``provider``, in the order the variable names them.

    Every section is validated, whichever provider's sync reads the variable, and no connection may be an
    account of two providers (its hooks would read one API as another's).
    """
    from include.providers import PROVIDERS

    raw = _variable(raw)
    unknown_sections = sorted(set(raw) - set(PROVIDERS))
    if unknown_sections:
        raise InvalidSettings(
            f"Variable {SETTINGS_VARIABLE} has unknown provider section(s) {', '.join(map(repr, unknown_sections))}: "
            f"the providers are {', '.join(sorted(PROVIDERS))}."
        )
    everyone = {name: _accounts(raw.get(name, {}), name) for name in PROVIDERS}
    owner: dict[str, str] = {}
    for name, accounts in everyone.items():
        for conn_id in accounts:
            if owner.setdefault(conn_id, name) != name:
                raise InvalidSettings(
                    f"Variable {SETTINGS_VARIABLE} names connection {conn_id} as an account of both "
                    f"{owner[conn_id]} and {name}; a connection belongs to one provider."
                )
    return everyone[provider]


def _variable(raw: str | dict | None) -> dict:
    """The variable's JSON object; a key twice in one object is refused (JSON would silently keep the last)."""
    if raw in (None, ""):
        return {}
    if isinstance(raw, str):
        try:
            raw = json.loads(raw, parse_float=Decimal, object_pairs_hook=_unique_keys)
        except json.JSONDecodeError as err:
            raise InvalidSettings(f"Variable {SETTINGS_VARIABLE} is not valid JSON: {err}.") from None
    if not isinstance(raw, dict):
        raise InvalidSettings(f"Variable {SETTINGS_VARIABLE} must be a JSON object keyed by provider.")
    return raw


def _unique_keys(pairs: list[tuple[str, object]]) -> dict:
    seen: dict = {}
    for key, value in pairs:
        if key in seen:
            raise InvalidSettings(f"Variable {SETTINGS_VARIABLE} names {key!r} twice in one object.")
        seen[key] = value
    return seen


def _accounts(section: object, provider: str) -> dict[str, ProviderSettings]:
    """One provider's section: its accounts, each with the section's values overridden by its own."""
    from include.providers import get_provider

    where = f"{SETTINGS_VARIABLE}.{provider}"
    if not isinstance(section, dict):
        raise InvalidSettings(f"{where} must be a JSON object.")
    inherited = _values({k: v for k, v in section.items() if k != "accounts"}, where)
    default = get_provider(provider).conn_id
    accounts = section.get("accounts", [default])
    where = f"{where}.accounts"
    if isinstance(accounts, list) and all(isinstance(conn_id, str) for conn_id in accounts):
        duplicates = sorted({conn_id for conn_id in accounts if accounts.count(conn_id) > 1})
        if duplicates:
            raise InvalidSettings(f"{where} names {', '.join(duplicates)} more than once.")
        accounts = {conn_id: {} for conn_id in accounts}
    if not isinstance(accounts, dict) or not accounts:
        raise InvalidSettings(
            f"{where} must name at least one connection: a list of connection ids, or an object of connection id -> "
            "that account's settings."
        )
    settings = {}
    for conn_id, own in accounts.items():
        if not re.fullmatch(ACCOUNT_ID_PATTERN, conn_id):
            raise InvalidSettings(
                f"{where} names {conn_id[:80]!r}, which is not a connection id: letters, digits, _, . and - only, "
                "at most 64 characters."
            )
        if not isinstance(own, dict):
            raise InvalidSettings(f"{where}.{conn_id} must be a JSON object of that account's settings.")
        settings[conn_id] = ProviderSettings(**{**inherited, **_values(own, f"{where}.{conn_id}")}, account=conn_id)
    return settings


def _values(section: dict, where: str) -> dict:
    """The validated values a section (a provider's or one account's) sets; what it leaves out is inherited."""
    unknown = sorted(set(section) - {*_KEYS})
    if unknown:
        raise InvalidSettings(f"{where} has unknown key(s) {', '.join(unknown)}.")

    values: dict = {}
    if "usage_mismatch_tolerance" in section:
        values["usage_mismatch_tolerance"] = _tolerance(section["usage_mismatch_tolerance"], where)
    if "active_currencies" in section:
        currencies = section["active_currencies"]
        if not isinstance(currencies, list) or not all(
            isinstance(c, str) and _CURRENCY.match(c.upper()) for c in currencies
        ):
            raise InvalidSettings(
                f"{where}.active_currencies must be a list of three-letter ISO currency codes, got {currencies!r}."
            )
        values["active_currencies"] = tuple(c.upper() for c in currencies)
    if "tax" in section:
        if section["tax"] not in TAX_MODES:
            raise InvalidSettings(f"{where}.tax must be one of {', '.join(TAX_MODES)}, got {section['tax']!r}.")
        values["tax"] = section["tax"]
    for key in ("stage_processes", "stage_parallel_from_lines"):
        if key in section:
            number = section[key]
            if isinstance(number, bool) or not isinstance(number, int) or number < 1:
                raise InvalidSettings(f"{where}.{key} must be a whole number of 1 or more, got {number!r}.")
            values[key] = number
    if "usage_escalation_day" in section:
        day = section["usage_escalation_day"]
        if isinstance(day, bool) or not isinstance(day, int) or not 1 <= day <= 31:
            raise InvalidSettings(f"{where}.usage_escalation_day must be a day of the month (1 to 31), got {day!r}.")
        values["usage_escalation_day"] = day
    return values


def _tolerance(value: object, where: str) -> Decimal:
    """A tolerance is an amount of money: the money parser's scale, zero or more, and not absurdly large."""
    from include.model import InvalidProviderData, parse_money

    key = f"{where}.usage_mismatch_tolerance"
    try:
        if isinstance(value, bool | float) or not isinstance(value, int | Decimal | str):
            raise InvalidOperation
        Decimal(str(value))
    except InvalidOperation:
        raise InvalidSettings(f"{key} must be a number, got {str(value)[:60]!r}.") from None
    try:
        tolerance = parse_money(value, field_name=key)
    except InvalidProviderData as err:
        raise InvalidSettings(str(err)) from None
    if tolerance < 0:
        raise InvalidSettings(f"{key} must be zero or more, got {tolerance}.")
    if tolerance > MAX_TOLERANCE:
        raise InvalidSettings(f"{key} must be at most {MAX_TOLERANCE}, got {tolerance}: it would let any invoice pass.")
    return tolerance


def load_settings(provider: str, account: str | None = None) -> ProviderSettings:
    """Read and validate the Variable at task run time (never at DAG parse time): ``account``'s settings."""
    return parse_settings(_read(), provider, account)


def load_accounts(provider: str) -> dict[str, ProviderSettings]:
    """Every account of ``provider`` with its settings, read at task run time."""
    return parse_accounts(_read(), provider)


def _read() -> str | None:
    from airflow.sdk import Variable

    return Variable.get(SETTINGS_VARIABLE, default=None)
