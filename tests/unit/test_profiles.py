"""The models' choices on data shaped like real exports (orchestration/demo/profiles.py), not like the demo.

Small scale and a few models each, so the module stays fast; bench/model_quality.py runs every candidate on
the demo-scale profiles through the real ingest and dbt build.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ml.forecast import MovingAverage, SeasonalNaive, forecast_demand
from ml.forecast.backtest import demand_classes
from ml.forecast.statistical import StatisticalForecaster
from ml.recommend import RECENT, EASERecommender, ItemKNNRecommender, Scoring, scores_from_events
from ml.training import train_recommender
from orchestration.demo.profiles import PROFILES, generate_profile
from tests.unit.profile_marts import interactions_mart, sales_daily_mart

MIN_DECAY = Scoring.from_settings().min_decay  # the settings' floor (dbt_project.yml), as the mart uses


@pytest.fixture(scope="module")
def profiles(tmp_path_factory):
    root = tmp_path_factory.mktemp("profiles")
    return {name: generate_profile(root / name, name, "small", seed=1) for name in PROFILES}


def test_profiles_write_the_landing_contract_and_are_deterministic(profiles, tmp_path):
    for name, data in profiles.items():
        for source in ("products", "sales", "interactions"):
            header = next((data.landing_dir / source).glob("*.csv")).read_text().splitlines()[0]
            assert header.split(",")[0] in {"product_id", "order_id", "event_id"}, (name, source)
        again = generate_profile(tmp_path / name, name, "small", seed=1)
        pd.testing.assert_frame_equal(again.sales, data.sales)
    events = interactions_mart(profiles["long_history"])
    assert (events["event_at"].max() - events["event_at"].min()).days > 15 * 365
    assert set(events["interaction_type"]) == {"view", "cart", "purchase"}
    with pytest.raises(ValueError, match="profile must be one of"):
        generate_profile(tmp_path, "hourly", "small")


def test_long_history_recommender_beats_the_stronger_popularity(profiles):
    events = interactions_mart(profiles["long_history"])
    # The seed's trap: a 30-day half-life from the log's end leaves almost every user with nothing.
    last = events["event_at"].max()
    weights = events["interaction_type"].map({"view": 1.0, "cart": 3.0, "purchase": 5.0})
    seed_scores = weights * np.exp2(-(last - events["event_at"]).dt.days / 30)
    faded = (
        seed_scores.groupby([events["user_id"], events["product_id"]]).sum().groupby("user_id").max() < 1e-3
    ).mean()
    assert faded > 0.9
    assert scores_from_events(events, RECENT).groupby("user_id")["score"].max().min() >= MIN_DECAY

    training = train_recommender(events, {"itemknn": ItemKNNRecommender(), "ease": EASERecommender()})
    metrics = training.candidates
    assert training.baseline == "popularity_all_time"  # on a log of many eras, "recent" is someone else's era
    assert metrics.loc[training.key, "ndcg@10"] > 1.5 * metrics.loc[training.baseline, "ndcg@10"]
    assert training.recency != RECENT
    assert training.counts["users"] == events["user_id"].nunique()
    assert training.scores["score"].groupby(training.scores["user_id"]).max().min() >= MIN_DECAY


def test_monthly_export_horizon_starts_right_after_its_last_month(profiles):
    data = profiles["monthly_export"]
    daily = sales_daily_mart(data)
    models = [SeasonalNaive("M"), MovingAverage("M"), StatisticalForecaster("M", "autoets")]
    result = forecast_demand(daily, data.products, "M", 12, n_origins=2, models=models)
    assert result.calendar.rule == "aggregated" and result.calendar.last_period == pd.Timestamp("2022-12-01")
    expected = pd.date_range("2023-01-01", periods=12, freq="MS").tolist()
    assert result.forecast.groupby("product_id")["forecast_date"].apply(list).map(expected.__eq__).all()
    assert not result.selection["short_history"].any()  # four years: two seasons and more


def test_short_weekly_export_gets_no_seasonal_model(profiles):
    data = profiles["weekly_short"]
    daily = sales_daily_mart(data)
    statistical = [StatisticalForecaster("W", kind) for kind in ("autoets", "autotheta", "croston_sba")]
    result = forecast_demand(
        daily, data.products, "W", 8, models=[SeasonalNaive("W"), MovingAverage("W"), *statistical]
    )
    assert result.calendar.rule == "aggregated"
    assert result.selection["short_history"].all()
    assert not (result.selection["model_name"] == SeasonalNaive.name).any()
    assert all(len(model.seasonal_ids()) == 0 for model in statistical)
    assert result.selection.loc[~result.selection["thin_history"], "demand_class"].str.endswith("short history").all()
    held_out = result.held_out.set_index("model")
    assert held_out["coverage"].between(0.0, 1.0).all() and "chosen" in held_out.index


def test_intermittent_slow_movers_are_forecast_by_the_intermittent_models_where_they_win(profiles):
    data = profiles["intermittent"]
    daily = sales_daily_mart(data)
    statistical = [StatisticalForecaster("W", kind) for kind in ("croston_sba", "tsb", "adida", "imapa")]
    result = forecast_demand(
        daily, data.products, "W", 8, models=[SeasonalNaive("W"), MovingAverage("W"), *statistical]
    )
    classes = demand_classes(result.history)
    assert classes.isin(["intermittent", "lumpy"]).mean() >= 0.7
    held_out = result.held_out.set_index("model")
    assert held_out.loc["chosen", "mase"] < held_out.loc[SeasonalNaive.name, "mase"]
    sparse = result.selection[result.selection["demand_class"].str.startswith(("intermittent", "lumpy"))]
    assert set(sparse["model_name"]) <= {"moving_average", *(model.name for model in statistical)}
