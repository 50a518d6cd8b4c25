"""A/B test of recommenders: the registry's `challenger` answers a stable share of users.

Each caller is assigned by a hash of the user id (ml.monitoring.assign_variant), so a user keeps one arm
across requests and restarts; the share is Settings.serving.ab_challenger_share (0: off, nothing loaded).
The arm is in every answer and in the prediction log, where the ab_report asset compares outcomes.
"""

from __future__ import annotations

import logging

from ml.monitoring import CHALLENGER, CHAMPION, assign_variant
from ml.packaging import RECOMMENDER_MODEL_NAME
from ml.registry import ModelRegistry
from serving.engine import RecommenderEngine
from serving.models import Champion

logger = logging.getLogger(f"bentoml.{__name__}")


class RecommenderExperiment:
    """Holds the challenger's engine while it differs from the champion; picks the arm per user."""

    def __init__(self, tracking_uri: str, share: float):
        self.registry = ModelRegistry(tracking_uri)
        self.share = share
        self.engine: RecommenderEngine | None = None

    def refresh(self, champion: Champion | None) -> None:
        """(Re)load the challenger; none while A/B is off, or when the challenger is the champion."""
        if self.share <= 0:
            return
        try:
            current = self.registry.version(RECOMMENDER_MODEL_NAME, CHALLENGER)
            if current is None or (champion is not None and current.version == champion.version):
                self.engine = None  # nothing to compare: everyone gets the champion
                return
            if self.engine is not None and self.engine.version == current.version:
                return
            model = self.registry.load(RECOMMENDER_MODEL_NAME, current.version)
            self.engine = RecommenderEngine(Champion(RECOMMENDER_MODEL_NAME, current.version, model, current.run_id))
            logger.info("A/B: challenger version %s answers %.0f%% of users", current.version, self.share * 100)
        except Exception:  # keep the current arm on a transient failure
            logger.exception("could not load the challenger recommender")

    @property
    def version(self) -> str | None:
        """The challenger version answering its share now; None while everyone gets the champion."""
        challenger = self.engine
        return challenger.version if challenger is not None else None

    def arm(self, user_id: str, champion_engine: RecommenderEngine) -> tuple[str, RecommenderEngine]:
        """(variant, engine) that answers this user."""
        challenger = self.engine
        if challenger is not None and assign_variant(user_id, self.share) == CHALLENGER:
            return CHALLENGER, challenger
        return CHAMPION, champion_engine
