"""Microsoft Partner Center: its normaliser, its sandbox endpoints and its demo invoices.

The hook is ``plugins/hooks/partner_center.py``, the GX suite ``include/checksum/suites/microsoft.json``
and the spec (connection id, display name) sits in the registry, :mod:`include.providers`.
"""
