"""Every DAG parses, has its contract shape, and keeps heavy libraries out of parse time."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from include.providers import PROVIDERS

DAGS = Path(__file__).resolve().parents[2] / "dags"
CONTRACT_DAGS = {
    "provider_invoice_sync_microsoft": "@daily",
    "provider_invoice_sync_synnex": "@daily",
    "provider_invoice_daily_notification": "0 7 * * *",
    "provider_invoice_manual_sync": None,
    "provider_invoice_deactivate": None,
}
PIPELINE_TASKS = ["fetch", "checksum_validation", "load", "activate"]
HEAVY = ["pandas", "great_expectations", "requests", "tenacity"]


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS))


def test_no_import_errors(dagbag):
    assert dagbag.import_errors == {}
    assert set(CONTRACT_DAGS) <= set(dagbag.dag_ids)


@pytest.mark.parametrize("dag_id", sorted(CONTRACT_DAGS))
def test_schedule(dagbag, dag_id):
    dag = dagbag.dags.get(dag_id)
    assert dag.schedule == CONTRACT_DAGS[dag_id]


@pytest.mark.parametrize("provider", sorted(PROVIDERS))
def test_sync_dag_maps_the_pipeline_per_invoice(dagbag, provider):
    dag = dagbag.dags.get(f"provider_invoice_sync_{provider}")
    for upstream, downstream in zip(["list_invoices", *PIPELINE_TASKS], PIPELINE_TASKS, strict=False):
        assert downstream in dag.get_task(upstream).downstream_task_ids
    from airflow.sdk.definitions.taskgroup import MappedTaskGroup

    group = dag.get_task("fetch").task_group
    assert isinstance(group, MappedTaskGroup)  # one instance per invoice: a red invoice stops only itself
    assert set(group.children) == set(PIPELINE_TASKS)


def test_manual_sync_params_form(dagbag):
    params = dagbag.dags.get("provider_invoice_manual_sync").params
    for name in ("provider", "invoice_id", "override_tolerance", "override_reason"):
        param = params.get_param(name)
        assert param.schema["title"] and param.description, name
    assert params.get_param("provider").schema["enum"] == sorted(PROVIDERS)  # a drop-down of known providers


@pytest.mark.parametrize("dag_file", sorted(p.name for p in DAGS.glob("*.py")))
def test_dag_file_does_not_import_heavy_libraries(dag_file):
    """Parse time stays small: pandas, GX and requests load only inside tasks."""
    code = (
        "import json, runpy, sys; import airflow.sdk; before = set(sys.modules);"
        f"runpy.run_path({str(DAGS / dag_file)!r});"
        f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules and m not in before)))"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert json.loads(out.strip().splitlines()[-1]) == []


@pytest.mark.parametrize(
    ("dag_id", "says"),
    [
        ("provider_invoice_sync_microsoft", ["Daily import of Microsoft Partner Center invoices", "checksum_error"]),
        ("provider_invoice_sync_synnex", ["Daily import of TD SYNNEX", "override tolerance"]),
        ("provider_invoice_manual_sync", ["Sync one invoice by hand", "When an invoice is red"]),
        ("provider_invoice_deactivate", ["Deactivate an invoice", "referenced by a customer invoice"]),
    ],
)
def test_docs_tab_speaks_to_users(dagbag, dag_id, says):
    """The Docs tab tells billing and on-call what the DAG does and what to do, not how it is built."""
    doc = dagbag.dags[dag_id].doc_md
    assert all(text in doc for text in says), doc
    assert "task_group" not in doc and "Imported by DAG files" not in doc


def test_every_task_of_every_dag_has_the_execution_timeout(dagbag):
    from include.dag_builder import EXECUTION_TIMEOUT

    tasks = [(dag.dag_id, task.task_id, task.execution_timeout) for dag in dagbag.dags.values() for task in dag.tasks]
    assert len({dag_id for dag_id, _, _ in tasks}) == len(CONTRACT_DAGS)
    assert [t for t in tasks if t[2] != EXECUTION_TIMEOUT] == []


def test_provider_calls_are_capped_in_every_dag_that_fetches(dagbag):
    """The fetches of a DAG in flight at once (deferred ones count in Airflow 3.3), whichever invoices it maps."""
    from include.dag_builder import PROVIDER_CALLS

    fetching = {dag_id for dag_id, dag in dagbag.dags.items() if "fetch" in dag.task_dict}
    assert fetching == set(CONTRACT_DAGS) - {"provider_invoice_daily_notification", "provider_invoice_deactivate"}
    for dag_id in fetching:
        assert dagbag.dags[dag_id].get_task("fetch").max_active_tis_per_dag == PROVIDER_CALLS, dag_id
