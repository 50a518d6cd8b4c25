"""Recommenders fitted on `marts.user_item_scores`, with the offline evaluation that picks one.

Every model implements `Recommender` (fit / recommend / similar_items / score_all) on one shared
`InteractionMatrix` built by `scores_from_events` under a `Recency`; `select_recommender` chooses model,
configuration and recency on a validation split nested inside the training part and reports on the test part.
"""

from ml.recommend.base import Recommender
from ml.recommend.blend import BlendRecommender
from ml.recommend.data import InteractionMatrix, UnknownItemError
from ml.recommend.evaluate import (
    BASELINES,
    NestedSplit,
    Selection,
    compare_candidates,
    evaluate,
    select_recommender,
    split_counts,
    temporal_split,
)
from ml.recommend.factorization import IALSRecommender, SVDRecommender
from ml.recommend.neighbors import EASERecommender, ItemKNNRecommender
from ml.recommend.popularity import PopularityRecommender
from ml.recommend.recency import ALL_TIME, MART_RECENCY, RECENCY_GRID, RECENT, Recency, Scoring, scores_from_events

__all__ = [
    "ALL_TIME",
    "BASELINES",
    "IALSRecommender",
    "MART_RECENCY",
    "NestedSplit",
    "RECENCY_GRID",
    "RECENT",
    "Recency",
    "Scoring",
    "BlendRecommender",
    "EASERecommender",
    "InteractionMatrix",
    "ItemKNNRecommender",
    "PopularityRecommender",
    "Recommender",
    "SVDRecommender",
    "Selection",
    "UnknownItemError",
    "compare_candidates",
    "evaluate",
    "scores_from_events",
    "select_recommender",
    "split_counts",
    "temporal_split",
]
