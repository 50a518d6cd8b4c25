"""The forecast calendar: an export already aggregated to the grain keeps its last period, order lines drop a
partial trailing one, a setting forces either, and the decision says what it kept and dropped."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ml.forecast import MovingAverage, SeasonalNaive, aggregate_sales, forecast_demand
from ml.forecast.series import decide_calendar
from tests.unit.test_forecasting import catalogue, mart_rows


def stamped_export(stamps: pd.DatetimeIndex, quantities: dict[str, np.ndarray]) -> pd.DataFrame:
    """fct_sales_daily rows of an export with one row per product and period, each stamped on the period's
    first day: the mart zero-fills the days between the stamps, as it does for any landing data."""
    last_day = stamps[-1]
    days = pd.date_range(stamps[0], last_day, freq="D")
    rows = {}
    for product_id, per_period in quantities.items():
        daily = np.zeros(len(days))
        daily[days.get_indexer(stamps)] = per_period
        rows[product_id] = daily
    return mart_rows(rows, str(stamps[0].date()))


@pytest.fixture(scope="module")
def monthly_export() -> pd.DataFrame:
    """Three years of a monthly sales export, Jan 1995 .. Dec 1997, each month stamped on its 1st."""
    rng = np.random.default_rng(7)
    months = pd.date_range("1995-01-01", "1997-12-01", freq="MS")
    season = 1 + 0.5 * np.sin(2 * np.pi * np.arange(len(months)) / 12)
    quantities = {f"P{i}": rng.poisson(40 * season) + 1 for i in range(3)}
    return stamped_export(months, quantities)


def test_monthly_export_horizon_starts_right_after_its_last_month(monthly_export):
    models = [SeasonalNaive("M"), MovingAverage("M")]
    result = forecast_demand(monthly_export, catalogue(["P0", "P1", "P2"]), "M", 12, n_origins=2, models=models)
    assert result.calendar.rule == "aggregated" and not result.calendar.forced
    assert result.calendar.last_period == pd.Timestamp("1997-12-01")
    assert result.calendar.dropped == ()
    assert result.history["period_start"].max() == pd.Timestamp("1997-12-01")
    expected = pd.date_range("1998-01-01", periods=12, freq="MS").tolist()
    for _, frame in result.forecast.groupby("product_id"):
        assert frame["forecast_date"].tolist() == expected
    metadata = result.calendar.as_metadata()
    assert metadata["last_period"] == "1997-12-01" and metadata["dropped_periods"] == "none"
    assert metadata["calendar_rule"] == "aggregated (detected)"


def test_forcing_order_lines_drops_the_export_last_month_and_says_why(monthly_export):
    decision = decide_calendar(monthly_export, "M", "order_lines")
    assert decision.forced and decision.rule == "order_lines"
    assert decision.last_period == pd.Timestamp("1997-11-01")
    assert len(decision.dropped) == 1 and decision.dropped[0].startswith("trailing month 1997-12-01")
    assert "covers 1 of its 31 days" in decision.dropped[0]
    history = aggregate_sales(monthly_export, "M", decision)
    assert history["period_start"].max() == pd.Timestamp("1997-11-01")


def test_order_lines_keep_dropping_a_partial_trailing_week():
    # Daily order lines from Monday 1995-01-02 to Wednesday 1995-03-01: the last week holds 3 days.
    days = (pd.Timestamp("1995-03-01") - pd.Timestamp("1995-01-02")).days + 1
    daily = mart_rows({"A": np.full(days, 2)}, "1995-01-02")
    decision = decide_calendar(daily, "W")
    assert decision.rule == "order_lines" and not decision.forced
    assert decision.last_period == pd.Timestamp("1995-02-20")
    assert decision.dropped == ("trailing week 1995-02-27: the data covers 3 of its 7 days (6 units left out)",)
    forced = decide_calendar(daily, "W", "aggregated")
    assert forced.forced and forced.last_period == pd.Timestamp("1995-02-27")
    assert aggregate_sales(daily, "W", forced)["period_start"].max() == pd.Timestamp("1995-02-27")


def test_weekly_export_on_mondays_is_read_as_aggregated_and_monthly_stamps_forecast_weekly_are_flagged(
    monthly_export,
):
    weeks = pd.date_range("1996-01-01", periods=30, freq="W-MON")
    weekly = stamped_export(weeks, {"A": np.arange(30) % 5 + 1})
    decision = decide_calendar(weekly, "W")
    assert decision.rule == "aggregated" and decision.last_period == weeks[-1] and not decision.note
    assert "monthly" in decide_calendar(monthly_export, "W").note


def test_unknown_calendar_rule_is_a_clear_error(monthly_export):
    with pytest.raises(ValueError, match="calendar rule must be one of"):
        decide_calendar(monthly_export, "M", "monthly")


def test_one_stray_sale_months_later_ends_nothing(monthly_export):
    """A sale dated 1998-09-17 in a monthly export that ends 1997-12 (the landing window lets a date within a
    year through): the mart zero-fills every product up to it; the history still ends with the export."""
    stray = pd.DataFrame(
        {"product_id": "P0", "sales_date": [pd.Timestamp("1998-09-17").date()], "quantity": [3], "revenue": [30]}
    )
    last = pd.Timestamp("1998-09-17")
    filled = [
        pd.DataFrame({"product_id": product, "sales_date": pd.date_range("1997-12-02", last).date, "quantity": 0})
        for product in ("P0", "P1", "P2")
    ]
    daily = pd.concat([monthly_export, *filled], ignore_index=True).fillna({"revenue": 0})
    daily = pd.concat([daily[daily["sales_date"] != last.date()], stray], ignore_index=True)
    decision = decide_calendar(daily, "M")
    assert decision.rule == "aggregated", "the stray date is not a month start, yet the export is read as one"
    assert decision.last_period == pd.Timestamp("1997-12-01")
    assert len(decision.dropped) == 1 and decision.dropped[0].startswith("9 trailing months after 1997-12-01")
    result = forecast_demand(
        daily, catalogue(["P0", "P1", "P2"]), "M", 3, n_origins=2, models=[SeasonalNaive("M"), MovingAverage("M")]
    )
    assert result.history["period_start"].max() == pd.Timestamp("1997-12-01")
    assert set(result.forecast["forecast_date"]) == set(pd.date_range("1998-01-01", periods=3, freq="MS"))
    assert result.forecast["yhat"].min() > 10, "forecast from the export, not from nine empty months"


def test_order_lines_with_a_stray_date_drop_it_and_the_partial_week():
    days = (pd.Timestamp("1995-03-01") - pd.Timestamp("1995-01-02")).days + 1
    quantity = np.r_[np.full(days, 2), np.zeros(120), [5]]  # then 120 empty days and one sale
    decision = decide_calendar(mart_rows({"A": quantity, "B": np.r_[np.full(days, 1), np.zeros(121)]}, "1995-01-02"))
    assert decision.last_period == pd.Timestamp("1995-02-20")
    assert decision.dropped[0].startswith("trailing week 1995-02-27: the data covers 3 of its 7 days")
    assert decision.dropped[1].startswith("17 trailing weeks after 1995-02-27: 1 rows against a median of 14 per week")
