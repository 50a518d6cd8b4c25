"""The one user x item matrix every recommender is fitted on, and the weightings models can apply to it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from scipy import sparse

Weighting = Literal["raw", "log", "binary", "bm25"]
WEIGHTINGS: tuple[str, ...] = ("raw", "log", "binary", "bm25")


class UnknownItemError(KeyError):
    """A product_id the model was not fitted on; a KeyError so callers can treat it like a missing key."""

    def __init__(self, product_id: str):
        super().__init__(product_id)
        self.product_id = product_id

    def __str__(self) -> str:
        return f"unknown product_id {self.product_id!r}: it is not in the interactions the model was fitted on"


@dataclass(frozen=True)
class InteractionMatrix:
    """Sparse CSR user x item scores with the id <-> index maps, built once and shared by every model.

    Ids are sorted strings, so two matrices built from the same frame index identically, and a blend or an
    evaluation can line up the score columns of different models without translating ids.
    """

    matrix: sparse.csr_matrix
    user_ids: np.ndarray
    item_ids: np.ndarray
    user_index: dict[str, int]
    item_index: dict[str, int]

    @classmethod
    def from_scores(cls, scores: pd.DataFrame) -> InteractionMatrix:
        """Build from a frame with user_id, product_id, score (one row per pair, score > 0, as in the mart)."""
        missing = {"user_id", "product_id", "score"} - set(scores.columns)
        if missing:
            raise ValueError(f"scores frame lacks columns {sorted(missing)}")
        if scores.empty:
            raise ValueError("scores frame is empty: nothing to fit on")
        values = scores["score"].to_numpy(dtype=np.float64)
        if not np.all(values > 0):  # also catches NaN
            raise ValueError("every score must be > 0 (the mart only has rows for pairs that interacted)")
        user_codes, user_ids = pd.factorize(scores["user_id"].astype(str), sort=True)
        item_codes, item_ids = pd.factorize(scores["product_id"].astype(str), sort=True)
        n_users, n_items = len(user_ids), len(item_ids)
        pair_keys = user_codes.astype(np.int64) * n_items + item_codes
        if len(np.unique(pair_keys)) != len(pair_keys):
            raise ValueError("scores frame has duplicate (user_id, product_id) rows; aggregate them first")
        matrix = sparse.csr_matrix(
            (values.astype(np.float32), (user_codes, item_codes)), shape=(n_users, n_items), dtype=np.float32
        )
        matrix.sort_indices()
        user_ids = np.asarray(user_ids, dtype=object)
        item_ids = np.asarray(item_ids, dtype=object)
        return cls(
            matrix=matrix,
            user_ids=user_ids,
            item_ids=item_ids,
            user_index={user: i for i, user in enumerate(user_ids)},
            item_index={item: i for i, item in enumerate(item_ids)},
        )

    @property
    def n_users(self) -> int:
        return self.matrix.shape[0]

    @property
    def n_items(self) -> int:
        return self.matrix.shape[1]

    def user_positions(self, user_ids: Sequence[str]) -> np.ndarray:
        """Row index of each user id, -1 for users the matrix has never seen (the cold-start ones)."""
        return np.fromiter((self.user_index.get(str(user), -1) for user in user_ids), dtype=np.int64)

    def seen_mask(self, user_indices: np.ndarray) -> np.ndarray:
        """Dense bool (len(user_indices), n_items): True where the user already interacted with the item."""
        return self.matrix[np.asarray(user_indices)].toarray() > 0

    def item_popularity(self) -> np.ndarray:
        """Summed (decayed, purchase-weighted) score per item: what is popular *now*, not all-time counts."""
        return np.asarray(self.matrix.sum(axis=0), dtype=np.float64).ravel()

    def weighted(self, weighting: Weighting) -> sparse.csr_matrix:
        """A reweighted copy: raw decayed sums are heavy-tailed (one user's repeat purchases outweigh dozens
        of other users' views), which lets a few pairs dominate similarities and factors."""
        if weighting not in WEIGHTINGS:
            raise ValueError(f"weighting must be one of {WEIGHTINGS}, got {weighting!r}")
        weighted = self.matrix.copy()
        if weighting == "log":
            weighted.data = np.log1p(weighted.data)
        elif weighting == "binary":
            weighted.data = np.ones_like(weighted.data)
        elif weighting == "bm25":
            weighted.data = _bm25(self.matrix)
        return weighted


def _bm25(matrix: sparse.csr_matrix, k1: float = 100.0, b: float = 0.8) -> np.ndarray:
    """BM25 with users as documents and items as terms: damps heavy users and items everyone touches."""
    n_users = matrix.shape[0]
    users_per_item = np.bincount(matrix.indices, minlength=matrix.shape[1])
    idf = np.log(n_users / np.maximum(users_per_item, 1))
    row_sums = np.asarray(matrix.sum(axis=1)).ravel()
    length_norm = (1.0 - b) + b * row_sums / row_sums.mean()
    rows = np.repeat(np.arange(n_users), np.diff(matrix.indptr))
    data = matrix.data.astype(np.float64)
    return (data * (k1 + 1.0) / (k1 * length_norm[rows] + data) * idf[matrix.indices]).astype(np.float32)
