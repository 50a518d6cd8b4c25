"""Helpers to materialize the real graph in-process against a throw-away state folder."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from optimum.settings import Settings
from orchestration.definitions import build_definitions


def run_job(settings: Settings, job_name: str = "refresh_everything") -> dg.ExecuteInProcessResult:
    job = build_definitions(settings).resolve_job_def(job_name)
    with dg.DagsterInstance.ephemeral() as instance:
        return job.execute_in_process(instance=instance, raise_on_error=False)


def check_results(result: dg.ExecuteInProcessResult) -> dict[str, bool]:
    """`asset/check_name` -> passed, for every check evaluated in the run."""
    return {
        f"{event.event_specific_data.asset_key.to_user_string()}/{event.event_specific_data.check_name}": (
            event.event_specific_data.passed
        )
        for event in result.all_events
        if event.event_type_value == "ASSET_CHECK_EVALUATION"
    }


def blocking_check_failures(result: dg.ExecuteInProcessResult) -> list[str]:
    """Checks of ERROR severity that did not pass: what would block downstream (WARN checks only report)."""
    return [
        f"{data.asset_key.to_user_string()}/{data.check_name}"
        for event in result.all_events
        if event.event_type_value == "ASSET_CHECK_EVALUATION"
        and not (data := event.event_specific_data).passed
        and data.severity == dg.AssetCheckSeverity.ERROR
    ]


def materialized(result: dg.ExecuteInProcessResult) -> set[str]:
    return {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}


def settings_for(tmp: Path, landing: Path, **values) -> Settings:
    return Settings(home=tmp / "state", landing_dir=landing, **values)
