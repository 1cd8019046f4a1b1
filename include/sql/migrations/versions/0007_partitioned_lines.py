"""``provider_invoice_line`` partitioned by provider, then by invoice, on PostgreSQL (issue 17).

A load then attaches its checked stage as the invoice's partition instead of copying it
(:mod:`include.sql.partitions`). An existing table keeps its rows (:mod:`include.sql.migrations.partitioning`).
SQLite has no partitions: nothing changes there.

Revision ID: 0007_partitioned_lines
Revises: 0006_export_operations
Create Date: 2026-12-01
"""

from __future__ import annotations

from include.sql.migrations.partitioning import partition_by_invoice, unpartition

revision = "0007_partitioned_lines"
down_revision = "0006_export_operations"
branch_labels = None
depends_on = None


def upgrade() -> None:
    partition_by_invoice("provider_invoice_line", "pk_provider_invoice_line")


def downgrade() -> None:
    unpartition("provider_invoice_line", "pk_provider_invoice_line")
