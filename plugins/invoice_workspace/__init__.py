"""The provider invoices workspace inside Airflow's UI (see ``app``; registered by ``invoice_workspace_plugin``)."""
