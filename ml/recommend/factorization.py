"""Matrix factorization: users and items as low-dimensional vectors, a score is their dot product."""

from __future__ import annotations

import numpy as np
from scipy import sparse
from sklearn.decomposition import TruncatedSVD
from threadpoolctl import threadpool_limits

from ml.recommend.base import Recommender
from ml.recommend.data import InteractionMatrix, Weighting

# Non-zeros solved together in one ALS block: bounds the gathered (nnz, factors) float32 array to ~64 MB.
ALS_BLOCK_NNZ = 1 << 18


def _cosine_to(vectors: np.ndarray, item: int) -> np.ndarray:
    """Cosine of every row of `vectors` to row `item` (a zero vector scores 0, not NaN)."""
    norms = np.linalg.norm(vectors, axis=1)
    norms[norms == 0] = 1.0
    return (vectors @ vectors[item]).astype(np.float64) / (norms * norms[item])


class SVDRecommender(Recommender):
    """Truncated SVD of the (weighted) interaction matrix; scores are the rank-k reconstruction."""

    name = "svd"

    def __init__(self, n_components: int = 64, weighting: Weighting = "log", random_state: int = 0):
        self.n_components = n_components
        self.weighting = weighting
        self.random_state = random_state
        self._user_factors: np.ndarray | None = None
        self._item_factors: np.ndarray | None = None

    def _fit(self, data: InteractionMatrix) -> None:
        matrix = data.weighted(self.weighting)
        # TruncatedSVD needs n_components < n_features; tiny catalogues get what they can hold.
        n_components = max(1, min(self.n_components, min(matrix.shape) - 1))
        svd = TruncatedSVD(n_components=n_components, random_state=self.random_state)
        self._user_factors = svd.fit_transform(matrix).astype(np.float32)  # U * Sigma
        self._item_factors = svd.components_.T.astype(np.float32)  # V

    def score_all(self, user_indices: np.ndarray) -> np.ndarray:
        return self._user_factors[user_indices] @ self._item_factors.T

    def _item_similarities(self, item: int) -> np.ndarray:
        return _cosine_to(self._item_factors, item)


class ALSRecommender(Recommender):
    """Implicit-feedback ALS (Hu, Koren & Volinsky 2008), solved with a few warm-started CG steps per sweep.

    Every (user, item) pair is a preference p=1 if interacted else 0, trusted with confidence
    c = 1 + alpha * w (w the weighted score, 0 for untouched pairs). Each half-sweep solves, for every user
    at once, (Y^T Y + Y^T (C_u - I) Y + reg I) x_u = Y^T C_u p_u by conjugate gradient (Takacs et al. 2011):
    the Y^T Y term is shared, the rest only touches the user's non-zeros, so a sweep costs O(nnz * factors)
    in vectorized numpy instead of one k x k solve per user in a Python loop.
    """

    name = "als"

    def __init__(
        self,
        factors: int = 64,
        regularization: float = 0.1,
        alpha: float = 2.0,
        iterations: int = 15,
        cg_steps: int = 3,
        weighting: Weighting = "log",
        random_state: int = 0,
    ):
        self.factors = factors
        self.regularization = regularization
        self.alpha = alpha
        self.iterations = iterations
        self.cg_steps = cg_steps
        self.weighting = weighting
        self.random_state = random_state
        self._user_factors: np.ndarray | None = None
        self._item_factors: np.ndarray | None = None

    def _fit(self, data: InteractionMatrix) -> None:
        user_items = data.weighted(self.weighting)
        item_users = user_items.T.tocsr()
        rng = np.random.default_rng(self.random_state)
        users = (rng.standard_normal((data.n_users, self.factors)) * 0.01).astype(np.float32)
        items = (rng.standard_normal((data.n_items, self.factors)) * 0.01).astype(np.float32)
        # The BLAS calls here are tiny (block x factors x factors); multi-threaded BLAS only spins idle
        # threads that steal the cores from the gathers and sparse products (measured 2.4x slower).
        with threadpool_limits(limits=1, user_api="blas"):
            for _ in range(self.iterations):
                users = self._solve(user_items, items, users)
                items = self._solve(item_users, users, items)
        self._user_factors, self._item_factors = users, items

    def _solve(self, weights: sparse.csr_matrix, fixed: np.ndarray, start: np.ndarray) -> np.ndarray:
        """New factors for every row of `weights` given the other side's `fixed` factors, warm-started."""
        shared = fixed.T @ fixed + self.regularization * np.eye(self.factors, dtype=np.float32)
        solved = np.empty_like(start)
        starts = np.arange(0, weights.nnz, ALS_BLOCK_NNZ)
        bounds = np.unique(np.searchsorted(weights.indptr, starts, side="right") - 1)
        for lo, hi in zip(bounds, [*bounds[1:], weights.shape[0]], strict=True):
            solved[lo:hi] = self._conjugate_gradient(weights[lo:hi], fixed, shared, start[lo:hi])
        return solved

    def _conjugate_gradient(
        self, block: sparse.csr_matrix, fixed: np.ndarray, shared: np.ndarray, x: np.ndarray
    ) -> np.ndarray:
        per_row = np.diff(block.indptr)
        gathered = fixed[block.indices]  # (nnz, factors): the fixed vectors of this block's non-zeros
        extra_confidence = (self.alpha * block.data).astype(np.float32)  # c - 1

        def scatter(values: np.ndarray) -> np.ndarray:
            """Per row, the sum of its non-zeros' fixed vectors weighted by `values` (one per non-zero)."""
            return sparse.csr_matrix((values, block.indices, block.indptr), shape=block.shape) @ fixed

        def apply(v: np.ndarray) -> np.ndarray:
            """(Y^T C_u Y + reg I) v_u for every row u; only non-zeros add to the shared Y^T Y + reg I."""
            along = np.einsum("nf,nf->n", np.repeat(v, per_row, axis=0), gathered)
            return v @ shared + scatter(extra_confidence * along)

        x = x.copy()
        residual = scatter(1.0 + extra_confidence) - apply(x)  # b - A x with b_u = Y^T C_u p_u
        direction = residual.copy()
        residual_norm = np.einsum("uf,uf->u", residual, residual)
        for _ in range(self.cg_steps):
            product = apply(direction)
            curvature = np.einsum("uf,uf->u", direction, product)
            step = np.divide(residual_norm, curvature, out=np.zeros_like(curvature), where=curvature > 0)
            x += step[:, None] * direction
            residual -= step[:, None] * product
            new_norm = np.einsum("uf,uf->u", residual, residual)
            ratio = np.divide(new_norm, residual_norm, out=np.zeros_like(new_norm), where=residual_norm > 0)
            direction = residual + ratio[:, None] * direction
            residual_norm = new_norm
        return x

    def score_all(self, user_indices: np.ndarray) -> np.ndarray:
        return self._user_factors[user_indices] @ self._item_factors.T

    def _item_similarities(self, item: int) -> np.ndarray:
        return _cosine_to(self._item_factors, item)


class IALSRecommender(Recommender):
    """iALS with the `implicit` library's conjugate-gradient solver, set up as Rendle et al. 2021 advise.

    "Revisiting the performance of iALS on item recommendation benchmarks" shows iALS matching recent
    models once tuned: an init with standard deviation 0.1 / sqrt(factors), enough epochs, and the
    regularization and the weight of the unobserved pairs tuned together with the dimension. In `implicit`
    a positive pair has confidence alpha * w and every unobserved pair weight 1, so alpha is 1 / alpha_0 of
    the paper; `regularization` is its plain (not frequency-scaled) lambda. The grid in training.py tunes
    factors, regularization and alpha on the validation split.
    """

    name = "ials"

    def __init__(
        self,
        factors: int = 64,
        regularization: float = 1.0,
        alpha: float = 10.0,
        iterations: int = 16,
        weighting: Weighting = "log",
        random_state: int = 0,
        num_threads: int = 1,
    ):
        self.factors = factors
        self.regularization = regularization
        self.alpha = alpha
        self.iterations = iterations
        self.weighting = weighting
        self.random_state = random_state
        self.num_threads = num_threads
        self._user_factors: np.ndarray | None = None
        self._item_factors: np.ndarray | None = None

    def _fit(self, data: InteractionMatrix) -> None:
        from implicit.cpu.als import AlternatingLeastSquares  # imported lazily: only needed when iALS runs

        # implicit parallelizes over users itself (num_threads; 1 was fastest on the shared 2-core machine at
        # demo scale, raise it on a big catalogue); BLAS threads on top only fight it, and implicit warns.
        with threadpool_limits(limits=1, user_api="blas"):
            model = AlternatingLeastSquares(
                factors=self.factors,
                regularization=self.regularization,
                alpha=self.alpha,
                iterations=self.iterations,
                calculate_training_loss=False,
                random_state=self.random_state,
                num_threads=self.num_threads,
            )
            rng = np.random.default_rng(self.random_state)
            scale = 0.1 / np.sqrt(self.factors)  # Rendle et al.'s init; implicit's own is wider
            model.user_factors = (rng.standard_normal((data.n_users, self.factors)) * scale).astype(np.float32)
            model.item_factors = (rng.standard_normal((data.n_items, self.factors)) * scale).astype(np.float32)
            model.fit(data.weighted(self.weighting), show_progress=False)
        self._user_factors, self._item_factors = model.user_factors, model.item_factors

    def score_all(self, user_indices: np.ndarray) -> np.ndarray:
        return self._user_factors[user_indices] @ self._item_factors.T

    def _item_similarities(self, item: int) -> np.ndarray:
        return _cosine_to(self._item_factors, item)
