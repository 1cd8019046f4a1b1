"""Which tolerance a checksum run uses: the provider default, or a manual override rounded up.

The manual sync's ``override_tolerance``/``override_reason`` pair is checked here too, so every rule
about overrides sits in one module.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, Decimal, InvalidOperation

from include.settings import ProviderSettings


class InvalidOverride(ValueError):
    """The override pair of a manual sync is unusable; the message says how."""


def parse_override(override_tolerance: object, override_reason: object) -> tuple[Decimal | None, str | None]:
    """Check the manual override pair (Params rendered as native objects); one clear sentence per way it is wrong."""
    reason = str(override_reason).strip() if override_reason is not None else ""
    if override_tolerance is None or override_tolerance == "":
        return None, reason or None
    if isinstance(override_tolerance, bool):
        raise InvalidOverride(f"override_tolerance must be a number, got {override_tolerance!r}.")
    try:
        value = Decimal(str(override_tolerance))
    except InvalidOperation:
        raise InvalidOverride(f"override_tolerance must be a number, got {override_tolerance!r}.") from None
    if not value.is_finite() or value <= 0:
        raise InvalidOverride(f"override_tolerance must be a number greater than 0, got {override_tolerance}.")
    if not reason:
        raise InvalidOverride("override_reason is required when override_tolerance is set.")
    return value, reason


def round_up_override(override: Decimal) -> Decimal:
    """Overrides are whole currency units, rounded up (1329.7525 -> 1330), so a known difference passes."""
    if override <= 0:
        raise InvalidOverride(f"override_tolerance must be greater than 0, got {override}.")
    return override.to_integral_value(rounding=ROUND_CEILING)


def effective_tolerance(settings: ProviderSettings, override: Decimal | None) -> Decimal:
    return settings.usage_mismatch_tolerance if override is None else round_up_override(override)


def override_note(override: Decimal | None, applied: Decimal, reason: str | None) -> str | None:
    """The audit note an override leaves on the invoice."""
    if override is None:
        return None
    return f"Override tolerance {override} (applied as {applied}): {reason}"
