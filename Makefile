# Two commands for a fresh machine: `make demo` and `make test`. Nothing here needs a server:
# the invoice database defaults to SQLite in the project-local Airflow home (.airflow/).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
BENCH_LINES ?=

export AIRFLOW_HOME := $(CURDIR)/.airflow
export AIRFLOW__CORE__DAGS_FOLDER := $(CURDIR)/dags
export AIRFLOW__CORE__PLUGINS_FOLDER := $(CURDIR)/plugins
export AIRFLOW__CORE__LOAD_EXAMPLES := False
export GX_ANALYTICS_ENABLED := False
export PYTHONPATH := $(CURDIR)
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: install demo test airflow bench lint clean

# The project itself is installed editable (pyproject.toml): it registers the connection types with
# Airflow's providers manager; it ships only src/provider_invoice_sync (see pyproject.toml).
$(VENV)/.installed: requirements.txt requirements-dev.txt pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is required (set PYTHON=python3.11)"'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $@

install: $(VENV)/.installed

demo: install
	$(PY) -m include.demo

test: install
	$(PY) -m pytest

airflow: install
	$(PY) -m include.local_airflow

bench: install
	$(PY) -m benchmarks.pipeline $(if $(BENCH_LINES),--lines $(BENCH_LINES),)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

clean:
	rm -rf .airflow
