"""Registers the invoices workspace with Airflow: the FastAPI app under ``/provider-invoices`` and the
entry in the UI's navigation (an external view the UI shows in a frame at ``/plugin/provider-invoices``)."""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin


class InvoiceWorkspacePlugin(AirflowPlugin):
    name = "provider_invoices_workspace"

    @property
    def fastapi_apps(self) -> list[dict]:
        from plugins.invoice_workspace.app import app  # only the API server builds the app

        return [{"app": app, "url_prefix": "/provider-invoices", "name": "Provider invoices"}]

    external_views = [
        {
            "name": "Provider invoices",
            "href": "/provider-invoices/",
            "destination": "nav",
            "category": "browse",
            "url_route": "provider-invoices",
            "icon": "/provider-invoices/static/invoice-icon.svg",
        }
    ]
