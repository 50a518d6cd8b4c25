"""Plain MLflow behind a small resource: one tracking URI, the model registry on it, and experiments whose
artifacts land where settings say."""

from __future__ import annotations

import os
from functools import cached_property

import mlflow

from ml.registry import ModelRegistry
from optimum.settings import Settings

os.environ.setdefault("MLFLOW_SKIP_PIP_REQUIREMENTS_CHECK", "true")  # models are logged offline

# The MLflow UI opens an experiment of this kind on its runs (not on the GenAI traces view).
EXPERIMENT_KIND = {"mlflow.experimentKind": "custom_model_development"}


class MlflowTracking:
    def __init__(self, settings: Settings):
        self.tracking_uri = settings.tracking_uri
        self.ui_url = self.tracking_uri if self.tracking_uri.startswith("http") else settings.mlflow_ui_url
        # A local store keeps artifacts under OPTIMUM_HOME; a server decides for itself.
        self.artifact_root = settings.mlflow_artifacts_dir if not settings.mlflow_tracking_uri else None

    @cached_property
    def registry(self) -> ModelRegistry:
        return ModelRegistry(self.tracking_uri)

    def experiment_id(self, name: str) -> str:
        """The experiment's id, created (and tagged) on first use. Training logs through MLflow's fluent API,
        so this also points the process at the tracking URI (the registry never depends on that)."""
        mlflow.set_tracking_uri(self.tracking_uri)
        client = self.registry.client
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            location = (self.artifact_root / name).as_uri() if self.artifact_root else None
            experiment_id = client.create_experiment(name, artifact_location=location, tags=EXPERIMENT_KIND)
        else:
            experiment_id = experiment.experiment_id
            for key, value in EXPERIMENT_KIND.items():
                if experiment.tags.get(key) != value:
                    client.set_experiment_tag(experiment_id, key, value)
        return experiment_id

    def run_link(self, experiment_id: str, run_id: str) -> str:
        """The run's page in the MLflow UI: the tracking server's, or the one `make mlflow-ui` starts."""
        return f"{self.ui_url.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"
