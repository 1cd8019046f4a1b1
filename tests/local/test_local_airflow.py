"""``make airflow``: one Ctrl-C stops cleanly, and the LocalExecutor is sized to the machine."""

from __future__ import annotations

import signal
import subprocess
import sys

from include.local_airflow import executor_settings, stop

CHILD = """
import signal, sys, time
signal.signal(signal.SIGINT, signal.SIG_IGN)          # like a server busy shutting down its children
signal.signal(signal.SIGTERM, lambda *_: sys.exit(3))
print("ready", flush=True)
time.sleep(60)
"""


def test_parallelism_follows_the_cpus_unless_set(monkeypatch):
    for key in ("AIRFLOW__CORE__PARALLELISM", "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG", "AIRFLOW__CORE__EXECUTOR"):
        monkeypatch.delenv(key, raising=False)
    assert executor_settings(8)["AIRFLOW__CORE__PARALLELISM"] == "8"
    assert executor_settings(None)["AIRFLOW__CORE__PARALLELISM"] == "2"
    assert executor_settings(1)["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    monkeypatch.setenv("AIRFLOW__CORE__PARALLELISM", "5")
    assert executor_settings(8)["AIRFLOW__CORE__PARALLELISM"] == "5"


def test_stop_waits_for_a_child_that_exits_on_its_own():
    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.exit(0)"])
    assert stop(child, timeout=30) == 0


def test_stop_escalates_to_sigterm_when_the_child_does_not_finish():
    child = subprocess.Popen([sys.executable, "-c", CHILD], stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "ready"
    child.send_signal(signal.SIGINT)  # what the terminal's Ctrl-C delivers to the whole group
    assert stop(child, timeout=0.2) == 3  # SIGTERM after the (injected) timeout, handled by the child
