"""The workspace's Sync conf: the invoice's own account goes with it, so the run fetches from that account."""

from __future__ import annotations

from plugins.invoice_workspace.actions import SyncRequest, sync_conf


def test_sync_conf_carries_the_invoice_s_account_when_known():
    body = SyncRequest(override_tolerance=1330, override_reason="credit note")
    assert sync_conf("microsoft", "G1", body, "partner_center_apac")[0] == {
        "provider": "microsoft",
        "invoice_id": "G1",
        "account": "partner_center_apac",
        "override_tolerance": 1330,
        "override_reason": "credit note",
    }
    assert sync_conf("microsoft", "G1", SyncRequest()) == ({"provider": "microsoft", "invoice_id": "G1"}, "Sync")
