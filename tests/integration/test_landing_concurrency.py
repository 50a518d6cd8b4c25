"""Overlapping and killed runs: loads at once never duplicate, a busy state refuses a second run, a killed
run does not stay STARTED nor keep its pool slot."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest

from optimum.settings import Settings
from orchestration.cli import exclusive_state, fail_abandoned_runs, kill_abandoned_mlflow_runs, use_dagster_home
from orchestration.landing.contract import LANDING_SOURCES
from orchestration.landing.load import load_source
from orchestration.warehouse import Warehouse
from tests.integration.pipeline import blocking_check_failures, run_job, settings_for

pytestmark = pytest.mark.integration
OPTIMUM = str(Path(sys.executable).with_name("optimum"))


def _load_everything(settings: Settings) -> None:
    warehouse = Warehouse.from_settings(settings)
    for source in LANDING_SOURCES:
        load_source(warehouse, settings.landing_dir, source)


def _duplicates(warehouse: Warehouse) -> dict[str, int]:
    return {
        "sales": int(
            warehouse.query("SELECT count(*) - count(DISTINCT order_id || '|' || product_id) AS n FROM raw.sales")[
                "n"
            ].iloc[0]
        ),
        "interactions": int(
            warehouse.query("SELECT count(*) - count(DISTINCT event_id) AS n FROM raw.interactions")["n"].iloc[0]
        ),
        "files": int(
            warehouse.query(
                "SELECT count(*) - count(DISTINCT source || content_sha256) AS n FROM raw.load_log "
                "WHERE content_sha256 IS NOT NULL"
            )["n"].iloc[0]
        ),
    }


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def shared_state(request, tmp_path, small_demo):
    values = {"target": "postgres", "pg_dsn": request.getfixturevalue("pg_dsn")} if request.param == "postgres" else {}
    return settings_for(tmp_path, small_demo.out_dir / "landing", **values)


def test_two_loads_started_together_load_every_file_once(shared_state):
    context = multiprocessing.get_context("spawn")
    loaders = [context.Process(target=_load_everything, args=(shared_state,)) for _ in range(2)]
    for loader in loaders:
        loader.start()
    for loader in loaders:
        loader.join(timeout=600)
    assert [loader.exitcode for loader in loaders] == [0, 0]
    warehouse = Warehouse.from_settings(shared_state)
    assert _duplicates(warehouse) == {"sales": 0, "interactions": 0, "files": 0}
    rows_before = warehouse.row_count("raw.sales")
    result = run_job(shared_state, "ingest_and_warehouse")
    assert result.success
    assert blocking_check_failures(result) == []
    assert warehouse.row_count("raw.sales") == rows_before


def test_a_second_optimum_run_on_a_busy_state_fails_fast(tmp_path):
    settings = Settings(home=tmp_path / "state", landing_dir=tmp_path / "landing")
    env = os.environ | {"OPTIMUM_HOME": str(settings.home), "OPTIMUM_LANDING_DIR": str(settings.landing_dir)}
    with exclusive_state(settings):
        second = subprocess.run(
            [OPTIMUM, "run", "--job", "ingest_and_warehouse"], env=env, capture_output=True, text=True, timeout=300
        )
    assert second.returncode == 1
    assert "is in use by optimum pid" in second.stderr


def test_a_killed_run_is_failed_and_frees_its_pool_slot(tmp_path, small_demo, monkeypatch):
    settings = settings_for(tmp_path, small_demo.out_dir / "landing")
    env = os.environ | {"OPTIMUM_HOME": str(settings.home), "OPTIMUM_LANDING_DIR": str(settings.landing_dir)}
    monkeypatch.setenv("DAGSTER_HOME", str(settings.dagster_home))
    use_dagster_home(settings)  # creates the schema under the lock every optimum command takes, as the run will
    run = subprocess.Popen([OPTIMUM, "run", "--job", "ingest_and_warehouse"], env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        started = []
        while not started and time.monotonic() < deadline and run.poll() is None:
            time.sleep(1)
            with dg.DagsterInstance.get() as instance:
                started = instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED]))
        assert started, "the run never started"
        os.killpg(run.pid, signal.SIGKILL)
        run.wait()
        with exclusive_state(settings), dg.DagsterInstance.get() as instance:
            assert fail_abandoned_runs(instance) == [started[0].run_id]
            assert instance.get_run_by_id(started[0].run_id).status == dg.DagsterRunStatus.FAILURE
            assert started[0].run_id not in instance.event_log_storage.get_concurrency_run_ids()
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)


def test_mlflow_runs_left_running_by_a_killed_run_are_marked_killed(tmp_path):
    from mlflow import MlflowClient

    settings = Settings(home=tmp_path / "state", landing_dir=tmp_path)
    settings.ensure_dirs()
    client = MlflowClient(settings.tracking_uri)
    run = client.create_run(client.create_experiment("recommender"))  # never terminated, as after kill -9
    assert kill_abandoned_mlflow_runs(settings) == 1
    assert client.get_run(run.info.run_id).info.status == "KILLED"
    assert kill_abandoned_mlflow_runs(settings) == 0
