"""The database servers of the tests: where each test process finds its PostgreSQL or
MariaDB database.

``TUNER_TEST_POSTGRES_URL`` and ``TUNER_TEST_MYSQL_URL`` name one database each. A serial
run uses it as it is. Under pytest-xdist every worker gets a database of its own, named after
the configured one and the worker (``test`` becomes ``test_gw0``, ``test_gw1``...), created on
the server when missing: tests that empty the store's tables, or count what a database holds,
never see another worker's rows. Creating one needs the right to (PostgreSQL's ``postgres``
and MariaDB's ``root`` have it on the test servers); the databases are kept for the next run.
"""

from __future__ import annotations

import functools
import os

import pytest
from sqlalchemy import create_engine, text

from tuner.store._engine import resolve_url

VARIABLES = {"postgresql": "TUNER_TEST_POSTGRES_URL", "mysql": "TUNER_TEST_MYSQL_URL"}
EXAMPLES = {
    "postgresql": "postgresql+psycopg://postgres@127.0.0.1:5432/test",
    "mysql": "mysql+pymysql://root@127.0.0.1:3306/test",
}


def server_url(backend: str) -> str:
    """The URL of this test process's database on ``backend``'s server ("postgresql" or
    "mysql"); skips the test when its variable is not set."""
    variable = VARIABLES[backend]
    configured = os.environ.get(variable)
    if not configured:
        pytest.skip(f"{variable} is not set (e.g. {EXAMPLES[backend]})")
    worker = os.environ.get("PYTEST_XDIST_WORKER")  # gw0, gw1... (unset in a serial run)
    if not worker:
        return configured
    return _worker_database(backend, configured, worker)


@functools.cache
def _worker_database(backend: str, configured: str, worker: str) -> str:
    url = resolve_url(configured)  # also parses postgres:// and mariadb:// as tuner does
    if not url.database:
        raise pytest.UsageError(f"{VARIABLES[backend]} names no database: {configured}")
    name = f"{url.database}_{worker}"
    if backend == "postgresql":
        # CREATE DATABASE runs outside a transaction, from the server's maintenance database.
        admin = url.set(database="postgres")
        exists = "SELECT 1 FROM pg_database WHERE datname = :name"
        create = f'CREATE DATABASE "{name}"'
    else:
        admin = url.set(database=None)
        exists = "SELECT 1 FROM information_schema.schemata WHERE schema_name = :name"
        create = f"CREATE DATABASE IF NOT EXISTS `{name}`"
    engine = create_engine(admin, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            if connection.execute(text(exists), {"name": name}).first() is None:
                connection.execute(text(create))
    finally:
        engine.dispose()
    return url.set(database=name).render_as_string(hide_password=False)
