"""Plain MLflow behind a small resource: one tracking URI and experiments whose artifacts land where settings say."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import mlflow
from mlflow import MlflowClient

from optimum.settings import Settings

os.environ.setdefault("MLFLOW_SKIP_PIP_REQUIREMENTS_CHECK", "true")  # models are logged offline


class MlflowTracking:
    def __init__(self, settings: Settings):
        self.tracking_uri = settings.tracking_uri
        self.ui_url = self.tracking_uri if self.tracking_uri.startswith("http") else settings.mlflow_ui_url
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
    def start_run(self, experiment: str, run_name: str) -> Iterator[mlflow.ActiveRun]:
        mlflow.set_experiment(experiment_id=self.experiment_id(experiment))  # nested runs land beside the parent
        with mlflow.start_run(run_name=run_name) as run:
            yield run

    def run_link(self, run: mlflow.ActiveRun) -> str:
        """The run's page in the MLflow UI: the tracking server's, or the one `make mlflow-ui` starts."""
        info = run.info
        return f"{self.ui_url.rstrip('/')}/#/experiments/{info.experiment_id}/runs/{info.run_id}"
