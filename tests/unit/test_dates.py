"""ml/dates.py: the data's own end, which one stray date after it does not move."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ml.dates import STRAY_SHARE, bulk_last_period, log_end
from ml.recommend.recency import Recency, Scoring, scores_from_events


@pytest.mark.parametrize(
    ("counts", "last"),
    [
        ([50, 40, 60, 55], 3),  # nothing stray
        ([50, 40, 60, 6], 3),  # a thin last period (10% of the median) is still data
        ([50, 40, 60, 4], 3),  # under 10% right after the bulk: the data thinning out, kept
        ([50, 40, 60, 0, 3, 2], 2),  # under 10% after an empty period: stray
        ([50, 40, 60, 0, 0, 0, 1], 2),  # empty periods, then one row
        ([3, 3, 3, 0, 0, 0, 0, 1], 2),  # a tiny catalogue: one row alone after the longest gap
        ([3, 0, 3, 0, 0, 3, 0, 3], 7),  # intermittent data: gaps everywhere, the last period is not stray
        ([0, 0, 0], 2),  # no rows at all: nothing to decide
    ],
)
def test_bulk_last_period(counts, last):
    assert bulk_last_period(pd.Series(counts)) == last


def _events(n_days: int = 730, stray_days_after: int | None = None) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    start = pd.Timestamp("1996-01-01")
    event_at = start + pd.to_timedelta(rng.uniform(0, n_days, 5_000), unit="D")
    events = pd.DataFrame(
        {
            "user_id": rng.integers(0, 200, 5_000).astype(str),
            "product_id": rng.integers(0, 50, 5_000).astype(str),
            "interaction_type": "view",
            "event_at": event_at,
        }
    )
    if stray_days_after is not None:
        stray = {"user_id": "stray", "product_id": "0", "interaction_type": "view"}
        at = events["event_at"].max() + pd.Timedelta(days=stray_days_after)
        events = pd.concat([events, pd.DataFrame([stray | {"event_at": at}])], ignore_index=True)
    return events


def test_one_event_dated_months_ahead_does_not_age_the_log_from_its_end():
    clean, with_stray = _events(), _events(stray_days_after=300)
    assert log_end(with_stray["event_at"]) == clean["event_at"].max()
    recency, scoring = Recency(30.0, "log_end"), Scoring({"view": 1.0}, 0.001)
    before = scores_from_events(clean, recency, scoring).set_index(["user_id", "product_id"])["score"]
    after = scores_from_events(with_stray, recency, scoring).set_index(["user_id", "product_id"])["score"]
    pd.testing.assert_series_equal(after.drop(("stray", "0")), before)


def test_the_marts_grid_and_the_models_share_one_stray_share():
    from optimum.settings import dbt_project_vars

    assert dbt_project_vars()["stray_share"] == STRAY_SHARE  # dbt's sales_grid_end, ml's bulk_last_period
