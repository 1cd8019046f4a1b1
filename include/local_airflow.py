"""``make airflow``: ``airflow standalone`` (UI on http://localhost:8080) wired to the sandbox.

The provider sandbox and a mail catcher run in this process on 127.0.0.1; their connections reach
Airflow through ``AIRFLOW_CONN_*`` variables. The invoice database is ``$AIRFLOW_HOME/invoices.db``.
The invoices workspace is in the UI's Browse menu (``/provider-invoices/``).

One Ctrl-C stops everything: the terminal sends SIGINT to the whole foreground process group, so
``airflow standalone`` is already stopping its scheduler, API server and dag-processor; this process
waits for it (instead of killing it mid-shutdown and orphaning them), and only a second Ctrl-C or
a shutdown longer than ``STOP_TIMEOUT`` escalates to SIGTERM, then SIGKILL. The LocalExecutor gets
one worker per CPU instead of Airflow's default parallelism of 32 processes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from include.sandbox import SandboxServer
from include.sandbox.demo_data import ensure_demo_data
from include.sandbox.mail import MailCatcher

STOP_TIMEOUT = 30.0


def executor_settings(cpus: int | None) -> dict[str, str]:
    """LocalExecutor parallelism sized to the machine (at least 2), unless the environment sets it."""
    parallelism = str(max(2, cpus or 1))
    wanted = {
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": parallelism,
        "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": parallelism,
    }
    return {key: os.environ.get(key, value) for key, value in wanted.items()}


def stop(process: subprocess.Popen, timeout: float = STOP_TIMEOUT) -> int:
    """Wait for ``process`` after the first Ctrl-C; SIGTERM on a second one or at ``timeout``, then SIGKILL."""
    try:
        return process.wait(timeout=timeout)
    except (KeyboardInterrupt, subprocess.TimeoutExpired):
        print("Stopping Airflow...", flush=True)
        process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=timeout)
    except (KeyboardInterrupt, subprocess.TimeoutExpired):
        process.kill()
        return process.wait()


def main() -> int:
    home = Path(os.environ.get("AIRFLOW_HOME", ".airflow")).resolve()
    with SandboxServer(ensure_demo_data()) as sandbox, MailCatcher(home / "mail") as mail:
        env = {
            **os.environ,
            **sandbox.env(),
            **executor_settings(os.cpu_count()),
            "AIRFLOW_CONN_SMTP_DEFAULT": json.dumps(mail.connection()),
            "AIRFLOW_VAR_INVOICE_NOTIFICATION_RECIPIENTS": os.environ.get(
                "AIRFLOW_VAR_INVOICE_NOTIFICATION_RECIPIENTS", json.dumps(["billing@reseller.example"])
            ),
        }
        print(f"Provider sandbox on {sandbox.url}; mails land in {home / 'mail'}", flush=True)
        print(f"LocalExecutor with parallelism {env['AIRFLOW__CORE__PARALLELISM']}; stop with Ctrl-C", flush=True)
        process = subprocess.Popen([sys.executable, "-m", "airflow", "standalone"], env=env)
        try:
            return process.wait()
        except KeyboardInterrupt:
            stop(process)
            return 0


if __name__ == "__main__":
    sys.exit(main())
