"""Airflow DAG: daily import of TD SYNNEX StreamOne Ion invoices (built by include/dag_builder.py)."""

from include.dag_builder import build_sync_dag

dag = build_sync_dag("synnex")
