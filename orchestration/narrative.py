"""What `optimum run` and `optimum demo` print: one timed line per stage, not every library's chatter.

dagster-dbt echoes every dbt event to stdout (a few hundred lines per build) and MLflow logs its
housekeeping at INFO; both stay in the Dagster run's own logs (`make up`) and out of the terminal, where
dbt is reduced to its closing summary. Dagster's warnings and every failure still reach the terminal.
"""

from __future__ import annotations

import io
import logging
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stdout
from dataclasses import dataclass, field

import dagster as dg

ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")
DBT_SUMMARY = re.compile(r"^Done\. (PASS=.*)$", re.MULTILINE)

# MLflow warnings about choices this project made on purpose (the models are pickled pyfunc objects).
KNOWN_MLFLOW_WARNINGS = ("Passing a Python object as `python_model`",)
ARTIFACT_PROGRESS_BAR = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"


class _KnownWarnings(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(KNOWN_MLFLOW_WARNINGS)


@contextmanager
def quiet_libraries() -> Iterator[io.StringIO]:
    """Collect what is printed to stdout (dbt's event lines) and keep MLflow at WARNING, minus known ones.

    The filter sits on MLflow's handlers: a logger's own filters do not see its children's records
    (mlflow.pyfunc, ...)."""
    import mlflow  # noqa: F401  (configures its loggers on import, which would undo the level set here)

    mlflow_logger = logging.getLogger("mlflow")
    level, known = mlflow_logger.level, _KnownWarnings()
    progress_bar = os.environ.get(ARTIFACT_PROGRESS_BAR)
    os.environ[ARTIFACT_PROGRESS_BAR] = "false"  # tqdm bars on stderr each time a model is loaded
    mlflow_logger.setLevel(logging.WARNING)
    for handler in mlflow_logger.handlers:
        handler.addFilter(known)
    printed = io.StringIO()
    try:
        with redirect_stdout(printed):
            yield printed
    finally:
        if progress_bar is None:
            os.environ.pop(ARTIFACT_PROGRESS_BAR, None)
        else:
            os.environ[ARTIFACT_PROGRESS_BAR] = progress_bar
        mlflow_logger.setLevel(level)
        for handler in mlflow_logger.handlers:
            handler.removeFilter(known)


def plain(text: str) -> str:
    return ANSI_ESCAPE.sub("", text)


def dbt_summary(printed: str) -> str | None:
    """dbt's closing counts ("PASS=117 WARN=0 ERROR=0 SKIP=0 NO-OP=0 TOTAL=117"), if dbt ran."""
    found = DBT_SUMMARY.findall(plain(printed))
    return found[-1] if found else None


@dataclass
class Stage:
    """One asset group of a run: when its last asset finished, and what its assets said."""

    group: str
    finished: float = 0.0
    lines: list[str] = field(default_factory=list)


def _detail(key: dg.AssetKey, metadata: dict) -> str:
    name = key.to_user_string()
    summary = metadata.get("summary") or metadata.get("skipped")
    if summary is not None:  # ingest summaries start with their source's name already
        return summary.value if summary.value.startswith(f"{key.path[-1]}:") else f"{name}: {summary.value}"
    rows = metadata.get("dagster/row_count")
    return f"{name}: {rows.value:,} rows" if rows is not None else name


def stages(instance: dg.DagsterInstance, run_id: str, groups: dict[dg.AssetKey, str]) -> tuple[float, list[Stage]]:
    """The run's start time and its stages in the order they finished, from the run's event log."""
    records = instance.all_logs(run_id)
    started = records[0].timestamp
    by_group: dict[str, Stage] = {}
    for record in records:
        event = record.dagster_event
        if event is None or event.event_type_value != "ASSET_MATERIALIZATION":
            continue
        materialization = event.step_materialization_data.materialization
        group = groups.get(materialization.asset_key, "other")
        stage = by_group.setdefault(group, Stage(group))
        stage.finished = record.timestamp
        stage.lines.append(_detail(materialization.asset_key, materialization.metadata))
    return started, sorted(by_group.values(), key=lambda stage: stage.finished)


def timed(seconds: float, text: str) -> str:
    return f"[{seconds:6.1f} s] {text}"
