"""Turn a demand forecast into the few product alerts a buyer acts on: restock, spike, decline.

trailing_average is the mean of the product's last `horizon` actual (complete) periods, `horizon` being
the number of forecast periods per product, so a forecast period is compared with a baseline as long as
the forecast itself. Spike and decline need a trailing average of at least `min_trailing_average` units
a period: a ratio to 0 says nothing, and on a part that sells one unit a month a "3x spike" is one sale.
Each fires at most once per product, on its most extreme period.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ml.forecast.series import PERIOD_NAME, Freq, aggregate_sales

INSIGHT_COLUMNS = [
    "product_id",
    "insight_type",
    "details",
    "forecast_total",
    "stock_on_hand",
    "trailing_average",
    "period_start",
    "period_value",
    "ratio",
]


def demand_insights(
    forecast: pd.DataFrame,
    products: pd.DataFrame,
    history: pd.DataFrame,
    freq: Freq = "W",
    restock_ratio: float = 1.5,
    spike_ratio: float = 1.8,
    decline_ratio: float = 0.5,
    min_trailing_average: float = 1.0,
) -> pd.DataFrame:
    """Alerts per product, one row each (columns INSIGHT_COLUMNS):

    restock  forecast demand over the horizon > stock_on_hand x restock_ratio (ratio = total / stock);
    spike    a forecast period > trailing_average x spike_ratio (the highest such period);
    decline  a forecast period < trailing_average x decline_ratio (the lowest such period).

    forecast: product_id, forecast_date (or period_start), yhat, as from forecast_demand. history: the
    aggregated periods (product_id, period_start, quantity) or the daily mart rows, aggregated at freq.
    Products without a stock_on_hand get no restock alert.
    """
    if "sales_date" in history.columns:
        history = aggregate_sales(history, freq)
    f = forecast.rename(columns={"forecast_date": "period_start"})[["product_id", "period_start", "yhat"]]
    f = f.reset_index(drop=True)
    horizon = int(f.groupby("product_id").size().max()) if len(f) else 0
    trailing = (
        history.sort_values("period_start").groupby("product_id").tail(horizon).groupby("product_id")["quantity"].mean()
    )
    stock = products.drop_duplicates("product_id").set_index("product_id")["stock_on_hand"].astype(float)
    per_product = pd.DataFrame({"forecast_total": f.groupby("product_id")["yhat"].sum()})
    per_product["stock_on_hand"] = stock.reindex(per_product.index)
    per_product["trailing_average"] = trailing.reindex(per_product.index)
    f = f.join(per_product, on="product_id")
    unit = PERIOD_NAME[freq]

    restock = per_product[per_product["forecast_total"] > per_product["stock_on_hand"] * restock_ratio].assign(
        insight_type="restock",
        ratio=lambda d: d["forecast_total"] / d["stock_on_hand"],
        period_start=pd.NaT,
        period_value=np.nan,
    )
    restock["details"] = [
        f"Forecast demand of {_units(row.forecast_total)} units over the next {horizon} {unit}s exceeds "
        f"{restock_ratio:g}x the {_units(row.stock_on_hand)} units in stock."
        for row in restock.itertuples()
    ]
    restock = restock.reset_index()

    baseline = f[(f["trailing_average"] > 0) & (f["trailing_average"] >= min_trailing_average)]
    ratio = baseline["yhat"] / baseline["trailing_average"]
    spike = _extreme(baseline[ratio > spike_ratio], ratio, highest=True, insight_type="spike")
    spike["details"] = [
        f"Forecast of {_units(row.period_value)} units in the {unit} of {row.period_start:%Y-%m-%d} is "
        f"{row.ratio:.1f}x the trailing {horizon}-{unit} average of {_units(row.trailing_average)}."
        for row in spike.itertuples()
    ]
    decline = _extreme(baseline[ratio < decline_ratio], ratio, highest=False, insight_type="decline")
    decline["details"] = [
        f"Forecast of {_units(row.period_value)} units in the {unit} of {row.period_start:%Y-%m-%d} is "
        f"{row.ratio:.0%} of the trailing {horizon}-{unit} average of {_units(row.trailing_average)}."
        for row in decline.itertuples()
    ]
    alerts = pd.concat([restock, spike, decline], ignore_index=True)[INSIGHT_COLUMNS]
    return alerts.sort_values(["insight_type", "product_id"], ignore_index=True)


def _extreme(rows: pd.DataFrame, ratio: pd.Series, highest: bool, insight_type: str) -> pd.DataFrame:
    """Each product's most extreme qualifying forecast period."""
    rows = rows.assign(ratio=ratio.reindex(rows.index), period_value=rows["yhat"], insight_type=insight_type)
    rows = rows.sort_values(["product_id", "ratio"], ascending=[True, not highest]).drop_duplicates("product_id")
    return rows.drop(columns="yhat").reset_index(drop=True)


def _units(value: float) -> str:
    """Whole units for ordinary volumes, one decimal for slow movers (0.4 a week is not 0)."""
    return f"{value:,.0f}" if abs(value) >= 10 else f"{value:.1f}"
