"""How much an old interaction still counts: a hyperparameter chosen on validation, never a constant.

score(user, item) = sum over the pair's events of weight(type) * decay(age), decay = 2^(-age / half_life)
floored at min_decay. Age is measured from the whole log's end ("log_end": what is popular now) or from
the user's own last event ("user_end": each user's recent taste, whatever era the user was active in).
On a log spanning years, a 30-day half-life from the log's end leaves every user inactive for a few
years with scores of 2^-40 and below (zero in float32): the models would train on an almost empty
matrix. The floor guarantees no choice zeroes a user's history: an event keeps at least min_decay of its
weight, and "user_end" keeps every user's latest event at full weight.

The weights and the floor are domain facts with one home, the settings (OPTIMUM_INTERACTION_WEIGHTS,
OPTIMUM_MIN_DECAY; defaults in dbt_project.yml), which hand the same numbers to dbt as --vars: `Scoring`
carries them here, so the mart and the models' own scoring cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np
import pandas as pd

from ml.dates import log_end
from optimum.settings import Settings

AgeFrom = Literal["log_end", "user_end"]
AGE_FROM: tuple[str, ...] = ("log_end", "user_end")


@dataclass(frozen=True)
class Scoring:
    """weights: implicit-feedback weight per interaction type; min_decay: the smallest share of its weight
    an event keeps, however old. Both from Settings, never restated here."""

    weights: Mapping[str, float]
    min_decay: float

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> Scoring:
        """What dbt receives (Settings.dbt_vars); `settings` None: the environment's (OPTIMUM_*)."""
        settings = Settings() if settings is None else settings
        return cls(dict(settings.interaction_weights), settings.min_decay)

    def as_dict(self) -> dict:
        return {"weights": dict(self.weights), "min_decay": self.min_decay}


@dataclass(frozen=True)
class Recency:
    """half_life_days None: no decay (all-time counts); age_from: where age is measured from."""

    half_life_days: float | None = None
    age_from: AgeFrom = "user_end"

    def __post_init__(self) -> None:
        if self.half_life_days is not None and not self.half_life_days > 0:
            raise ValueError(f"half_life_days must be > 0 or None (no decay), got {self.half_life_days}")
        if self.age_from not in AGE_FROM:
            raise ValueError(f"age_from must be one of {AGE_FROM}, got {self.age_from!r}")

    @property
    def label(self) -> str:
        if self.half_life_days is None:
            return "no decay"
        return f"half-life {self.half_life_days:g} d from {self.age_from.replace('_', ' ')}"

    def as_dict(self) -> dict:
        return asdict(self)


ALL_TIME = Recency(None)
RECENT = Recency(30.0, "log_end")  # the seed's only setting: a 30-day half-life from the log's end
# What marts.user_item_scores holds (dbt vars half_life_days, score_age_from): safe on any log length.
MART_RECENCY = Recency(30.0, "user_end")
# The grid searched on validation: no decay, and three half-lives (a month, a season, two years) from each end.
RECENCY_GRID: tuple[Recency, ...] = (
    ALL_TIME,
    *(Recency(days, age_from) for age_from in ("user_end", "log_end") for days in (30.0, 180.0, 730.0)),
)


def scores_from_events(
    events: pd.DataFrame, recency: Recency = MART_RECENCY, scoring: Scoring | None = None
) -> pd.DataFrame:
    """Per (user, product): score (see the module docstring), n_events, last_interaction_at, has_purchased,
    scored_at (where age was measured from). With MART_RECENCY this is `marts.user_item_scores` in pandas.

    Ages come from the events' own dates, never the wall clock: on a train split its end is the split's "now".
    scoring None: Scoring.from_settings().
    """
    scoring = Scoring.from_settings() if scoring is None else scoring
    weights = dict(scoring.weights)
    weight = events["interaction_type"].map(weights)
    unknown = sorted(events.loc[weight.isna(), "interaction_type"].astype(str).unique())
    if unknown:
        raise ValueError(f"no weight for interaction types {unknown}; known: {sorted(weights)}")
    event_at = events["event_at"]
    if recency.age_from == "log_end":  # the bulk's end: one stray event dated ahead must not age every other
        scored_at = pd.Series(log_end(event_at), index=events.index)
    else:
        scored_at = event_at.groupby(events["user_id"]).transform("max")
    if recency.half_life_days is None:
        decay = np.ones(len(events))
    else:
        age_days = (scored_at - event_at).dt.total_seconds().to_numpy() / 86400.0
        decay = np.maximum(np.exp2(-age_days / recency.half_life_days), scoring.min_decay)
    frame = pd.DataFrame(
        {
            "user_id": events["user_id"],
            "product_id": events["product_id"],
            "score": weight.to_numpy(dtype=float) * decay,
            "event_at": event_at,
            "is_purchase": events["interaction_type"] == "purchase",
            "scored_at": scored_at,
        }
    )
    return frame.groupby(["user_id", "product_id"], as_index=False, sort=True).agg(
        score=("score", "sum"),
        n_events=("score", "size"),
        last_interaction_at=("event_at", "max"),
        has_purchased=("is_purchase", "any"),
        scored_at=("scored_at", "first"),
    )
