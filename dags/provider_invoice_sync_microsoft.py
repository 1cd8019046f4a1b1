"""Airflow DAG: daily import of Microsoft Partner Center invoices (built by include/dag_builder.py)."""

from include.dag_builder import build_sync_dag

dag = build_sync_dag("microsoft")
