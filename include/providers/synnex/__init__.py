"""TD SYNNEX StreamOne Ion: its normaliser, its sandbox endpoints and its demo invoices.

The hook is ``plugins/hooks/streamone_ion.py``, the GX suite ``include/checksum/suites/synnex.json``
and the spec (connection id, display name) sits in the registry, :mod:`include.providers`.
"""
