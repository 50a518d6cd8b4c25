"""Monitoring statistics: A/B split, z-test, drift distances, hit rate, forecast accuracy after the fact."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ml.monitoring import (
    CHALLENGER,
    CHAMPION,
    ab_verdict,
    assign_variant,
    distribution,
    jensen_shannon,
    population_stability_index,
    recommendation_hit_rate,
    snapshot_accuracy,
    two_proportion_z_test,
)


@pytest.mark.parametrize("share", [0.1, 0.3, 0.5])
def test_ab_assignment_is_stable_and_within_two_points_of_the_share(share):
    users = [f"user-{i}" for i in range(10_000)]
    arms = [assign_variant(user, share) for user in users]
    assert abs(arms.count(CHALLENGER) / len(users) - share) < 0.02
    assert arms == [assign_variant(user, share) for user in users]
    assert {assign_variant(user, 0.0) for user in users} == {CHAMPION}
    # growing the share only moves champion users to the challenger, never back
    wider = [assign_variant(user, share + 0.1) for user in users]
    assert all(w == CHALLENGER for a, w in zip(arms, wider, strict=True) if a == CHALLENGER)


def test_two_proportion_z_test_matches_a_hand_computation():
    z, p = two_proportion_z_test(100, 1000, 130, 1000)
    assert z == pytest.approx(2.1027, abs=1e-3) and p == pytest.approx(0.0355, abs=1e-4)
    assert two_proportion_z_test(0, 0, 1, 1)[1] != two_proportion_z_test(0, 0, 1, 1)[1]  # NaN without data


def test_drift_distances_are_zero_for_the_same_mix_and_grow_with_the_shift():
    base = distribution(pd.Series(["view"] * 70 + ["cart"] * 20 + ["purchase"] * 10))
    same = distribution(pd.Series(["view"] * 7 + ["cart"] * 2 + ["purchase"] * 1))
    shifted = distribution(pd.Series(["view"] * 30 + ["cart"] * 30 + ["purchase"] * 40))
    assert population_stability_index(base, same) == pytest.approx(0.0)
    assert jensen_shannon(base, same) == pytest.approx(0.0, abs=1e-9)
    assert population_stability_index(base, shifted) > 0.25
    assert 0.2 < jensen_shannon(base, shifted) < 1
    assert jensen_shannon(pd.Series({"a": 1.0}), pd.Series({"b": 1.0})) == pytest.approx(1.0)


def test_hit_rate_counts_an_interaction_with_a_served_item_within_the_window():
    predictions = pd.DataFrame(
        {
            "request_id": ["r1", "r1", "r2", "r3"],
            "requested_at": pd.to_datetime(["2024-01-01", "2024-01-01", "2024-01-01", "2024-01-01"]),
            "caller_id": ["u1", "u1", "u2", "u3"],
            "variant": [CHAMPION, CHAMPION, CHAMPION, CHALLENGER],
            "model_version": ["1", "1", "1", "2"],
            "item_id": ["p1", "p2", "p1", "p1"],
        }
    )
    events = pd.DataFrame(
        {
            "user_id": ["u1", "u2", "u3"],
            "product_id": ["p2", "p1", "p1"],
            "event_at": pd.to_datetime(["2024-01-03", "2024-02-01", "2023-12-31"]),  # hit, too late, before
        }
    )
    summary = recommendation_hit_rate(predictions, events, window_days=7).set_index("variant")
    assert summary.loc[CHAMPION, "answers"] == 2 and summary.loc[CHAMPION, "hits"] == 1
    assert summary.loc[CHALLENGER, "hit_rate"] == 0


def test_snapshot_accuracy_scores_only_periods_with_actuals():
    days = pd.date_range("2024-01-01", periods=70, freq="D")
    quantity = np.where(days.day_of_week < 5, 2, 0)
    daily = pd.DataFrame({"product_id": "p1", "sales_date": days.date, "quantity": quantity, "revenue": quantity * 5.0})
    weeks = pd.date_range("2024-02-26", periods=4, freq="W-MON")  # as of 2024-02-26: 2 weeks observed, 2 not
    snapshots = pd.DataFrame(
        {"as_of": "2024-02-26", "product_id": "p1", "forecast_date": weeks, "yhat": 12.0, "promised_mase": 0.5}
    )
    (row,) = snapshot_accuracy(snapshots, daily, "W").to_dict("records")
    assert row["periods_scored"] == 2
    assert row["wape"] == pytest.approx(0.2)  # |12 - 10| / 10


def test_ab_verdict_needs_enough_answers_and_a_significant_win():
    def outcomes(champion: tuple[int, int], challenger: tuple[int, int]) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "variant": [CHAMPION, CHALLENGER],
                "model_version": ["1", "2"],
                "answers": [champion[0], challenger[0]],
                "hits": [champion[1], challenger[1]],
            }
        )

    assert ab_verdict(outcomes((1000, 100), (1000, 130)), 200, 0.05)["challenger_won"]
    assert not ab_verdict(outcomes((1000, 100), (1000, 130)), 200, 0.01)["challenger_won"]  # p = 0.035
    assert not ab_verdict(outcomes((1000, 130), (1000, 100)), 200, 0.05)["challenger_won"]  # it lost
    assert ab_verdict(outcomes((100, 10), (100, 30)), 200, 0.05)["verdict"].startswith("undecided")
