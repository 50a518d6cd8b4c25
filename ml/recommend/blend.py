"""Weighted blends of recommenders (the reference design: SVD 0.7 + matrix factorization 0.3)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
from scipy.stats import rankdata

from ml.recommend.base import Recommender
from ml.recommend.data import InteractionMatrix

Normalization = Literal["minmax", "rank"]
NORMALIZATIONS: tuple[str, ...] = ("minmax", "rank")


def _normalize_rows(scores: np.ndarray, normalization: Normalization) -> np.ndarray:
    """Map each row onto [0, 1] so models with different score scales can be added; -inf (unrelated) -> 0.

    "minmax" keeps the gaps between scores and costs O(n); "rank" (ties averaged) keeps only each model's
    ordering, immune to outliers but a sort per row (3-5x slower to evaluate). On the synthetic benchmarks
    minmax blended as well or better, hence the default.
    """
    finite = np.isfinite(scores)
    if normalization == "rank":
        ranks = rankdata(np.where(finite, scores, -np.inf), axis=1) - 1.0
        normalized = ranks / max(scores.shape[1] - 1, 1)
    else:
        low = np.where(finite, scores, np.inf).min(axis=1, keepdims=True)
        high = np.where(finite, scores, -np.inf).max(axis=1, keepdims=True)
        span = high - low
        with np.errstate(invalid="ignore"):
            normalized = np.divide(scores - low, span, out=np.zeros_like(scores), where=span > 0)
    return np.where(finite, normalized, 0.0)


class BlendRecommender(Recommender):
    """Per-user weighted sum of the members' normalized scores.

    Members already fitted on the very same InteractionMatrix are reused as they are, so blending the
    candidates of a comparison costs no refit.
    """

    name = "blend"

    def __init__(
        self,
        models: Sequence[Recommender],
        weights: Sequence[float] | None = None,
        normalization: Normalization = "minmax",
    ):
        if not models:
            raise ValueError("a blend needs at least one model")
        weights = [1.0] * len(models) if weights is None else list(weights)
        if len(weights) != len(models):
            raise ValueError(f"{len(models)} models but {len(weights)} weights")
        if min(weights) < 0 or sum(weights) <= 0:
            raise ValueError("blend weights must be >= 0 with a positive sum")
        if normalization not in NORMALIZATIONS:
            raise ValueError(f"normalization must be one of {NORMALIZATIONS}, got {normalization!r}")
        self.models = list(models)
        self.weights = weights
        self.normalization = normalization

    @property
    def params(self) -> dict[str, Any]:
        members = [
            {"name": model.name, "weight": weight, "params": model.params}
            for model, weight in zip(self.models, self.weights, strict=True)
        ]
        return {"normalization": self.normalization, "members": members}

    def clone(self) -> BlendRecommender:
        return BlendRecommender([model.clone() for model in self.models], self.weights, self.normalization)

    def _fit(self, data: InteractionMatrix) -> None:
        for model in self.models:
            if model.data is not data:
                model.fit_matrix(data)

    def _blend(self, rows: list[np.ndarray]) -> np.ndarray:
        blended = np.zeros(rows[0].shape, dtype=np.float64)
        for scores, weight in zip(rows, self.weights, strict=True):
            blended += weight * _normalize_rows(np.asarray(scores, dtype=np.float64), self.normalization)
        return blended

    def score_all(self, user_indices: np.ndarray) -> np.ndarray:
        return self._blend([model.score_all(user_indices) for model in self.models])

    def _item_similarities(self, item: int) -> np.ndarray:
        rows = [model._item_similarities(item)[None, :] for model in self.models]
        related = np.any([np.isfinite(row) for row in rows], axis=0)[0]
        return np.where(related, self._blend(rows)[0], -np.inf)
