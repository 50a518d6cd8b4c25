"""The Recommender interface: fit on the score mart, answer top-k per user and similar items, score for evaluation."""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd

from ml.recommend.data import InteractionMatrix, UnknownItemError

# Users scored per dense block: 1,024 users x 5k items of float64 is 40 MB, small enough to stay cache-friendly.
USER_BATCH = 1024


def top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Column indices and values of the k best entries per row, best first (argpartition, then sort only k)."""
    k = min(k, scores.shape[1])
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    part_scores = np.take_along_axis(scores, part, axis=1)
    order = np.argsort(-part_scores, axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1), np.take_along_axis(part_scores, order, axis=1)


class Recommender(ABC):
    """Common contract of every model, so training, evaluation, blending and serving never special-case one.

    Subclasses implement `_fit`, `score_all` and `_item_similarities`; the id handling, seen-item exclusion,
    cold start and output frames live here once.
    """

    name: ClassVar[str]
    data: InteractionMatrix | None = None

    @property
    def params(self) -> dict[str, Any]:
        """Constructor arguments, for experiment tracking (the same convention as sklearn's get_params)."""
        names = [p for p in inspect.signature(type(self).__init__).parameters if p != "self"]
        return {name: getattr(self, name) for name in names}

    def clone(self) -> Self:
        """An unfitted copy with the same constructor arguments (what evaluation refits on another split)."""
        return type(self)(**self.params)

    def fit(self, scores: pd.DataFrame) -> Self:
        """Fit on a frame with user_id, product_id, score (the `marts.user_item_scores` columns)."""
        return self.fit_matrix(InteractionMatrix.from_scores(scores))

    def fit_matrix(self, data: InteractionMatrix) -> Self:
        """Fit on an already built matrix, so several models can share one (and one set of index maps)."""
        self._fit(data)
        self.data = data
        return self

    @abstractmethod
    def _fit(self, data: InteractionMatrix) -> None: ...

    @abstractmethod
    def score_all(self, user_indices: np.ndarray) -> np.ndarray:
        """Scores of every item for the given matrix rows, shape (len(user_indices), n_items); higher is better.

        Seen items are NOT masked here: callers (recommend, evaluate) decide whether to exclude them.
        """

    @abstractmethod
    def _item_similarities(self, item: int) -> np.ndarray:
        """Similarity of every item to `item` (n_items,); -inf marks items the model relates in no way."""

    def _fitted(self) -> InteractionMatrix:
        if self.data is None:
            raise RuntimeError(f"{type(self).__name__} is not fitted: call fit() first")
        return self.data

    def recommend(self, user_ids: Sequence[str], k: int, exclude_seen: bool = True) -> pd.DataFrame:
        """Top-k items per user: user_id, product_id, rank (1..k), score, cold_start.

        Users the model never saw get the popularity answer with cold_start=True. Users come back in the
        order given (duplicates once); a user with fewer than k unseen items gets fewer rows.
        """
        data = self._fitted()
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        users = pd.unique(pd.Series(list(user_ids), dtype=object).astype(str).to_numpy())
        positions = data.user_positions(users)
        known = np.flatnonzero(positions >= 0)
        cold = np.flatnonzero(positions < 0)

        # Flat (position in `users`, item index, score) triples, best first within each user.
        parts = [(np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0))]
        for start in range(0, len(known), USER_BATCH):
            batch = known[start : start + USER_BATCH]
            items, values = self.top_items(positions[batch], k, exclude_seen)
            parts.append((np.repeat(batch, items.shape[1]), items.ravel(), values.ravel()))
        if len(cold):
            items, values = self.popular_items(k)
            parts.append((np.repeat(cold, len(items)), np.tile(items, len(cold)), np.tile(values, len(cold))))
        order, items, values = (np.concatenate(column) for column in zip(*parts, strict=True))

        keep = np.isfinite(values)  # -inf: seen items filling up a list longer than the unseen catalogue
        frame = pd.DataFrame(
            {
                "user_id": users[order[keep]],
                "product_id": data.item_ids[items[keep]],
                "score": values[keep],
                "cold_start": positions[order[keep]] < 0,
                "_order": order[keep],
            }
        ).sort_values("_order", kind="stable")
        frame.insert(2, "rank", frame.groupby("_order").cumcount() + 1)
        return frame.drop(columns="_order").reset_index(drop=True)

    def top_items(self, user_indices: np.ndarray, k: int, exclude_seen: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """Item indices and scores of the k best items for each matrix row, best first, shape (n, k).

        With exclude_seen, items the user already touched score -inf: they only pad a row that has fewer
        than k unseen items, and every caller stops at the first non-finite score."""
        data = self._fitted()
        scores = np.asarray(self.score_all(user_indices), dtype=np.float64).reshape(len(user_indices), -1)
        if exclude_seen:
            scores[data.seen_mask(user_indices)] = -np.inf
        return top_k(scores, k)

    def popular_items(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Item indices and popularity of the k most popular items: the cold-start answer."""
        items, values = top_k(self._fitted().item_popularity()[None, :], k)
        return items[0], values[0]

    def similar_top(self, product_id: str, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Item indices and similarity of the (up to) k items most similar to `product_id`, best first.

        Raises UnknownItemError for a product the model was not fitted on."""
        data = self._fitted()
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        item = data.item_index.get(str(product_id))
        if item is None:
            raise UnknownItemError(str(product_id))
        similarities = np.array(self._item_similarities(item), dtype=np.float64)
        similarities[item] = -np.inf
        items, values = top_k(similarities[None, :], k)
        keep = np.isfinite(values[0])
        return items[0][keep], values[0][keep]

    def similar_items(self, product_id: str, k: int) -> pd.DataFrame:
        """The k items most similar to `product_id`: product_id, similar_product_id, rank, score.

        Raises UnknownItemError for a product the model was not fitted on.
        """
        items, values = self.similar_top(product_id, k)
        data = self._fitted()
        return pd.DataFrame(
            {
                "product_id": str(product_id),
                "similar_product_id": data.item_ids[items],
                "rank": np.arange(1, len(items) + 1),
                "score": values,
            }
        )
