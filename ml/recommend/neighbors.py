"""Item-item models: a user's score for an item is a weighted sum over the items the user already touched."""

from __future__ import annotations

import numpy as np
from scipy import sparse

from ml.recommend.base import Recommender
from ml.recommend.data import InteractionMatrix, Weighting


def item_gram(matrix: sparse.csr_matrix) -> np.ndarray:
    """Dense item x item co-occurrence X^T X in float64 (5k items: 200 MB, fine for a nightly job)."""
    return (matrix.T @ matrix).toarray().astype(np.float64)


class ItemKNNRecommender(Recommender):
    """Item-item cosine CF: each item keeps its `n_neighbors` most similar items.

    `shrinkage` is added to the cosine denominator so a similarity backed by a handful of shared users
    counts less than one backed by many (Koren's shrunk similarity).
    """

    name = "itemknn"

    def __init__(self, n_neighbors: int = 100, shrinkage: float = 10.0, weighting: Weighting = "log"):
        self.n_neighbors = n_neighbors
        self.shrinkage = shrinkage
        self.weighting = weighting
        self._matrix: sparse.csr_matrix | None = None
        self._neighbors: sparse.csr_matrix | None = None

    def _fit(self, data: InteractionMatrix) -> None:
        matrix = data.weighted(self.weighting)
        similarity = item_gram(matrix)
        norms = np.sqrt(np.diag(similarity))
        similarity /= np.outer(norms, norms) + self.shrinkage
        np.fill_diagonal(similarity, 0.0)
        n_neighbors = min(self.n_neighbors, data.n_items - 1)
        keep = np.argpartition(-similarity, n_neighbors - 1, axis=1)[:, :n_neighbors]
        values = np.take_along_axis(similarity, keep, axis=1)
        rows = np.repeat(np.arange(data.n_items), n_neighbors)
        # Row j holds j's neighbours; the symmetric cosine makes that also "items j is a neighbour of".
        neighbors = sparse.csr_matrix((values.ravel(), (rows, keep.ravel())), shape=similarity.shape, dtype=np.float32)
        neighbors.eliminate_zeros()
        self._matrix = matrix
        self._neighbors = neighbors

    def score_all(self, user_indices: np.ndarray) -> np.ndarray:
        # score(u, j) = sum over u's items i among j's neighbours of x_ui * sim(i, j)
        return (self._matrix[user_indices] @ self._neighbors.T).toarray()

    def _item_similarities(self, item: int) -> np.ndarray:
        row = self._neighbors[item]
        similarities = np.full(self._neighbors.shape[1], -np.inf)
        similarities[row.indices] = row.data
        return similarities


class EASERecommender(Recommender):
    """EASE^R (Steck 2019): item-item weights B from one ridge regression in closed form.

    B = I - P diag(1/diag(P)) with P = (X^T X + l2 I)^-1, so no item predicts itself; `l2` is the only
    hyperparameter and grows with the data (Steck uses 200-1000 on binary data).
    """

    name = "ease"

    def __init__(self, l2: float = 500.0, weighting: Weighting = "binary"):
        self.l2 = l2
        self.weighting = weighting
        self._matrix: sparse.csr_matrix | None = None
        self._weights: np.ndarray | None = None

    def _fit(self, data: InteractionMatrix) -> None:
        matrix = data.weighted(self.weighting)
        gram = item_gram(matrix)
        gram[np.diag_indices_from(gram)] += self.l2
        precision = np.linalg.inv(gram)
        weights = precision / -np.diag(precision)
        np.fill_diagonal(weights, 0.0)
        self._matrix = matrix
        self._weights = weights.astype(np.float32)

    def score_all(self, user_indices: np.ndarray) -> np.ndarray:
        return self._matrix[user_indices] @ self._weights

    def _item_similarities(self, item: int) -> np.ndarray:
        """Row `item` of B: how much touching `item` raises each other item's score."""
        return self._weights[item].astype(np.float64)
