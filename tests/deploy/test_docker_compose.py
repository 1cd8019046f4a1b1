"""Static checks of docker-compose.yaml, Dockerfile and .env.example (no Docker daemon needed).

Docker may be missing where the suite runs, so the compose file is read with PyYAML (anchors and
``<<`` merges resolved) and its ``${VAR:-default}`` substitutions are evaluated here the way Compose
does. Only the last test needs ``docker compose``; it runs when a daemon answers and is skipped,
with its reason, otherwise. Every other test always runs. Long because the compose file is long:
one short test per promise it makes, beside the few helpers that read it as Compose would.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yaml"
DOCKERFILE = ROOT / "Dockerfile"
ENV_EXAMPLE = ROOT / ".env.example"
REQUIREMENTS = ROOT / "requirements.txt"

CORE_SERVICES = {
    "postgres",
    "airflow-init",
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
}
AIRFLOW_SERVICES = {
    "airflow-init",
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-worker",
    "sandbox",
}
"""Every service that runs the project's Airflow image."""
DESIGN_CONN_IDS = {"partner_center_default", "streamone_ion_default", "invoice_db", "smtp_default"}
"""DESIGN.md "Airflow connections" contract; providers not yet in the code are configured anyway."""
DESIGN_VARIABLES = {"invoice_sync_settings", "invoice_notification_recipients"}
SANDBOX_BASE_URL = "http://127.0.0.1:8081"

_SUBSTITUTION = re.compile(r"\$(?:(?P<escaped>\$)|\{(?P<braced>[^}]*)\}|(?P<named>[A-Za-z_][A-Za-z0-9_]*))")
_BRACED = re.compile(r"^(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>.*))?$", re.S)


# -- helpers ---------------------------------------------------------------------------------------


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's variable substitution: ``$$``, ``$VAR``, ``${VAR}``, ``${VAR:-default}``, ``${VAR-default}``."""

    def replace(match: re.Match) -> str:
        if match["escaped"]:
            return "$"
        if match["named"]:
            return env.get(match["named"], "")
        parsed = _BRACED.match(match["braced"])
        assert parsed, f"unsupported substitution ${{{match['braced']}}}"
        name, op, arg = parsed["name"], parsed["op"], parsed["arg"]
        value = env.get(name)
        if op == ":-":
            return value if value else arg
        if op == "-":
            return arg if value is None else value
        assert op is None, f"unsupported substitution operator {op!r} in ${{{match['braced']}}}"
        return value or ""

    return _SUBSTITUTION.sub(replace, text)


def resolve(node: Any, env: dict[str, str]) -> Any:
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, dict):
        return {key: resolve(value, env) for key, value in node.items()}
    if isinstance(node, list):
        return [resolve(value, env) for value in node]
    return node


def read_env_file(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        assert sep, f"{path.name}: not KEY=VALUE: {line!r}"
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def airflow_pin() -> str:
    for line in REQUIREMENTS.read_text().splitlines():
        match = re.match(r"^\s*apache-airflow\s*==\s*([0-9][^\s;#]*)", line)
        if match:
            return match[1]
    raise AssertionError("requirements.txt has no apache-airflow==<version> pin")


def command_text(service: dict) -> str:
    command = service.get("command", "")
    return " ".join(command) if isinstance(command, list) else str(command)


def compose_substitutions() -> list[str]:
    """The ``${...}`` contents Compose substitutes (comments and ``$$`` escapes left out)."""
    lines = [line for line in COMPOSE_FILE.read_text().splitlines() if not line.lstrip().startswith("#")]
    return [match["braced"] for match in _SUBSTITUTION.finditer("\n".join(lines)) if match["braced"] is not None]


def volume_targets(service: dict) -> dict[str, str]:
    """Container path -> host source of the service's volumes (short syntax)."""
    targets = {}
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        targets[target] = source
    return targets


@pytest.fixture(scope="module")
def raw_compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture(scope="module")
def compose(raw_compose) -> dict:
    """The compose file as Compose would see it without any .env: every default in effect."""
    return resolve(raw_compose, {})


@pytest.fixture(scope="module")
def services(compose) -> dict[str, dict]:
    return compose["services"]


def code_conn_ids() -> set[str]:
    """Connection ids the code uses: the provider registry, hook defaults and ``*conn_id="..."`` literals."""
    from include.providers import PROVIDERS
    from plugins.hooks.invoice_db import InvoiceDbHook

    ids = {spec.conn_id for spec in PROVIDERS.values()} | {InvoiceDbHook.default_conn_name}
    literal = re.compile(r"""conn_id\s*[:=]\s*(?:str\s*=\s*)?["']([A-Za-z0-9_]+)["']""")
    for folder in ("dags", "plugins", "include"):
        for path in (ROOT / folder).rglob("*.py"):
            ids.update(literal.findall(path.read_text()))
    return ids


# -- structure -------------------------------------------------------------------------------------


def test_required_services_exist(services):
    missing = (CORE_SERVICES | AIRFLOW_SERVICES | {"redis", "mailpit"}) - set(services)
    assert not missing, f"docker-compose.yaml lacks services: {sorted(missing)}"


def test_core_services_have_no_profile_and_never_depend_on_profiled_ones(services):
    """`docker compose up` without profiles must start; a dependency on a disabled service breaks it."""
    for name in CORE_SERVICES:
        assert not services[name].get("profiles"), f"{name} must run without a profile"
    for name, service in services.items():
        if service.get("profiles"):
            continue
        for dependency in service.get("depends_on", {}):
            assert not services[dependency].get("profiles"), (
                f"{name} (no profile) depends on {dependency}, which only exists with a profile"
            )


def test_airflow_services_share_one_definition(raw_compose):
    text = COMPOSE_FILE.read_text()
    assert "x-airflow-common: &airflow-common" in text, "use the x-airflow-common YAML anchor"
    assert text.count("<<: *airflow-common\n") >= len(AIRFLOW_SERVICES)


def test_no_default_contains_braces():
    """Compose versions disagree where ``${VAR:-{...}}`` ends, so JSON braces stay outside defaults."""
    for braced in compose_substitutions():
        assert "{" not in braced, f"a default contains a brace: ${{{braced}}}"
        assert _BRACED.match(braced), f"unsupported substitution ${{{braced}}}"


# -- image and versions ----------------------------------------------------------------------------


def test_dockerfile_from_matches_the_airflow_pin():
    pin = airflow_pin()
    froms = re.findall(r"^FROM\s+(\S+)", DOCKERFILE.read_text(), re.M)
    assert froms, "Dockerfile has no FROM line"
    assert froms == [f"apache/airflow:{pin}-python3.11"], (
        f"Dockerfile FROM {froms} must be apache/airflow:{pin}-python3.11 (requirements.txt pins {pin})"
    )
    text = DOCKERFILE.read_text()
    assert re.search(r"pip install[^\n]*-r\s+\S*requirements\.txt", text), "Dockerfile must install requirements.txt"


def test_the_image_installs_the_project_distribution_and_compose_enables_the_test_button(services):
    """The image installs pyproject.toml's distribution (its provider entry point registers the connection
    types); every Airflow component may test a connection."""
    text = DOCKERFILE.read_text()
    assert re.search(r"^COPY .*pyproject\.toml", text, re.M) and re.search(r"^COPY .*\bsrc\b", text, re.M)
    assert re.search(r"pip install[^\n]*/opt/airflow/project", text), "Dockerfile must install the distribution"
    for name in AIRFLOW_SERVICES:
        assert services[name]["environment"]["AIRFLOW__CORE__TEST_CONNECTION"] == "Enabled", name


def test_every_airflow_service_runs_the_pinned_image(services):
    pin = airflow_pin()
    for name in AIRFLOW_SERVICES:
        service = services[name]
        build = service.get("build")
        if build is not None:
            context = build if isinstance(build, str) else build.get("context", ".")
            dockerfile = "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile")
            assert (ROOT / context / dockerfile).resolve() == DOCKERFILE, f"{name} must build from ./Dockerfile"
            assert pin in service.get("image", pin), f"{name}: image tag should name Airflow {pin}"
        else:
            assert service.get("image") == f"apache/airflow:{pin}-python3.11", f"{name}: wrong image"
        assert "_PIP_ADDITIONAL_REQUIREMENTS" not in service.get("environment", {}), (
            f"{name}: requirements are baked into the image, not installed at start"
        )


# -- executor and profiles -------------------------------------------------------------------------


def test_executor_defaults_to_local_and_is_overridable(raw_compose, services):
    for name in AIRFLOW_SERVICES - {"airflow-worker"}:
        assert services[name]["environment"]["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor", name
    overridden = resolve(raw_compose, {"AIRFLOW__CORE__EXECUTOR": "CeleryExecutor"})["services"]
    for name in AIRFLOW_SERVICES:
        assert overridden[name]["environment"]["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor", name


def test_celery_profile_has_redis_and_a_celery_worker(services):
    redis, worker = services["redis"], services["airflow-worker"]
    assert redis.get("profiles") == ["celery"] and worker.get("profiles") == ["celery"]
    assert redis["image"].startswith("redis:")
    assert command_text(worker) == "celery worker"
    assert worker["environment"]["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert worker["depends_on"]["redis"]["condition"] == "service_healthy"
    broker = urlsplit(worker["environment"]["AIRFLOW__CELERY__BROKER_URL"])
    assert (broker.scheme, broker.hostname) == ("redis", "redis")
    backend = worker["environment"]["AIRFLOW__CELERY__RESULT_BACKEND"]
    assert urlsplit(backend.removeprefix("db+")).hostname == "postgres"
    # include/staging.py divides the worker's cores by it; the Celery e2e test sets the same keys.
    assert int(worker["environment"]["AIRFLOW__CELERY__WORKER_CONCURRENCY"]) >= 1


def test_sandbox_profile_runs_the_sandbox_cli_and_a_mail_catcher(services):
    sandbox, mailpit = services["sandbox"], services["mailpit"]
    assert sandbox.get("profiles") == ["sandbox"] and mailpit.get("profiles") == ["sandbox"]
    assert command_text(sandbox) == "python -m include.sandbox --port 8081"
    # The sandbox binds 127.0.0.1 only: it must share the network namespace of the task runner.
    assert sandbox["network_mode"] == "service:airflow-scheduler"
    assert "mailpit" in mailpit["image"]
    assert "8025" in " ".join(map(str, mailpit["ports"])) and 1025 in mailpit["expose"]


def test_sandbox_still_binds_where_the_compose_file_expects():
    from include.sandbox import server

    assert server.HOST == "127.0.0.1", "the sandbox now binds elsewhere: revisit network_mode of 'sandbox'"


# -- code, connections, variables ------------------------------------------------------------------


def test_project_code_is_mounted_and_importable(services):
    for name in AIRFLOW_SERVICES:
        targets = volume_targets(services[name])
        for folder in ("dags", "plugins", "include"):
            assert targets.get(f"/opt/airflow/{folder}") == f"./{folder}", f"{name}: ./{folder} not mounted"
        assert services[name]["environment"]["PYTHONPATH"] == "/opt/airflow", name


def test_every_connection_the_code_uses_is_configured(services):
    conn_ids = code_conn_ids() | DESIGN_CONN_IDS
    for name in AIRFLOW_SERVICES:
        environment = services[name]["environment"]
        for conn_id in sorted(conn_ids):
            key = f"AIRFLOW_CONN_{conn_id.upper()}"
            assert key in environment, f"{name}: {key} missing (connection {conn_id} is used by the code)"
            conn = json.loads(environment[key])
            assert conn.get("conn_type") and conn.get("host"), f"{name}: {key} needs conn_type and host"


@pytest.mark.parametrize("env_source", ["defaults", ".env.example"])
def test_connections_and_variables_parse(raw_compose, env_source):
    env = {} if env_source == "defaults" else read_env_file(ENV_EXAMPLE)
    environment = resolve(raw_compose, env)["services"]["airflow-scheduler"]["environment"]
    for key, value in environment.items():
        if key.startswith("AIRFLOW_CONN_"):
            assert isinstance(json.loads(value), dict), key
    for variable in DESIGN_VARIABLES:
        assert f"AIRFLOW_VAR_{variable.upper()}" in environment, f"variable {variable} not configured"
    recipients = json.loads(environment["AIRFLOW_VAR_INVOICE_NOTIFICATION_RECIPIENTS"])
    assert recipients and all(isinstance(address, str) and "@" in address for address in recipients)

    from include.providers import PROVIDERS
    from include.settings import parse_settings

    for provider in PROVIDERS:
        parse_settings(environment["AIRFLOW_VAR_INVOICE_SYNC_SETTINGS"], provider)


def test_databases_live_on_the_postgres_service(services):
    environment = services["airflow-scheduler"]["environment"]
    metadata = urlsplit(environment["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
    assert metadata.scheme.startswith("postgresql") and metadata.hostname == "postgres"
    invoice_db = json.loads(environment["AIRFLOW_CONN_INVOICE_DB"])
    assert invoice_db["conn_type"] == "postgres" and invoice_db["host"] == "postgres"
    assert invoice_db["schema"] != metadata.path.lstrip("/"), "invoice_db needs its own database"
    assert services["postgres"]["image"] == "postgres:16"


def test_smtp_default_points_at_the_mail_catcher(services):
    smtp = json.loads(services["airflow-scheduler"]["environment"]["AIRFLOW_CONN_SMTP_DEFAULT"])
    assert (smtp["conn_type"], smtp["host"], smtp["port"]) == ("smtp", "mailpit", 1025)


def test_provider_connections_default_to_the_sandbox(services):
    """Each default equals what the sandbox prints for itself on port 8081 (token_url as the hook fills it)."""
    from include.providers import PROVIDERS

    environment = services["airflow-scheduler"]["environment"]
    for spec in PROVIDERS.values():
        conn_id, expected = spec.conn_id, spec.sandbox().connection(SANDBOX_BASE_URL)
        configured = json.loads(environment[f"AIRFLOW_CONN_{conn_id.upper()}"])
        extra = dict(expected.get("extra", {}))
        if "token_url" in extra:
            extra["token_url"] = extra["token_url"].replace("{tenant_id}", str(extra.get("tenant_id", "")))
        expected = {**expected, "extra": extra}
        assert configured == expected, (
            f"AIRFLOW_CONN_{conn_id.upper()} defaults differ from the sandbox's own connection:\n"
            f"  compose: {json.dumps(configured)}\n  sandbox: {json.dumps(expected)}"
        )
    for conn_id in DESIGN_CONN_IDS - {"invoice_db", "smtp_default"}:
        host = json.loads(environment[f"AIRFLOW_CONN_{conn_id.upper()}"])["host"]
        assert host.startswith(SANDBOX_BASE_URL + "/"), f"{conn_id} should default to the sandbox"


# -- services' own settings ------------------------------------------------------------------------


def test_apiserver_port_and_healthcheck(services):
    apiserver = services["airflow-apiserver"]
    assert command_text(apiserver) == "api-server"
    assert "8080:8080" in apiserver["ports"]
    assert "http://localhost:8080/api/v2/version" in apiserver["healthcheck"]["test"]
    assert services["airflow-scheduler"]["environment"]["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == (
        "http://airflow-apiserver:8080/execution/"
    )
    for name in ("airflow-scheduler", "airflow-dag-processor", "airflow-triggerer"):
        assert command_text(services[name]) == name.removeprefix("airflow-")
        assert services[name]["depends_on"]["airflow-init"]["condition"] == "service_completed_successfully"


def test_init_migrates_creates_the_invoice_schema_and_an_admin(services):
    init = services["airflow-init"]
    script = command_text(init)
    assert "airflow db migrate" in script
    assert "\npython -m include.sql.migrate\n" in script  # the invoice database's Alembic revisions
    environment = init["environment"]
    assert environment["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"] == "admin:admin"
    assert environment["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"].startswith("/opt/airflow/auth/")
    assert environment["_AIRFLOW_ADMIN_PASSWORD"], "the admin password comes from AIRFLOW_ADMIN_PASSWORD"
    assert "_AIRFLOW_ADMIN_PASSWORD" not in services["airflow-apiserver"]["environment"]
    # Its embedded Python must at least compile.
    for block in re.findall(r"python - <<'PY'\n(.*?)\nPY\n", init["command"][-1], re.S):
        compile(block, "airflow-init", "exec")


def test_env_example_matches_the_compose_file():
    used = {_BRACED.match(braced)["name"] for braced in compose_substitutions()}
    documented = set(read_env_file(ENV_EXAMPLE)) | set(
        re.findall(r"^#\s*([A-Z][A-Z0-9_]*)=", ENV_EXAMPLE.read_text(), re.M)
    )
    compose_own = {"COMPOSE_PROFILES"}
    assert not (used - documented), f".env.example lacks {sorted(used - documented)}"
    assert not (documented - used - compose_own), f".env.example names unused {sorted(documented - used)}"


# -- the real thing, when Docker is there ----------------------------------------------------------


def _docker_compose_usable() -> str | None:
    if not shutil.which("docker"):
        return "no docker client"
    for args in (["docker", "compose", "version"], ["docker", "info"]):
        try:
            result = subprocess.run(args, capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired) as err:
            return f"{' '.join(args)}: {err}"
        if result.returncode:
            return f"{' '.join(args)} failed: {(result.stderr or result.stdout).strip()[:200]}"
    return None


def test_docker_compose_config_accepts_the_file():
    """Only where `docker compose` and a daemon work; the static tests above run regardless."""
    problem = _docker_compose_usable()
    if problem:
        pytest.skip(f"docker compose unavailable ({problem}); static checks cover the file")
    for profiles in ([], ["--profile", "celery", "--profile", "sandbox"]):
        result = subprocess.run(
            ["docker", "compose", "-f", str(COMPOSE_FILE), *profiles, "config", "--quiet"],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
