"""The restore drill: back up a materialized state, destroy it, restore it, and compare everything.

What is compared before and after: the row count of every warehouse table and view, the registry's
versions and aliases, the Dagster run history (runs and their event counts), and the answers the BentoML
service gives over HTTP. Then the restored platform takes the next nightly backup through Dagster.
The embedded drill runs on the state tests/integration/test_ml_pipeline.py trained (one materialization
shared), the production one in tests/integration/test_backup_drill.py.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import dagster as dg
import httpx
import pytest
from mlflow import MlflowClient

from optimum.settings import Settings
from orchestration.cli import main
from orchestration.definitions import build_definitions
from orchestration.warehouse import Warehouse
from tests.serving_fixtures import running_server, server_env


def table_counts(settings: Settings) -> dict[str, int]:
    warehouse = Warehouse.from_settings(settings)
    tables = warehouse.query(
        "SELECT table_schema, table_name FROM information_schema.tables "
        "WHERE table_schema NOT IN ('information_schema', 'pg_catalog') ORDER BY 1, 2"
    )
    return {f"{s}.{t}": warehouse.row_count(f"{s}.{t}") for s, t in tables.itertuples(index=False)}


def registry(settings: Settings) -> dict[str, dict]:
    client = MlflowClient(settings.tracking_uri, registry_uri=settings.tracking_uri)
    state = {}
    for model in client.search_registered_models():
        versions = client.search_model_versions(f"name = '{model.name}'")
        state[model.name] = {
            "aliases": dict(model.aliases),
            "versions": sorted((v.version, v.run_id, v.status, v.tags.get("promotion.decision")) for v in versions),
        }
    return state


def run_history(settings: Settings) -> list[tuple]:
    with dg.DagsterInstance.get() as instance:
        return sorted(
            (run.run_id, run.job_name, run.status.value, len(instance.all_logs(run.run_id)))
            for run in instance.get_runs()
        )


def served_answers(settings: Settings) -> dict[str, dict]:
    """What the service answers for a known user and the best-selling product."""
    warehouse = Warehouse.from_settings(settings)
    user = str(warehouse.query("SELECT min(user_id) AS u FROM marts.user_item_scores")["u"].iloc[0])
    product = str(
        warehouse.query(
            "SELECT product_id FROM marts.demand_forecast GROUP BY product_id ORDER BY sum(yhat) DESC, 1 LIMIT 1"
        )["product_id"].iloc[0]
    )
    calls = {"/recommend": {"user_id": user, "count": 5}, "/forecast": {"product_id": product, "horizon": 4}}
    answers = {}
    env = server_env(settings.home, settings.tracking_uri)
    with running_server(env, settings.home.parent / "serving.log", timeout=300) as server:
        for route, body in calls.items():
            response = httpx.post(f"{server.url}{route}", json=body, timeout=30)
            assert response.status_code == 200, response.text
            answers[route] = {k: v for k, v in response.json().items() if k != "request_id"}  # new per request
    return answers


def snapshot(settings: Settings) -> dict:
    return {
        "tables": table_counts(settings),
        "registry": registry(settings),
        "runs": run_history(settings),
        "served": served_answers(settings),
    }


def recorded_run(settings: Settings, job_name: str) -> dg.ExecuteInProcessResult:
    """In-process, recorded in the instance $DAGSTER_HOME names (SQLite or PostgreSQL storage)."""
    job = build_definitions(settings).resolve_job_def(job_name)
    with dg.DagsterInstance.get() as instance:
        return job.execute_in_process(instance=instance, raise_on_error=False)


def use(monkeypatch: pytest.MonkeyPatch, settings: Settings, dagster_home: Path) -> None:
    """Point `optimum` (which reads the environment) and Dagster at these settings."""
    for name, value in {
        "OPTIMUM_HOME": settings.home,
        "OPTIMUM_LANDING_DIR": settings.landing_dir,
        "OPTIMUM_BACKUP_DIR": settings.backup_dir,
        "OPTIMUM_TARGET": settings.target.value,
        "OPTIMUM_PG_DSN": settings.pg_dsn,
        "OPTIMUM_FORECAST_HORIZON": settings.forecast_horizon,
        "OPTIMUM_FORECAST_PROPHET_TOP_N": settings.forecast_prophet_top_n,
        "OPTIMUM_RECS_TOP_N": settings.recs_top_n,
        "DAGSTER_HOME": dagster_home,
    }.items():
        monkeypatch.setenv(name, str(value))


def restore_drill(settings: Settings, destroy: Callable[[], None], restored_settings: Settings, capsys) -> None:
    """On a state refresh_everything materialized (runs recorded in $DAGSTER_HOME): back up, destroy, restore."""
    before = snapshot(settings)
    assert sum(before["tables"].values()) > 0 and len(before["registry"]) == 2 and before["runs"]

    assert main(["backup"]) == 0
    backups = sorted(settings.backup_dir.glob("optimum-backup-*.tar.gz"))
    assert len(backups) == 1
    assert "sha256" in capsys.readouterr().out

    destroy()
    assert main(["restore", str(backups[0])]) == 0
    # The command reads its settings from the environment, which the caller pointed at the fresh state.
    after = snapshot(restored_settings)
    assert after == before
    print("drill before == after:", {k: (len(v) if k != "served" else v.keys()) for k, v in after.items()})

    _nightly_backup_through_dagster(restored_settings, backups[0])


def _nightly_backup_through_dagster(settings: Settings, first_backup: Path) -> None:
    """The restored platform runs the nightly job; its asset reports size, duration and checksum."""
    result = recorded_run(settings, "nightly_backup")
    assert result.success
    (event,) = result.get_asset_materialization_events()
    metadata = event.step_materialization_data.materialization.metadata
    path = Path(metadata["path"].value)
    assert path != first_backup and path.exists()
    assert metadata["size_bytes"].value == path.stat().st_size > 0
    assert metadata["duration_s"].value >= 0
    assert Path(f"{path}.sha256").read_text().split()[0] == metadata["sha256"].value
