"""Which tolerance a checksum run uses: the provider default, or a manual override rounded up."""

from __future__ import annotations

from decimal import ROUND_CEILING, Decimal

from include.settings import ProviderSettings


def round_up_override(override: Decimal) -> Decimal:
    """Overrides are whole currency units, rounded up (1329.7525 -> 1330), so a known difference passes."""
    if override <= 0:
        raise ValueError(f"override_tolerance must be greater than 0, got {override}.")
    return override.to_integral_value(rounding=ROUND_CEILING)


def effective_tolerance(settings: ProviderSettings, override: Decimal | None) -> Decimal:
    return settings.usage_mismatch_tolerance if override is None else round_up_override(override)
