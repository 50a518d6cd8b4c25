"""The lead scorer through the shared publish path (ml.training.publish, ModelRegistry) on a real MLflow
SQLite registry: the first choice serves, a repeat trains nothing, and the champion always holds the
latest leads (its design refit on them when the run's choice does not beat it)."""

from __future__ import annotations

import os

import mlflow
import pandas as pd
import pytest

from ml.leads.package import LEAD_SCORER_MODEL_NAME
from ml.leads.training import publish_lead_scorer
from ml.registry import ModelRegistry
from tests.unit.test_lead_outcome import LATEST, SCORER, world


@pytest.fixture
def registry(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_SKIP_PIP_REQUIREMENTS_CHECK", "true")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    before = mlflow.get_tracking_uri() if mlflow.is_tracking_uri_set() else None
    mlflow.set_tracking_uri(uri)
    client = mlflow.MlflowClient(tracking_uri=uri)
    experiment_id = client.create_experiment("leads", artifact_location=(tmp_path / "artifacts").as_uri())
    yield ModelRegistry(uri), experiment_id
    if before is not None:
        mlflow.set_tracking_uri(before)
    else:
        os.environ.pop("MLFLOW_TRACKING_URI", None)


def served_leads(registry: ModelRegistry) -> set[str]:
    champion = registry.champion(LEAD_SCORER_MODEL_NAME)
    package = registry.load(LEAD_SCORER_MODEL_NAME, champion.version)
    total, rows = package.find_leads(limit=10_000)
    assert total == len(rows)
    return {row["lead_key"] for row in rows}


def test_publish_then_unchanged_then_the_champion_follows_new_leads(registry):
    registry, experiment_id = registry
    leads, history = world(200)
    published, decision = publish_lead_scorer(leads, history, SCORER, 20, LATEST, registry, experiment_id)
    assert decision.outcome == "promoted" and published.run_id
    assert served_leads(registry) == set(leads["lead_key"])

    again, repeat = publish_lead_scorer(leads, history, SCORER, 20, LATEST, registry, experiment_id)
    assert repeat.outcome == "unchanged" and again.version == published.version

    new = leads.head(5).assign(lead_key=[f"N{i}" for i in range(5)])
    more = pd.concat([leads, new], ignore_index=True)
    _, later = publish_lead_scorer(more, history, SCORER, 20, LATEST, registry, experiment_id)
    assert later.outcome == "promoted", later.reason  # the choice, or the champion's design refit on them
    assert served_leads(registry) == set(more["lead_key"])


def test_without_outcomes_the_configured_scorer_serves_the_latest_leads(registry):
    registry, experiment_id = registry
    leads, history = world(200)
    publish_lead_scorer(leads, history, SCORER, 20, LATEST, registry, experiment_id)
    fewer = leads.head(150)
    _, decision = publish_lead_scorer(fewer, history.head(0), SCORER, 20, LATEST, registry, experiment_id)
    assert decision.promoted, decision.reason
    champion = registry.champion(LEAD_SCORER_MODEL_NAME)
    assert registry.load(LEAD_SCORER_MODEL_NAME, champion.version).scorer_kind == "transparent"
    assert served_leads(registry) == set(fewer["lead_key"])
