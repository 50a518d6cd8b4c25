"""Hyper-parameters of the factor models, chosen on a validation split nested inside the training part.

The platform's split holds out the last 20% of each user's events (test). Here the remaining 80% is split the
same way again (fit / validation); every grid point is fit on `fit` and scored on `validation`, the best of
each family is refit on the whole training part and scored once on `test`, next to the library defaults.
The test split plays no part in the choice, so its numbers are what the defaults can be expected to do.

Usage (after `make demo`, or any `optimum run`):
  OPTIMUM_HOME=.optimum .venv/bin/python bench/tune_recommenders.py
"""

from __future__ import annotations

import itertools
import time

import pandas as pd

from ml.recommend import (
    MART_RECENCY,
    IALSRecommender,
    PopularityRecommender,
    Recency,
    Recommender,
    Scoring,
    SVDRecommender,
    evaluate,
    scores_from_events,
    temporal_split,
)
from ml.training import EVENT_COLUMNS, default_recommender_candidates
from optimum.settings import Settings
from orchestration.warehouse import Warehouse

GRID: dict[str, list[Recommender]] = {
    "svd": [SVDRecommender(n_components=k) for k in (8, 16, 32, 64, 128)],
    "ials": [
        IALSRecommender(factors=f, regularization=reg, alpha=alpha)
        for f, reg, alpha in itertools.product((16, 32, 64), (0.1, 1.0, 10.0), (2.0, 10.0, 40.0))
    ],
}
METRIC = "ndcg@10"
VARIED = ("n_components", "factors", "regularization", "alpha")


def _label(model: Recommender) -> str:
    """The parameters the grid varies, compactly."""
    return " ".join(f"{key}={value}" for key, value in model.params.items() if key in VARIED)


def main() -> None:
    started = time.perf_counter()
    settings = Settings()
    warehouse = Warehouse.from_settings(settings)
    events = warehouse.query("SELECT * FROM marts.fct_interactions")[EVENT_COLUMNS]
    train_events, test_events = temporal_split(events)
    fit_events, validation_events = temporal_split(train_events)
    recency, scoring = Recency(settings.half_life_days, MART_RECENCY.age_from), Scoring.from_settings(settings)
    fit_scores = scores_from_events(fit_events, recency, scoring)
    train_scores = scores_from_events(train_events, recency, scoring)

    def scored(label: str, model: Recommender) -> dict:
        validation = evaluate(model, fit_scores, validation_events)[METRIC]
        return {"model": label, "validation": validation, "test": evaluate(model, train_scores, test_events)[METRIC]}

    rows = []
    for family, models in GRID.items():
        validation = [(evaluate(model, fit_scores, validation_events)[METRIC], model) for model in models]
        for score, model in validation:
            print(f"validation {METRIC} {score:.4f}  {family} {_label(model)}")
        _, best = max(validation, key=lambda pair: pair[0])
        platform = default_recommender_candidates()[family]
        candidate = platform if isinstance(platform, Recommender) else platform[0]  # a grid: its first entry
        rows.append(scored(f"{family} best on validation {_label(best)}", best))
        rows.append(scored(f"{family} platform candidate {_label(candidate)}", candidate))
    rows.append(scored("popularity", PopularityRecommender()))
    print(f"\n{METRIC}, {len(events):,} events ({time.perf_counter() - started:.0f} s):")
    print(pd.DataFrame(rows).set_index("model").round(4).to_string())


if __name__ == "__main__":
    main()
