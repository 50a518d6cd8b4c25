"""The prospector's figures on generated data: both lead sources -> dim_leads -> scores -> status.

Generates demo data (or reuses --out), serves its directory and Places API on 127.0.0.1, runs the
`ingest_and_warehouse` job (ingest, dbt, the leads group) on a fresh state and prints: sources and merge,
the score distribution, new leads per scrape day, and the outcome model against the transparent scorer on
the held-out period. Does not train the recommender or forecaster.

    .venv/bin/python bench/lead_report.py --scale demo [--target postgres --pg-dsn ...]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import mlflow
import pandas as pd

from ml.leads.package import LEAD_SCORER_MODEL_NAME
from ml.leads.score import TransparentScorer
from ml.leads.training import score_distribution
from optimum.settings import Settings
from orchestration.cli import materialize
from orchestration.demo.generate import generate_demo_data
from orchestration.demo.leads import serving_lead_sources
from orchestration.warehouse import Warehouse


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="demo", choices=["small", "demo", "large"])
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--target", default="duckdb", choices=["duckdb", "postgres"])
    parser.add_argument("--pg-dsn", default="postgresql://postgres@127.0.0.1:5432/optimum_lead_bench")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="lead-report-"))
    try:
        started = time.perf_counter()
        demo = generate_demo_data(work / "data", scale=args.scale, seed=args.seed)
        print(demo.describe().splitlines()[-1].strip())
        with serving_lead_sources(demo.out_dir) as sources:
            settings = Settings(
                home=work / "state",
                landing_dir=demo.out_dir / "landing",
                target=args.target,
                pg_dsn=args.pg_dsn,
                scrape_requests_per_second=100.0,
                **sources,
            )
            ok = materialize(settings, "ingest_and_warehouse")
        print(f"\ningest_and_warehouse {'ok' if ok else 'FAILED'} in {time.perf_counter() - started:.1f} s")
        report(settings)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def report(settings: Settings) -> None:
    warehouse = Warehouse.from_settings(settings)
    q = warehouse.query
    print("\nraw rows:", {t: warehouse.row_count(f"raw.{t}") for t in ("leads", "place_results", "lead_status")})
    print(
        "quarantine:",
        q(
            "SELECT 'place_results' AS t, reason, count(*) AS n FROM raw.place_results_quarantine GROUP BY reason "
            "UNION ALL SELECT 'lead_status', reason, count(*) FROM raw.lead_status_quarantine GROUP BY reason "
            "UNION ALL SELECT 'leads', reason, count(*) FROM raw.leads_quarantine GROUP BY reason"
        ).to_dict("records"),
    )
    print(
        "\ndim_leads by sources:\n",
        q("SELECT sources, count(*) AS leads FROM marts.dim_leads GROUP BY sources ORDER BY 1").to_string(index=False),
    )
    print(
        "\ndim_leads by status:\n",
        q("SELECT status, count(*) AS leads FROM marts.dim_leads GROUP BY status ORDER BY 1").to_string(index=False),
    )
    scored = q("SELECT * FROM marts.scored_leads")
    print(
        f"\nscorer: {scored['scorer'].iloc[0]} v{scored['model_version'].iloc[0]}; lead_score over {len(scored)} leads:"
    )
    print(scored["lead_score"].describe().round(1).to_string())
    print(score_distribution(scored["lead_score"]).to_string())
    leads = q("SELECT * FROM marts.dim_leads")
    transparent = TransparentScorer(settings.lead_score_weights, tuple(settings.target_cities))
    as_of = pd.Timestamp(leads["latest_scrape_day"].max())
    plain = transparent.score(leads, as_of)["lead_score"]
    print("\ntransparent scorer on the same leads:")
    print(plain.describe().round(1).to_string())
    print(score_distribution(plain).to_string())
    print(
        "\nnew leads per scrape day:\n",
        q(
            "SELECT lead_day, leads_seen, new_leads FROM marts.lead_daily WHERE is_scrape_day ORDER BY lead_day"
        ).to_string(index=False),
    )
    qualified = q(
        "SELECT count(*) AS days, sum(qualified_leads) AS qualified FROM marts.lead_daily WHERE qualified_leads > 0"
    )
    print("days with qualifications, qualified leads:", qualified.to_dict("records"))

    mlflow.set_tracking_uri(settings.tracking_uri)
    runs = mlflow.search_runs(experiment_names=["optimum"], filter_string="tags.mlflow.runName = 'lead_scorer'")
    if len(runs):
        run = runs.iloc[0]
        metrics = {
            c.removeprefix("metrics."): round(v, 4) for c, v in run.items() if c.startswith("metrics.") and v == v
        }
        print("\nheld-out comparison (MLflow run metrics):")
        for name, value in sorted(metrics.items()):
            print(f"  {name:<36} {value}")
        print("  choice:", run.get("tags.choice.reason"))
        print("  split:", {k: run.get(f"params.{k}") for k in ("train", "validation", "test", "test_from")})
    version = mlflow.MlflowClient().get_model_version_by_alias(LEAD_SCORER_MODEL_NAME, "champion")
    print(f"champion {LEAD_SCORER_MODEL_NAME} v{version.version}: {version.tags.get('promotion.reason')}")


if __name__ == "__main__":
    main()
