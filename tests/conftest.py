"""Shared fixtures: generated demo data and throw-away PostgreSQL databases."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg2
import pytest

ADMIN_DSN = os.environ.get("OPTIMUM_TEST_PG_ADMIN_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")


# Worker seconds of the slowest test files (setup included) on a quiet 2-core machine, 2026-11-30. Under
# `make test` (two pytest-xdist workers, one file at a time, `--no-loadscope-reorder`) files are handed out in
# this order, slowest first, so the workers finish together; by default pytest-xdist hands out the files with
# the most tests first, which left two of these for the end. Only the order depends on these numbers.
SLOW_FILES = {
    "test_topology.py": 240,
    "test_pipeline.py": 189,
    "test_ml_pipeline.py": 130,
    "test_landing_concurrency.py": 101,
    "test_backup_drill.py": 90,
    "test_landing_hostile.py": 82,
    "test_serving.py": 69,
    "test_dbt_project.py": 55,
    "test_monitoring_loop.py": 54,
    "test_code_location.py": 47,
    "test_cli_servers.py": 37,
    "test_prediction_log.py": 33,
    "test_dbt_leads.py": 33,
    "test_serving_gate.py": 32,
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Slowest files first (a stable sort: the order inside a file and of the other files is kept)."""
    items.sort(key=lambda item: -SLOW_FILES.get(item.path.name, 0))


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist (`make test`), parse the dbt project once before the workers start: on a fresh clone
    each worker would otherwise parse it at the same time and one could read the other's half-written manifest."""
    if getattr(config.option, "numprocesses", None) and not hasattr(config, "workerinput"):
        from optimum.settings import Settings
        from orchestration.dbt import ensure_manifest

        ensure_manifest(Settings())


@pytest.fixture(scope="session")
def small_demo(tmp_path_factory: pytest.TempPathFactory):
    """Small generated data (landing files, planted bad rows, lead site), shared read-only by all tests."""
    from orchestration.demo.generate import generate_demo_data

    return generate_demo_data(tmp_path_factory.mktemp("demo"), scale="small", seed=7, days=120)


def _admin_connection():
    con = psycopg2.connect(ADMIN_DSN, connect_timeout=3)
    con.autocommit = True
    return con


@pytest.fixture(scope="session")
def postgres_admin() -> Iterator[None]:
    """PostgreSQL must answer in CI; on a laptop without it the Postgres tests skip."""
    try:
        _admin_connection().close()
    except psycopg2.OperationalError as error:
        if os.environ.get("CI"):
            pytest.fail(f"CI needs PostgreSQL at {ADMIN_DSN}: {error}")
        pytest.skip(f"no PostgreSQL at {ADMIN_DSN}")
    yield


@pytest.fixture
def new_pg_database(postgres_admin) -> Iterator[Callable[[], str]]:
    """Create fresh databases on demand; all of them are dropped after the test."""
    created: list[str] = []

    def create() -> str:
        name = f"optimum_test_{uuid.uuid4().hex[:10]}"
        con = _admin_connection()
        with con.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{name}"')
        con.close()
        created.append(name)
        return ADMIN_DSN.rsplit("/", 1)[0] + f"/{name}"

    yield create
    con = _admin_connection()
    with con.cursor() as cur:
        for name in created:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    con.close()


@pytest.fixture
def pg_dsn(new_pg_database) -> str:
    return new_pg_database()


def landing_copy(source: Path, destination: Path) -> Path:
    """A writable copy of a landing folder, for tests that add or change files."""
    import shutil

    shutil.copytree(source, destination)
    return destination
