"""``make airflow``: ``airflow standalone`` (UI on http://localhost:8080) wired to the sandbox.

The provider sandbox and a mail catcher run in this process on 127.0.0.1; their connections reach
Airflow through ``AIRFLOW_CONN_*`` variables. The invoice database is ``$AIRFLOW_HOME/invoices.db``.
The invoices workspace is in the UI's Browse menu (``/provider-invoices/``).

One Ctrl-C stops everything. Airflow runs in a process group of its own, so the terminal's Ctrl-C
reaches this process only, which then stops the group: SIGINT to ``airflow standalone`` alone (it
stops its components one by one; when the terminal also signalled every component at once, its
scheduler hung in the LocalExecutor's shutdown), SIGTERM to the whole group after ``STOP_GRACE``
seconds or on a second Ctrl-C, SIGKILL last. It returns only once no process of the group is left. The
LocalExecutor gets one worker per CPU instead of Airflow's default parallelism of 32 processes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from include.sandbox import SandboxServer
from include.sandbox.demo_data import ensure_demo_data
from include.sandbox.mail import MailCatcher

STOP_GRACE = 20.0


def executor_settings(cpus: int | None) -> dict[str, str]:
    """LocalExecutor parallelism sized to the machine (at least 2), unless the environment sets it."""
    parallelism = str(max(2, cpus or 1))
    wanted = {
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": parallelism,
        "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": parallelism,
    }
    return {key: os.environ.get(key, value) for key, value in wanted.items()}


def stop(process: subprocess.Popen, *, grace: float = STOP_GRACE, poll: float = 0.2) -> int:
    """Stop ``process`` (SIGINT), then whatever is left of the group it leads (SIGTERM, then SIGKILL)."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
        if not _group_alive(process):
            break
        if sig != signal.SIGINT:
            print(f"Airflow is still stopping; sending {sig.name}.", flush=True)
        if sig == signal.SIGINT:
            process.send_signal(sig)  # standalone stops its components itself, each with one signal
        else:
            os.killpg(process.pid, sig)
        deadline = time.monotonic() + grace
        try:
            while _group_alive(process) and time.monotonic() < deadline:
                time.sleep(poll)
        except KeyboardInterrupt:
            continue  # another Ctrl-C: the next signal now
    return process.wait()


def _group_alive(process: subprocess.Popen) -> bool:
    """Whether any process of the group ``process`` leads is left (its leader reaped when it exited)."""
    process.poll()
    try:
        os.killpg(process.pid, 0)
    except ProcessLookupError:
        return False
    return True


def main() -> int:
    home = Path(os.environ.get("AIRFLOW_HOME", ".airflow")).resolve()
    with SandboxServer(ensure_demo_data()) as sandbox, MailCatcher(home / "mail") as mail:
        env = {
            **os.environ,
            **sandbox.env(),
            **executor_settings(os.cpu_count()),
            "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",  # the Connections page's Test button
            "AIRFLOW_CONN_SMTP_DEFAULT": json.dumps(mail.connection()),
            "AIRFLOW_VAR_INVOICE_NOTIFICATION_RECIPIENTS": os.environ.get(
                "AIRFLOW_VAR_INVOICE_NOTIFICATION_RECIPIENTS", json.dumps(["billing@reseller.example"])
            ),
        }
        print(f"Provider sandbox on {sandbox.url}; mails land in {home / 'mail'}", flush=True)
        subprocess.run([sys.executable, "-m", "include.sql.migrate"], env=env, check=True)
        print(f"LocalExecutor with parallelism {env['AIRFLOW__CORE__PARALLELISM']}; stop with Ctrl-C", flush=True)
        process = subprocess.Popen([sys.executable, "-m", "airflow", "standalone"], env=env, start_new_session=True)
        try:
            return process.wait()
        except KeyboardInterrupt:
            print("Stopping Airflow (Ctrl-C again to hurry it)...", flush=True)
            stop(process)
            return 0


if __name__ == "__main__":
    sys.exit(main())
