"""Conformal intervals: calibrated on earlier backtest windows, they cover ~80% of a window they never saw,
whatever the model's own band said; and the statistical models fit no season into a short series."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ml.forecast.intervals import calibrate, conformal_quantiles, held_out_coverage
from ml.forecast.statistical import StatisticalForecaster
from tests.unit.test_forecasting import weekly_history


def backtest_rows(rng: np.random.Generator, origin: int, n_series: int = 300) -> pd.DataFrame:
    """One origin of predictions whose errors scale with each series' MASE scale (heteroscedastic)."""
    scale = rng.uniform(0.5, 20.0, size=n_series)
    yhat = scale * 5
    actual = np.maximum(yhat + rng.normal(0, 1.3, size=n_series) * scale, 0)
    return pd.DataFrame(
        {
            "model": "m",
            "product_id": [f"P{i}" for i in range(n_series)],
            "origin": origin,
            "actual": actual,
            "yhat": yhat,
            "yhat_lower": yhat - 0.1,  # an overconfident own band: conformal must not trust it
            "yhat_upper": yhat + 0.1,
            "scale": scale,
        }
    )


def test_conformal_band_covers_about_80_percent_of_a_held_out_origin():
    rng = np.random.default_rng(0)
    calibration = pd.concat([backtest_rows(rng, origin) for origin in range(4)], ignore_index=True)
    held_out = backtest_rows(rng, 4)
    quantiles = conformal_quantiles(calibration)
    assert quantiles.set_index("model").loc["m", "n_residuals"] == 300  # the latest origin's residuals
    assert held_out_coverage(held_out, quantiles)["m"] == pytest.approx(0.8, abs=0.06)
    own_band = ((held_out["actual"] >= held_out["yhat_lower"]) & (held_out["actual"] <= held_out["yhat_upper"])).mean()
    assert own_band < 0.2

    predictions = held_out[["product_id", "yhat", "yhat_lower", "yhat_upper"]].assign(
        period_start=pd.Timestamp("1999-01-04")
    )
    served = calibrate(predictions, "m", quantiles, held_out.set_index("product_id")["scale"])
    inside = (held_out["actual"].to_numpy() >= served["yhat_lower"]) & (
        held_out["actual"].to_numpy() <= served["yhat_upper"]
    )
    assert inside.mean() == pytest.approx(held_out_coverage(held_out, quantiles)["m"])
    assert (served["yhat_lower"] >= 0).all() and (served["yhat_lower"] <= served["yhat"]).all()
    assert calibrate(predictions, "unknown", quantiles, held_out["scale"]) is predictions


def test_the_band_follows_the_latest_origin_when_errors_drift():
    rng = np.random.default_rng(1)
    calm = pd.concat([backtest_rows(rng, origin) for origin in range(3)], ignore_index=True)
    stormy = backtest_rows(rng, 3).assign(actual=lambda rows: rows["yhat"] + 3 * (rows["actual"] - rows["yhat"]))
    quantiles = conformal_quantiles(pd.concat([calm, stormy], ignore_index=True)).set_index("model")
    assert quantiles.loc["m", "q_upper"] == pytest.approx(
        conformal_quantiles(stormy).set_index("model").loc["m", "q_upper"]
    )


def test_statistical_models_fit_a_season_only_with_two_seasons_of_history():
    weeks = np.arange(160)
    seasonal = 20 + 10 * np.sin(2 * np.pi * weeks / 52)
    late_start = str((pd.Timestamp("1994-01-03") + pd.Timedelta(weeks=100)).date())  # both end on one week
    history = pd.concat([weekly_history({"LONG": seasonal}), weekly_history({"SHORT": seasonal[-60:]}, late_start)])
    model = StatisticalForecaster("W", "autotheta").fit(history)
    assert list(model.seasonal_ids()) == ["LONG"]
    assert list(StatisticalForecaster("W", "autoets").fit(history).seasonal_ids()) == []  # 52 > ETS_MAX_SEASON
    predicted = model.predict(8)
    assert predicted.groupby("product_id").size().to_dict() == {"LONG": 8, "SHORT": 8}
    croston = StatisticalForecaster("W", "croston_sba", product_ids=pd.Index(["SHORT"])).fit(history)
    assert list(croston.seasonal_ids()) == [] and set(croston.predict(8)["product_id"]) == {"SHORT"}
    with pytest.raises(ValueError, match="unknown statistical model"):
        StatisticalForecaster("W", "holt_winters")
