"""Forecaster speed: the whole forecast_demand at demo scale against an older commit's, and at large scale.

Input: the demo generator's sales lines as they are before bad rows are planted (the rows the warehouse keeps)
summed to fct_sales_daily's shape (product x day, zero-filled from the product's first sale), and its
catalogue. Each run is a fresh subprocess that imports `ml` from a code root (the checkout, or `--before`: a
`git archive` of an older commit), so the two versions never share a process; runs alternate (before, now,
before, now, ...) so a change in the machine's load hits both, and each reports wall and CPU seconds
(getrusage of the child and of the worker processes it waited for, joblib's kept-warm workers stopped first:
numba compilation, when not cached, included).

Usage:
  git archive a0cf7f3 ml | tar -x -C /tmp/before    # the commit before statsforecast (git log ml/forecast)
  .venv/bin/python bench/forecaster_speed.py --scale demo --before /tmp/before --repeat 2
  .venv/bin/python bench/forecaster_speed.py --scale large --repeat 1
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from child import json_row  # bench/ is on sys.path when a script here runs

REPO = Path(__file__).resolve().parent.parent


def demo_inputs(scale: str, seed: int = 42) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(fct_sales_daily, dim_products) of the demo world at `scale`, built in pandas from clean sales lines."""
    from orchestration.demo import generate as g  # the generator's own steps, before its corruptors run

    rng_products, rng_users, rng_sales, _, _ = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(5))
    cfg, cal = g.SCALES[scale], g._Calendar.build(g.date(2023, 1, 1), 730)
    catalog = g._Catalog.build(rng_products, cfg, cal)
    users = g._Users.build(rng_users, cfg, cal)
    sales, _ = g._sales(rng_sales, catalog, users, cal, cfg, None)
    sales = sales.assign(
        sales_date=pd.to_datetime(sales["order_date"]),
        quantity=sales["quantity"].astype(float),
        revenue=sales["quantity"] * sales["unit_price"].astype(float),
    )
    sums = sales.groupby(["product_id", "sales_date"])[["quantity", "revenue"]].sum()
    first, last = sales.groupby("product_id")["sales_date"].min(), sales["sales_date"].max()
    days = ((last - first).dt.days + 1).to_numpy()
    grid = pd.MultiIndex.from_arrays(
        [
            np.repeat(first.index.to_numpy(), days),
            np.repeat(first.to_numpy(), days) + pd.to_timedelta(np.concatenate([np.arange(n) for n in days]), "D"),
        ],
        names=["product_id", "sales_date"],
    )
    daily = sums.reindex(grid, fill_value=0.0).reset_index()
    daily["sales_date"] = daily["sales_date"].dt.date
    return daily, catalog.frame()


def run_one(inputs: Path, horizon: int, prophet_top_n: int) -> None:
    """Child process (its sys.path starts at the code root under test): forecast, print seconds as JSON."""
    from ml.forecast import forecast_demand

    daily, products = pd.read_parquet(inputs / "daily.parquet"), pd.read_parquet(inputs / "products.parquet")
    started = time.perf_counter()
    result = forecast_demand(daily, products, freq="W", horizon=horizon, prophet_top_n=prophet_top_n)
    wall = time.perf_counter() - started
    # joblib's loky workers stay warm after a call (ml/forecast/statistical.py): stopped and reaped here, so that
    # RUSAGE_CHILDREN counts them.
    from joblib.externals.loky import get_reusable_executor

    get_reusable_executor(reuse=True).shutdown(wait=True)  # the running pool at its own size, not resized first
    own, workers = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    held_out = getattr(result, "held_out", None)
    chosen = float(held_out.set_index("model").loc["chosen", "mase"]) if held_out is not None else float("nan")
    models = sorted(result.metrics["model"])
    cpu = sum(usage.ru_utime + usage.ru_stime for usage in (own, workers))
    print(json.dumps({"wall_s": wall, "cpu_s": cpu, "mase": chosen, "models": models}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", default="demo", choices=["small", "demo", "large"])
    parser.add_argument("--before", type=Path, help="code root of the older version (a folder holding ml/)")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--horizon", type=int, default=8)
    parser.add_argument("--prophet-top-n", type=int, default=20)  # Settings.forecast_prophet_top_n
    parser.add_argument("--run-one", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run_one:
        run_one(args.run_one, args.horizon, args.prophet_top_n)
        return

    daily, products = demo_inputs(args.scale)
    print(f"{args.scale}: {daily['product_id'].nunique():,} series, {len(daily):,} daily rows", flush=True)
    roots = ([("before", args.before.resolve())] if args.before else []) + [("now", REPO)]
    with tempfile.TemporaryDirectory() as folder:
        daily.to_parquet(Path(folder) / "daily.parquet")
        products.to_parquet(Path(folder) / "products.parquet")
        print("| run | code | wall | CPU | held-out MASE (served) | load average before / after |")
        print("|---|---|---|---|---|---|")
        for attempt in range(1, args.repeat + 1):
            for label, root in roots:
                command = [sys.executable, __file__, "--run-one", folder, "--horizon", str(args.horizon)]
                command += ["--prophet-top-n", str(args.prophet_top_n)]
                # Both versions wait passively in OpenMP (ml/__init__.py sets it now; an older root does not).
                env = os.environ | {
                    "PYTHONPATH": str(root),
                    "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE"),
                }
                before = os.getloadavg()[0]
                row, error = json_row(command, env=env, cwd=root)
                after = os.getloadavg()[0]
                if row is None:
                    print(f"| {attempt} | {label} | failed: {error} | | | |", flush=True)
                    continue
                print(
                    f"| {attempt} | {label} | {row['wall_s']:.0f} s | {row['cpu_s']:.0f} s | {row['mase']:.3f} | "
                    f"{before:.1f} / {after:.1f} |",
                    flush=True,
                )
                print(f"  models: {', '.join(row['models'])}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
