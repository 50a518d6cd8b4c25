"""The dbt project as Dagster sees it: where it lives, how its manifest is kept fresh, how nodes are named."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtProjectPreparer, DagsterDbtTranslator, DbtProject

from orchestration.settings import DBT_PROJECT_DIR

WAREHOUSE_GROUP = "warehouse"

dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)

_DBT_SOURCES = ("models", "macros", "snapshots", "tests", "dbt_project.yml")


def manifest_is_stale(project: DbtProject = dbt_project) -> bool:
    """True when manifest.json is missing or older than any file of the dbt project."""
    if not project.manifest_path.exists():
        return True
    built = project.manifest_path.stat().st_mtime
    paths = [p for name in _DBT_SOURCES for p in (project.project_dir / name).rglob("*") if p.is_file()]
    return any(p.stat().st_mtime > built for p in paths)


def ensure_manifest(project: DbtProject = dbt_project) -> None:
    """Parse the project when needed, so a fresh clone and an edited model both load without a manual step."""
    if manifest_is_stale(project):
        DagsterDbtProjectPreparer().prepare(project)


class OptimumDbtTranslator(DagsterDbtTranslator):
    """Every dbt model, snapshot and test lands in the warehouse group (sources keep keys raw/<table>)."""

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        return WAREHOUSE_GROUP

