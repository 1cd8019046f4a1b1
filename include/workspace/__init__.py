"""The invoices workspace's read side (the plugin in plugins/invoice_workspace serves it)."""
