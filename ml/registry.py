"""Model registry conventions: register a challenger, decide and record promotion to champion.

MLflow aliases carry the state (`challenger` = latest trained, `champion` = served); every decision is
written to the challenger version's tags so the history stays in MLflow.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass

import mlflow
import pandas as pd
from mlflow import MlflowClient

CHAMPION = "champion"
CHALLENGER = "challenger"
MIN_RELATIVE_IMPROVEMENT = 0.005
# Lineage tags on every training run, read back by serving (each answer carries them) and `optimum trace`.
DAGSTER_RUN_TAG = "dagster.run_id"
DAGSTER_ASSET_TAG = "dagster.asset_key"
DATA_AS_OF_TAG = "data_as_of"
_PIP_REQUIREMENTS: list[str] = []  # served from the project's own locked environment, never pip-installed


@dataclass(frozen=True)
class Evaluation:
    """How good a model is, and on what: only evaluations with the same fingerprint compare directly."""

    metric: str
    value: float
    higher_is_better: bool
    data_fingerprint: str
    config: str  # the model configuration (JSON), to recognise a refresh of the same design

    def beats(self, other_value: float) -> bool:
        """Better by more than MIN_RELATIVE_IMPROVEMENT, so run-to-run noise never swaps the champion."""
        margin = abs(other_value) * MIN_RELATIVE_IMPROVEMENT
        return self.value > other_value + margin if self.higher_is_better else self.value < other_value - margin

    def as_tags(self) -> dict[str, str]:
        return {f"eval.{key}": str(value) for key, value in asdict(self).items()}

    @classmethod
    def from_tags(cls, tags: dict[str, str]) -> Evaluation | None:
        if "eval.metric" not in tags:
            return None
        return cls(
            metric=tags["eval.metric"],
            value=float(tags["eval.value"]),
            higher_is_better=tags["eval.higher_is_better"] == "True",
            data_fingerprint=tags["eval.data_fingerprint"],
            config=tags["eval.config"],
        )


@dataclass(frozen=True)
class PromotionDecision:
    promote: bool
    reason: str
    challenger_version: str
    champion_version: str | None


def frame_fingerprint(*frames: pd.DataFrame) -> str:
    """A content hash of the training data, so two runs on the same data are recognised as such."""
    digest = hashlib.sha256()
    for frame in frames:
        digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
        digest.update(",".join(map(str, frame.columns)).encode())
    return digest.hexdigest()[:16]


def decide_promotion(
    challenger: Evaluation, champion: Evaluation | None, champion_rescored: float | None = None
) -> tuple[bool, str]:
    """Champion moves only when the challenger beats it on the same evaluation (or is its refresh).

    champion_rescored: the champion's configuration evaluated on the challenger's split, when the data
    changed and the caller could afford to re-evaluate it.
    """
    if champion is None:
        return True, "first model: nothing to beat"
    if champion.metric != challenger.metric:
        return True, f"metric changed from {champion.metric} to {challenger.metric}: not comparable"
    if champion.data_fingerprint == challenger.data_fingerprint:
        verdict = challenger.beats(champion.value)
        comparison = f"{challenger.metric} {challenger.value:.4f} vs champion {champion.value:.4f} on the same data"
        return verdict, ("better: " if verdict else "not better: ") + comparison
    if champion.config == challenger.config:
        return True, "refresh: same configuration as the champion, trained on newer data"
    if champion_rescored is not None:
        verdict = challenger.beats(champion_rescored)
        comparison = f"{challenger.metric} {challenger.value:.4f} vs champion's configuration {champion_rescored:.4f}"
        return verdict, ("better: " if verdict else "not better: ") + comparison + " on this run's split"
    return False, "data changed and the champion could not be re-evaluated on it: keeping the champion"


def register_challenger(python_model: mlflow.pyfunc.PythonModel, name: str, evaluation: Evaluation) -> str:
    """Log the package in the active run, register it and point the `challenger` alias at it."""
    info = mlflow.pyfunc.log_model(
        name="model", python_model=python_model, registered_model_name=name, pip_requirements=_PIP_REQUIREMENTS
    )
    version = str(info.registered_model_version)
    client = MlflowClient()
    for key, value in evaluation.as_tags().items():
        client.set_model_version_tag(name, version, key, value)
    client.set_registered_model_alias(name, CHALLENGER, version)
    return version


def champion_version(name: str) -> tuple[str, Evaluation | None] | None:
    client = MlflowClient()
    try:
        version = client.get_model_version_by_alias(name, CHAMPION)
    except mlflow.exceptions.MlflowException:
        return None
    return str(version.version), Evaluation.from_tags(version.tags)


def promote_if_better(
    name: str, challenger_version: str, evaluation: Evaluation, champion_rescored: float | None = None
) -> PromotionDecision:
    """Apply `decide_promotion` and record it on the challenger version (tags) either way."""
    current = champion_version(name)
    champion_number, champion_eval = current if current else (None, None)
    if champion_number == challenger_version:
        return PromotionDecision(False, "already the champion", challenger_version, champion_number)
    promote, reason = decide_promotion(evaluation, champion_eval, champion_rescored)
    client = MlflowClient()
    client.set_model_version_tag(name, challenger_version, "promotion.decision", "promoted" if promote else "kept")
    client.set_model_version_tag(name, challenger_version, "promotion.reason", reason)
    client.set_model_version_tag(name, challenger_version, "promotion.compared_with", str(champion_number))
    if promote:
        client.set_registered_model_alias(name, CHAMPION, challenger_version)
        client.set_registered_model_tag(name, "champion.history", _history(client, name, challenger_version))
    return PromotionDecision(promote, reason, challenger_version, champion_number)


def _history(client: MlflowClient, name: str, new_champion: str) -> str:
    """Versions that were champion, oldest first (kept short: MLflow tag values are bounded)."""
    previous = client.get_registered_model(name).tags.get("champion.history", "")
    versions = [v for v in previous.split(",") if v] + [new_champion]
    return ",".join(versions[-200:])


def config_json(config: dict) -> str:
    return json.dumps(config, sort_keys=True, default=str)


def promote_ab_winner(name: str, version: str, reason: str) -> bool:
    """Make `version` the champion because it won an A/B test on live outcomes (the offline gate already
    let it serve as challenger); recorded like every other decision. False when it already is."""
    current = champion_version(name)
    if current is not None and current[0] == version:
        return False
    client = MlflowClient()
    client.set_model_version_tag(name, version, "promotion.decision", "promoted")
    client.set_model_version_tag(name, version, "promotion.reason", reason)
    client.set_model_version_tag(name, version, "promotion.compared_with", str(current[0] if current else None))
    client.set_registered_model_alias(name, CHAMPION, version)
    client.set_registered_model_tag(name, "champion.history", _history(client, name, version))
    return True
