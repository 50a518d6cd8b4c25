"""The two marts the models read, built in pandas from a profile's landing rows (the rows are already valid,
so staging is a type cast): fct_interactions' event columns and fct_sales_daily, zero-filled per product from
its first sale to the latest order date, as the dbt models do. Tests use these to stay fast; the bench goes
through the real ingest and dbt build."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pandas as pd

from orchestration.demo.profiles import ProfileData


def interactions_mart(data: ProfileData) -> pd.DataFrame:
    events = data.interactions
    return pd.DataFrame(
        {
            "event_id": events["event_id"],
            "user_id": events["user_id"],
            "product_id": events["product_id"],
            "interaction_type": events["interaction_type"],
            "event_at": pd.to_datetime(events["timestamp"], utc=True).dt.tz_localize(None),
        }
    )


def sales_daily_mart(data: ProfileData) -> pd.DataFrame:
    sales = data.sales.assign(
        sales_date=pd.to_datetime(data.sales["order_date"]),
        revenue=data.sales["quantity"] * data.sales["unit_price"],
    )
    sums = sales.groupby(["product_id", "sales_date"])[["quantity", "revenue"]].sum()
    last = sales["sales_date"].max()
    first = sales.groupby("product_id")["sales_date"].min()
    grid = pd.MultiIndex.from_tuples(
        [(product, day) for product, start in first.items() for day in pd.date_range(start, last, freq="D")],
        names=["product_id", "sales_date"],
    )
    daily = sums.reindex(grid, fill_value=0).reset_index()
    daily["sales_date"] = daily["sales_date"].dt.date
    daily["revenue"] = [Decimal(f"{value:.4f}") for value in daily["revenue"]]
    daily["quantity"] = daily["quantity"].astype(np.int64)
    return daily
