"""Recommenders fitted on `marts.user_item_scores`, with the offline evaluation that picks one.

Every model implements `Recommender` (fit / recommend / similar_items / score_all) on one shared
`InteractionMatrix`; `evaluate` and `select_recommender` compare them on a per-user temporal split.
"""

from ml.recommend.base import Recommender
from ml.recommend.blend import BlendRecommender
from ml.recommend.data import InteractionMatrix, UnknownItemError
from ml.recommend.evaluate import (
    Selection,
    compare_candidates,
    evaluate,
    scores_from_events,
    select_recommender,
    temporal_split,
)
from ml.recommend.factorization import ALSRecommender, SVDRecommender
from ml.recommend.neighbors import EASERecommender, ItemKNNRecommender
from ml.recommend.popularity import PopularityRecommender

__all__ = [
    "ALSRecommender",
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
    "temporal_split",
]
