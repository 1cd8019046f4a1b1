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
    usage_mismatch_tolerance: Decimal = Decimal("1")
    active_currencies: tuple[str, ...] | None = None
    """``None`` means every currency is active."""
    tax: str = "lines"
    stage_processes: int | None = None
    """``None`` means :func:`include.staging.default_processes`."""
    stage_parallel_from_lines: int = 20_000
    usage_escalation_day: int = 11

    def currency_is_active(self, currency_code: str) -> bool:
        return self.active_currencies is None or currency_code.upper() in self.active_currencies


def parse_settings(raw: str | dict | None, provider: str) -> ProviderSettings:
    """Validate the variable's value for ``provider``; a bad value fails naming the key and the reason."""
    if raw in (None, ""):
        return ProviderSettings()
    if isinstance(raw, str):
        try:
            raw = json.loads(raw, parse_float=Decimal)
        except json.JSONDecodeError as err:
            raise InvalidSettings(f"Variable {SETTINGS_VARIABLE} is not valid JSON: {err}.") from None
    if not isinstance(raw, dict):
        raise InvalidSettings(f"Variable {SETTINGS_VARIABLE} must be a JSON object keyed by provider.")
    from include.providers import PROVIDERS

    unknown_sections = sorted(set(raw) - set(PROVIDERS))
    if unknown_sections:
        raise InvalidSettings(
            f"Variable {SETTINGS_VARIABLE} has unknown provider section(s) {', '.join(map(repr, unknown_sections))}: "
            f"the providers are {', '.join(sorted(PROVIDERS))}."
        )
    sections = {name: _section(value, f"{SETTINGS_VARIABLE}.{name}") for name, value in raw.items()}
    return sections.get(provider, ProviderSettings())


def _section(section: object, where: str) -> ProviderSettings:
    """One provider's section, validated (every section is, whichever provider's sync reads the variable)."""
    if not isinstance(section, dict):
        raise InvalidSettings(f"{where} must be a JSON object.")
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
    return ProviderSettings(**values)


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


def load_settings(provider: str) -> ProviderSettings:
    """Read and validate the Variable at task run time (never at DAG parse time)."""
    from airflow.sdk import Variable

    return parse_settings(Variable.get(SETTINGS_VARIABLE, default=None), provider)
