"""Trigger-form Params shared by the manual DAGs: JSON Schema refuses bad conf before a run exists."""

from __future__ import annotations

from airflow.sdk import Param

from include.providers import PROVIDERS, SAFE_INVOICE_ID_MAX_LENGTH, SAFE_INVOICE_ID_PATTERN
from include.settings import ACCOUNT_ID_PATTERN


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
    """Letters, digits, ``-`` and ``_`` only: the union of the providers' rules (the first task applies its own)."""
    return Param(
        type="string",
        minLength=1,
        maxLength=SAFE_INVOICE_ID_MAX_LENGTH,
        pattern=SAFE_INVOICE_ID_PATTERN,
        title="Invoice id",
        description="The provider's invoice number, e.g. G012345678 (Microsoft) or the Ion invoice id: "
        "letters, digits, - and _ only.",
    )


def account_param() -> Param:
    """A connection id or nothing; the first task checks it against the provider's accounts in the settings."""
    return Param(
        None,
        type=["null", "string"],
        pattern=rf"^{ACCOUNT_ID_PATTERN}(?!\n)$",
        title="Account",
        description="The connection of the provider account the invoice comes from, when the provider has several "
        "(invoice_sync_settings). Leave empty for the provider's default account.",
    )


def text_template(name: str) -> str:
    """The template of string Param ``name`` in a DAG with ``render_template_as_native_obj=True``.

    Native rendering passes a rendered string through ``ast.literal_eval``, which would turn the
    invoice id ``4100002`` into an int (and ``1_0`` into 10); ``tojson`` renders a string literal that
    evaluates back to exactly the Param's text. A null Param stays ``None``.
    """
    return f"{{{{ params.{name} | tojson if params.{name} is not none else none }}}}"


def required_text_param(title: str, description: str) -> Param:
    return Param(type="string", minLength=1, pattern=r"\S", title=title, description=description)
