"""Alembic revisions of the invoice database; run them with ``python -m include.sql.migrate``."""
