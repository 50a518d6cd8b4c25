"""Offline evaluation: a per-user temporal split, the mart's score formula, full-ranking top-k metrics.

Relevance is BINARY: an item is relevant to a user when it appears among the user's held-out (test) events
and the user did not already touch it in train (seen items are excluded from the ranking, so they could
never be hit). A view counts as much as a purchase: that keeps NDCG comparable with published numbers and
keeps model selection from being tuned to the interaction weights, which are a modelling choice themselves.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse

from ml.recommend.base import USER_BATCH, Recommender, top_k
from ml.recommend.blend import BlendRecommender, Normalization
from ml.recommend.data import InteractionMatrix


def temporal_split(events: pd.DataFrame, holdout_fraction: float = 0.2) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per user, hold out the LAST `holdout_fraction` of their events by event_at: (train_events, test_events).

    A user with n >= 2 events gives max(1, floor(fraction * n)) events to test and always keeps at least
    one in train; a user with one event stays entirely in train. Only the order of each user's own events
    matters (ties broken by event_id when present), never the wall clock, so old data splits like new.
    """
    if not 0 < holdout_fraction < 1:
        raise ValueError(f"holdout_fraction must be in (0, 1), got {holdout_fraction}")
    missing = {"user_id", "event_at"} - set(events.columns)
    if missing:
        raise ValueError(f"events frame lacks columns {sorted(missing)}")
    keys = pd.DataFrame(
        {
            "user_id": events["user_id"].to_numpy(),
            "event_at": events["event_at"].to_numpy(),
            "tie": events["event_id"].to_numpy() if "event_id" in events.columns else np.arange(len(events)),
            "position": np.arange(len(events)),
        }
    ).sort_values(["user_id", "event_at", "tie"], kind="stable")
    size = keys.groupby("user_id", sort=False)["position"].transform("size").to_numpy()
    nth = keys.groupby("user_id", sort=False).cumcount().to_numpy()
    n_test = np.where(size >= 2, np.clip(np.floor(size * holdout_fraction + 1e-9), 1, size - 1), 0)
    is_test = np.zeros(len(events), dtype=bool)
    is_test[keys["position"].to_numpy()] = nth >= size - n_test
    return events.iloc[~is_test], events.iloc[is_test]


def scores_from_events(events: pd.DataFrame, half_life_days: float, weights: Mapping[str, float]) -> pd.DataFrame:
    """The `marts.user_item_scores` formula in pandas, so offline evaluation sees what production fits on.

    score = sum(weight * 2^(-age_days / half_life_days)) per (user, product), with age counted back from
    the latest event_at in `events` (never the wall clock): on a train split that is the split's "now".
    half_life_days and weights are the platform's (Settings.dbt_vars, which dbt receives too).
    """
    weight = events["interaction_type"].map(weights)
    unknown = sorted(events.loc[weight.isna(), "interaction_type"].astype(str).unique())
    if unknown:
        raise ValueError(f"no weight for interaction types {unknown}; known: {sorted(weights)}")
    scored_at = events["event_at"].max()
    age_days = (scored_at - events["event_at"]).dt.total_seconds() / 86400.0
    frame = pd.DataFrame(
        {
            "user_id": events["user_id"],
            "product_id": events["product_id"],
            "score": weight.astype(float) * np.exp2(-age_days / half_life_days),
            "event_at": events["event_at"],
            "is_purchase": events["interaction_type"] == "purchase",
        }
    )
    scores = frame.groupby(["user_id", "product_id"], as_index=False, sort=True).agg(
        score=("score", "sum"),
        n_events=("score", "size"),
        last_interaction_at=("event_at", "max"),
        has_purchased=("is_purchase", "any"),
    )
    scores["scored_at"] = scored_at
    return scores


def _relevance(data: InteractionMatrix, test_events: pd.DataFrame) -> sparse.csr_matrix:
    """User x item test matrix on the train indices (> 0 = relevant); pairs seen in train or unknown dropped."""
    users = data.user_positions(test_events["user_id"])
    items = np.fromiter((data.item_index.get(str(item), -1) for item in test_events["product_id"]), dtype=np.int64)
    known = (users >= 0) & (items >= 0)
    users, items = users[known], items[known]
    seen = data.matrix.tocoo()
    unseen = ~np.isin(users * data.n_items + items, seen.row.astype(np.int64) * data.n_items + seen.col)
    return sparse.csr_matrix(
        (np.ones(unseen.sum(), dtype=np.float32), (users[unseen], items[unseen])), shape=data.matrix.shape
    )


def evaluate(
    model: Recommender,
    train_scores: pd.DataFrame | InteractionMatrix,
    test_events: pd.DataFrame,
    k_ndcg: int = 10,
    k_recall: int = 20,
) -> dict[str, Any]:
    """Fit `model` on the train scores, then rank ALL items for every test user (seen items excluded).

    Fitting here guarantees the metrics belong to a model that saw only the train split. Metrics:
    ndcg@k_ndcg, recall@k_recall (hits / min(k, #relevant), so a perfect list scores 1), hr@k_ndcg (share
    of users with at least one hit), coverage@k_ndcg (share of the catalogue in anyone's top list),
    n_users_evaluated (test users with a relevant item the model could rank), fit/evaluate seconds.
    """
    data = train_scores if isinstance(train_scores, InteractionMatrix) else InteractionMatrix.from_scores(train_scores)
    started = time.perf_counter()
    model.fit_matrix(data)
    fitted = time.perf_counter()

    relevant = _relevance(data, test_events)
    users = np.flatnonzero(np.diff(relevant.indptr) > 0)
    if len(users) == 0:
        raise ValueError("no test user has a held-out item that is unseen in train and known to the model")
    depth = max(k_ndcg, k_recall)
    discounts = 1.0 / np.log2(np.arange(2, k_ndcg + 2))
    ideal = np.cumsum(discounts)
    ndcg, recall, hit = [], [], []
    recommended = np.zeros(data.n_items, dtype=bool)
    for start in range(0, len(users), USER_BATCH):
        batch = users[start : start + USER_BATCH]
        scores = model.score_all(batch).astype(np.float64)
        scores[data.seen_mask(batch)] = -np.inf
        top, top_scores = top_k(scores, depth)
        truth = relevant[batch].toarray() > 0
        hits = np.take_along_axis(truth, top, axis=1) & np.isfinite(top_scores)
        n_relevant = truth.sum(axis=1)
        top_hits = hits[:, :k_ndcg]  # fewer than k columns when the catalogue is smaller than k
        ndcg.append(top_hits @ discounts[: top_hits.shape[1]] / ideal[np.minimum(n_relevant, k_ndcg) - 1])
        recall.append(hits[:, :k_recall].sum(axis=1) / np.minimum(n_relevant, k_recall))
        hit.append(top_hits.any(axis=1))
        recommended[top[:, :k_ndcg][np.isfinite(top_scores[:, :k_ndcg])]] = True
    return {
        f"ndcg@{k_ndcg}": float(np.concatenate(ndcg).mean()),
        f"recall@{k_recall}": float(np.concatenate(recall).mean()),
        f"hr@{k_ndcg}": float(np.concatenate(hit).mean()),
        f"coverage@{k_ndcg}": float(recommended.mean()),
        "n_users_evaluated": len(users),
        "fit_seconds": fitted - started,
        "evaluate_seconds": time.perf_counter() - fitted,
    }


def _split_for_evaluation(
    events: pd.DataFrame, holdout_fraction: float, half_life_days: float, weights: Mapping[str, float]
) -> tuple[InteractionMatrix, pd.DataFrame]:
    train_events, test_events = temporal_split(events, holdout_fraction)
    train = InteractionMatrix.from_scores(scores_from_events(train_events, half_life_days, weights))
    return train, test_events


def _compare(
    candidates: Mapping[str, Recommender],
    train: InteractionMatrix,
    test_events: pd.DataFrame,
    k_ndcg: int,
    k_recall: int,
) -> pd.DataFrame:
    rows = [
        {
            "candidate": key,
            "model": model.name,
            "params": model.params,
            **evaluate(model, train, test_events, k_ndcg, k_recall),
        }
        for key, model in candidates.items()
    ]
    return pd.DataFrame(rows).set_index("candidate")


def compare_candidates(
    candidates: Mapping[str, Recommender],
    events: pd.DataFrame,
    *,
    half_life_days: float,
    weights: Mapping[str, float],
    holdout_fraction: float = 0.2,
    k_ndcg: int = 10,
    k_recall: int = 20,
) -> pd.DataFrame:
    """Fit and score every candidate on ONE temporal split of `events`: one metrics row per candidate.

    Candidates are fitted in place (on the train split); the frame is indexed by the candidates' keys.
    """
    train, test_events = _split_for_evaluation(events, holdout_fraction, half_life_days, weights)
    return _compare(candidates, train, test_events, k_ndcg, k_recall)


@dataclass(frozen=True)
class Selection:
    """The chosen recommender (fitted on the train split only: refit it on all scores before serving)."""

    key: str
    model: Recommender
    metrics: pd.DataFrame  # one row per candidate, plus the blend's row when one was tried


def select_recommender(
    candidates: Mapping[str, Recommender],
    events: pd.DataFrame,
    *,
    half_life_days: float,
    weights: Mapping[str, float],
    blend_weights: tuple[float, float] = (0.7, 0.3),
    blend_normalization: Normalization = "minmax",
    holdout_fraction: float = 0.2,
    k_ndcg: int = 10,
    k_recall: int = 20,
) -> Selection:
    """Best candidate by NDCG@k_ndcg, or a blend of the top two when the blend beats both.

    The blend gives `blend_weights[0]` to the better of the two; it reuses their fitted models, so trying it
    costs one evaluation and no refit.
    """
    train, test_events = _split_for_evaluation(events, holdout_fraction, half_life_days, weights)
    ndcg = f"ndcg@{k_ndcg}"
    metrics = _compare(candidates, train, test_events, k_ndcg, k_recall).sort_values(
        ndcg, ascending=False, kind="stable"
    )
    best_key = metrics.index[0]
    if len(metrics) < 2:
        return Selection(best_key, candidates[best_key], metrics)
    second_key = metrics.index[1]
    blend_key = f"blend({best_key}+{second_key})"
    blend = BlendRecommender([candidates[best_key], candidates[second_key]], blend_weights, blend_normalization)
    metrics = pd.concat([metrics, _compare({blend_key: blend}, train, test_events, k_ndcg, k_recall)])
    if metrics.loc[blend_key, ndcg] > metrics.loc[best_key, ndcg]:
        return Selection(blend_key, blend, metrics)
    return Selection(best_key, candidates[best_key], metrics)
