"""The model registry: register a challenger, read the champion, load a version, decide and record promotion.

MLflow aliases carry the state (`challenger` = latest trained, `champion` = served); every decision is
written to the challenger version's tags so the history stays in MLflow. Training and serving both go
through `ModelRegistry`, which talks to one tracking URI through its own client (never the process-wide
one), so a caller's MLflow settings are never changed behind its back.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote, urlparse

import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException

CHAMPION = "champion"
CHALLENGER = "challenger"
MIN_RELATIVE_IMPROVEMENT = 0.005
TRAINING_KEY_TAG = "training.key"  # data, configuration and code a version was trained from
# Lineage tags on every training run, read back by serving (each answer carries them) and `optimum trace`.
DAGSTER_RUN_TAG = "dagster.run_id"
DAGSTER_ASSET_TAG = "dagster.asset_key"
DATA_AS_OF_TAG = "data_as_of"


@dataclass(frozen=True)
class Evaluation:
    """How good a model is, and on what: only evaluations with the same fingerprint compare directly."""

    metric: str
    value: float
    higher_is_better: bool
    data_fingerprint: str
    config: str  # the model configuration (JSON), to recognise a refresh of the same design
    baseline: str = ""  # the strongest simple baseline, scored on the same split
    baseline_value: float = float("nan")

    def beats(self, other_value: float) -> bool:
        """Better by more than MIN_RELATIVE_IMPROVEMENT, so run-to-run noise never swaps the champion."""
        margin = abs(other_value) * MIN_RELATIVE_IMPROVEMENT
        return self.value > other_value + margin if self.higher_is_better else self.value < other_value - margin

    @property
    def beats_baseline(self) -> bool:
        """No worse than the baseline (False when either value is missing). A tie means the served choice is
        the baseline itself (seasonal naive won the backtest): serving it is right, so it must not block."""
        if self.higher_is_better:
            return self.value >= self.baseline_value
        return self.value <= self.baseline_value

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
            baseline=tags.get("eval.baseline", ""),
            baseline_value=float(tags.get("eval.baseline_value", "nan")),
        )


def frame_fingerprint(*frames: pd.DataFrame) -> str:
    """A content hash of the training data, so two runs on the same data are recognised as such.

    Row order does not count: a table rebuilt from the same rows may come back in another order."""
    digest = hashlib.sha256()
    for frame in frames:
        digest.update(np.sort(pd.util.hash_pandas_object(frame, index=False).to_numpy()).tobytes())
        digest.update(",".join(map(str, frame.columns)).encode())
    return digest.hexdigest()[:16]


def config_json(config: dict) -> str:
    return json.dumps(config, sort_keys=True, default=str)


def decide_promotion(
    challenger: Evaluation, champion: Evaluation | None, rescore: Callable[[str], float] | None = None
) -> tuple[bool, str]:
    """Champion moves only when the challenger beats it on the same evaluation (or is its refresh).

    rescore: evaluates a configuration (the champion's `Evaluation.config`) on the challenger's split. It is
    called only when the decision needs it: the data changed and the champion's design differs.
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
    if rescore is not None:
        rescored = rescore(champion.config)
        verdict = challenger.beats(rescored)
        comparison = f"{challenger.metric} {challenger.value:.4f} vs champion's configuration {rescored:.4f}"
        return verdict, ("better: " if verdict else "not better: ") + comparison + " on this run's split"
    return False, "data changed and the champion could not be re-evaluated on it: keeping the champion"


Outcome = Literal["promoted", "kept", "unchanged"]


@dataclass(frozen=True)
class PromotionDecision:
    """What became of a challenger: promoted, kept (the champion stays), or unchanged (nothing was registered
    because a version trained on the same data and configuration already exists: `challenger_version`)."""

    outcome: Outcome
    reason: str
    challenger_version: str
    champion_version: str | None  # before the decision

    @property
    def promoted(self) -> bool:
        return self.outcome == "promoted"

    @property
    def champion_after(self) -> str | None:
        return self.challenger_version if self.promoted else self.champion_version


@dataclass(frozen=True)
class RegisteredVersion:
    """One registered model version: its number, the run that logged it, its evaluation and tags."""

    name: str
    version: str
    run_id: str | None
    evaluation: Evaluation | None
    tags: dict[str, str]


ABANDONED = "abandoned"
_ENDED_RUN_STATES = ("FAILED", "KILLED")


@dataclass(frozen=True)
class VersionState:
    """What the cleanup needs to know about one registered version and the run that logged it."""

    version: str
    has_alias: bool
    decided: bool  # carries a `promotion.decision` tag
    run_status: str | None  # the MLflow run's status; None: the run is gone (deleted)
    dagster_run_ended: bool | None = None  # the Dagster run that trained it has ended or is gone; None: unknown


def abandoned_versions(states: list[VersionState]) -> dict[str, str]:
    """Versions a killed training left behind, with why: version -> reason.

    `publish` registers a version, points `challenger` at it, then decides its promotion; a run killed in
    between leaves a version that no alias names and no decision explains. It is abandoned (never served,
    never to be decided) once its run cannot still be working on it: the MLflow run is gone, ended FAILED
    or KILLED, or is still RUNNING although the Dagster run that trained it has ended. A version whose
    run may still be alive is left alone, as are aliased versions and every decided one (the history).
    """
    abandoned = {}
    for state in states:
        if state.has_alias or state.decided:
            continue
        if state.run_status is None:
            abandoned[state.version] = "its training run no longer exists"
        elif state.run_status in _ENDED_RUN_STATES:
            abandoned[state.version] = f"its training run ended {state.run_status} before a promotion decision"
        elif state.run_status == "RUNNING" and state.dagster_run_ended:
            abandoned[state.version] = "its training run was left RUNNING by a Dagster run that has ended"
    return abandoned


def missing_sqlite_store(tracking_uri: str) -> Path | None:
    """The database file of a sqlite:/// store that does not exist yet (nothing trained); else None.

    Checked before connecting, because opening a SQLite store creates and migrates the file: looking for a
    champion must not create the registry as a side effect."""
    parsed = urlparse(tracking_uri)
    if parsed.scheme != "sqlite" or not parsed.path or parsed.path == "/:memory:":
        return None
    path = Path(unquote(parsed.path[1:]))  # SQLAlchemy: sqlite:///relative.db, sqlite:////absolute.db
    return None if path.exists() else path


class ModelRegistry:
    """The MLflow model registry at one tracking URI, through an explicit client."""

    def __init__(self, tracking_uri: str):
        self.tracking_uri = tracking_uri

    @cached_property
    def client(self) -> MlflowClient:
        """Made on first use: a client on a SQLite URI creates the database file."""
        return MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)

    def version(self, name: str, alias: str) -> RegisteredVersion | None:
        """The version `alias` points at; None when there is none (or no registry yet)."""
        if missing_sqlite_store(self.tracking_uri) is not None:
            return None
        try:
            found = self.client.get_model_version_by_alias(name, alias)
        except MlflowException as error:
            if error.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"):
                return None
            raise
        return _registered(found)

    def champion(self, name: str) -> RegisteredVersion | None:
        return self.version(name, CHAMPION)

    def trained_on(self, name: str, training_key: str) -> RegisteredVersion | None:
        """The champion or challenger trained from exactly `training_key`, if either was."""
        for alias in (CHAMPION, CHALLENGER):
            found = self.version(name, alias)
            if found is not None and found.tags.get(TRAINING_KEY_TAG) == training_key:
                return found
        return None

    def register_challenger(
        self, name: str, model: mlflow.models.model.ModelInfo, evaluation: Evaluation, training_key: str
    ) -> str:
        """Register a logged model under `name` with its evaluation and point the `challenger` alias at it."""
        try:
            self.client.create_registered_model(name)
        except MlflowException as error:
            if error.error_code not in ("RESOURCE_ALREADY_EXISTS", "ALREADY_EXISTS"):
                raise
        tags = evaluation.as_tags() | {TRAINING_KEY_TAG: training_key}
        created = self.client.create_model_version(
            name, source=model.model_uri, run_id=model.run_id, tags=tags, model_id=model.model_id
        )
        version = str(created.version)
        self.client.set_registered_model_alias(name, CHALLENGER, version)
        return version

    def load(self, name: str, version: str) -> Any:
        """The python model of `name` version `version` (downloaded from this registry, unwrapped)."""
        with tempfile.TemporaryDirectory(prefix="optimum-model-") as folder:
            # A models:/ URI would be resolved by a client on the process-wide tracking URI: ask ours instead.
            path = mlflow.artifacts.download_artifacts(
                artifact_uri=self.client.get_model_version_download_uri(name, version),
                dst_path=folder,
                tracking_uri=self.tracking_uri,
                registry_uri=self.tracking_uri,
            )
            return mlflow.pyfunc.load_model(path).unwrap_python_model()

    def promote(
        self,
        name: str,
        challenger_version: str,
        evaluation: Evaluation,
        rescore: Callable[[str], float] | None = None,
    ) -> PromotionDecision:
        """Apply `decide_promotion` against the current champion and record it on the challenger either way."""
        current = self.champion(name)
        champion_number = current.version if current else None
        if champion_number == challenger_version:
            return PromotionDecision("unchanged", "already the champion", challenger_version, champion_number)
        promote, reason = decide_promotion(evaluation, current.evaluation if current else None, rescore)
        outcome: Outcome = "promoted" if promote else "kept"
        for key, value in {
            "promotion.decision": outcome,
            "promotion.reason": reason,
            "promotion.compared_with": str(champion_number),
        }.items():
            self.client.set_model_version_tag(name, challenger_version, key, value)
        if promote:
            self.client.set_registered_model_alias(name, CHAMPION, challenger_version)
            self.client.set_registered_model_tag(name, "champion.history", self._history(name, challenger_version))
        return PromotionDecision(outcome, reason, challenger_version, champion_number)

    def promote_winner(self, name: str, version: str, reason: str) -> bool:
        """Make `version` the champion because it won an A/B test on live outcomes (the offline gate already
        let it serve as challenger); recorded like every other decision. False when it already is."""
        current = self.champion(name)
        if current is not None and current.version == version:
            return False
        for key, value in {
            "promotion.decision": "promoted",
            "promotion.reason": reason,
            "promotion.compared_with": str(current.version if current else None),
        }.items():
            self.client.set_model_version_tag(name, version, key, value)
        self.client.set_registered_model_alias(name, CHAMPION, version)
        self.client.set_registered_model_tag(name, "champion.history", self._history(name, version))
        return True

    def mark_abandoned(self, name: str, dagster_run_ended: Callable[[str], bool] | None = None) -> dict[str, str]:
        """Tag the versions of `name` that `abandoned_versions` finds with decision "abandoned" and its reason,
        so no version stays without an alias and a reason. dagster_run_ended: whether the Dagster run of a
        given id has ended (or is gone). Returns version -> reason for the versions marked now."""
        if missing_sqlite_store(self.tracking_uri) is not None:
            return {}
        try:
            aliased = {str(v) for v in self.client.get_registered_model(name).aliases.values()}
        except MlflowException as error:
            if error.error_code in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND"):
                return {}
            raise
        states = []
        for found in self.client.search_model_versions(f"name = '{name}'"):  # versions carry no aliases here
            tags = dict(found.tags)
            run = self._run(found.run_id)
            dagster_run = run.data.tags.get(DAGSTER_RUN_TAG) if run is not None else None
            ended = dagster_run_ended(dagster_run) if dagster_run and dagster_run_ended else None
            states.append(
                VersionState(
                    version=str(found.version),
                    has_alias=str(found.version) in aliased,
                    decided="promotion.decision" in tags,
                    run_status=run.info.status if run is not None else None,
                    dagster_run_ended=ended,
                )
            )
        abandoned = abandoned_versions(states)
        for version, reason in abandoned.items():
            self.client.set_model_version_tag(name, version, "promotion.decision", ABANDONED)
            self.client.set_model_version_tag(name, version, "promotion.reason", reason)
        return abandoned

    def _run(self, run_id: str | None):
        """The MLflow run, or None when it was deleted (or never recorded)."""
        if not run_id:
            return None
        try:
            run = self.client.get_run(run_id)
        except MlflowException as error:
            if error.error_code in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND"):
                return None
            raise
        return None if run.info.lifecycle_stage == "deleted" else run

    def _history(self, name: str, new_champion: str) -> str:
        """Versions that were champion, oldest first (kept short: MLflow tag values are bounded)."""
        previous = self.client.get_registered_model(name).tags.get("champion.history", "")
        versions = [v for v in previous.split(",") if v] + [new_champion]
        return ",".join(versions[-200:])


def _registered(version: ModelVersion) -> RegisteredVersion:
    tags = dict(version.tags)
    return RegisteredVersion(
        name=version.name,
        version=str(version.version),
        run_id=version.run_id,
        evaluation=Evaluation.from_tags(tags),
        tags=tags,
    )
