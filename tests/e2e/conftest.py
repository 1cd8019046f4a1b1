"""A real Airflow deployment for the end-to-end test, pointed at the sandbox, the invoice DB and a mail catcher."""

from __future__ import annotations

import json
import os

import pytest

from tests.e2e.airflow_processes import (
    PG_HOST,
    PG_PORT,
    REDIS_HOST,
    REDIS_PORT,
    AirflowApi,
    AirflowDeployment,
    postgres_reachable,
    redis_reachable,
)
from tests.e2e.workspace_deployment import workspace_airflow  # noqa: F401  (module-scoped fixture)

RECIPIENTS = ["billing@example.com"]
WORKERS_FROM_LINES = 1000
"""Below the demo's 2,345-line invoice, which the sandbox exports as three blobs of at most 1,000 lines."""
CELERY_WORKERS = ("worker-a", "worker-b")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """On failure, add the tail of every component's log to the report."""
    report = yield
    deployment = getattr(item, "_airflow_deployment", None)
    if report.failed and deployment is not None:
        report.sections.append(("Airflow component logs (tails)", deployment.log_tails(lines=80)))
    return report


@pytest.fixture
def mail_catcher(monkeypatch):
    """A real SMTP server on 127.0.0.1 as ``smtp_default``, and the daily mail's recipients."""
    from include.sandbox.mail import MailCatcher

    with MailCatcher() as catcher:
        monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", json.dumps(catcher.connection()))
        monkeypatch.setenv("AIRFLOW_VAR_INVOICE_NOTIFICATION_RECIPIENTS", json.dumps(RECIPIENTS))
        yield catcher


@pytest.fixture
def staging_workers(monkeypatch):
    """Stage every multi-blob demo export with worker processes, as a large invoice is: that path must
    work inside a real task process, whose main script is the ``airflow`` command."""
    # Two processes even on a one-core machine (the default there), so the parallel path always runs.
    settings = {"microsoft": {"stage_parallel_from_lines": WORKERS_FROM_LINES, "stage_processes": 2}}
    monkeypatch.setenv("AIRFLOW_VAR_INVOICE_SYNC_SETTINGS", json.dumps(settings))


@pytest.fixture
def airflow_deployment(request, tmp_path_factory, invoice_db, provider_connections, mail_catcher, staging_workers):
    """api-server, scheduler and dag-processor on a fresh Airflow home; the metadata DB on PostgreSQL if reachable.

    The components inherit this process's environment, so the connections the other fixtures set
    (``AIRFLOW_CONN_INVOICE_DB``, the provider sandbox, ``smtp_default``) reach every task.
    """
    home = tmp_path_factory.mktemp("airflow-e2e-home")
    with AirflowDeployment(home, dict(os.environ), use_postgres=postgres_reachable()) as deployment:
        request.node._airflow_deployment = deployment
        yield deployment


@pytest.fixture
def airflow_api(airflow_deployment) -> AirflowApi:
    return AirflowApi(airflow_deployment)


@pytest.fixture
def celery_services():
    """Redis and PostgreSQL on this machine; skipped without them, except on CI, where that fails."""
    missing = [
        f"{name} at {host}:{port}"
        for name, host, port, reachable in (
            ("Redis", REDIS_HOST, REDIS_PORT, redis_reachable),
            ("PostgreSQL", PG_HOST, PG_PORT, postgres_reachable),
        )
        if not reachable()
    ]
    if missing and os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"The Celery end-to-end test needs {' and '.join(missing)} on CI, unreachable.")
    if missing:
        pytest.skip(f"{' and '.join(missing)} unreachable.")


@pytest.fixture
def celery_deployment(
    request, tmp_path_factory, celery_services, invoice_db, provider_connections, mail_catcher, staging_workers
):
    """CeleryExecutor: scheduler, dag-processor, api-server and two Celery workers, on PostgreSQL and Redis."""
    home = tmp_path_factory.mktemp("airflow-celery-home")
    with AirflowDeployment(home, dict(os.environ), use_postgres=True, celery_workers=CELERY_WORKERS) as deployment:
        request.node._airflow_deployment = deployment
        yield deployment
