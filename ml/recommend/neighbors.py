"""Item-item models: a user's score for an item is a weighted sum over the items the user already touched."""

from __future__ import annotations

import numpy as np
from scipy import sparse
from scipy.linalg import lapack

from ml.recommend.base import Recommender
from ml.recommend.data import InteractionMatrix, Weighting

# Bytes of one dense float64 block of item-item similarities: 256 MB keeps 50k items at ~670 columns a block.
SIMILARITY_BLOCK_BYTES = 1 << 28


def item_gram(matrix: sparse.csr_matrix, dtype: type = np.float64) -> np.ndarray:
    """Dense item x item co-occurrence X^T X (5k items: 200 MB in float64; EASE caps the items it takes)."""
    return (matrix.T @ matrix).toarray().astype(dtype)


class ItemKNNRecommender(Recommender):
    """Item-item cosine CF: each item keeps its `n_neighbors` most similar items.

    `shrinkage` is added to the cosine denominator so a similarity backed by a handful of shared users
    counts less than one backed by many (Koren's shrunk similarity). Similarities are computed a block of
    items at a time and only the neighbours kept, so memory grows with items x neighbours, not items^2.
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
        item_users, columns = matrix.T.tocsr(), matrix.tocsc()
        norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=0), dtype=np.float64).ravel())
        n_items = data.n_items
        n_neighbors = min(self.n_neighbors, n_items - 1)
        block = max(1, SIMILARITY_BLOCK_BYTES // (8 * n_items))
        keep_parts, value_parts = [], []
        for lo in range(0, n_items, block):
            hi = min(lo + block, n_items)
            similarity = (item_users @ columns[:, lo:hi]).toarray().T.astype(np.float64)  # rows: items lo..hi
            similarity /= np.outer(norms[lo:hi], norms) + self.shrinkage
            similarity[np.arange(hi - lo), np.arange(lo, hi)] = 0.0
            # A copy, not a view: the view would keep the whole (block, items) int64 partition alive, one per
            # block, 20 GB at 50k items (the OOM bench/recommender_scale.py hit).
            keep = np.argpartition(-similarity, n_neighbors - 1, axis=1)[:, :n_neighbors].copy()
            keep_parts.append(keep)
            value_parts.append(np.take_along_axis(similarity, keep, axis=1))
        keep, values = np.vstack(keep_parts), np.vstack(value_parts)
        rows = np.repeat(np.arange(n_items), n_neighbors)
        # Row j holds j's neighbours; the symmetric cosine makes that also "items j is a neighbour of".
        neighbors = sparse.csr_matrix(
            (values.ravel(), (rows, keep.ravel())), shape=(n_items, n_items), dtype=np.float32
        )
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
    hyperparameter and grows with the data (Steck uses 200-1000 on binary data). The inverse is dense in
    items^2: above `max_items` it is fitted on the `max_items` items with the most users (the long tail it
    leaves out gets no EASE score, -inf), so 50k items cost what 20k do (float32: 1.6 GB a matrix).
    """

    name = "ease"

    def __init__(self, l2: float = 500.0, weighting: Weighting = "binary", max_items: int = 20_000):
        self.l2 = l2
        self.weighting = weighting
        self.max_items = max_items
        self._matrix: sparse.csr_matrix | None = None
        self._items: np.ndarray | None = None
        self._weights: np.ndarray | None = None

    def _fit(self, data: InteractionMatrix) -> None:
        matrix = data.weighted(self.weighting)
        items = np.arange(data.n_items)
        if data.n_items > self.max_items:
            users_per_item = np.bincount(matrix.indices, minlength=data.n_items)
            items = np.sort(np.argsort(-users_per_item, kind="stable")[: self.max_items])
            matrix = matrix[:, items].tocsr()
        gram = item_gram(matrix, np.float32)
        gram[np.diag_indices_from(gram)] += self.l2
        # Cholesky inverse in place (the gram is symmetric positive definite): half the work of a general
        # inverse and no second items^2 buffer; potri fills the upper triangle only.
        factor, info = lapack.spotrf(gram, lower=0, overwrite_a=1, clean=1)
        precision, info2 = lapack.spotri(factor, lower=0, overwrite_c=1)
        if info or info2:
            raise np.linalg.LinAlgError(f"EASE: the regularized gram is not positive definite (l2={self.l2})")
        precision += np.triu(precision, 1).T
        diagonal = np.diag(precision).copy()
        precision /= -diagonal
        np.fill_diagonal(precision, 0.0)
        self._matrix, self._items, self._weights = matrix, items, precision

    def score_all(self, user_indices: np.ndarray) -> np.ndarray:
        partial = self._matrix[user_indices] @ self._weights
        if len(self._items) == self._fitted().n_items:
            return partial
        scores = np.full((len(user_indices), self._fitted().n_items), -np.inf, dtype=np.float32)
        scores[:, self._items] = partial
        return scores

    def _item_similarities(self, item: int) -> np.ndarray:
        """Row `item` of B: how much touching `item` raises each other item's score (-inf: not modelled)."""
        similarities = np.full(self._fitted().n_items, -np.inf)
        position = np.searchsorted(self._items, item)
        if position < len(self._items) and self._items[position] == item:
            similarities[self._items] = self._weights[position]
        return similarities
