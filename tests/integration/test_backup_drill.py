"""The restore drill in production mode (tests/integration/drill.py says what is compared), on a state trained
on PostgreSQL: the same refresh_everything also shows the postgres target tracks in PostgreSQL and writes the
outputs. The embedded drill runs on the state tests/integration/test_ml_pipeline.py trained.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from mlflow import MlflowClient

from ml.packaging import RECOMMENDER_MODEL_NAME
from optimum.settings import Settings
from orchestration.warehouse import Warehouse
from tests.integration.drill import recorded_run, restore_drill, use

pytestmark = [pytest.mark.integration, pytest.mark.postgres]


def _settings(tmp: Path, demo, **values) -> Settings:
    """The settings of tests/integration/test_ml_pipeline.py (small horizon, two Prophet series), on PostgreSQL."""
    return Settings(
        home=tmp / "state",
        landing_dir=demo.out_dir / "landing",
        backup_dir=tmp / "backups",
        forecast_horizon=4,
        forecast_prophet_top_n=2,
        recs_top_n=5,
        target="postgres",
        **values,
    )


def test_postgres_target_trains_and_survives_the_restore_drill(
    tmp_path, small_demo, new_pg_database, monkeypatch, capsys
):
    """PostgreSQL for the warehouse (and the MLflow store in it) and for Dagster's storage, as in production.

    Destroying means dropping the databases and deleting the folders; the restore goes into new, empty
    databases (other names, as on a rebuilt server) and the same paths."""
    warehouse_dsn, dagster_dsn = new_pg_database(), new_pg_database()
    settings = _settings(tmp_path, small_demo, pg_dsn=warehouse_dsn)
    dagster_home = tmp_path / "dagster_home"  # outside the state folder, as in the image

    def use_dagster_storage(dsn: str) -> None:
        """An instance on PostgreSQL, the driver named as infra/dagster.yaml does (psycopg 3 is not installed)."""
        url = dsn.replace("postgresql://", "postgresql+psycopg2://")
        dagster_home.mkdir(exist_ok=True)
        (dagster_home / "dagster.yaml").write_text(f"storage:\n  postgres:\n    postgres_url: {url}\n")

    use_dagster_storage(dagster_dsn)
    use(monkeypatch, settings, dagster_home)
    restored = _settings(tmp_path, small_demo, pg_dsn=new_pg_database())

    assert settings.tracking_uri.startswith("postgresql+psycopg2://")
    first = recorded_run(settings, "refresh_everything")
    assert first.success, [event.message for event in first.all_events if event.is_failure]
    champion = MlflowClient(settings.tracking_uri).get_model_version_by_alias(RECOMMENDER_MODEL_NAME, "champion")
    assert str(champion.version) == "1"
    warehouse = Warehouse.from_settings(settings)
    assert warehouse.row_count("marts.recommendations") > 0
    assert warehouse.row_count("marts.demand_forecast") > 0

    def destroy():
        from tests.conftest import _admin_connection

        shutil.rmtree(settings.home)
        shutil.rmtree(dagster_home)
        con = _admin_connection()
        with con.cursor() as cur:
            for dsn in (warehouse_dsn, dagster_dsn):
                cur.execute(f'DROP DATABASE "{dsn.rsplit("/", 1)[1]}" WITH (FORCE)')
        con.close()
        use_dagster_storage(new_pg_database())
        use(monkeypatch, restored, dagster_home)

    restore_drill(settings, destroy, restored, capsys)
