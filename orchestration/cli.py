"""`optimum`: generate demo data, materialize the graph in-process, open the UI, summarize the warehouse."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import httpx

from optimum.settings import REPO_ROOT, Settings, Target

# The demo site is our own static server on loopback, so the scraper may go faster than on the web.
DEMO_SITE_REQUESTS_PER_SECOND = 100.0


def _settings(args: argparse.Namespace, **overrides) -> Settings:
    """Environment first, then whatever the command line says."""
    values = {
        "landing_dir": getattr(args, "landing", None),
        "target": getattr(args, "target", None),
        **overrides,
    }
    return Settings(**{key: value for key, value in values.items() if value is not None})


def _use_dagster_home(settings: Settings) -> None:
    """Embedded mode keeps Dagster's run history in SQLite under OPTIMUM_HOME (production: infra/dagster.yaml)."""
    settings.ensure_dirs()
    os.environ["DAGSTER_HOME"] = str(settings.dagster_home)
    config = settings.dagster_home / "dagster.yaml"
    if not config.exists():
        config.write_text("telemetry:\n  enabled: false\n")


def cmd_generate(args: argparse.Namespace) -> int:
    from orchestration.demo.generate import generate_demo_data

    started = time.perf_counter()
    result = generate_demo_data(Path(args.out), scale=args.scale, seed=args.seed, start=args.start, days=args.days)
    print(f"generated {args.scale} demo data in {args.out} ({time.perf_counter() - started:.1f} s)")
    print(result.describe())
    return 0


def materialize(settings: Settings, job_name: str) -> bool:
    """Run a job in this process against the persistent instance, so the runs show up in the Dagster UI."""
    import dagster as dg

    from orchestration.definitions import build_definitions

    _use_dagster_home(settings)
    definitions = build_definitions(settings)
    job = definitions.resolve_job_def(job_name)
    started = time.perf_counter()
    with dg.DagsterInstance.get() as instance:
        result = job.execute_in_process(
            instance=instance,
            raise_on_error=False,
            run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
        )
    elapsed = time.perf_counter() - started
    print(f"\n{job_name}: {'succeeded' if result.success else 'FAILED'} in {elapsed:.1f} s (run {result.run_id})")
    for event in result.get_asset_materialization_events():
        materialization = event.step_materialization_data.materialization
        metadata = materialization.metadata
        rows = metadata.get("dagster/row_count") or metadata.get("rows_affected")
        summary = metadata.get("summary")
        detail = summary.value if summary else (f"{rows.value} rows" if rows else "")
        print(f"  materialized {materialization.asset_key.to_user_string():<28} {detail}")
    for event in result.all_events:
        if event.event_type_value == "ASSET_CHECK_EVALUATION":
            evaluation = event.event_specific_data
            if not evaluation.passed:
                print(f"  check failed: {evaluation.asset_key.to_user_string()} {evaluation.check_name}")
    return result.success


def cmd_run(args: argparse.Namespace) -> int:
    overrides = {"lead_seed_urls": ",".join(args.seed_url)} if args.seed_url else {}
    return 0 if materialize(_settings(args, **overrides), args.job) else 1


SERVING_PORT = 3001  # Dagster's UI has 3000


def serving_command(port: int) -> list[str]:
    bentoml = str(Path(sys.executable).with_name("bentoml"))
    return [bentoml, "serve", "serving.service:RecommenderService", "--host", "127.0.0.1", "--port", str(port)]


def serving_env(settings: Settings) -> dict[str, str]:
    """The service rebuilds the same settings from the environment (it runs in its own processes)."""
    return os.environ | settings.as_env() | {"MLFLOW_SKIP_PIP_REQUIREMENTS_CHECK": "true"}


@contextmanager
def running_service(settings: Settings, port: int = SERVING_PORT, timeout_s: float = 120.0) -> Iterator[str]:
    """Start the BentoML service in a subprocess, wait until /readyz answers 200, stop it afterwards."""
    process = subprocess.Popen(serving_command(port), cwd=REPO_ROOT, env=serving_env(settings))
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"bentoml serve exited with {process.returncode}")
            try:
                if httpx.get(f"{base_url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(1)
        else:
            raise TimeoutError(f"the service did not become ready on {base_url} in {timeout_s:.0f} s")
        yield base_url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


def _show_predictions(settings: Settings, base_url: str) -> None:
    """Ask the served champions what an application would ask, and print the answers."""
    from orchestration.warehouse import Warehouse

    warehouse = Warehouse.from_settings(settings)
    user = warehouse.query("SELECT min(user_id) AS u FROM marts.user_item_scores")["u"].iloc[0]
    product = warehouse.query(
        "SELECT product_id FROM marts.demand_forecast GROUP BY product_id ORDER BY sum(yhat) DESC LIMIT 1"
    )["product_id"].iloc[0]
    calls = [
        ("/recommend", {"user_id": str(user), "count": 5}),
        ("/recommend", {"user_id": "a-user-we-never-saw", "count": 3}),
        ("/forecast", {"product_id": str(product), "horizon": 4}),
        ("/insights", {"product_id": str(product)}),
    ]
    for route, body in calls:
        response = httpx.post(f"{base_url}{route}", json=body, timeout=30)
        print(f"\nPOST {route} {json.dumps(body)} -> {response.status_code}")
        print(json.dumps(response.json(), indent=2)[:1500])


def cmd_serve(args: argparse.Namespace) -> int:
    """Serve the champion models over HTTP (BentoML) until interrupted."""
    settings = _settings(args)
    print(f"serving on http://127.0.0.1:{args.port} (Swagger UI: /, OpenAPI spec: /docs.json)")
    return subprocess.call(serving_command(args.port), cwd=REPO_ROOT, env=serving_env(settings))


def cmd_mlflow_ui(args: argparse.Namespace) -> int:
    settings = _settings(args)
    mlflow = str(Path(sys.executable).with_name("mlflow"))
    command = [mlflow, "ui", "--backend-store-uri", settings.tracking_uri, "--port", str(args.port)]
    return subprocess.call(command, cwd=REPO_ROOT)


def cmd_demo(args: argparse.Namespace) -> int:
    """Generate demo data, serve its business directory on 127.0.0.1 for the scraper, materialize everything."""
    from orchestration.demo.generate import generate_demo_data
    from orchestration.scraper.static_server import serve_directory

    out = Path(args.out)
    started = time.perf_counter()
    result = generate_demo_data(out, scale=args.scale, seed=args.seed)
    print(f"generated {args.scale} demo data in {out} ({time.perf_counter() - started:.1f} s)")
    with serve_directory(out / "site") as base_url:
        print(f"serving the demo business directory at {base_url}")
        settings = _settings(
            args,
            landing_dir=out / "landing",
            lead_seed_urls=f"{base_url}/directory/page-1.html",
            scrape_requests_per_second=DEMO_SITE_REQUESTS_PER_SECOND,
        )
        ok = materialize(settings, "refresh_everything")
    print_summary(settings)
    if ok:
        with running_service(settings) as base_url:
            print(f"\nBentoML is serving the champions at {base_url}")
            _show_predictions(settings, base_url)
    print(f"\ndemo finished in {time.perf_counter() - started:.1f} s; result: {result.describe().splitlines()[0]}")
    print("Dagster UI:  make up          -> http://127.0.0.1:3000")
    print("MLflow UI:   make mlflow-ui   -> http://127.0.0.1:5000")
    print(f"Serving:     make serve       -> http://127.0.0.1:{SERVING_PORT}/ (Swagger UI)")
    return 0 if ok else 1


def warehouse_summary(settings: Settings) -> dict[str, int]:
    """Row counts of every raw, staging, marts and snapshots table: the numbers DuckDB and Postgres must share."""
    from orchestration.warehouse import Warehouse

    warehouse = Warehouse.from_settings(settings)
    tables = warehouse.query(
        "SELECT table_schema, table_name FROM information_schema.tables "
        "WHERE table_schema IN ('raw', 'staging', 'marts', 'snapshots') ORDER BY 1, 2"
    )
    return {
        f"{schema}.{table}": warehouse.row_count(f"{schema}.{table}")
        for schema, table in tables.itertuples(index=False)
    }


def print_summary(settings: Settings) -> None:
    print(f"\nwarehouse ({settings.target.value}) row counts:")
    for table, rows in warehouse_summary(settings).items():
        print(f"  {table:<40} {rows:>10,}")


def cmd_summary(args: argparse.Namespace) -> int:
    print_summary(_settings(args))
    return 0


def cmd_up(args: argparse.Namespace) -> int:
    """Dagster webserver and daemon (`dagster dev`) on the embedded state."""
    settings = _settings(args)
    _use_dagster_home(settings)
    command = ["dagster", "dev", "-w", str(REPO_ROOT / "workspace.yaml"), "-h", args.host, "-p", str(args.port)]
    return subprocess.call([str(Path(sys.executable).parent / command[0]), *command[1:]], cwd=REPO_ROOT)


def cmd_backup(args: argparse.Namespace) -> int:
    from orchestration.backup import BackupError, create_backup

    try:
        result = create_backup(_settings(args))
    except BackupError as error:
        print(f"backup failed: {error}", file=sys.stderr)
        return 1
    print(f"backup {result.path} ({result.size_bytes:,} bytes, {result.duration_s:.1f} s) sha256 {result.sha256}")
    print(f"  parts: {', '.join(result.parts)}")
    for path in result.removed:
        print(f"  removed by retention: {path.name}")
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    from orchestration.backup import BackupError, restore_backup

    try:
        manifest = restore_backup(_settings(args), Path(args.backup))
    except BackupError as error:
        print(f"restore refused: {error}", file=sys.stderr)
        return 2
    print(f"restored the backup of {manifest['created_at']} ({len(manifest['members'])} files)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="optimum", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    def with_target(sub: argparse.ArgumentParser) -> argparse.ArgumentParser:
        sub.add_argument("--target", choices=[t.value for t in Target], help="warehouse (default OPTIMUM_TARGET)")
        return sub

    generate = commands.add_parser("generate", help="write deterministic demo data and the lead site")
    generate.add_argument("--out", required=True)
    generate.add_argument("--scale", choices=["small", "demo", "large"], default="demo")
    generate.add_argument("--seed", type=int, default=42)
    generate.add_argument("--start", type=date.fromisoformat, default=date(2023, 1, 1))
    generate.add_argument("--days", type=int, default=730)
    generate.set_defaults(func=cmd_generate)

    run = with_target(commands.add_parser("run", help="materialize the asset graph in-process"))
    run.add_argument("--landing", help="landing folder (default OPTIMUM_LANDING_DIR)")
    run.add_argument("--job", default="refresh_everything", choices=["refresh_everything", "ingest_and_warehouse"])
    run.add_argument("--seed-url", action="append", help="listing URL for the lead scraper (repeatable)")
    run.set_defaults(func=cmd_run)

    demo = with_target(commands.add_parser("demo", help="generate demo data, scrape its site, materialize all"))
    demo.add_argument("--out", default="data")
    demo.add_argument("--scale", choices=["small", "demo", "large"], default="demo")
    demo.add_argument("--seed", type=int, default=42)
    demo.set_defaults(func=cmd_demo)

    summary = with_target(commands.add_parser("summary", help="row counts of the warehouse tables"))
    summary.set_defaults(func=cmd_summary)

    up = commands.add_parser("up", help="Dagster UI and daemon on the embedded state")
    up.add_argument("--host", default="127.0.0.1")
    up.add_argument("--port", type=int, default=3000)
    up.set_defaults(func=cmd_up)

    serve = with_target(commands.add_parser("serve", help="serve the champion models (BentoML)"))
    serve.add_argument("--port", type=int, default=SERVING_PORT)
    serve.set_defaults(func=cmd_serve)

    mlflow_ui = with_target(commands.add_parser("mlflow-ui", help="MLflow UI on the platform's tracking store"))
    mlflow_ui.add_argument("--port", type=int, default=5000)
    mlflow_ui.set_defaults(func=cmd_mlflow_ui)

    backup = with_target(commands.add_parser("backup", help="write one checksummed backup of all state"))
    backup.set_defaults(func=cmd_backup)

    restore = with_target(commands.add_parser("restore", help="restore a backup into empty databases/folders"))
    restore.add_argument("backup", help="the optimum-backup-*.tar.gz file")
    restore.set_defaults(func=cmd_restore)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
