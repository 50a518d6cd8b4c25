"""Peak memory and CPU time of each step of `refresh_everything`, for sizing pods (infra/README.md, Sizing).

Each step (one Dagster op: an ingest asset, the dbt build, a training asset, ...) runs in a fresh Python
process against a persistent state folder, in the job's order, so the kernel's accounting of that process
(wait4: peak resident memory, user + system CPU seconds, its subprocesses such as dbt included) is the
step's alone. A first process that only imports and builds the definitions gives the fixed overhead every
step pays. The nightly backup runs last, on the full state.

This parent process stays small on purpose (it imports neither Dagster nor the platform, and generates the
data in a child): the kernel carries a parent's resident size over fork+exec into the child's peak, so
a big parent would inflate every step's number.

Usage: .venv/bin/python bench/asset_resources.py --scale large [--data DIR] [--home DIR] [--target duckdb]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BASELINE = "(imports + definitions only)"


def _settings(home: Path, landing: Path):
    from optimum.settings import Settings

    return Settings(home=home, landing_dir=landing, backup_dir=home / "backups")  # never the checkout's ./backups


def steps(home: Path, landing: Path) -> list[tuple[str, str, list[str]]]:
    """(job, op, its asset keys) in execution order, refresh_everything then nightly_backup.

    An asset's checks (expectation suites) run in its step's process, as they follow it in a run."""
    from dagster._core.execution.api import create_execution_plan

    from orchestration.definitions import build_definitions

    definitions = build_definitions(_settings(home, landing))
    keys_by_op: dict[str, list[str]] = {}
    for assets_def in definitions.resolve_asset_graph().assets_defs:
        if assets_def.is_executable:
            keys_by_op[assets_def.node_def.name] = sorted(key.to_user_string() for key in assets_def.keys)
    ordered = []
    for job_name in ("refresh_everything", "nightly_backup"):
        plan = create_execution_plan(definitions.resolve_job_def(job_name))
        names = [step.key for step in plan.get_steps_to_execute_in_topo_order()]
        ordered += [(job_name, name, keys_by_op[name]) for name in names if keys_by_op.get(name)]
    return ordered


def run_step(home: Path, landing: Path, job_name: str, keys: list[str]) -> None:
    """Child process: materialize `keys` of `job_name` in-process, upstream values from earlier steps."""
    import dagster as dg

    from orchestration.definitions import build_definitions

    os.environ["DAGSTER_HOME"] = str(home / "dagster")
    job = build_definitions(_settings(home, landing)).resolve_job_def(job_name)
    if not keys:
        return
    with dg.DagsterInstance.get() as instance:
        selection = [dg.AssetKey.from_user_string(key) for key in keys]
        result = job.execute_in_process(instance=instance, asset_selection=selection, raise_on_error=False)
    sys.exit(0 if result.success else 1)


def measure(home: Path, landing: Path, job_name: str, keys: list[str]) -> dict:
    command = [sys.executable, __file__, "--child", json.dumps([job_name, keys]), "--home", str(home)]
    command += ["--landing", str(landing)]
    env = os.environ | {"DAGSTER_HOME": str(home / "dagster"), "MLFLOW_SKIP_PIP_REQUIREMENTS_CHECK": "true"}
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    return {
        "ok": os.waitstatus_to_exitcode(status) == 0,
        "wall_s": round(time.perf_counter() - started, 1),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 1),
        "peak_rss_mib": round(usage.ru_maxrss / 1024),  # Linux reports KiB
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="large", choices=["small", "demo", "large"])
    parser.add_argument("--data", type=Path, help="generated data folder (generated when absent)")
    parser.add_argument("--home", type=Path, help="state folder (default: a fresh temporary one)")
    parser.add_argument("--landing", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "generate":
        from orchestration.demo.generate import generate_demo_data

        generate_demo_data(args.data, scale=args.scale, seed=42)
        return None
    if args.child == "steps":
        print(json.dumps(steps(args.home, args.landing)))
        return None
    if args.child:
        job_name, keys = json.loads(args.child)
        return run_step(args.home, args.landing, job_name, keys)

    home = args.home or Path(tempfile.mkdtemp(prefix="optimum-sizing-")) / "state"
    data = args.data or home.parent / "data"
    child = [sys.executable, __file__, "--scale", args.scale, "--data", str(data), "--home", str(home)]
    if not (data / "landing").exists():
        subprocess.run([*child, "--child", "generate"], check=True)
    landing = data / "landing"
    listing = subprocess.run([*child, "--landing", str(landing), "--child", "steps"], check=True, capture_output=True)
    rows = [("-", BASELINE, [], measure(home, landing, "refresh_everything", []))]
    for job_name, op, keys in json.loads(listing.stdout.decode().strip().splitlines()[-1]):
        rows.append((job_name, op, keys, measure(home, landing, job_name, keys)))
        print(f"{op}: {rows[-1][3]}", file=sys.stderr, flush=True)
    print(f"\n{args.scale} scale, state in {home}\n")
    print("| step (Dagster op) | assets | peak RSS (MiB) | CPU time (s) | wall (s) | ok |")
    print("|---|---|---:|---:|---:|---|")
    for _, op, keys, facts in rows:
        shown = ", ".join(keys) if len(keys) <= 3 else f"{len(keys)} dbt models and snapshots"
        print(f"| {op} | {shown} | {facts['peak_rss_mib']} | {facts['cpu_s']} | {facts['wall_s']} | {facts['ok']} |")


if __name__ == "__main__":
    main()
