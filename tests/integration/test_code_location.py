"""The code location loads as Dagster's own tooling loads it, and the CLI drives it."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import dagster as dg

from optimum.settings import REPO_ROOT, Settings
from orchestration.dbt import dbt_project
from orchestration.definitions import build_definitions

DAGSTER = str(Path(sys.executable).with_name("dagster"))


def test_dagster_definitions_validate_passes(tmp_path):
    env = os.environ | {"OPTIMUM_HOME": str(tmp_path / "state"), "DAGSTER_HOME": str(tmp_path)}
    result = subprocess.run(
        [DAGSTER, "definitions", "validate", "-w", str(REPO_ROOT / "workspace.yaml")],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_graph_has_groups_jobs_schedules_and_checks(tmp_path):
    definitions = build_definitions(Settings(home=tmp_path / "state"))
    graph = definitions.resolve_asset_graph()
    groups = {graph.get(key).group_name for key in graph.get_all_asset_keys()}
    assert groups == {"ingest", "warehouse", "ml", "monitoring", "operations"}
    assert dg.AssetKey(["marts", "fct_sales_daily"]) in graph.get_all_asset_keys()
    upstream = graph.get(dg.AssetKey(["staging", "stg_sales"])).parent_keys
    assert dg.AssetKey(["raw", "sales"]) in upstream  # ingestion and dbt are one lineage
    checks = {key.name for key in graph.asset_check_keys}
    assert "expectations_raw_sales" in checks and any(name.startswith("unique_") for name in checks)
    manifest = json.loads(dbt_project.manifest_path.read_text())
    dbt_tests = {node["name"] for node in manifest["nodes"].values() if node["resource_type"] == "test"}
    assert dbt_tests <= checks, dbt_tests - checks  # singular tests with several refs too
    assert {(s.name, s.job_name, s.cron_schedule) for s in definitions.schedules} == {
        ("daily_ingest", "ingest_and_warehouse", "0 2 * * *"),
        ("weekly_refresh", "refresh_everything", "0 4 * * 0"),
        ("nightly_backup", "nightly_backup", "0 3 * * *"),
        ("monthly_retrain", "retrain", "0 3 1 * *"),
    }
    everything = definitions.resolve_job_def("refresh_everything").asset_layer.selected_asset_keys
    assert dg.AssetKey("backup") not in everything, "the backup runs on its own schedule, not in refresh runs"
    daily = definitions.resolve_job_def("ingest_and_warehouse").asset_layer.selected_asset_keys
    assert dg.AssetKey(["marts", "fct_sales_daily"]) in daily
    assert not [key for key in daily if graph.get(key).group_name == "ml"], "the daily job trains nothing"
    sensors = {sensor.name: sensor for sensor in definitions.sensors}
    assert set(sensors) == {"landing_sensor", "declarative_automation", "retrain_on_evidence", "alert_on_run_failure"}
    assert sensors["landing_sensor"].job_name == "ingest_landing"
    assert sensors["retrain_on_evidence"].job_name == "retrain"
    conditions = {key: graph.get(key).automation_condition for key in graph.get_all_asset_keys()}
    assert conditions[dg.AssetKey(["marts", "fct_sales_daily"])] is not None  # the warehouse follows ingest
    assert conditions[dg.AssetKey("recommender")] is None  # models retrain on evidence or the monthly floor


def test_cli_generates_runs_and_records_the_run_in_the_embedded_instance(tmp_path, monkeypatch, capsys):
    from orchestration.cli import main

    monkeypatch.setenv("OPTIMUM_HOME", str(tmp_path / "state"))
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    assert main(["generate", "--out", str(tmp_path / "data"), "--scale", "small", "--days", "60"]) == 0
    landing = tmp_path / "data" / "landing"
    assert main(["run", "--landing", str(landing), "--job", "ingest_and_warehouse"]) == 0
    output = capsys.readouterr().out
    assert "ingest_and_warehouse succeeded" in output
    assert re.search(r"\] warehouse: \d+ tables and views built; dbt build PASS=\d+ ", output), output  # dbt's summary
    assert "\x1b[" not in output, "no colour codes when not a terminal"
    assert "START sql" not in output and "of 117" not in output

    instance = dg.DagsterInstance.from_config(str(tmp_path / "state" / "dagster"))
    assert [run.job_name for run in instance.get_runs()] == ["ingest_and_warehouse"]
    assert not instance.nux_enabled, "a fresh state opens the UI without the community pop-up"
    assert main(["summary"]) == 0
    tables = [line.split()[0] for line in capsys.readouterr().out.splitlines()[1:]]
    schemas = [table.split(".")[0] for table in tables]
    assert "marts.fct_sales_daily" in tables
    assert schemas == sorted(schemas, key=["raw", "staging", "snapshots", "marts"].index), "pipeline order"
