"""The settings object: OPTIMUM_* environment variables decide paths, target and credentials."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from optimum.settings import REPO_ROOT, Settings, Target


def test_defaults_keep_all_state_under_one_home(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    for name in ("OPTIMUM_HOME", "OPTIMUM_TARGET", "OPTIMUM_LANDING_DIR"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings()
    assert settings.home == REPO_ROOT / ".optimum", "found from the repository, not the working directory"
    assert settings.target is Target.DUCKDB
    assert settings.landing_dir == REPO_ROOT / "data" / "landing"
    for path in (settings.dagster_home, settings.duckdb_path, settings.mlflow_dir, settings.bentoml_home):
        assert path.is_relative_to(settings.home)
    assert settings.dbt_env() == {"OPTIMUM_TARGET": "duckdb", "OPTIMUM_DUCKDB_PATH": str(settings.duckdb_path)}


def test_environment_variables_are_read_with_the_prefix(monkeypatch, tmp_path):
    monkeypatch.setenv("OPTIMUM_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("OPTIMUM_TARGET", "postgres")
    monkeypatch.setenv("OPTIMUM_PG_DSN", "postgresql://etl:s%40cret@db.internal:6543/warehouse")
    monkeypatch.setenv("OPTIMUM_LEAD_SEED_URLS", " http://a.test/list , ,http://b.test/ ")
    settings = Settings()
    assert settings.home == tmp_path / "state"
    assert settings.seed_urls == ["http://a.test/list", "http://b.test/"]
    assert settings.dbt_env() == {
        "OPTIMUM_TARGET": "postgres",
        "OPTIMUM_DUCKDB_PATH": str(tmp_path / "state" / "warehouse.duckdb"),
        "OPTIMUM_PG_HOST": "db.internal",
        "OPTIMUM_PG_PORT": "6543",
        "OPTIMUM_PG_USER": "etl",
        "OPTIMUM_PG_PASSWORD": "s@cret",
        "OPTIMUM_PG_DBNAME": "warehouse",
    }


def test_bad_values_are_clear_errors():
    with pytest.raises(ValidationError, match="target"):
        Settings(target="sqlite")
    with pytest.raises(ValueError, match="OPTIMUM_PG_DSN must look like"):
        _ = Settings(target="postgres", pg_dsn="mysql://x@y/z").pg


def test_ensure_dirs_creates_the_state_folders(tmp_path: Path):
    settings = Settings(home=tmp_path / "fresh")
    settings.ensure_dirs()
    assert settings.dagster_home.is_dir() and settings.mlflow_dir.is_dir()


def test_serving_section_reads_its_own_prefix(monkeypatch):
    monkeypatch.setenv("OPTIMUM_SERVING_REFRESH_SECONDS", "0")
    monkeypatch.setenv("OPTIMUM_SERVING_WORKERS", "3")
    monkeypatch.setenv("OPTIMUM_SERVING_ACCESS_LOG", "yes")
    monkeypatch.setenv("OPTIMUM_SERVING_MAX_BODY_BYTES", "1024")
    serving = Settings().serving
    assert (serving.refresh_seconds, serving.workers, serving.access_log, serving.tracing) == (0, 3, True, False)
    assert serving.max_body_bytes == 1024
    monkeypatch.setenv("OPTIMUM_SERVING_WORKERS", "0")
    with pytest.raises(ValidationError, match="workers"):
        Settings()


def test_as_env_rebuilds_the_same_settings_in_another_process(monkeypatch, tmp_path):
    """The CLI hands the service its settings as environment variables: every field, nested ones included."""
    settings = Settings(
        home=tmp_path / "state",
        target="postgres",
        pg_dsn="postgresql://etl:s%40cret@db.internal:6543/warehouse",
        forecast_horizon=12,
        serving={"refresh_seconds": 2.5, "tracing": True, "workers": 2},
    )
    env = settings.as_env()
    assert env["OPTIMUM_SERVING_TRACING"] == "true" and env["OPTIMUM_FORECAST_HORIZON"] == "12"
    for name in [n for n in env if n.startswith("OPTIMUM_")]:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert Settings() == settings
