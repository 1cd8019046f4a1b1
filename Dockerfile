# The project's Airflow image: the official image plus the pinned requirements, built once.
#
# Why a Dockerfile and not _PIP_ADDITIONAL_REQUIREMENTS: that variable makes every container pip-install
# the requirements at EVERY start (slow, needs PyPI at runtime, and the scheduler, API server, workers
# could end up with different resolutions). Airflow's own docs recommend extending the image instead.
#
# The tag's Airflow version must equal the apache-airflow pin in requirements.txt
# (tests/deploy/test_docker_compose.py checks it); bump both together.
FROM apache/airflow:3.3.2-python3.11

# requirements.txt pins apache-airflow itself, so pip keeps the image's Airflow and only adds or
# aligns the project's libraries (GX, pandas, SQLAlchemy, psycopg 3 for the invoice database, ...).
COPY --chown=airflow:0 requirements.txt /opt/airflow/requirements.txt
RUN pip install --no-cache-dir -r /opt/airflow/requirements.txt

# The project's distribution (pyproject.toml): it registers the connection types Partner Center and
# StreamOne Ion with Airflow's providers manager (apache_airflow_provider entry point), so the
# Connections page offers them with labelled fields. It ships only src/provider_invoice_sync.
COPY --chown=airflow:0 pyproject.toml /opt/airflow/project/pyproject.toml
COPY --chown=airflow:0 src /opt/airflow/project/src
RUN pip install --no-cache-dir --no-deps /opt/airflow/project

# Bake the code in, so the image also runs where nothing is bind-mounted (e.g. Kubernetes).
# docker-compose.yaml mounts ./dags, ./plugins and ./include over these for live editing.
COPY --chown=airflow:0 dags /opt/airflow/dags
COPY --chown=airflow:0 plugins /opt/airflow/plugins
COPY --chown=airflow:0 include /opt/airflow/include

ENV PYTHONPATH=/opt/airflow \
    GX_ANALYTICS_ENABLED=False
