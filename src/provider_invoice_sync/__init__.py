"""The project's Airflow provider metadata: its connection types, with labelled fields for the UI.

Airflow's providers manager finds installed distributions through the ``apache_airflow_provider`` entry
point (pyproject.toml) and reads this dictionary without importing the hooks: the Connections page then
offers "Microsoft Partner Center" and "TD SYNNEX StreamOne Ion" with these fields instead of a raw Extra
box, and the *Test* button calls the hook's ``test_connection``. The hooks stay in ``plugins/hooks``
(imported as ``plugins.hooks.*``, so the project root must be on ``PYTHONPATH``, as it is for the DAGs);
this package is all the distribution ships, so installing it never puts another checkout's
``include``/``plugins``/``dags`` on the path.
"""

from __future__ import annotations

DISTRIBUTION = "provider-invoice-sync"


def _text(label: str, description: str, default: str | None = None, *, secret: bool = False) -> dict:
    schema: dict = {"type": ["string", "null"]}
    if default is not None:
        schema["default"] = default
    if secret:
        schema["format"] = "password"
    return {"label": label, "description": description, "schema": schema}


PARTNER_CENTER_FIELDS = {
    "tenant_id": _text("Tenant ID", "The partner's Entra tenant id (filled into the token URL)."),
    "refresh_token": _text(
        "Refresh token",
        "From the Secure Application Model consent. Rotated tokens are kept in the Variable "
        "<connection id>_refresh_token, which takes precedence over this field.",
        secret=True,
    ),
    "token_url": _text(
        "Token URL",
        "Entra token endpoint; {tenant_id} is filled in.",
        "https://login.microsoftonline.com/{tenant_id}/oauth2/token",
    ),
    "graph_url": _text("Graph URL", "Microsoft Graph (the v2 billed exports).", "https://graph.microsoft.com/v1.0"),
    "v2_export_from": _text(
        "v2 export from", "Billing periods from this ISO date come from the v2 export.", "2024-02-01"
    ),
}

STREAMONE_ION_FIELDS = {
    "account_id": _text("Account ID", "Ion account (Quick Access > Account Information); others are refused."),
    "page_size": {
        "label": "Page size",
        "description": "Invoices and lines per request (Ion's default limit is 100).",
        "schema": {"type": ["integer", "null"], "default": 100},
    },
    "billing_start_from": _text("Billing start from", "ISO date: older billing periods are not listed."),
}


def _connection_type(conn_type: str, hook: str, name: str, fields: dict, relabeling: dict, host: str) -> dict:
    """One entry of ``connection-types``: the type, its hook, its extra fields and its standard ones."""
    return {
        "connection-type": conn_type,
        "hook-class-name": hook,
        "hook-name": name,
        "conn-fields": fields,
        "ui-field-behaviour": {
            "hidden-fields": ["schema", "port"],
            "relabeling": relabeling,
            "placeholders": {"host": host},
        },
    }


def get_provider_info() -> dict:
    """What the ``apache_airflow_provider`` entry point returns (Airflow's provider_info schema)."""
    return {
        "package-name": DISTRIBUTION,
        "name": "Provider invoice sync",
        "description": "Connection types of the cloud-provider invoice importer.",
        "connection-types": [
            _connection_type(
                "partner_center",
                "plugins.hooks.partner_center.PartnerCenterHook",
                "Microsoft Partner Center",
                PARTNER_CENTER_FIELDS,
                {"host": "API base URL", "login": "Client ID", "password": "Client secret"},
                "https://api.partnercenter.microsoft.com",
            ),
            _connection_type(
                "streamone_ion",
                "plugins.hooks.streamone_ion.StreamOneIonHook",
                "TD SYNNEX StreamOne Ion",
                STREAMONE_ION_FIELDS,
                {"host": "Ion base URL", "login": "API key", "password": "API secret"},
                "https://ion.tdsynnex.com",
            ),
        ],
    }
