"""Plain MLflow behind a small resource: one tracking URI and experiments whose artifacts land where settings say."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
import mlflow
from mlflow import MlflowClient

from ml.registry import DAGSTER_ASSET_TAG, DAGSTER_RUN_TAG, DATA_AS_OF_TAG
from optimum.settings import Settings

os.environ.setdefault("MLFLOW_SKIP_PIP_REQUIREMENTS_CHECK", "true")  # models are logged offline


class MlflowTracking:
    def __init__(self, settings: Settings):
        self.tracking_uri = settings.tracking_uri
        # A local store keeps artifacts under OPTIMUM_HOME; a server decides for itself.
        self.artifact_root = settings.mlflow_artifacts_dir if not settings.mlflow_tracking_uri else None

    def activate(self) -> None:
        mlflow.set_tracking_uri(self.tracking_uri)
        mlflow.set_registry_uri(self.tracking_uri)

    def experiment_id(self, name: str) -> str:
        self.activate()
        client = MlflowClient()
        experiment = client.get_experiment_by_name(name)
        if experiment is not None:
            return experiment.experiment_id
        location = (self.artifact_root / name).as_uri() if self.artifact_root else None
        return client.create_experiment(name, artifact_location=location)

    @contextmanager
    def start_run(
        self, experiment: str, run_name: str, context: dg.AssetExecutionContext | None = None, data_as_of=None
    ) -> Iterator[mlflow.ActiveRun]:
        """A run tagged with the Dagster run and asset that started it and the data's latest date, so a
        served answer leads back to both (the asset's metadata links the run the other way)."""
        mlflow.set_experiment(experiment_id=self.experiment_id(experiment))  # nested runs land beside the parent
        tags = {}
        if context is not None:
            tags = {DAGSTER_RUN_TAG: context.run.run_id, DAGSTER_ASSET_TAG: context.asset_key.to_user_string()}
        if data_as_of is not None:
            tags[DATA_AS_OF_TAG] = str(data_as_of)
        with mlflow.start_run(run_name=run_name, tags=tags) as run:
            yield run

    def run_link(self, run: mlflow.ActiveRun) -> str:
        """Where to see the run: the server's page, or the run id in the local store."""
        info = run.info
        if self.tracking_uri.startswith("http"):
            return f"{self.tracking_uri.rstrip('/')}/#/experiments/{info.experiment_id}/runs/{info.run_id}"
        return f"run {info.run_id} in {self.tracking_uri} (open with `make mlflow-ui`)"
