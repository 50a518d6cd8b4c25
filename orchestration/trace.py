"""`optimum trace REQUEST_ID`: follow one served answer back to the data its model was trained on.

request (raw.prediction_log, or the spool when not ingested yet) -> model version (MLflow registry)
-> MLflow run (params, metrics, tags) -> Dagster run (the run that materialized the training asset)
-> data snapshot (data_as_of and the dataset MLflow logged as the run's training input).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd

from ml.registry import DAGSTER_ASSET_TAG, DAGSTER_RUN_TAG, DATA_AS_OF_TAG
from optimum.settings import Settings
from orchestration.landing.predictions import REQUEST_FIELDS, SOURCE
from orchestration.warehouse import Warehouse


class RequestNotFound(LookupError):
    pass


def find_request(settings: Settings, request_id: str) -> dict:
    """The logged answer: from the warehouse when ingested, else from the spool files not ingested yet."""
    warehouse = Warehouse.from_settings(settings)
    if warehouse.table_exists("raw", SOURCE):
        rows = warehouse.query(f"SELECT * FROM raw.{SOURCE} WHERE request_id = ? ORDER BY rank", (request_id,))  # noqa: S608 -- SOURCE is a module constant; the id is bound
        if len(rows):
            request = {name: rows[name].iloc[0] for name in REQUEST_FIELDS}
            request["items"] = list(zip(rows["item_id"], rows["score"], strict=True))
            return request | {"found_in": f"raw.{SOURCE} (load {rows['_load_id'].iloc[0]})"}
    folder = Path(settings.landing_dir) / SOURCE
    for path in sorted(folder.glob("*"), reverse=True) if folder.is_dir() else []:
        for line in path.read_text(errors="replace").splitlines():
            if request_id in line:
                entry = json.loads(line)
                if entry.get("request_id") == request_id:
                    return entry | {"found_in": f"spool file {path.name} (not ingested yet)"}
    raise RequestNotFound(f"request {request_id!r} is neither in raw.{SOURCE} nor in {folder}")


def trace_request(settings: Settings, request_id: str) -> list[str]:
    """The chain as printable lines; raises RequestNotFound."""
    from mlflow import MlflowClient

    request = find_request(settings, request_id)
    items = ", ".join(
        f"{item} ({score:.3g})" if score is not None else str(item) for item, score in request["items"][:5]
    )
    lines = [
        f"request     {request_id}  [{request['found_in']}]",
        f"            {request['endpoint']} for {request['caller_id']} at {request['requested_at']}, "
        f"variant {request['variant']}",
        f"            returned {len(request['items'])} items: {items}{' ...' if len(request['items']) > 5 else ''}",
        f"model       {request['model_name']} version {request['model_version']}",
    ]
    client = MlflowClient(tracking_uri=settings.tracking_uri)
    version = client.get_model_version(request["model_name"], str(request["model_version"]))
    aliases = ", ".join(version.aliases) or "none now"
    lines.append(
        f"            registered {pd.Timestamp(version.creation_timestamp, unit='ms')} UTC; aliases: {aliases}"
    )
    run_id = request.get("mlflow_run_id") or version.run_id
    if not run_id:
        return [*lines, "mlflow run  (none recorded)"]
    run = client.get_run(run_id)
    tags = run.data.tags
    metrics = "".join(f"; {k}={v:.4g}" for k, v in sorted(run.data.metrics.items())[:6])
    started = pd.Timestamp(run.info.start_time, unit="ms").floor("s")
    lines += [
        f"mlflow run  {run_id} ({tags.get('mlflow.runName', '')}) in experiment {run.info.experiment_id}",
        f"            {run.info.status}, started {started} UTC{metrics}",
    ]
    dagster_run_id = tags.get(DAGSTER_RUN_TAG)
    lines.append(_dagster_line(settings, dagster_run_id, tags.get(DAGSTER_ASSET_TAG)))
    datasets = [
        f"{entry.dataset.name} (digest {entry.dataset.digest}, {_rows(entry.dataset.profile)} rows)"
        for entry in run.inputs.dataset_inputs
    ]
    lines.append(
        f"data        as of {tags.get(DATA_AS_OF_TAG, 'unknown')}; training input: {', '.join(datasets) or 'none'}"
    )
    return lines


def _rows(profile: str | None) -> str:
    try:
        return str(json.loads(profile or "{}").get("num_rows", "?"))
    except ValueError:
        return "?"


def _dagster_line(settings: Settings, run_id: str | None, asset_key: str | None) -> str:
    if not run_id:
        return "dagster run (not recorded: the model was not trained by Dagster)"
    import dagster as dg

    # Production sets DAGSTER_HOME (infra/dagster.yaml); embedded mode keeps the instance under OPTIMUM_HOME.
    home = os.environ.get("DAGSTER_HOME") or str(settings.dagster_home)
    with dg.DagsterInstance.from_config(home) as instance:
        run = instance.get_run_by_id(run_id)
        stats = instance.get_run_stats(run_id) if run else None
    if run is None:
        return f"dagster run {run_id} (asset {asset_key}; not in this Dagster instance's history)"
    started = pd.Timestamp(stats.start_time, unit="s").floor("s") if stats and stats.start_time else "?"
    return f"dagster run {run_id}: job {run.job_name}, {run.status.value}, started {started} UTC, asset {asset_key}"
