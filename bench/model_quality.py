"""Offline model quality on a materialized warehouse: every recommender candidate on the same temporal split
(NDCG@10, Recall@20, HR@10, coverage) and every forecaster in the rolling-origin backtest (MASE, WAPE, ...).

Usage (after `make demo`, or any `optimum run`):
  OPTIMUM_HOME=.optimum .venv/bin/python bench/model_quality.py [--freq W --horizon 8 --prophet-top-n 20]
"""

from __future__ import annotations

import argparse
import time

import pandas as pd

from ml.forecast.backtest import Backtest, select_models
from ml.training import train_forecaster, train_recommender
from orchestration.settings import Settings
from orchestration.warehouse import Warehouse


def held_out_choice(backtest: Backtest) -> pd.Series:
    """Mean MASE on the last origin of every model, and of the per-series choice made on the earlier origins.

    The pipeline's "per-series choice" number picks and scores on the same origins, so it flatters the
    choice; this one scores it on a window the choice never saw."""
    errors = backtest.errors
    last = errors["origin"].max()
    earlier = Backtest(predictions=backtest.predictions.iloc[:0], errors=errors[errors["origin"] < last])
    held_out = errors[errors["origin"] == last]
    choice = select_models(earlier)[["product_id", "model_name"]].rename(columns={"model_name": "model"})
    chosen = choice.merge(held_out, on=["product_id", "model"])
    common = held_out["product_id"].isin(chosen["product_id"])
    by_model = held_out[common].groupby("model", sort=False)["mase"].mean()
    return pd.concat([by_model, pd.Series({"per-series choice": chosen["mase"].mean()})])


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
    print(f"per-series choice, mean MASE over backtested series: {forecaster.evaluation.value:.4f}")
    print("\nlast origin only (choice made on the earlier origins), mean MASE:")
    print(held_out_choice(forecaster.result.backtest).round(4).to_string())


if __name__ == "__main__":
    main()
