"""Run a DAG the way ``airflow dags test`` does, and read back what each task instance did."""

from __future__ import annotations

from pathlib import Path

DAGS = Path(__file__).resolve().parents[2] / "dags"


def load_dag(dag_id: str):
    from airflow.dag_processing.dagbag import DagBag

    dagbag = DagBag(dag_folder=str(DAGS / f"{dag_id}.py"))
    assert dagbag.import_errors == {}
    return dagbag.dags[dag_id]


def run_dag(dag_id: str, conf: dict | None = None):
    """``dag.test()`` in-process; returns the finished DagRun."""
    return load_dag(dag_id).test(run_conf=conf)


def task_states(dag_run, task_id: str) -> dict[str, str]:
    """``rendered map index (or task id) -> state`` of one task's instances in ``dag_run``."""
    return {
        (ti.rendered_map_index or str(ti.map_index)): ti.state
        for ti in dag_run.get_task_instances()
        if ti.task_id == task_id
    }
