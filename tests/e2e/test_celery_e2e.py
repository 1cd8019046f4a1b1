"""The Microsoft sync on a Celery worker fleet: CeleryExecutor, Redis broker, two workers.

The scheduled run fans out one mapped task group per demo invoice; the scheduler queues the tasks on
Redis and two ``airflow celery worker`` processes run them. The large export is parsed and staged by
worker processes started inside a Celery worker's task, and the run's outcome is the same as under the
LocalExecutor (:func:`check_sync_run`), with task instances on both workers.
"""

from __future__ import annotations

from collections import Counter

import pytest

from tests.e2e.airflow_processes import AirflowApi
from tests.e2e.conftest import CELERY_WORKERS
from tests.e2e.sync_checks import SYNC, check_sync_run


@pytest.mark.timeout(600)
@pytest.mark.parametrize("invoice_db", ["postgres"], indirect=True)
def test_microsoft_sync_on_two_celery_workers(celery_deployment, invoice_db):
    api = AirflowApi(celery_deployment)
    api.wait_for_dags({SYNC})
    assert api.get("/importErrors")["total_entries"] == 0

    api.set_paused(SYNC, False)
    sync_run = api.wait_for_run(SYNC, api.wait_for_first_run(SYNC)["dag_run_id"])
    api.set_paused(SYNC, True)
    tis = check_sync_run(api, invoice_db, sync_run)

    ran = [ti for ti in tis if ti["state"] in ("success", "failed")]
    assert {ti["queue"] for ti in ran} == {celery_deployment.celery_queue}
    hosts = Counter(ti["hostname"] for ti in ran)
    workers = {celery_deployment.worker_host(index) for index in range(len(CELERY_WORKERS))}
    assert set(hosts) == workers, f"task instances per host: {dict(hosts)}; the workers are {sorted(workers)}"
