"""Trigger-form Params shared by the manual DAGs: JSON Schema refuses bad conf before a run exists."""

from __future__ import annotations

from airflow.sdk import Param

from include.providers import PROVIDERS


def provider_param() -> Param:
    return Param(
        "microsoft",
        type="string",
        enum=sorted(PROVIDERS),
        values_display={name: spec.display_name for name, spec in PROVIDERS.items()},
        title="Provider",
        description="Whose invoice it is.",
    )


def invoice_id_param() -> Param:
    return Param(
        type="string",
        minLength=1,
        pattern=r"\S",
        title="Invoice id",
        description="The provider's invoice number, e.g. G012345678 (Microsoft) or the Ion invoice id.",
    )


def required_text_param(title: str, description: str) -> Param:
    return Param(type="string", minLength=1, pattern=r"\S", title=title, description=description)
