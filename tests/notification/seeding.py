"""Rows as the sync pipeline leaves them, and the mail settings the tests use (shared by conftest and tests)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import insert

from include.providers import conn_id_of
from include.sql.schema import invoice_notification, invoice_sync_attempt, provider_invoice

SENDER = "invoices@reseller.example"
RECIPIENTS = ["billing@reseller.example", "finance@reseller.example"]
NOW = datetime.now(UTC)


class Seeder:
    """Writes rows the way the sync pipeline leaves them, with times relative to ``NOW``."""

    def __init__(self, engine):
        self.engine = engine

    def invoice(self, invoice_id, status, *, provider="microsoft", hours_ago=2, **values):
        at = NOW - timedelta(hours=hours_ago)
        row = {
            "provider": provider,
            "invoice_id": invoice_id,
            "account": conn_id_of(provider),
            "status": status,
            "currency_code": "EUR",
            "created_at": at,
            "updated_at": at,
            **values,
        }
        with self.engine.begin() as conn:
            conn.execute(insert(provider_invoice).values(**row))

    def attempt(self, invoice_id, outcome, *, provider="microsoft", hours_ago=2, run_id=None, **values):
        at = NOW - timedelta(hours=hours_ago)
        row = {
            "provider": provider,
            "invoice_id": invoice_id,
            "account": conn_id_of(provider),
            "dag_id": f"provider_invoice_sync_{provider}",
            "run_id": run_id or f"scheduled__{invoice_id}_{outcome}_{hours_ago}",
            "triggered_by": "scheduled",
            "outcome": outcome,
            "started_at": at - timedelta(minutes=5),
            "finished_at": at,
            **values,
        }
        with self.engine.begin() as conn:
            conn.execute(insert(invoice_sync_attempt).values(**row))

    def notification(self, *, hours_ago):
        at = NOW - timedelta(hours=hours_ago)
        with self.engine.begin() as conn:
            conn.execute(
                insert(invoice_notification).values(
                    dag_id="provider_invoice_daily_notification",
                    run_id=f"scheduled__{hours_ago}",
                    window_start=at - timedelta(hours=24),
                    window_end=at,
                    recipients=json.dumps(RECIPIENTS),
                    subject="[OK] earlier",
                    sent_at=at,
                )
            )

    def busy_day(self) -> None:
        """Two activations (one after a checksum error earlier the same day), a checksum error with
        diagnostics, a failure, a deactivation, an invoice waiting since last week, and old news."""
        self.notification(hours_ago=24)
        self.invoice(
            "G-ACT-1",
            "active",
            header_total=Decimal("1234.5"),
            detail_total=Decimal("1234.5"),
            difference=Decimal(0),
            activated_at=NOW - timedelta(hours=3),
        )
        self.attempt(
            "G-ACT-1",
            "activated",
            hours_ago=3,
            header_total=Decimal("1234.5"),
            detail_total=Decimal("1234.5"),
            difference=Decimal(0),
        )
        self.invoice("G-FIXED", "active", header_total=Decimal("99.99"), activated_at=NOW - timedelta(hours=1))
        self.attempt("G-FIXED", "checksum_error", hours_ago=6, difference=Decimal("5"))
        self.attempt(
            "G-FIXED",
            "activated",
            hours_ago=1,
            run_id="manual__fix",
            header_total=Decimal("99.99"),
            triggered_by="alice",
        )
        self.invoice(
            "G-CHK",
            "checksum_error",
            header_total=Decimal("1000.00"),
            detail_total=Decimal("989.6625"),
            difference=Decimal("10.3375"),
            line_count=1412,
        )
        diagnostics = {
            "difference": "10.3375",
            "hints": [
                {
                    "cause": "late usage lines",
                    "amount": "10.3375",
                    "explains": True,
                    "evidence": "usage lines end on 2026-11-20, the period ends on 2026-11-30",
                    "action": "wait a day and re-run the sync",
                },
                {"cause": "header tax", "amount": "1.00", "explains": False, "evidence": "x", "action": "y"},
            ],
        }
        self.attempt(
            "G-CHK",
            "checksum_error",
            header_total=Decimal("1000.00"),
            detail_total=Decimal("989.6625"),
            difference=Decimal("10.3375"),
            message="Checksum error on G-CHK",
            diagnostics=json.dumps(diagnostics),
            task_url="http://airflow.local/dags/provider_invoice_sync_microsoft/runs/r1/tasks/checksum_validation?x=1&y=2",
        )
        self.invoice("S-FAIL", "failed", provider="synnex", status_message="Ion API answered 500 <boom>")
        self.attempt(
            "S-FAIL",
            "failed",
            provider="synnex",
            message="Ion API answered 500 <boom>",
            task_url="http://airflow.local/dags/provider_invoice_sync_synnex/runs/r2/tasks/fetch",
        )
        self.invoice("G-DEACT", "inactive", deactivated_at=NOW - timedelta(hours=4))
        self.attempt(
            "G-DEACT",
            "deactivated",
            hours_ago=4,
            dag_id="provider_invoice_deactivate",
            triggered_by="bob",
            message="Partner Center re-issued the invoice",
        )
        self.invoice(
            "G-OLD",
            "checksum_error",
            hours_ago=24 * 7,
            difference=Decimal("-3.20"),
            status_message="Checksum error on G-OLD",
        )
        self.attempt("G-OLD", "checksum_error", hours_ago=24 * 7, task_url="http://airflow.local/old")
        self.invoice("G-YESTERDAY", "active", hours_ago=30, activated_at=NOW - timedelta(hours=30))
        self.attempt("G-YESTERDAY", "activated", hours_ago=30)
