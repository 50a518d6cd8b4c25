"""Time `dbt build` of one model (and its tests) against an existing state, for two versions of the project.

Each version is a dbt project folder (the checkout's, or `git archive REV dbt_project | tar -x -C DIR`);
the runs alternate between them so a change in the machine's load hits both. dbt runs in process with the
state's profile and --vars, as the warehouse asset runs it.

Usage:
  .venv/bin/optimum generate --out /tmp/dq/data --scale demo
  OPTIMUM_HOME=/tmp/dq/home OPTIMUM_LANDING_DIR=/tmp/dq/data/landing .venv/bin/optimum run --job ingest_and_warehouse
  git archive d99f35e dbt_project | tar -x -C /tmp/dbt_old
  OPTIMUM_HOME=/tmp/dq/home .venv/bin/python bench/dbt_model_timing.py --select fct_sales_daily \\
      --projects /tmp/dbt_old/dbt_project dbt_project --repeat 2
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from dbt.cli.main import dbtRunner

from optimum.settings import Settings
from orchestration.dbt import dbt_environment


def build_seconds(settings: Settings, project: Path, scratch: Path, *args: str) -> float:
    with dbt_environment(settings):
        started = time.perf_counter()
        result = dbtRunner().invoke(
            [
                "build",
                *args,
                "--vars",
                json.dumps(settings.dbt_vars()),
                "--project-dir",
                str(project),
                "--profiles-dir",
                str(project),
                "--target-path",
                str(scratch / "target"),
                "--log-path",
                str(scratch / "logs"),
                "--quiet",
            ]
        )
        seconds = time.perf_counter() - started
    if not result.success:
        raise SystemExit(f"dbt build {' '.join(args)} failed in {project}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--select", required=True)
    parser.add_argument("--projects", nargs="+", type=Path, required=True)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    settings = Settings()
    print("| run | project | full refresh + tests | incremental + tests |\n|---|---|---|---|")
    with tempfile.TemporaryDirectory() as scratch:
        for run in range(1, args.repeat + 1):
            for number, project in enumerate(args.projects):
                own = Path(scratch) / str(number)  # compiled SQL of one version never serves the other
                full = build_seconds(settings, project.resolve(), own, "-s", args.select, "--full-refresh")
                incremental = build_seconds(settings, project.resolve(), own, "-s", args.select)
                print(f"| {run} | {project} | {full:.2f} s | {incremental:.2f} s |", flush=True)


if __name__ == "__main__":
    main()
