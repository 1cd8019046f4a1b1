"""``make airflow``: one Ctrl-C stops the whole Airflow process group, and the LocalExecutor fits the machine."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from include.local_airflow import executor_settings, stop

PARENT = """
import signal, subprocess, sys, time
signal.signal(signal.SIGINT, lambda *_: sys.exit(0))   # the leader leaves on SIGINT...
child = subprocess.Popen([sys.executable, "-c", sys.argv[1]])
print(child.pid, flush=True)
time.sleep(60)
"""
STUBBORN = """
import signal, time
signal.signal(signal.SIGINT, signal.SIG_IGN)           # ...while a component still waits for its tasks
signal.signal(signal.SIGTERM, {term})
time.sleep(60)
"""


def _group(child_code: str) -> tuple[subprocess.Popen, int]:
    leader = subprocess.Popen(
        [sys.executable, "-c", PARENT, child_code], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    return leader, int(leader.stdout.readline())


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    with open(f"/proc/{pid}/stat") as stat:  # a zombie waiting for init to reap it is gone too
        return stat.read().split()[2] == "Z"


def test_parallelism_follows_the_cpus_unless_set(monkeypatch):
    for key in ("AIRFLOW__CORE__PARALLELISM", "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG", "AIRFLOW__CORE__EXECUTOR"):
        monkeypatch.delenv(key, raising=False)
    assert executor_settings(8)["AIRFLOW__CORE__PARALLELISM"] == "8"
    assert executor_settings(None)["AIRFLOW__CORE__PARALLELISM"] == "2"
    assert executor_settings(1)["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    monkeypatch.setenv("AIRFLOW__CORE__PARALLELISM", "5")
    assert executor_settings(8)["AIRFLOW__CORE__PARALLELISM"] == "5"


@pytest.mark.parametrize(("term", "grace"), [("lambda *_: exit(0)", 0.5), ("signal.SIG_IGN", 0.5)])
def test_stop_leaves_no_process_of_the_group(term, grace):
    """A component that outlives the leader gets SIGTERM (a second signal), or SIGKILL if it ignores that too."""
    leader, child = _group(STUBBORN.format(term=term))
    assert stop(leader, grace=grace, poll=0.05) == 0  # the leader left on the first SIGINT
    assert _gone(child)


STANDALONE = """
import signal, subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
def stop_components(*_):                                # what airflow standalone does on SIGINT
    child.terminate()
    child.wait()
    sys.exit(0)
signal.signal(signal.SIGINT, stop_components)
print(child.pid, flush=True)
time.sleep(60)
"""


def test_stop_needs_one_signal_when_the_leader_stops_its_components():
    leader = subprocess.Popen(
        [sys.executable, "-c", STANDALONE], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    child = int(leader.stdout.readline())
    assert stop(leader, grace=120, poll=0.05) == 0  # returns when the group is empty, long before the grace
    assert _gone(child)
