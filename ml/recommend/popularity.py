"""Popularity: the baseline every model must beat, and the answer for users the models have never seen."""

from __future__ import annotations

import numpy as np

from ml.recommend.base import Recommender
from ml.recommend.data import InteractionMatrix


class PopularityRecommender(Recommender):
    """Same list for everyone, ranked by summed decayed score (recent purchases weigh most)."""

    name = "popularity"

    def __init__(self) -> None:
        self._popularity: np.ndarray | None = None

    def _fit(self, data: InteractionMatrix) -> None:
        self._popularity = data.item_popularity()

    def score_all(self, user_indices: np.ndarray) -> np.ndarray:
        return np.tile(self._popularity, (len(user_indices), 1))

    def _item_similarities(self, item: int) -> np.ndarray:
        """Popular among the item's users ("who touched this also touched"): summed co-scores, unnormalized."""
        matrix = self._fitted().matrix
        users = matrix[:, item].nonzero()[0]
        co_scores = np.asarray(matrix[users].sum(axis=0), dtype=np.float64).ravel()
        return np.where(co_scores > 0, co_scores, -np.inf)
