"""``provider_invoice_usage_line`` partitioned by provider, then by invoice, on PostgreSQL, like the lines (0007).

A load then attaches its checked usage stage as the invoice's usage partition instead of copying it
(:mod:`include.sql.partitions`). An existing table keeps its rows (:mod:`include.sql.migrations.partitioning`).
SQLite has no partitions: nothing changes there.

Revision ID: 0008_partitioned_usage
Revises: 0007_partitioned_lines
Create Date: 2026-12-07
"""

from __future__ import annotations

from include.sql.migrations.partitioning import partition_by_invoice, unpartition

revision = "0008_partitioned_usage"
down_revision = "0007_partitioned_lines"
branch_labels = None
depends_on = None


def upgrade() -> None:
    partition_by_invoice("provider_invoice_usage_line", "pk_provider_invoice_usage_line")


def downgrade() -> None:
    unpartition("provider_invoice_usage_line", "pk_provider_invoice_usage_line")
