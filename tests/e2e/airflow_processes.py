"""Start and stop a real Airflow 3 deployment (api-server, scheduler, dag-processor, triggerer) as subprocesses.

Used by the end-to-end tests: a fresh ``AIRFLOW_HOME``, ``airflow db migrate``, LocalExecutor,
SimpleAuthManager with a known user, everything on 127.0.0.1. The metadata database is a throw-away
PostgreSQL database when one is reachable (created here, dropped on :meth:`AirflowDeployment.stop`),
otherwise SQLite in the Airflow home.

With ``celery_workers`` the deployment runs CeleryExecutor instead, as the compose ``celery`` profile
does: Redis as the broker, the PostgreSQL metadata database as the result backend, and one
``airflow celery worker`` process per name. Parallel test sessions share the Redis server, so every
deployment uses a queue of its own (``[operators] default_queue``) on a Redis database set aside for
these tests, and deletes the queue's keys when it stops.

Every component runs in its own process group, logs to ``<home>/component-logs/<name>.log``, and is
stopped with SIGTERM, then SIGKILL after a timeout, together with any descendant that left the group
(the task supervisor puts each task in a group of its own). Nothing here imports pytest or Airflow:
Airflow processes import this module too (``loopback_hostname``). Over 350 lines because starting,
waiting for and reliably stopping three servers and their task processes is one job, kept together.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Mapping
from pathlib import Path

import requests

HOST = "127.0.0.1"
PG_HOST = os.environ.get("INVOICE_TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("INVOICE_TEST_PG_PORT", "5432"))
PG_USER = os.environ.get("INVOICE_TEST_PG_USER", "postgres")
"""The same server as ``tests/conftest.py`` uses for the invoice database."""
REDIS_HOST = os.environ.get("INVOICE_TEST_REDIS_HOST", "127.0.0.1")
REDIS_PORT = int(os.environ.get("INVOICE_TEST_REDIS_PORT", "6379"))
REDIS_DB = int(os.environ.get("INVOICE_TEST_REDIS_DB", "13"))
"""A Redis database for these tests only; each deployment adds a queue of its own."""
CELERY_WORKER_CONCURRENCY = 1
"""Task slots per worker. With one slot and Airflow's late acks a worker holds one task at a time, so
tasks queued together go to both workers instead of being prefetched by whichever polls first."""

USERNAME = "admin"
VIEWER = "viewer"
"""A second user with the SimpleAuthManager ``viewer`` role: reads DAGs, may not trigger them."""
COMPONENTS = {
    "api-server": ["api-server", "--host", HOST, "--port", "{port}"],
    "dag-processor": ["dag-processor"],
    # --skip-serve-logs: no log server on 0.0.0.0:8793; the API server reads the task logs from local files.
    "scheduler": ["scheduler", "--skip-serve-logs"],
    # Waits on the Graph exports while the fetch is deferred (plugins/triggers/partner_center.py).
    "triggerer": ["triggerer", "--skip-serve-logs"],
}


TASK_HOST_VARIABLE = "INVOICE_E2E_TASK_HOST"


def loopback_hostname() -> str:
    """``[core] hostname_callable`` of the test deployment: the host task instances record.

    127.0.0.1, except in a Celery worker, which gets a loopback address of its own (127.0.0.2, ...)
    so a task instance tells which worker ran it; the workers serve no logs (the API server reads the
    shared log folder), so nothing connects to those addresses.
    """
    return os.environ.get(TASK_HOST_VARIABLE, HOST)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def postgres_reachable() -> bool:
    """Whether the test PostgreSQL server answers (quickly; connection refused is immediate)."""
    import psycopg

    try:
        with psycopg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname="postgres", connect_timeout=3):
            return True
    except psycopg.OperationalError:
        return False


def redis_reachable() -> bool:
    """Whether the test Redis server answers PING."""
    import redis

    client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=REDIS_DB, socket_connect_timeout=3)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


def _admin_pg(statement: str) -> None:
    import psycopg

    with psycopg.connect(
        host=PG_HOST, port=PG_PORT, user=PG_USER, dbname="postgres", connect_timeout=5, autocommit=True
    ) as conn:
        conn.execute(statement)


class ComponentFailed(RuntimeError):
    """A component exited, or a wait ran out of time; the message carries the tails of the logs."""


class AirflowDeployment:
    """``with AirflowDeployment(home, env) as airflow:`` migrates, starts every component and waits until healthy.

    ``env`` is the environment to start from (connections and variables as ``AIRFLOW_CONN_*`` /
    ``AIRFLOW_VAR_*``); the deployment adds its own ``AIRFLOW__*`` settings on top.
    """

    def __init__(self, home: Path, env: Mapping[str, str], *, use_postgres: bool, celery_workers: tuple[str, ...] = ()):
        if celery_workers and not use_postgres:
            raise ValueError("The CeleryExecutor deployment needs PostgreSQL (metadata DB and result backend).")
        self.home = Path(home)
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        self.passwords = {USERNAME: secrets.token_urlsafe(12), VIEWER: secrets.token_urlsafe(12)}
        self.password = self.passwords[USERNAME]
        self.log_dir = self.home / "component-logs"
        self.processes: dict[str, subprocess.Popen] = {}
        self._log_files: list = []
        self.pg_database = f"airflow_e2e_{uuid.uuid4().hex[:10]}" if use_postgres else None
        self.celery_workers = celery_workers
        """Worker names; worker ``i`` records task instances as run on host :meth:`worker_host` ``(i)``."""
        self.celery_queue = f"invoice_e2e_{uuid.uuid4().hex[:10]}"
        self.env = self._environment(env)
        self.http = requests.Session()
        self.http.trust_env = False  # never a proxy: everything stays on 127.0.0.1

    # -- configuration -----------------------------------------------------------------------------

    def _environment(self, base: Mapping[str, str]) -> dict[str, str]:
        from cryptography.fernet import Fernet

        self.home.mkdir(parents=True, exist_ok=True)
        passwords = self.home / "simple_auth_manager_passwords.json"
        passwords.write_text(json.dumps(self.passwords) + "\n")
        if self.pg_database:
            sql_conn = f"postgresql+psycopg://{PG_USER}@{PG_HOST}:{PG_PORT}/{self.pg_database}"
            async_conn = sql_conn  # psycopg 3 is sync and async; asyncpg is not installed
        else:
            sql_conn = f"sqlite:///{self.home / 'airflow.db'}"
            async_conn = f"sqlite+aiosqlite:///{self.home / 'airflow.db'}"
        venv_bin = str(Path(sys.executable).parent)
        no_proxy = ",".join(filter(None, [HOST, "localhost", base.get("NO_PROXY")]))
        return {
            **base,
            "PATH": os.pathsep.join([venv_bin, base.get("PATH", "")]),
            "NO_PROXY": no_proxy,
            "no_proxy": no_proxy,
            "AIRFLOW_HOME": str(self.home),
            "INVOICE_DATA_DOCS_DIR": str(self.home / "data_docs"),
            "GX_ANALYTICS_ENABLED": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": sql_conn,
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": async_conn,
            # Small pools: the PostgreSQL server is shared with parallel test sessions (100 connections).
            "AIRFLOW__DATABASE__SQL_ALCHEMY_POOL_SIZE": "2",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_MAX_OVERFLOW": "4",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": "4",
            "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": "tests.e2e.airflow_processes.loopback_hostname",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.url}/execution/",
            "AIRFLOW__CORE__AUTH_MANAGER": (
                "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
            ),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{USERNAME}:admin,{VIEWER}:viewer",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
            # One secret for every component: the scheduler signs the task tokens the API server checks.
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(64),
            "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
            "AIRFLOW__API__HOST": HOST,
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__API__BASE_URL": self.url,
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__API__EXPOSE_CONFIG": "False",
            "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.5",
            "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
            # Parse once at start-up, then leave the two CPUs to the tasks.
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "600",
            "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "2",
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
            **(self._celery_settings(sql_conn) if self.celery_workers else {}),
        }

    def _celery_settings(self, sql_conn: str) -> dict[str, str]:
        """The settings of the compose ``celery`` profile, pointed at this machine's Redis and PostgreSQL."""
        return {
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__CELERY__BROKER_URL": self.broker_url,
            "AIRFLOW__CELERY__RESULT_BACKEND": f"db+{sql_conn}",
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(CELERY_WORKER_CONCURRENCY),
            "AIRFLOW__CELERY__WORKER_PREFETCH_MULTIPLIER": "1",
            "AIRFLOW__OPERATORS__DEFAULT_QUEUE": self.celery_queue,
        }

    @property
    def broker_url(self) -> str:
        return f"redis://{REDIS_HOST}:{REDIS_PORT}/{REDIS_DB}"

    @staticmethod
    def worker_host(index: int) -> str:
        """The loopback address the ``index``-th Celery worker records as the host of its task instances."""
        return f"127.0.0.{index + 2}"

    def _commands(self) -> dict[str, tuple[list[str], dict[str, str]]]:
        """``name -> (airflow arguments, environment)`` of every long-running component."""
        commands = {name: ([arg.format(port=self.port) for arg in args], self.env) for name, args in COMPONENTS.items()}
        for index, worker in enumerate(self.celery_workers):
            args = [
                *("celery", "worker", "--queues", self.celery_queue, "--celery-hostname", f"{worker}@{HOST}"),
                *("--pid", str(self.home / f"celery-{worker}.pid"), "--skip-serve-logs"),
            ]
            commands[f"celery-{worker}"] = (args, {**self.env, TASK_HOST_VARIABLE: self.worker_host(index)})
        return commands

    # -- life cycle --------------------------------------------------------------------------------

    def __enter__(self) -> AirflowDeployment:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self, *, timeout: float = 240) -> None:
        deadline = time.monotonic() + timeout
        if self.pg_database:
            _admin_pg(f'CREATE DATABASE "{self.pg_database}"')
        self.log_dir.mkdir(parents=True, exist_ok=True)
        migrate_log = self.log_dir / "db-migrate.log"
        with migrate_log.open("w") as out:
            result = subprocess.run(
                ["airflow", "db", "migrate"],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=max(deadline - time.monotonic(), 1),
                check=False,
            )
        if result.returncode != 0:
            raise ComponentFailed(f"airflow db migrate exited with {result.returncode}\n{self.log_tails()}")
        for name, (args, env) in self._commands().items():
            log = (self.log_dir / f"{name}.log").open("w")
            self._log_files.append(log)
            self.processes[name] = subprocess.Popen(
                ["airflow", *args],
                env=env,
                cwd=self.home,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # its own process group, so stop() reaches its children
            )
        self.wait_healthy(deadline)
        if self.celery_workers:
            self.wait_for_workers(deadline)

    def check_alive(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is not None:
                raise ComponentFailed(f"{name} exited with {process.returncode}\n{self.log_tails()}")

    def wait_healthy(self, deadline: float) -> None:
        """Until ``/api/v2/monitor/health`` reports the database, scheduler, dag-processor and triggerer healthy."""
        health: object = None
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                response = self.http.get(f"{self.url}/api/v2/monitor/health", timeout=5)
                health = response.json() if response.ok else response.text
                if response.ok and all(
                    (health.get(part) or {}).get("status") == "healthy"
                    for part in ("metadatabase", "scheduler", "dag_processor", "triggerer")
                ):
                    return
            except (requests.ConnectionError, requests.Timeout, ValueError) as err:
                health = repr(err)
            time.sleep(1)
        raise ComponentFailed(f"Airflow is not healthy in time; last health: {health}\n{self.log_tails()}")

    def wait_for_workers(self, deadline: float) -> None:
        """Until every Celery worker answers a ping through the broker."""
        from celery import Celery

        app = Celery(broker=self.broker_url)
        expected = {f"{worker}@{HOST}" for worker in self.celery_workers}
        answered: set[str] = set()
        try:
            while time.monotonic() < deadline:
                self.check_alive()
                replies = app.control.ping(destination=sorted(expected), timeout=1.0) or []
                answered = {name for reply in replies for name in reply}
                if expected <= answered:
                    return
                time.sleep(1)
        finally:
            app.close()
        raise ComponentFailed(
            f"Celery workers {sorted(expected - answered)} did not answer in time\n{self.log_tails()}"
        )

    def _forget_queue(self) -> None:
        """Delete what this deployment left on the shared Redis database (its queue, nothing else)."""
        import redis

        client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=REDIS_DB, socket_connect_timeout=3)
        try:
            binding = f"_kombu.binding.{self.celery_queue}"  # the exchange binding kombu keeps per queue
            keys = [binding, self.celery_queue, *client.scan_iter(match=f"{self.celery_queue}*")]
            client.delete(*keys)
        except redis.RedisError:
            pass  # a queue left behind holds no task of a later run: every run has its own queue
        finally:
            client.close()

    def stop(self, *, timeout: float = 30) -> None:
        """SIGTERM every component's process group, SIGKILL what is left after ``timeout``; drop the database."""
        import psutil

        stragglers: list[psutil.Process] = []
        for process in self.processes.values():
            try:
                stragglers += psutil.Process(process.pid).children(recursive=True)
            except psutil.NoSuchProcess:
                pass
            _signal_group(process, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for process in self.processes.values():
            try:
                process.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                _signal_group(process, signal.SIGKILL)
                process.wait(timeout=10)
        _, alive = psutil.wait_procs(stragglers, timeout=max(deadline - time.monotonic(), 1))
        for child in alive:  # e.g. task processes in a group of their own
            try:
                child.kill()
            except psutil.NoSuchProcess:
                pass
        psutil.wait_procs(alive, timeout=10)
        self.processes.clear()
        for log in self._log_files:
            log.close()
        self._log_files.clear()
        self.http.close()
        if self.celery_workers:
            self._forget_queue()
        if self.pg_database:
            _admin_pg(f'DROP DATABASE IF EXISTS "{self.pg_database}" WITH (FORCE)')
            self.pg_database = None

    def token(self, username: str = USERNAME) -> str:
        """A JWT for ``username`` from ``POST /auth/token``, as a script would get one."""
        response = self.http.post(
            f"{self.url}/auth/token", json={"username": username, "password": self.passwords[username]}, timeout=30
        )
        response.raise_for_status()
        return response.json()["access_token"]

    # -- diagnostics -------------------------------------------------------------------------------

    def log_tails(self, lines: int = 60) -> str:
        parts = []
        for path in sorted(self.log_dir.glob("*.log")):
            text = path.read_text(errors="replace").splitlines()[-lines:]
            parts.append(f"----- {path.name} (last {len(text)} lines) -----\n" + "\n".join(text))
        return "\n".join(parts)


def _signal_group(process: subprocess.Popen, sig: int) -> None:
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, sig)  # the group id is the pid: start_new_session=True
    except ProcessLookupError:
        pass


class AirflowApi:
    """The REST API v2 of a running deployment, as the admin user (JWT from ``POST /auth/token``)."""

    def __init__(self, airflow: AirflowDeployment, username: str = USERNAME):
        self.airflow = airflow
        self.base = f"{airflow.url}/api/v2"
        self.http = requests.Session()
        self.http.trust_env = False
        self.token = airflow.token(username)
        self.http.headers["Authorization"] = f"Bearer {self.token}"

    def request(self, method: str, path: str, **kwargs) -> requests.Response:
        return self.http.request(method, f"{self.base}{path}", timeout=30, **kwargs)

    def get(self, path: str, **params) -> dict:
        response = self.request("GET", path, params=params)
        response.raise_for_status()
        return response.json()

    def set_paused(self, dag_id: str, paused: bool) -> None:
        response = self.request("PATCH", f"/dags/{dag_id}", json={"is_paused": paused})
        response.raise_for_status()

    def trigger(self, dag_id: str, conf: dict) -> requests.Response:
        return self.request("POST", f"/dags/{dag_id}/dagRuns", json={"logical_date": None, "conf": conf})

    def dag_runs(self, dag_id: str) -> list[dict]:
        return self.get(f"/dags/{dag_id}/dagRuns", limit=100)["dag_runs"]

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        return self.get(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances", limit=1000)["task_instances"]

    def wait_for_dags(self, dag_ids: set[str], *, timeout: float = 120) -> None:
        """Until the dag-processor has serialised every DAG in ``dag_ids``."""
        found: set[str] = set()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.airflow.check_alive()
            found = {dag["dag_id"] for dag in self.get("/dags", limit=100)["dags"]}
            if dag_ids <= found:
                return
            time.sleep(1)
        raise ComponentFailed(f"DAGs {sorted(dag_ids - found)} not parsed in time\n{self.airflow.log_tails()}")

    def wait_for_first_run(self, dag_id: str, *, timeout: float = 90) -> dict:
        """The first run the scheduler creates (after unpausing a scheduled DAG)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.airflow.check_alive()
            if runs := self.dag_runs(dag_id):
                return runs[0]
            time.sleep(1)
        raise ComponentFailed(f"The scheduler created no run of {dag_id} in time\n{self.airflow.log_tails()}")

    def wait_for_run(self, dag_id: str, run_id: str, *, timeout: float = 300) -> dict:
        """Until the run is ``success`` or ``failed``; returns the run."""
        run: dict = {}
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.airflow.check_alive()
            run = self.get(f"/dags/{dag_id}/dagRuns/{run_id}")
            if run["state"] in ("success", "failed"):
                return run
            time.sleep(2)
        states = [(ti["task_id"], ti["map_index"], ti["state"]) for ti in self.task_instances(dag_id, run_id)]
        raise ComponentFailed(
            f"{dag_id} run {run_id} still {run.get('state')} after {timeout}s; task instances: {states}\n"
            + self.airflow.log_tails()
        )

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int, map_index: int) -> str:
        """The whole log of one try, as text (structured log records joined one per line)."""
        response = self.request(
            "GET",
            f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number}",
            params={"map_index": map_index, "full_content": "true"},
            headers={"Accept": "application/json"},
        )
        response.raise_for_status()
        content = response.json()["content"]
        return "\n".join(
            json.dumps(record, ensure_ascii=False) if not isinstance(record, str) else record for record in content
        )

    def extra_links(self, dag_id: str, run_id: str, task_id: str, map_index: int) -> dict[str, str | None]:
        body = self.get(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/links", map_index=map_index)
        return body.get("extra_links", body)
