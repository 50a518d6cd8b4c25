"""The outcome model: a logistic regression on won/lost leads, compared with the transparent scorer on a
later period than it was trained on, and chosen only when it ranks that period's leads better.

Labels come from the CRM status history: a lead's latest won or lost change, dated by when it happened.
The split is temporal on that date: the last TEST_SHARE of decisions are held out; inside the earlier
part, the last VALIDATION_SHARE choose the regularization. Both scorers are judged on the held-out
period by ROC-AUC and precision@k (the share of won leads among the k best scored): the model must beat
the transparent scorer's ROC-AUC by MIN_RELATIVE_IMPROVEMENT and match its precision@k.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss, roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from ml.leads.score import CATEGORY_FIT, COMPONENTS, LABELS, TOP_REASONS, TransparentScorer, category_group
from ml.registry import MIN_RELATIVE_IMPROVEMENT, Evaluation, config_json, frame_fingerprint

METRIC = "roc_auc"
TEST_SHARE = 0.3
VALIDATION_SHARE = 0.25
MIN_OUTCOMES = 40  # fewer decided leads than this: too few to learn from or to judge a model by
C_GRID = (0.01, 0.1, 1.0, 10.0)
CATEGORY_GROUPS = tuple(label for label, _, _ in CATEGORY_FIT) + ("other",)
FEATURES = COMPONENTS + tuple(f"is_{group}" for group in CATEGORY_GROUPS)


def outcomes_from_status(history: pd.DataFrame) -> pd.DataFrame:
    """lead_key, won (1/0), decided_at: each lead's latest won-or-lost change (status history rows with
    lead_key, status, changed_at)."""
    decided = history[history["status"].isin(["won", "lost"]) & history["lead_key"].notna()]
    latest = decided.sort_values(["lead_key", "changed_at"]).groupby("lead_key").tail(1)
    return pd.DataFrame(
        {
            "lead_key": latest["lead_key"].astype(str),
            "won": (latest["status"] == "won").astype(int),
            "decided_at": pd.to_datetime(latest["changed_at"]),
        }
    ).reset_index(drop=True)


def lead_features(scorer: TransparentScorer, leads: pd.DataFrame, as_of: pd.Timestamp | None) -> pd.DataFrame:
    """The transparent components plus one indicator per category group."""
    groups = leads["category"].map(category_group) if "category" in leads else pd.Series("other", index=leads.index)
    indicators = pd.DataFrame({f"is_{g}": (groups == g).astype(float) for g in CATEGORY_GROUPS}, index=leads.index)
    return pd.concat([scorer.components(leads, as_of), indicators], axis=1)[list(FEATURES)]


@dataclass
class OutcomeModel:
    """Probability of winning a lead; lead_score = 100 x that probability, reasons = the largest
    positive contributions (coefficient x standardized feature) of the lead."""

    components: TransparentScorer  # computes the features; its weights play no part in the score
    C: float
    pipeline: object = None
    kind: str = field(default="outcome_model", init=False)

    def config(self) -> dict:
        return {
            "scorer": self.kind,
            "C": self.C,
            "features": list(FEATURES),
            "target_cities": list(self.components.target_cities),
        }

    def fit(self, leads: pd.DataFrame, won: pd.Series, as_of: pd.Timestamp | None = None) -> OutcomeModel:
        model = LogisticRegression(C=self.C, max_iter=1000)
        self.pipeline = make_pipeline(StandardScaler(), model).fit(lead_features(self.components, leads, as_of), won)
        return self

    def probability(self, leads: pd.DataFrame, as_of: pd.Timestamp | None = None) -> np.ndarray:
        return self.pipeline.predict_proba(lead_features(self.components, leads, as_of))[:, 1]

    def score(self, leads: pd.DataFrame, as_of: pd.Timestamp | None = None) -> pd.DataFrame:
        features = lead_features(self.components, leads, as_of)
        scaler, model = self.pipeline[0], self.pipeline[-1]
        contributions = pd.DataFrame(scaler.transform(features) * model.coef_[0], columns=FEATURES, index=leads.index)
        probability = self.pipeline.predict_proba(features)[:, 1]
        reasons = [_model_reasons(row) for _, row in contributions.iterrows()]
        scores = np.clip(np.round(100 * probability), 0, 100).astype(int)
        return pd.DataFrame({"lead_score": scores, "score_reasons": reasons}, index=leads.index)


def _model_reasons(contributions: pd.Series) -> str:
    top = contributions[contributions > 0.05].sort_values(ascending=False, kind="stable").head(TOP_REASONS)
    names = [LABELS.get(name) or name.removeprefix("is_") for name in top.index]
    return (
        "; ".join(f"{name} (model +{value:.2f} log-odds)" for name, value in zip(names, top, strict=True))
        or "no strong signal"
    )


Scorer = TransparentScorer | OutcomeModel


def scorer_from_config(config: dict, weights: dict[str, float]) -> Scorer:
    """Rebuild a scorer design (unfitted for the model); `weights` serve a model only to compute features."""
    cities = tuple(config.get("target_cities", ()))
    if config["scorer"] == "transparent":
        return TransparentScorer(config["weights"], cities)
    return OutcomeModel(TransparentScorer(weights, cities), float(config["C"]))


def precision_at_k(won: pd.Series, scores: np.ndarray, k: int) -> float:
    """Share of won leads among the k highest scores (ties broken by position, i.e. stable)."""
    k = min(k, len(won))
    order = np.argsort(-np.asarray(scores, dtype=float), kind="stable")[:k]
    return float(np.asarray(won)[order].mean()) if k else float("nan")


@dataclass
class LeadScorerTraining:
    scorer: Scorer  # what gets packaged: fitted on every decided lead when it is the model
    comparison: pd.DataFrame  # one row per scorer on the held-out period
    evaluation: Evaluation
    reason: str
    n_outcomes: int
    split: dict = field(default_factory=dict)


def _labelled(leads: pd.DataFrame, outcomes: pd.DataFrame) -> pd.DataFrame:
    return (
        outcomes.merge(leads.assign(lead_key=leads["lead_key"].astype(str)), on="lead_key", how="inner")
        .sort_values(["decided_at", "lead_key"], kind="stable")
        .reset_index(drop=True)
    )


def temporal_split(labelled: pd.DataFrame, share: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Earlier and later part by decided_at: the later one holds the last `share` of decisions (a decision
    day is never split across the two)."""
    cutoff = labelled["decided_at"].iloc[int(len(labelled) * (1 - share))]
    return labelled[labelled["decided_at"] < cutoff], labelled[labelled["decided_at"] >= cutoff]


def _both_classes(*frames: pd.DataFrame) -> bool:
    return all(frame["won"].nunique() == 2 for frame in frames)


def evaluate_scorer(scorer: Scorer, train: pd.DataFrame, test: pd.DataFrame, k: int, as_of) -> dict:
    """ROC-AUC, precision@k and Brier score of `scorer` on `test` (a model is fitted on `train` first)."""
    if isinstance(scorer, OutcomeModel):
        scorer.fit(train, train["won"], as_of)
        probability = scorer.probability(test, as_of)
    else:
        probability = scorer.score(test, as_of)["lead_score"].to_numpy() / 100
    return {
        METRIC: float(roc_auc_score(test["won"], probability)),
        "precision_at_k": precision_at_k(test["won"], probability, k),
        "brier": float(brier_score_loss(test["won"], np.clip(probability, 0, 1))),
        "mean_predicted": float(np.mean(probability)),
        "won_rate": float(test["won"].mean()),
        "n_test": len(test),
    }


def train_lead_scorer(
    leads: pd.DataFrame,
    history: pd.DataFrame,
    transparent: TransparentScorer,
    k: int,
    as_of: pd.Timestamp | None = None,
) -> LeadScorerTraining:
    """Choose between the transparent scorer and the outcome model on the held-out period."""
    outcomes = outcomes_from_status(history)
    labelled = _labelled(leads, outcomes)
    fingerprint = frame_fingerprint(leads[["lead_key"]].astype(str), outcomes.astype(str))
    if len(labelled) < MIN_OUTCOMES:
        return _transparent_only(
            transparent, fingerprint, len(labelled), f"{len(labelled)} decided leads (< {MIN_OUTCOMES})"
        )
    train, test = temporal_split(labelled, TEST_SHARE)
    fit, validation = temporal_split(train, VALIDATION_SHARE)
    if min(len(fit), len(validation), len(test)) == 0 or not _both_classes(fit, validation, test):
        return _transparent_only(transparent, fingerprint, len(labelled), "won and lost are not both in every period")
    chosen_c = max(
        C_GRID, key=lambda c: evaluate_scorer(OutcomeModel(transparent, c), fit, validation, k, as_of)[METRIC]
    )
    model = OutcomeModel(transparent, chosen_c)
    rows = {
        "transparent": evaluate_scorer(transparent, train, test, k, as_of),
        "outcome_model": evaluate_scorer(model, train, test, k, as_of),
    }
    comparison = pd.DataFrame(rows).T
    ours, theirs = rows["outcome_model"], rows["transparent"]
    auc_better = ours[METRIC] > theirs[METRIC] * (1 + MIN_RELATIVE_IMPROVEMENT)
    precision_ok = ours["precision_at_k"] >= theirs["precision_at_k"]
    versus = (
        f"ROC-AUC {ours[METRIC]:.3f} vs {theirs[METRIC]:.3f}, precision@{min(k, len(test))} "
        f"{ours['precision_at_k']:.3f} vs {theirs['precision_at_k']:.3f} on the held-out period"
    )
    if auc_better and precision_ok:
        chosen, reason = (
            model.fit(labelled, labelled["won"], as_of),
            f"outcome model (C={chosen_c}) beats the transparent scorer: {versus}",
        )
    else:
        chosen, reason = transparent, f"transparent scorer kept: the outcome model does not beat it ({versus})"
    name = "outcome_model" if chosen is model else "transparent"
    evaluation = Evaluation(METRIC, rows[name][METRIC], True, fingerprint, config_json(chosen.config()))
    split = {
        "train": len(train),
        "validation": len(validation),
        "test": len(test),
        "test_from": str(test["decided_at"].min()),
    }
    return LeadScorerTraining(chosen, comparison, evaluation, reason, len(labelled), split)


def _transparent_only(transparent: TransparentScorer, fingerprint: str, n: int, why: str) -> LeadScorerTraining:
    evaluation = Evaluation(METRIC, float("nan"), True, fingerprint, config_json(transparent.config()))
    return LeadScorerTraining(transparent, pd.DataFrame(), evaluation, f"transparent scorer: {why}", n)


def rescore_lead_scorer(
    config: str, leads: pd.DataFrame, history: pd.DataFrame, weights: dict[str, float], k: int, as_of=None
) -> float | None:
    """ROC-AUC of a stored scorer design on this data's held-out period; None when there is no such period."""
    import json

    labelled = _labelled(leads, outcomes_from_status(history))
    if len(labelled) < MIN_OUTCOMES:
        return None
    train, test = temporal_split(labelled, TEST_SHARE)
    if not len(train) or not _both_classes(train, test):
        return None
    return evaluate_scorer(scorer_from_config(json.loads(config), weights), train, test, k, as_of)[METRIC]
