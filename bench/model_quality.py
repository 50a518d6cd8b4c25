"""Offline model quality on a materialized warehouse: every recommender candidate on the same temporal split
(NDCG@10, Recall@20, HR@10, coverage) and every forecaster in the rolling-origin backtest (MASE, WAPE, ...).

Usage (after `make demo`, or any `optimum run`):
  OPTIMUM_HOME=.optimum .venv/bin/python bench/model_quality.py [--freq W --horizon 8 --prophet-top-n 20]
"""

from __future__ import annotations

import argparse
import time

import pandas as pd

from ml.forecast.backtest import Backtest, demand_classes, select_models
from ml.training import train_forecaster, train_recommender
from optimum.settings import Settings
from orchestration.warehouse import Warehouse


def held_out_choice(backtest: Backtest, history: pd.DataFrame) -> pd.Series:
    """Mean MASE on the last origin of every model, and of the choice made on the earlier origins alone: per
    demand class (what the pipeline does) and per series (the argmin of each series, for comparison).

    The pipeline's own number picks and scores on the same origins, so it flatters the choice; this one
    scores it on a window the choice never saw (demand classes from the periods before that window too)."""
    errors = backtest.errors
    last = errors["origin"].max()
    earlier = Backtest(predictions=backtest.predictions.iloc[:0], errors=errors[errors["origin"] < last])
    held_out = errors[errors["origin"] == last]
    classes = demand_classes(history[history["period_start"] < last])
    per_series = pd.Series(earlier.errors["product_id"].unique(), index=earlier.errors["product_id"].unique())
    scores = {}
    for label, grouping in (("choice per demand class", classes), ("choice per series", per_series)):
        choice = select_models(earlier, grouping)[["product_id", "model_name"]]
        chosen = choice.rename(columns={"model_name": "model"}).merge(held_out, on=["product_id", "model"])
        scores[label] = chosen["mase"].mean()
    compared = held_out[held_out["product_id"].isin(earlier.errors["product_id"])]  # the series both choices cover
    return pd.concat([compared.groupby("model", sort=False)["mase"].mean(), pd.Series(scores)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--freq", default="W")
    parser.add_argument("--horizon", type=int, default=8)
    parser.add_argument("--prophet-top-n", type=int, default=20)
    args = parser.parse_args()
    warehouse = Warehouse.from_settings(Settings())
    pd.set_option("display.width", 160)

    started = time.perf_counter()
    events = warehouse.query("SELECT * FROM marts.fct_interactions")
    scores = warehouse.query("SELECT user_id, product_id, score FROM marts.user_item_scores")
    recommender = train_recommender(events, scores)
    columns = ["ndcg@10", "recall@20", "hr@10", "coverage@10", "fit_seconds"]
    print(f"recommenders ({len(events):,} events; chosen: {recommender.key}; {time.perf_counter() - started:.1f} s)")
    print(recommender.candidates[columns].round(4).to_string())

    started = time.perf_counter()
    daily = warehouse.query("SELECT * FROM marts.fct_sales_daily")
    products = warehouse.query("SELECT * FROM marts.dim_products")
    forecaster = train_forecaster(daily, products, args.freq, args.horizon, args.prophet_top_n)
    print(
        f"\nforecasters ({daily['product_id'].nunique()} series, {args.freq}, horizon {args.horizon}; "
        f"{time.perf_counter() - started:.1f} s)"
    )
    print(forecaster.result.metrics.round(4).to_string(index=False))
    chosen = forecaster.result.selection.query("not thin_history")
    print(chosen.groupby("demand_class")["model_name"].agg(["first", "size"]).to_string())
    print(f"choice per demand class, mean MASE over backtested series: {forecaster.evaluation.value:.4f}")
    print("\nlast origin only (choice made on the earlier origins), mean MASE:")
    print(held_out_choice(forecaster.result.backtest, forecaster.result.history).round(4).to_string())


if __name__ == "__main__":
    main()
