"""ml.forecast: period aggregation, models, backtest and selection, forecast_demand, demand insights.

All data is synthetic and dated in the 1990s, so nothing can lean on the wall clock. Prophet runs on one
series only, and LightGBM single-threaded, to keep the module fast and deterministic.
"""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pandas as pd
import pytest

from ml.forecast import (
    Backtest,
    EnsembleForecaster,
    LightGBMGlobalForecaster,
    MovingAverage,
    ProphetForecaster,
    SeasonalNaive,
    aggregate_sales,
    demand_classes,
    demand_insights,
    forecast_demand,
    model_metrics,
    rolling_origin_backtest,
    select_models,
)
from ml.forecast.statistical import STATISTICAL_KINDS

HORIZON = 8


def mart_rows(quantities: dict[str, np.ndarray], start: str, price: float = 10.0) -> pd.DataFrame:
    """fct_sales_daily-shaped rows: zero-filled from each product's first sale to the last date."""
    frames = []
    for product_id, quantity in quantities.items():
        dates = pd.date_range(start, periods=len(quantity), freq="D")
        first = int(np.argmax(quantity > 0))
        quantity = quantity[first:]
        frames.append(
            pd.DataFrame(
                {
                    "product_id": product_id,
                    "sales_date": dates[first:].date,
                    "quantity": quantity.astype(int),
                    "revenue": [Decimal(f"{q * price:.4f}") for q in quantity],  # the mart's exact decimals
                    "n_orders": (quantity > 0).astype(int),
                    "avg_unit_price": np.where(quantity > 0, price, np.nan),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def trending_seasonal(rng: np.random.Generator, n_days: int, base: float, growth: float, phase: float) -> np.ndarray:
    """Poisson daily demand with a yearly cycle, a weekly cycle and steady growth."""
    t = np.arange(n_days)
    yearly = 1 + 0.6 * np.sin(2 * np.pi * t / 365.25 + phase)
    weekly = np.array([1.0, 0.9, 0.9, 1.0, 1.1, 1.4, 0.7])[t % 7]
    return rng.poisson(base * yearly * weekly * (1 + growth * t / 365.25))


def catalogue(product_ids, stock: float = 1_000.0) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "product_id": list(product_ids),
            "name": [f"Part {p}" for p in product_ids],
            "category": ["brakes", "filters"] * (len(product_ids) // 2) + ["brakes"] * (len(product_ids) % 2),
            "brand": "Bosch",
            "price": Decimal("10.00"),
            "stock_on_hand": stock,
        }
    )


# --- aggregation and the horizon -------------------------------------------------------------------------


def test_aggregation_to_day_week_and_month_on_1990s_data():
    # Monday 1996-01-01 to Sunday 1996-02-04: five whole weeks, January whole, February cut short.
    days = 35
    a = np.arange(days) % 3 + 1  # 1, 2, 3, 1, ...; sells from the first day, so no week is partial
    b = np.where(np.arange(days) >= 7, 4, 0)  # first sale on Monday of week two
    daily = mart_rows({"A": a, "B": b}, "1996-01-01")
    daily.loc[daily["product_id"] == "B", "revenue"] = [Decimal(f"{q * 2.5:.4f}") for q in b[7:]]

    by_day = aggregate_sales(daily, "D")
    assert len(by_day[by_day["product_id"] == "A"]) == days
    assert len(by_day[by_day["product_id"] == "B"]) == days - 7  # zero-filled from B's first sale on
    assert by_day.set_index(["product_id", "period_start"]).loc[("A", pd.Timestamp("1996-01-03")), "quantity"] == 3

    weekly = aggregate_sales(daily, "W")
    a_weeks = weekly[weekly["product_id"] == "A"]
    assert list(a_weeks["period_start"]) == list(pd.date_range("1996-01-01", periods=5, freq="7D"))
    assert list(a_weeks["quantity"]) == [a[i : i + 7].sum() for i in range(0, days, 7)]
    b_weeks = weekly[weekly["product_id"] == "B"]
    assert b_weeks["period_start"].min() == pd.Timestamp("1996-01-08")
    assert b_weeks["quantity"].tolist() == [28] * 4
    assert b_weeks["avg_price"].tolist() == [2.5] * 4
    assert a_weeks["avg_price"].tolist() == [10.0] * 5

    monthly = aggregate_sales(daily, "M")  # February is incomplete, so only January remains
    assert monthly["period_start"].unique().tolist() == [pd.Timestamp("1996-01-01")]
    assert monthly.set_index("product_id")["quantity"].to_dict() == {"A": a[:31].sum(), "B": b[:31].sum()}


def test_unsold_period_has_no_price_and_leading_partial_period_is_dropped():
    # Data starts on Wednesday 1995-01-04: that first week is incomplete and must not look like a slump.
    quantity = np.r_[np.full(5, 3), np.zeros(7), np.full(7, 1)]
    weekly = aggregate_sales(mart_rows({"A": quantity}, "1995-01-04"), "W")
    assert weekly["period_start"].tolist() == [pd.Timestamp("1995-01-09"), pd.Timestamp("1995-01-16")]
    assert weekly["quantity"].tolist() == [0, 7]
    assert np.isnan(weekly["avg_price"].iloc[0]) and weekly["avg_price"].iloc[1] == 10.0


@pytest.mark.parametrize(
    ("last_day", "freq", "last_complete", "first_forecast"),
    [
        ("1995-12-27", "W", "1995-12-18", "1995-12-25"),  # Wednesday: that week is dropped
        ("1995-12-31", "W", "1995-12-25", "1996-01-01"),  # Sunday: that week is complete
        ("1996-02-28", "M", "1996-01-01", "1996-02-01"),  # leap year: February ends on the 29th
        ("1996-02-29", "M", "1996-02-01", "1996-03-01"),
        ("1996-02-29", "D", "1996-02-29", "1996-03-01"),
    ],
)
def test_horizon_starts_after_the_last_complete_period(last_day, freq, last_complete, first_forecast):
    days = (pd.Timestamp(last_day) - pd.Timestamp("1994-01-03")).days + 1
    history = aggregate_sales(mart_rows({"A": np.ones(days)}, "1994-01-03"), freq)
    assert history["period_start"].max() == pd.Timestamp(last_complete)
    predicted = MovingAverage(freq).fit(history).predict(3)
    expected = pd.date_range(first_forecast, periods=3, freq={"W": "W-MON", "M": "MS", "D": "D"}[freq])
    assert predicted["period_start"].tolist() == expected.tolist()


# --- models ------------------------------------------------------------------------------------------------


def weekly_history(values: dict[str, np.ndarray], start: str = "1994-01-03") -> pd.DataFrame:
    return pd.concat(
        [
            pd.DataFrame(
                {
                    "product_id": pid,
                    "period_start": pd.date_range(start, periods=len(v), freq="W-MON"),
                    "quantity": v.astype(float),
                    "avg_price": 10.0,
                }
            )
            for pid, v in values.items()
        ],
        ignore_index=True,
    )


def test_seasonal_naive_repeats_last_season_and_falls_back_to_naive_when_short():
    long = np.arange(60.0)  # 60 weeks: the forecast repeats weeks 8.. of the last 52
    short = np.array([3.0, 9.0, 4.0])  # shorter than a season: the last value
    history = weekly_history({"L": long, "S": short}, "1994-01-03")
    history.loc[history["product_id"] == "S", "period_start"] = pd.date_range(end="1995-02-20", periods=3, freq="W-MON")
    assert history.groupby("product_id")["period_start"].max().nunique() == 1  # both end on the same week
    predicted = SeasonalNaive("W").fit(history).predict(HORIZON).set_index("product_id")
    assert predicted.loc["L", "yhat"].tolist() == long[-52 : -52 + HORIZON].tolist()
    assert predicted.loc["S", "yhat"].tolist() == [4.0] * HORIZON


def test_every_model_gives_ordered_nonnegative_intervals():
    rng = np.random.default_rng(3)
    values = {f"P{i}": rng.poisson(5 + 3 * np.sin(np.arange(104) / 52 * 2 * np.pi) + i, 104) for i in range(6)}
    values["P0"] = values["P0"] * 10  # the top seller: the only one Prophet fits
    history = weekly_history(values)
    lightgbm = LightGBMGlobalForecaster("W", catalogue(values), n_jobs=1)
    prophet = ProphetForecaster("W", top_n=1)
    models = [SeasonalNaive("W"), MovingAverage("W"), lightgbm, prophet, EnsembleForecaster([lightgbm, prophet])]
    for model in models:
        predicted = model.fit(history).predict(HORIZON)
        expected_ids = ["P0"] if model is prophet else sorted(values)
        assert sorted(predicted["product_id"].unique()) == expected_ids, model.name
        assert len(predicted) == HORIZON * len(expected_ids), model.name
        assert (predicted["yhat_lower"] >= 0).all(), model.name
        assert (predicted["yhat_lower"] <= predicted["yhat"]).all(), model.name
        assert (predicted["yhat"] <= predicted["yhat_upper"]).all(), model.name
        assert (predicted["yhat_upper"] > predicted["yhat_lower"]).mean() > 0.9, model.name  # real intervals


def test_lightgbm_features_of_a_period_do_not_depend_on_that_periods_sales_or_price():
    rng = np.random.default_rng(8)
    values = {f"P{i}": rng.poisson(2, 60) for i in range(3)}
    history = weekly_history(values).assign(avg_price=lambda h: rng.choice([7.0, 10.0], len(h)))
    model = LightGBMGlobalForecaster("W", catalogue(values), n_jobs=1).fit(history)
    quantity, ratio = model._y.copy(), model._ratio.copy()
    period = 40
    quantity[:, period] += 5.0
    ratio[:, period] *= 0.5  # what a sale at a promotion price would have recorded
    cells = np.arange(len(values)) * quantity.shape[1] + period
    before = model._features(model._y, model._ratio, model._periods).iloc[cells]
    after = model._features(quantity, ratio, model._periods).iloc[cells]
    pd.testing.assert_frame_equal(before, after)  # nothing of period 40 leaks into its own features


def test_lightgbm_interval_stays_open_above_yhat_at_a_top_sellers_seasonal_peak():
    rng = np.random.default_rng(5)
    week = np.arange(104) % 52
    values = {f"P{i}": rng.poisson(4 + i, 104) for i in range(8)}
    # A top seller with a sharp new-year peak: on the recursive path the Tweedie point model climbs it; the
    # band (its in-sample errors around yhat) climbs with it (quantile models, fitted here once, did not:
    # one forecast week had yhat_upper == yhat).
    values["P0"] = rng.poisson(40 * (1 + 2 * np.exp(-(week**2) / 8) + 2 * np.exp(-((week - 52) ** 2) / 8)))
    predicted = LightGBMGlobalForecaster("W", catalogue(values), n_jobs=1).fit(weekly_history(values)).predict(8)
    top = predicted[predicted["product_id"] == "P0"]
    assert (top["yhat_upper"] > top["yhat"]).all()
    assert (top["yhat_lower"] < top["yhat"]).all()


# --- backtest and selection -------------------------------------------------------------------------------


def test_metrics_skip_zero_actuals_and_survive_zero_scale_series():
    # C is constant until the first origin (in-sample naive MAE 0: MASE undefined there, not infinite);
    # Z alternates 0/4 (MAPE must skip the zero actuals).
    history = weekly_history({"C": np.r_[np.full(16, 5.0), [6.0, 6.0, 7.0, 7.0]], "Z": np.tile([0.0, 4.0], 10)})
    backtest = rolling_origin_backtest(history, [MovingAverage("W", window=1)], n_origins=2, horizon=2, freq="W")
    errors = backtest.errors.set_index(["product_id", "origin"])
    assert len(errors) == 4 and len(backtest.predictions) == 8
    constant = errors.loc["C"]  # forecasts 5 then 6 (the last value); misses by 1 each time
    assert constant["mae"].tolist() == [1.0, 1.0]
    assert np.isnan(constant["mase"].iloc[0])
    assert constant["mase"].iloc[1] == pytest.approx(17.0)  # training 5 x16, 6, 6: naive MAE 1/17
    alternating = errors.loc["Z"]  # last training value 4, actuals (0, 4): one miss of 4
    assert alternating["mae"].tolist() == [2.0, 2.0]
    assert alternating["mape"].tolist() == [0.0, 0.0]  # only the non-zero actual, forecast exactly
    assert alternating["wape"].tolist() == [1.0, 1.0]
    assert alternating["mase"].tolist() == [0.5, 0.5]  # in-sample lag-1 naive MAE is 4
    chosen = select_models(backtest).set_index("product_id")
    assert chosen.loc["C", "model_name"] == "moving_average_1" and chosen.loc["C", "mae"] == 1.0
    assert np.isfinite(model_metrics(backtest).set_index("model").loc["moving_average_1", "mase"])


def test_the_moving_average_window_is_chosen_on_the_backtest():
    # STEP's level moved 6 weeks before the first origin and again between origins: the 4-week window
    # follows it. The N series are a steady level under heavy noise: a longer window averages it away.
    rng = np.random.default_rng(7)
    step = np.r_[np.full(30, 10.0), np.full(6, 40.0), np.full(4, 40.0), np.full(4, 80.0), np.full(4, 80.0)]
    noisy = {f"N{i}": rng.normal(50.0, 15.0, size=len(step)) for i in range(30)}
    history = weekly_history({"STEP": step, **noisy})
    windows = [MovingAverage("W", window) for window in MovingAverage.CANDIDATE_WINDOWS["W"]]
    backtest = rolling_origin_backtest(history, windows, n_origins=3, horizon=4, freq="W")
    classes = pd.Series({"STEP": "step", **dict.fromkeys(noisy, "noise")})
    chosen = select_models(backtest, classes).set_index("product_id")["model_name"]
    assert chosen["STEP"] == "moving_average_4"
    assert len(set(chosen.drop("STEP"))) == 1 and chosen["N0"] in {"moving_average", "moving_average_13"}
    assert [model.name for model in windows] == ["moving_average_4", "moving_average", "moving_average_13"]


class CountingForecaster(MovingAverage):
    """A moving average that counts its fits and misses by a mile, so no class chooses it."""

    def __init__(self, freq="W"):
        super().__init__(freq)
        self.name, self.fits = "counting", 0

    def _fit(self, history):
        self.fits += 1
        super()._fit(history)

    def _predict(self, horizon):
        predicted = super()._predict(horizon)
        return predicted.assign(yhat=predicted["yhat"] + 1_000.0)


def test_the_final_fit_skips_models_no_class_chose():
    rng = np.random.default_rng(3)
    daily = mart_rows({f"P{i}": rng.poisson(5.0, 7 * 60) for i in range(3)}, "2024-01-01")
    never_chosen = CountingForecaster()
    models = [SeasonalNaive("W"), MovingAverage("W"), never_chosen]
    result = forecast_demand(daily, catalogue(["P0", "P1", "P2"]), "W", 4, n_origins=3, models=models)
    assert "counting" not in set(result.selection["model_name"])
    assert never_chosen.fits == 3  # the three origins, not the final fit on all the history
    assert "counting" in set(result.metrics["model"])


def test_planted_answer_global_model_beats_seasonal_naive_on_trending_seasonal_series():
    rng = np.random.default_rng(11)
    n_days = 2 * 364 + 7
    quantities = {
        f"P{i:02d}": trending_seasonal(rng, n_days, base=rng.uniform(2, 8), growth=rng.uniform(0.3, 0.8), phase=i % 4)
        for i in range(30)
    }
    history = aggregate_sales(mart_rows(quantities, "1994-01-03"), "W")
    lightgbm = LightGBMGlobalForecaster("W", catalogue(quantities), n_jobs=1)
    models = [SeasonalNaive("W"), MovingAverage("W"), lightgbm, EnsembleForecaster([lightgbm, MovingAverage("W")])]
    backtest = rolling_origin_backtest(history, models, n_origins=3, horizon=HORIZON, freq="W")
    assert backtest.errors.groupby("model").size().tolist() == [30 * 3] * 4
    metrics = model_metrics(backtest).set_index("model")
    assert metrics.loc["seasonal_naive", "relative_mase"] == pytest.approx(1.0)
    best = metrics.loc[["lightgbm", "ensemble"], "relative_mase"].min()
    assert best < 0.7, metrics
    assert metrics.loc["lightgbm", "mase"] < metrics.loc["seasonal_naive", "mase"]
    # Without classes every series is in one: all get the model with the lowest mean MASE over all of them.
    chosen = select_models(backtest).set_index("product_id")["model_name"]
    best = backtest.errors.groupby(["product_id", "model"])["mase"].mean().groupby("model").mean().idxmin()
    assert best in ("lightgbm", "ensemble") and (chosen == best).all()


def test_demand_classes_follow_the_syntetos_boylan_cutoffs():
    rng = np.random.default_rng(2)
    every_third = np.arange(60) % 3 == 0
    history = weekly_history(
        {
            "SMOOTH": rng.integers(9, 12, 60).astype(float),
            "ERRATIC": rng.choice([1.0, 40.0], 60),
            "INTERMITTENT": np.where(every_third, 5.0, 0.0),
            "LUMPY": np.where(every_third, rng.choice([1.0, 40.0], 60), 0.0),
        }
    )
    classes = demand_classes(history)
    assert classes.to_dict() == {p: p.lower() for p in ("ERRATIC", "INTERMITTENT", "LUMPY", "SMOOTH")}


def test_choice_is_one_model_per_demand_class_among_models_that_cover_it():
    def window(product, model, mase):
        return {"model": model, "product_id": product, "origin": pd.Timestamp("2001-01-01"), "mase": mase, "mae": mase}

    rows = [
        window("A1", "lightgbm", 0.8), window("A1", "moving_average", 1.0), window("A1", "prophet", 0.1),
        window("A2", "lightgbm", 0.9), window("A2", "moving_average", 0.85),  # MA wins this series alone
        window("B1", "lightgbm", 1.2), window("B1", "moving_average", 0.9),
    ]  # fmt: skip
    errors = pd.DataFrame(rows)
    backtest = Backtest(predictions=pd.DataFrame(), errors=errors)
    classes = pd.Series({"A1": "smooth", "A2": "smooth", "B1": "intermittent"})
    chosen = select_models(backtest, classes, thin=["T"]).set_index("product_id")
    # prophet scores best on A1 but covers half the class; lightgbm has the better class mean (0.85 vs 0.925).
    assert chosen["model_name"].to_dict() == {
        "A1": "lightgbm", "A2": "lightgbm", "B1": "moving_average", "T": "moving_average"
    }  # fmt: skip
    assert chosen["demand_class"].to_dict() == {"A1": "smooth", "A2": "smooth", "B1": "intermittent", "T": "thin"}
    assert chosen.loc["A2", "mase"] == 0.9 and chosen.loc["T", "thin_history"]


# --- forecast_demand ---------------------------------------------------------------------------------------

LAST_DAY = pd.Timestamp("1995-12-27")  # a Wednesday: the week of 1995-12-25 is incomplete


@pytest.fixture(scope="module")
def planted_run():
    """Eight steady sellers (P0 by far the top one), a slow mover, a product launched 10 weeks ago (thin)
    and one whose first sale is in the incomplete last week (no complete period at all)."""
    rng = np.random.default_rng(5)
    start = pd.Timestamp("1994-01-03")
    n_days = (LAST_DAY - start).days + 1
    quantities = {
        f"P{i}": trending_seasonal(rng, n_days, base=30 if i == 0 else 2 + i, growth=0.2, phase=i % 3) for i in range(8)
    }
    quantities["SLOW"] = (rng.random(n_days) < 0.05).astype(int)
    quantities["SLOW"][0] = 1
    quantities["THIN"] = np.r_[np.zeros(n_days - 73), rng.poisson(4, 73)]
    quantities["THIN"][n_days - 73] = 5
    quantities["NEW"] = np.r_[np.zeros(n_days - 2), [3, 1]]
    daily = mart_rows(quantities, "1994-01-03")
    products = catalogue(quantities)
    return quantities, daily, forecast_demand(daily, products, freq="W", horizon=HORIZON, prophet_top_n=1, n_jobs=1)


def test_every_product_gets_the_full_horizon_after_the_last_complete_week(planted_run):
    quantities, _, result = planted_run
    forecast = result.forecast
    assert list(forecast.columns) == [
        "product_id", "forecast_date", "yhat", "yhat_lower", "yhat_upper", "model_name", "thin_history"
    ]  # fmt: skip
    assert sorted(forecast["product_id"].unique()) == sorted(quantities)
    expected_dates = pd.date_range("1995-12-25", periods=HORIZON, freq="W-MON").tolist()
    for product_id, rows in forecast.groupby("product_id"):
        assert rows["forecast_date"].tolist() == expected_dates, product_id
    assert (forecast["yhat_lower"] <= forecast["yhat"]).all() and (forecast["yhat"] <= forecast["yhat_upper"]).all()
    assert (forecast["yhat"] >= 0).all()


def test_thin_history_falls_back_to_moving_average_and_is_flagged(planted_run):
    _, _, result = planted_run
    by_product = result.forecast.groupby("product_id").first()
    assert by_product.loc["THIN", "model_name"] == "moving_average" and by_product.loc["THIN", "thin_history"]
    assert by_product.loc["NEW", "model_name"] == "run_rate" and by_product.loc["NEW", "thin_history"]
    rich = [p for p in by_product.index if p not in ("THIN", "NEW")]
    assert not by_product.loc[rich, "thin_history"].any()
    # The fallback is the mean of THIN's last 8 complete weeks, repeated.
    thin_weeks = result.history[result.history["product_id"] == "THIN"]
    assert len(thin_weeks) < 4 * HORIZON
    thin_forecast = result.forecast[result.forecast["product_id"] == "THIN"]
    assert thin_forecast["yhat"].tolist() == pytest.approx([thin_weeks["quantity"].tail(HORIZON).mean()] * HORIZON)
    # NEW sold 4 units in 2 days: 14 a week.
    assert result.forecast.loc[result.forecast["product_id"] == "NEW", "yhat"].tolist() == pytest.approx([14] * 8)
    selection = result.selection.set_index("product_id")
    assert selection.loc["THIN", "thin_history"] and not selection.loc["P0", "thin_history"]
    assert "THIN" not in set(result.backtest.errors["product_id"])


def test_forecast_demand_backtests_every_model_and_reports_metrics(planted_run):
    _, _, result = planted_run
    metrics = result.metrics.set_index("model")
    baselines_and_learners = {"seasonal_naive", "lightgbm", "prophet", "ensemble"}
    baselines_and_learners |= {"moving_average", "moving_average_4", "moving_average_13"}
    assert set(metrics.index) == baselines_and_learners | set(STATISTICAL_KINDS)
    assert {"mae", "rmse", "mape", "wape", "mase"} <= set(metrics.columns)
    assert metrics.loc["prophet", "n_series"] == 1 and metrics.loc["lightgbm", "n_series"] == 9
    assert result.backtest.errors["origin"].nunique() == 3
    chosen = result.selection.set_index("product_id")["model_name"]
    used = result.forecast.groupby("product_id")["model_name"].first()
    assert (used[chosen.index.drop("THIN")] == chosen.drop("THIN")).all()
    importance = result.feature_importance
    assert set(importance["feature"]) >= {"lag_1", "mean_4", "week_of_year", "price_ratio", "category"}
    assert importance["gain_share"].sum() == pytest.approx(1.0)
    assert importance["gain_share"].is_monotonic_decreasing


def test_only_thin_series_forecast_by_moving_average_without_a_backtest():
    quantities = {"A": np.full(70, 3.0), "B": np.tile([0.0, 2.0], 35)}  # ten weeks each: too short to backtest
    result = forecast_demand(mart_rows(quantities, "1995-01-02"), catalogue(quantities), "W", HORIZON)
    assert set(result.forecast["model_name"]) == {"moving_average"} and result.forecast["thin_history"].all()
    assert result.forecast.groupby("product_id").size().tolist() == [HORIZON, HORIZON]
    assert result.selection["demand_class"].eq("thin").all() and result.backtest.errors.empty
    assert result.feature_importance.empty


# --- insights ----------------------------------------------------------------------------------------------


def insight_inputs(forecasts: dict[str, list[float]], trailing: float = 10.0, stock: dict[str, float] | None = None):
    future = pd.date_range("1996-01-01", periods=HORIZON, freq="W-MON")
    forecast = pd.concat(
        [pd.DataFrame({"product_id": p, "forecast_date": future, "yhat": v}) for p, v in forecasts.items()]
    )
    # Three times busier before the last 8 weeks: only those 8 may count towards the trailing average.
    weeks = np.r_[np.full(12, 3 * trailing), np.full(HORIZON, trailing)]
    history = weekly_history({p: weeks for p in forecasts}, "1995-08-14")
    products = catalogue(list(forecasts))
    products["stock_on_hand"] = [(stock or {}).get(p, 1_000.0) for p in forecasts]
    return forecast, products, history


def test_insight_rules_fire_on_planted_cases_and_not_on_a_flat_series():
    spike = [10.0] * HORIZON
    spike[3] = 25.0  # a promotion week: 2.5x the trailing average
    collapse = [10.0, 8.0, 6.0, 4.0, 2.0, 1.0, 0.5, 0.0]
    forecast, products, history = insight_inputs(
        {"FLAT": [10.0] * HORIZON, "LOWSTOCK": [10.0] * HORIZON, "ENOUGH": [10.0] * HORIZON, "PROMO": spike,
         "COLLAPSE": collapse},
        stock={"LOWSTOCK": 20.0, "ENOUGH": 60.0},  # 80 units forecast: > 1.5 x 20, but not > 1.5 x 60
    )  # fmt: skip
    insights = demand_insights(forecast, products, history, "W")
    fired = set(zip(insights["product_id"], insights["insight_type"], strict=True))
    assert fired == {("LOWSTOCK", "restock"), ("PROMO", "spike"), ("COLLAPSE", "decline")}
    rows = insights.set_index("product_id")
    assert rows.loc["LOWSTOCK", "forecast_total"] == 80 and rows.loc["LOWSTOCK", "stock_on_hand"] == 20
    assert "80 units" in rows.loc["LOWSTOCK", "details"] and "20" in rows.loc["LOWSTOCK", "details"]
    assert rows.loc["PROMO", "period_start"] == pd.Timestamp("1996-01-22") and rows.loc["PROMO", "period_value"] == 25
    assert rows.loc["PROMO", "trailing_average"] == 10 and "2.5x" in rows.loc["PROMO", "details"]
    assert rows.loc["COLLAPSE", "period_value"] == 0 and "0%" in rows.loc["COLLAPSE", "details"]
    assert demand_insights(forecast, products, history, "W", decline_ratio=0.0)["insight_type"].ne("decline").all()
    # A slow mover (0.5 a week) doubling to 1 is one extra sale, not a spike worth a buyer's time.
    slow_forecast, slow_products, slow_history = insight_inputs({"SLOW": [1.0] * HORIZON}, trailing=0.5)
    assert demand_insights(slow_forecast, slow_products, slow_history, "W").empty
    relaxed = demand_insights(slow_forecast, slow_products, slow_history, "W", min_trailing_average=0.0)
    assert relaxed["insight_type"].tolist() == ["spike"]


def test_planted_promotion_last_year_shows_up_as_a_spike_insight():
    # A steady seller whose promotion 52 weeks before the horizon tripled sales: seasonal naive repeats it.
    values = np.full(104, 12.0)
    values[104 - 52 + 2] = 40.0
    history = weekly_history({"A": values})
    forecast = SeasonalNaive("W").fit(history).predict(HORIZON).rename(columns={"period_start": "forecast_date"})
    insights = demand_insights(forecast, catalogue(["A"]), history, "W")
    assert insights["insight_type"].tolist() == ["spike"]
    assert insights["period_start"].iloc[0] == history["period_start"].max() + pd.Timedelta(weeks=3)


def test_insights_read_daily_history_from_forecast_demand(planted_run):
    quantities, daily, result = planted_run
    products = catalogue(quantities, stock=0.0)  # nothing in stock: every product with demand needs restocking
    insights = demand_insights(result.forecast, products, daily, "W")
    restock = set(insights.loc[insights["insight_type"] == "restock", "product_id"])
    assert restock == set(result.forecast.loc[result.forecast["yhat"] > 0, "product_id"])
    no_history = insights.loc[insights["trailing_average"].isna(), "product_id"]
    assert set(no_history) == {"NEW"}  # no complete week yet, so no trailing average


def test_history_shorter_than_the_backtest_origins_is_backtested_on_fewer_of_them():
    """120 days of weeks at horizon 8 (the small demo at the default horizon): 17 periods hold one origin of
    8 beside 8 of training, not three. Every series used to be thin, nothing was backtested, and the
    forecaster's evaluation and its baseline were NaN, so its blocking check failed the refresh."""
    rng = np.random.default_rng(3)
    quantities = {f"P{p}": rng.poisson(4 + p, 120) for p in range(3)}
    result = forecast_demand(
        mart_rows(quantities, "2023-01-02"),
        catalogue(quantities),
        "W",
        8,
        models=[SeasonalNaive("W"), MovingAverage("W")],
    )
    assert result.backtest.errors["origin"].nunique() == 1
    assert not result.selection["thin_history"].any()
    held_out = result.held_out.set_index("model")["mase"]
    assert np.isfinite(held_out["chosen"]) and np.isfinite(held_out["seasonal_naive"])
    assert (result.forecast.groupby("product_id").size() == 8).all()


def test_seasonal_statistical_models_spread_over_workers_with_the_same_forecasts():
    from ml.forecast.statistical import SERIES_PER_WORKER, StatisticalForecaster

    assert StatisticalForecaster("W", "autoets", n_jobs=4)._workers(10 * SERIES_PER_WORKER) == 4
    assert StatisticalForecaster("W", "autoets", n_jobs=4)._workers(2 * SERIES_PER_WORKER) == 2
    assert StatisticalForecaster("W", "tsb", n_jobs=4)._workers(10 * SERIES_PER_WORKER) == 1  # closed form
    ids = pd.Index([f"S{i}" for i in range(2 * SERIES_PER_WORKER + 20)])
    assert StatisticalForecaster("W", "autoets", ids, n_jobs=16)._processes() == 2  # 16 cores, two parts: 2
    rng = np.random.default_rng(5)
    history = weekly_history({f"S{i}": rng.poisson(20.0, 30) for i in range(2 * SERIES_PER_WORKER)})
    alone = StatisticalForecaster("W", "autotheta", n_jobs=1).fit(history).predict(4)
    spread = StatisticalForecaster("W", "autotheta", n_jobs=2).fit(history).predict(4)  # two worker processes
    pd.testing.assert_frame_equal(spread, alone)


def test_statistical_calls_are_shared_out_by_their_series_largest_first():
    from ml.forecast.statistical import _shares

    assert _shares([50, 50], 2) == [[0], [1]]  # the search's two halves: one each
    assert _shares([40, 30, 20, 10, 5], 2) == [[0, 3, 4], [1, 2]]  # refit orders: 55 and 50 series
    assert _shares([7, 3], 4) == [[0], [1]]  # never an empty share
    assert _shares([7, 3], 1) == [[0, 1]]


# A child forked from this process wedges, as one does after a fork copies a lock another thread held (a
# Dagster step's threads, a pytest-xdist worker's, an OpenMP pool's): the workers must not be forked from it.
FORK_WEDGES_CHILDREN = """
import os, sys, time
import numpy as np
sys.path.insert(0, {tests!r})
from unit.test_forecasting import weekly_history
from ml.forecast.statistical import SERIES_PER_WORKER, StatisticalForecaster

os.register_at_fork(after_in_child=lambda: time.sleep(3600))
rng = np.random.default_rng(5)
history = weekly_history({{f"S{{i}}": rng.poisson(20.0, 30) for i in range(2 * SERIES_PER_WORKER)}})
print(len(StatisticalForecaster("W", "autotheta", n_jobs=2).fit(history).predict(4)))
"""


def test_seasonal_models_spread_over_workers_that_are_not_forked_from_the_caller():
    import contextlib
    import os
    import signal
    import subprocess
    import sys
    from pathlib import Path

    from ml.forecast.statistical import SERIES_PER_WORKER

    code = FORK_WEDGES_CHILDREN.format(tests=str(Path(__file__).parents[1]))
    process = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        out, err = process.communicate(timeout=300)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # whatever it left, a wedged child included
    assert process.returncode == 0, err[-3000:]
    assert out.split() == [str(2 * SERIES_PER_WORKER * 4)]


def test_autoarima_refits_an_order_searched_on_a_season_until_the_history_outgrew_the_search():
    from ml.forecast.statistical import SERIES_PER_WORKER, StatisticalForecaster

    rng = np.random.default_rng(7)
    level = np.zeros((2 * SERIES_PER_WORKER, 100))  # enough series for two worker processes
    for t in range(1, level.shape[1]):
        level[:, t] = 0.6 * level[:, t - 1] + rng.normal(0, 3, len(level))  # AR(1) around 40
    everything = weekly_history({f"S{i}": np.round(40 + row) for i, row in enumerate(level)})
    weeks = np.sort(everything["period_start"].unique())
    model = StatisticalForecaster("W", "autoarima", n_jobs=2)
    model.fit(everything[everything["period_start"] <= weeks[59]]).predict(8)  # 60 weeks: searched
    orders = model.arima_orders
    assert set(orders) == {(f"S{i}", 1) for i in range(len(level))}  # under two seasons: non-seasonal
    history = everything[everything["period_start"] <= weeks[69]]
    refit = model.fit(history).predict(8)  # 10 weeks (17%) more: the same orders, coefficients re-estimated
    assert model.arima_orders == orders
    for product, series in history.groupby("product_id"):
        expected = orders[(product, 1)].model().forecast(y=series["quantity"].to_numpy(), h=8)["mean"]
        served = refit[refit["product_id"] == product]["yhat"].to_numpy()
        np.testing.assert_allclose(served, np.clip(expected, 0, None), rtol=1e-6, err_msg=product)
    three = everything[everything["product_id"].isin(["S0", "S1", "S2"])]
    short = StatisticalForecaster("W", "autoarima").fit(three[three["period_start"] <= weeks[29]])
    short.predict(8)  # searched on 30 weeks, less than a season: not trusted for the next fit
    for searched_again, history in ((model, three), (short, three[three["period_start"] <= weeks[32]])):
        fresh = StatisticalForecaster("W", "autoarima").fit(history).predict(8)  # 100 weeks: 67% more than 60
        again = searched_again.fit(history).predict(8).sort_values(["product_id", "period_start"], ignore_index=True)
        pd.testing.assert_frame_equal(again, fresh.sort_values(["product_id", "period_start"], ignore_index=True))
