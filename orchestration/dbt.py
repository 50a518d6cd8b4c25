"""The dbt project as Dagster sees it: where it lives, how its manifest is kept fresh, how nodes are named."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, DbtProject

from optimum.settings import DBT_PROJECT_DIR, Settings
from orchestration.freshness import DAILY

WAREHOUSE_GROUP = "warehouse"

# The dbt installed next to this interpreter, so the venv works without being on PATH.
DBT_EXECUTABLE = str(Path(sys.executable).with_name("dbt"))

dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)


def dbt_cli(project: DbtProject = dbt_project) -> DbtCliResource:
    return DbtCliResource(project_dir=project, dbt_executable=DBT_EXECUTABLE)


_DBT_SOURCES = ("models", "macros", "snapshots", "tests", "dbt_project.yml")


def manifest_is_stale(project: DbtProject = dbt_project) -> bool:
    """True when manifest.json is missing or older than any file of the dbt project."""
    if not project.manifest_path.exists():
        return True
    built = project.manifest_path.stat().st_mtime
    paths = [p for name in _DBT_SOURCES for p in (project.project_dir / name).rglob("*") if p.is_file()]
    return any(p.stat().st_mtime > built for p in paths)


@contextmanager
def dbt_environment(settings: Settings) -> Iterator[None]:
    """Expose the variables dbt_project/profiles.yml reads while a dbt process starts, then restore them.

    dagster-dbt hands os.environ to the dbt subprocess; scoping the change keeps two settings objects
    (say a DuckDB and a Postgres graph in one test session) from leaking into each other.
    """
    # dbt colours its output only for a terminal (the Dagster compute logs and the CLI's summary are not one).
    values = settings.dbt_env() | {"DBT_USE_COLORS": "true" if sys.stdout.isatty() else "false"}
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def ensure_manifest(settings: Settings, project: DbtProject = dbt_project) -> None:
    """Parse the project when needed, so a fresh clone and an edited model both load without a manual step."""
    if manifest_is_stale(project):
        with dbt_environment(settings):
            args = ["parse", "--quiet", "--vars", json.dumps(settings.dbt_vars())]
            dbt_cli(project).cli(args, target_path=project.target_path).wait()


class OptimumDbtTranslator(DagsterDbtTranslator):
    """Every dbt model, snapshot and test lands in the warehouse group (sources keep keys raw/<table>)."""

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        return WAREHOUSE_GROUP

    def get_asset_spec(self, manifest: Mapping[str, Any], unique_id: str, project: DbtProject | None) -> dg.AssetSpec:
        spec = super().get_asset_spec(manifest, unique_id, project)
        return spec.replace_attributes(freshness_policy=DAILY) if spec.key.path[0] == "marts" else spec

    def get_automation_condition(self, dbt_resource_props: Mapping[str, Any]) -> dg.AutomationCondition | None:
        """The warehouse follows ingestion: a model is rebuilt once its sources or parents were updated."""
        return dg.AutomationCondition.eager()
