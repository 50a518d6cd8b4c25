"""Offline evaluation: a per-user temporal split, the mart's score formula, full-ranking top-k metrics.

Relevance is BINARY: an item is relevant to a user when it appears among the user's held-out (test) events
and the user did not already touch it in train (seen items are excluded from the ranking, so they could
never be hit). A view counts as much as a purchase: that keeps NDCG comparable with published numbers and
keeps model selection from being tuned to the interaction weights, which are a modelling choice themselves.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse

from ml.recommend.base import USER_BATCH, Recommender, top_k
from ml.recommend.blend import BlendRecommender, Normalization
from ml.recommend.data import InteractionMatrix
from ml.recommend.popularity import PopularityRecommender
from ml.recommend.recency import ALL_TIME, MART_RECENCY, RECENCY_GRID, RECENT, Recency, Scoring, scores_from_events

# The two popularity lists a champion must beat, each on its own recency: the stronger one is the baseline.
BASELINES: dict[str, Recency] = {"popularity_all_time": ALL_TIME, "popularity_recent": RECENT}


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


def compare_candidates(
    candidates: Mapping[str, Recommender],
    events: pd.DataFrame,
    recency: Recency = MART_RECENCY,
    holdout_fraction: float = 0.2,
    scoring: Scoring | None = None,
    k_ndcg: int = 10,
    k_recall: int = 20,
) -> pd.DataFrame:
    """Fit and score every candidate on ONE temporal split of `events` and one recency: a row per candidate.

    Candidates are fitted in place (on the train split); the frame is indexed by the candidates' keys.
    """
    train_events, test_events = temporal_split(events, holdout_fraction)
    train = InteractionMatrix.from_scores(scores_from_events(train_events, recency, scoring))
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


@dataclass(frozen=True)
class NestedSplit:
    """test: each user's last `holdout_fraction` of events; the rest (train) split the same way again into
    fit and validation. Choices are made on validation, the test part only reports them."""

    train_events: pd.DataFrame
    test_events: pd.DataFrame
    fit_events: pd.DataFrame
    validation_events: pd.DataFrame

    @classmethod
    def of(cls, events: pd.DataFrame, holdout_fraction: float = 0.2) -> NestedSplit:
        train_events, test_events = temporal_split(events, holdout_fraction)
        fit_events, validation_events = temporal_split(train_events, holdout_fraction)
        return cls(train_events, test_events, fit_events, validation_events)


class _Matrices:
    """InteractionMatrix per (events part, recency), built once: every candidate on a recency shares it."""

    def __init__(self, scoring: Scoring | None) -> None:
        self._scoring = Scoring.from_settings() if scoring is None else scoring
        self._built: dict[tuple[int, Recency], InteractionMatrix] = {}

    def __call__(self, events: pd.DataFrame, recency: Recency) -> InteractionMatrix:
        key = (id(events), recency)
        if key not in self._built:
            self._built[key] = InteractionMatrix.from_scores(scores_from_events(events, recency, self._scoring))
        return self._built[key]


def _ignores_values(model: Recommender) -> bool:
    """A binary weighting sees only which pairs exist, so every recency gives it the same matrix."""
    return getattr(model, "weighting", None) == "binary"


def split_counts(split: NestedSplit, train: InteractionMatrix) -> dict[str, int]:
    """What the evaluation had to leave aside, and why, for the metadata.

    Users with one event cannot be split (they stay in train, unevaluated; served by the model like anyone
    it knows); test events on items train never saw cannot be ranked (cold items: served to nobody until
    they have interactions); repeats of a train pair are not "new" relevant items; ids only in the test part
    are users or items the model will meet cold.
    """
    test = split.test_events
    per_user = pd.concat([split.train_events["user_id"], test["user_id"]]).value_counts()
    cold_item = ~test["product_id"].astype(str).isin(train.item_index)
    test_pairs = test["user_id"].astype(str) + "\x1f" + test["product_id"].astype(str)
    train_pairs = set(split.train_events["user_id"].astype(str) + "\x1f" + split.train_events["product_id"].astype(str))
    return {
        "users": int(len(per_user)),
        "users_with_one_event": int((per_user == 1).sum()),
        "items_in_train": int(train.n_items),
        "test_events": int(len(test)),
        "test_events_on_cold_items": int(cold_item.sum()),
        "cold_items_in_test": int(test.loc[cold_item, "product_id"].nunique()),
        "test_events_repeating_a_train_pair": int(test_pairs.isin(train_pairs).sum()),
        "test_only_users": int((~test["user_id"].astype(str).isin(train.user_index)).sum()),
    }


@dataclass(frozen=True)
class Selection:
    """The chosen recommender, fitted on the training part with its recency (refit on all events to serve).

    metrics: one row per candidate (its best configuration), each baseline and the blend when one was
    tried: model, params, recency, validation_ndcg@k, then the test metrics of evaluate().
    grid: every (candidate, configuration, recency) scored on validation. baseline: the stronger popularity
    on the test part. counts: split_counts.
    """

    key: str
    model: Recommender
    recency: Recency
    metrics: pd.DataFrame
    grid: pd.DataFrame
    baseline: str
    counts: dict[str, int]


def select_recommender(
    candidates: Mapping[str, Recommender | Sequence[Recommender]],
    events: pd.DataFrame,
    recencies: Sequence[Recency] = RECENCY_GRID,
    blend_weights: tuple[float, float] = (0.7, 0.3),
    blend_normalization: Normalization = "minmax",
    holdout_fraction: float = 0.2,
    scoring: Scoring | None = None,
    k_ndcg: int = 10,
    k_recall: int = 20,
) -> Selection:
    """Choose model, configuration and recency on validation (NestedSplit), report them on test.

    Per candidate: its first configuration is scored under every recency (one, for binary weightings),
    then its other configurations (a hyperparameter grid) under the best recency found. The best by
    validation NDCG@k_ndcg wins, or the blend of the top two (on the winner's recency, `blend_weights[0]`
    to the winner) when it beats the winner on validation. Every candidate's best and the two popularity
    baselines (BASELINES) are then refit on the whole training part and scored once on the test part.
    """
    split = NestedSplit.of(events, holdout_fraction)
    matrices = _Matrices(scoring)
    ndcg = f"ndcg@{k_ndcg}"

    def validate(model: Recommender, recency: Recency) -> float:
        return evaluate(model, matrices(split.fit_events, recency), split.validation_events, k_ndcg, k_recall)[ndcg]

    grid_rows, best = [], {}
    for key, spec in candidates.items():
        configs = [spec] if isinstance(spec, Recommender) else list(spec)
        first = configs[0]
        scored = [(validate(first, r), r) for r in ([ALL_TIME] if _ignores_values(first) else recencies)]
        grid_rows += [(key, first.params, r.label, score) for score, r in scored]
        score, recency = max(scored, key=lambda pair: pair[0])
        choice = (score, first, recency)
        for config in configs[1:]:
            config_score = validate(config, recency)
            grid_rows.append((key, config.params, recency.label, config_score))
            if config_score > choice[0]:
                choice = (config_score, config, recency)
        best[key] = choice
    ranked = sorted(best, key=lambda k: -best[k][0])
    chosen_key = ranked[0]
    if len(ranked) >= 2:
        (top_score, top, recency), (_, second, _) = best[ranked[0]], best[ranked[1]]
        blend_key = f"blend({ranked[0]}+{ranked[1]})"
        blend = BlendRecommender([top.clone(), second.clone()], blend_weights, blend_normalization)
        blend_score = validate(blend, recency)
        grid_rows.append((blend_key, blend.params, recency.label, blend_score))
        best[blend_key] = (blend_score, blend, recency)
        if blend_score > top_score:
            chosen_key = blend_key

    rows, fitted = {}, {}
    baselines = {
        key: (validate(PopularityRecommender(), r), PopularityRecommender(), r) for key, r in BASELINES.items()
    }
    reported = {**baselines, **best}
    for key, (score, model, recency) in reported.items():
        model = model.clone()
        test = evaluate(model, matrices(split.train_events, recency), split.test_events, k_ndcg, k_recall)
        rows[key] = {"model": model.name, "params": model.params, "recency": recency.label, f"validation_{ndcg}": score}
        rows[key].update(test)
        fitted[key] = model
    metrics = pd.DataFrame.from_dict(rows, orient="index").rename_axis("candidate")
    baseline = max(BASELINES, key=lambda k: metrics.loc[k, ndcg])
    grid = pd.DataFrame(grid_rows, columns=["candidate", "params", "recency", f"validation_{ndcg}"])
    return Selection(
        key=chosen_key,
        model=fitted[chosen_key],
        recency=best[chosen_key][2],
        metrics=metrics,
        grid=grid,
        baseline=baseline,
        counts=split_counts(split, matrices(split.train_events, ALL_TIME)),
    )
