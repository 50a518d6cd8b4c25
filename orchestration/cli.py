"""`optimum`: generate demo data, materialize the graph in-process, open the UI, summarize the warehouse."""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import httpx
import pandas as pd

from optimum.settings import REPO_ROOT, Settings, Target
from orchestration import processes
from orchestration.processes import Server
from serving.auth import SCOPES

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


EMBEDDED_DAGSTER_YAML = """\
# Written by `optimum` (embedded mode); production reads infra/dagster.yaml instead.
telemetry:
  enabled: false
# No "join the community" pop-up over a newcomer's first page.
nux:
  enabled: false
# One step at a time may write the warehouse (pool optimum_warehouse_writes): an overlapping run waits.
concurrency:
  pools:
    default_limit: 1
# The daemon (`optimum up`) fails runs whose worker died and frees the pool slots they held.
run_monitoring:
  enabled: true
  free_slots_after_run_end_seconds: 30
"""


def use_dagster_home(settings: Settings) -> None:
    """Embedded mode keeps Dagster's run history in SQLite under OPTIMUM_HOME (production: infra/dagster.yaml).

    The instance's SQLite schema is created here, one process at a time: two `optimum` commands started
    together on a fresh state (a run and the UI, or a run and a test that watches it) would otherwise both
    stamp it and one would fail (UNIQUE constraint failed: alembic_version).
    """
    import dagster as dg

    settings.ensure_dirs()
    os.environ["DAGSTER_HOME"] = str(settings.dagster_home)
    with open(settings.dagster_home / "schema.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released on close, or by the kernel if this process dies
        config = settings.dagster_home / "dagster.yaml"
        if not config.exists() or "nux:" not in config.read_text():  # missing, or written by an older optimum
            config.write_text(EMBEDDED_DAGSTER_YAML)
        with dg.DagsterInstance.get():
            pass  # opening it creates or upgrades the storage


class StateBusy(RuntimeError):
    """Another `optimum` run holds this state folder."""


@contextmanager
def exclusive_state(settings: Settings) -> Iterator[None]:
    """One `optimum run` per state folder at a time; a second one fails fast and says who holds it.

    The lock is an flock, so the kernel releases it when its holder dies, even on kill -9.
    """
    settings.ensure_dirs()
    path = settings.home / "run.lock"
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise StateBusy(f"{settings.home} is in use by {holder}; wait for it to finish and run again") from None
        handle.truncate(0)
        handle.write(f"optimum pid {os.getpid()}, started {time.strftime('%Y-%m-%d %H:%M:%S')}")
        handle.flush()
        try:
            yield
        finally:
            handle.truncate(0)
            fcntl.flock(handle, fcntl.LOCK_UN)


CLI_RUN_TAG = "optimum/launched_by"


def fail_abandoned_runs(instance) -> list[str]:
    """Runs a killed `optimum run` left STARTED are marked failed, and pool slots of finished runs freed.

    Only called while holding `exclusive_state`, so no other CLI run on this state can still be alive.
    """
    import dagster as dg

    unfinished = [dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.NOT_STARTED]
    abandoned = instance.get_runs(filters=dg.RunsFilter(statuses=unfinished, tags={CLI_RUN_TAG: "cli"}))
    for run in abandoned:
        instance.report_run_failed(run, message="its process ended without finishing it (killed?); failed by optimum")
    storage = instance.event_log_storage
    if storage.supports_global_concurrency_limits:
        for run_id in storage.get_concurrency_run_ids():
            run = instance.get_run_by_id(run_id)
            if run is None or run.is_finished:
                storage.free_concurrency_slots_for_run(run_id)
    return [run.run_id for run in abandoned]


def cmd_generate(args: argparse.Namespace) -> int:
    from orchestration.demo.generate import generate_demo_data

    started = time.perf_counter()
    if args.profile != "demo":
        from orchestration.demo.profiles import SIZES, generate_profile

        if args.scale not in SIZES:
            print(f"profile {args.profile} comes in scales {sorted(SIZES)}, not {args.scale}", file=sys.stderr)
            return 2
        data = generate_profile(Path(args.out), args.profile, scale=args.scale, seed=args.seed)
        rows = f"{len(data.products)} products, {len(data.sales)} sales rows, {len(data.interactions)} interactions"
        elapsed = time.perf_counter() - started
        print(f"generated the {args.profile} profile ({args.scale}) in {data.landing_dir}: {rows} ({elapsed:.1f} s)")
        return 0
    result = generate_demo_data(Path(args.out), scale=args.scale, seed=args.seed, start=args.start, days=args.days)
    print(f"generated {args.scale} demo data in {args.out} ({time.perf_counter() - started:.1f} s)")
    print(result.describe())
    return 0


def materialize(settings: Settings, job_name: str) -> bool:
    """Run a job in this process against the persistent instance, so the runs show up in the Dagster UI.

    Prints one timed line per asset group (ingest, warehouse, ml) with what its assets reported."""
    import dagster as dg

    use_dagster_home(settings)
    try:
        with exclusive_state(settings), dg.DagsterInstance.get() as instance:
            for run_id in fail_abandoned_runs(instance):
                print(f"marked run {run_id} failed: a killed `optimum run` had left it STARTED")
            if killed := kill_abandoned_mlflow_runs(settings):
                print(f"marked {killed} MLflow runs KILLED: a killed `optimum run` had left them RUNNING")
            return _execute(settings, job_name, instance)
    except StateBusy as busy:
        print(f"{job_name}: not started: {busy}", file=sys.stderr)
        return False


def kill_abandoned_mlflow_runs(settings: Settings) -> int:
    """MLflow runs a killed `optimum run` left RUNNING are marked KILLED.

    Only the embedded store (SQLite under OPTIMUM_HOME), which the state lock covers: a tracking server or
    the Postgres store may hold runs other processes are still writing.
    """
    if settings.mlflow_tracking_uri or settings.target is Target.POSTGRES:
        return 0
    if not (settings.mlflow_dir / "mlflow.db").exists():
        return 0
    from mlflow import MlflowClient

    client = MlflowClient(settings.tracking_uri)
    experiments = [experiment.experiment_id for experiment in client.search_experiments()]
    stale = client.search_runs(experiments, filter_string="attributes.status = 'RUNNING'") if experiments else []
    for run in stale:
        client.set_terminated(run.info.run_id, status="KILLED")
    return len(stale)


def _execute(settings: Settings, job_name: str, instance) -> bool:
    import dagster as dg

    from orchestration import narrative
    from orchestration.dbt import WAREHOUSE_GROUP
    from orchestration.definitions import build_definitions

    definitions = build_definitions(settings)
    job = definitions.resolve_job_def(job_name)
    graph = definitions.resolve_asset_graph()
    groups = {key: graph.get(key).group_name for key in graph.get_all_asset_keys()}
    print(f"{job_name}: materializing in this process (the run shows in the Dagster UI)", flush=True)
    clock = time.perf_counter()
    with narrative.quiet_libraries() as printed:
        result = job.execute_in_process(
            instance=instance,
            raise_on_error=False,
            run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
            tags={CLI_RUN_TAG: "cli", "optimum/pid": str(os.getpid())},
        )
    started, stages = narrative.stages(instance, result.run_id, groups)
    previous = started
    for stage in stages:
        if stage.group == WAREHOUSE_GROUP:
            dbt = narrative.dbt_summary(printed.getvalue()) or "did not finish"
            headline = f"{stage.group}: {len(stage.lines)} tables and views built; dbt build {dbt}"
            print(narrative.timed(stage.finished - previous, headline))
        else:
            print(narrative.timed(stage.finished - previous, f"{stage.group}:"))
            for line in stage.lines:
                print(f"{'':12}{line}")
        previous = stage.finished
    for event in result.all_events:
        if event.event_type_value == "ASSET_CHECK_EVALUATION" and not event.event_specific_data.passed:
            evaluation = event.event_specific_data
            outcome = "warned" if evaluation.severity == dg.AssetCheckSeverity.WARN else "failed"
            print(f"{'':12}check {outcome}: {evaluation.asset_key.to_user_string()} {evaluation.check_name}")
    if not result.success:
        tail = narrative.plain(printed.getvalue()).strip().splitlines()[-60:]
        print("\n".join(["dbt's last lines:", *tail]) if tail else "", file=sys.stderr)
    outcome = "succeeded" if result.success else "FAILED"
    elapsed = time.perf_counter() - clock
    print(f"{job_name} {outcome} in {elapsed:.1f} s (Dagster run {result.run_id.split('-')[0]})")
    return result.success


def cmd_run(args: argparse.Namespace) -> int:
    overrides = {"lead_seed_urls": ",".join(args.seed_url)} if args.seed_url else {}
    return 0 if materialize(_settings(args, **overrides), args.job) else 1


DAGSTER_PORT = 3000
MLFLOW_PORT = 5000
SERVING_PORT = 3001  # Dagster's UI has 3000
HOST = "127.0.0.1"


def _executable(name: str) -> str:
    """A console script of this venv, so the commands work without the venv on PATH."""
    return str(Path(sys.executable).with_name(name))


def serving_server(settings: Settings, port: int) -> Server:
    """The BentoML service; it rebuilds the same settings from the environment (it runs in its own processes)."""
    command = [_executable("bentoml"), "serve", "serving.service:RecommenderService", "--host", HOST]
    env = os.environ | settings.as_env() | {"MLFLOW_SKIP_PIP_REQUIREMENTS_CHECK": "true"}
    return Server("BentoML API", f"http://{HOST}:{port}", [*command, "--port", str(port)], env)


def mlflow_server(settings: Settings, port: int) -> Server:
    """A one-user tracking UI: one worker, and without the job runner (GenAI jobs: a dozen idle processes)."""
    command = [_executable("mlflow"), "ui", "--backend-store-uri", settings.tracking_uri, "--workers", "1"]
    env = os.environ | {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    return Server("MLflow UI", f"http://{HOST}:{port}", [*command, "--host", HOST, "--port", str(port)], env)


def dagster_server(settings: Settings, host: str, port: int) -> Server:
    """`dagster dev`: webserver and daemon on the state's Dagster instance."""
    use_dagster_home(settings)
    command = [_executable("dagster"), "dev", "-w", str(REPO_ROOT / "workspace.yaml"), "-h", host, "-p", str(port)]
    env = os.environ | {"DAGSTER_HOME": str(settings.dagster_home)}
    return Server("Dagster UI", f"http://{host}:{port}", command, env)


@contextmanager
def running_service(
    settings: Settings, port: int = SERVING_PORT, timeout_s: float = 120.0, log: Path | None = None
) -> Iterator[str]:
    """Start the BentoML service in a subprocess (its output to `log` if given), wait until /readyz answers
    200, stop it afterwards."""
    server = serving_server(settings, port)
    process = processes.start(server, REPO_ROOT, log)
    base_url = server.url
    try:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"bentoml serve exited with {process.returncode}" + (f"; see {log}" if log else ""))
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
        processes.stop(process)


class MissingState(Exception):
    """The command needs a materialized state and the folder or store it reads does not exist."""


def require_state(settings: Settings, *needs: str) -> None:
    """Refuse to open a state that is not there, rather than let a server create an empty one.

    `needs` names what the command reads: "dagster" (the instance), "warehouse" (the DuckDB file),
    "mlflow" (the local tracking store). Postgres and a tracking server are not checked here: they
    answer for themselves.
    """
    paths = {
        "dagster": settings.dagster_home / "dagster.yaml",
        "warehouse": settings.duckdb_path if settings.target is Target.DUCKDB else None,
        "mlflow": settings.mlflow_dir / "mlflow.db" if settings.tracking_uri.startswith("sqlite:") else None,
    }
    missing = [paths[need] for need in needs if paths[need] is not None and not paths[need].exists()]
    if missing:
        raise MissingState(
            f"no Optimum state at {settings.home} ({', '.join(map(str, missing))} missing). "
            "Create it with `make demo` (or `optimum run`), or point OPTIMUM_HOME at an existing state."
        )


def run_servers(servers: list[Server]) -> int:
    """Start the servers, say where they are, and keep them up until Ctrl-C or SIGTERM stops them all."""
    for server in servers:
        print(f"{server.name:<12} {server.url}")
    print("Ctrl-C stops " + ("them all." if len(servers) > 1 else "it."), flush=True)
    return processes.run_until_stopped(servers, REPO_ROOT)


def demo_requests(settings: Settings) -> list[tuple[str, dict]]:
    """What an application would ask the served champions, with ids that exist in this warehouse."""
    from orchestration.warehouse import Warehouse

    warehouse = Warehouse.from_settings(settings)
    user = warehouse.query("SELECT min(user_id) AS u FROM marts.user_item_scores")["u"].iloc[0]
    product = warehouse.query(
        "SELECT product_id FROM marts.demand_forecast GROUP BY product_id ORDER BY sum(yhat) DESC LIMIT 1"
    )["product_id"].iloc[0]
    return [
        ("/recommend", {"user_id": str(user), "count": 5}),
        ("/recommend", {"user_id": "a-user-we-never-saw", "count": 3}),
        ("/similar_items", {"product_id": str(product), "count": 3}),
        ("/forecast", {"product_id": str(product), "horizon": 4}),
        ("/insights", {"product_id": str(product)}),
        ("/leads", {"status": "new", "min_score": 60, "page_size": 3}),
        ("/score_lead", {"name": "Smith Motors", "category": "Garage", "city": "Springfield", "phone": "555 010 0000"}),
    ]


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def describe_answer(payload: dict) -> str:
    """One line for one answer of the API (the whole JSON is in Swagger, or curl's output)."""
    if "items" in payload:
        items = ", ".join(f"{item['product_id']} {item['name'] or ''}".strip() for item in payload["items"])
        return items + (" (cold start: popular items)" if payload.get("cold_start") else "")
    if "periods" in payload:
        periods = ", ".join(
            f"{p['period_start']}: {_number(p['yhat'])} [{_number(p['yhat_lower'])}-{_number(p['yhat_upper'])}]"
            for p in payload["periods"]
        )
        return f"{payload['model_name']}, per {payload['freq']} period: {periods}"
    if "insights" in payload:
        return "; ".join(insight["details"] for insight in payload["insights"]) or "no alerts"
    return json.dumps(payload)


def curl_line(base_url: str, route: str, body: dict) -> str:
    return f"curl -s -X POST {base_url}{route} -H 'Content-Type: application/json' -d '{json.dumps(body)}'"


def cmd_serve(args: argparse.Namespace) -> int:
    """Serve the champion models over HTTP (BentoML) until interrupted."""
    settings = _settings(args)
    require_state(settings, "mlflow")
    print("Swagger UI at /, OpenAPI spec at /docs.json")
    return run_servers([serving_server(settings, args.port)])


def cmd_mlflow_ui(args: argparse.Namespace) -> int:
    settings = _settings(args)
    require_state(settings, "mlflow")
    return run_servers([mlflow_server(settings, args.port)])


def cmd_demo(args: argparse.Namespace) -> int:
    """Generate demo data, serve its business directory on 127.0.0.1 for the scraper, materialize everything,
    then serve the champions, ask them what an application would, and run one turn of the closed loop."""
    from orchestration.demo.generate import generate_demo_data
    from orchestration.demo.leads import serving_lead_sources
    from orchestration.demo.loop import (
        accept_live_events,
        ingest_via_sensor,
        print_report,
        sensor_cursor,
        simulate_traffic,
    )
    from orchestration.narrative import timed

    out = Path(args.out)
    started = clock = time.perf_counter()
    result = generate_demo_data(out, scale=args.scale, seed=args.seed)
    print(timed(time.perf_counter() - clock, f"generate: {result.describe().splitlines()[0]} in {out}"))
    with serving_lead_sources(out) as lead_sources:
        site_url = lead_sources["lead_seed_urls"]
        settings = _settings(
            args,
            landing_dir=out / "landing",
            scrape_requests_per_second=DEMO_SITE_REQUESTS_PER_SECOND,
            **lead_sources,
        )
        print(
            f"state: {settings.home} ({settings.target.value} warehouse); lead site served at {site_url}, "
            f"its Places API at {lead_sources['places_api_url']}"
        )
        ok = materialize(settings, "refresh_everything")
    print_summary(settings)
    if not ok:
        print(
            f"\ndemo FAILED after {time.perf_counter() - started:.1f} s: see the errors above, or the run in `make up`"
        )
        return 1
    requests = demo_requests(settings)
    clock = time.perf_counter()
    log = settings.home / "logs" / "demo-serving.log"
    # Short-lived spool files, so the closed loop's events reach the landing sensor within seconds.
    serving = settings.serving.model_copy(update={"spool_max_seconds": 2.0})
    with running_service(settings.model_copy(update={"serving": serving}), args.serve_port, log=log) as base_url:
        answers = [(route, body, httpx.post(f"{base_url}{route}", json=body, timeout=30)) for route, body in requests]
        cursor = sensor_cursor(settings)
        request_ids, captured = simulate_traffic(settings, base_url)
    print(timed(time.perf_counter() - clock, f"serve: BentoML started on the champions and answered (log: {log})"))
    for route, body, response in answers:
        print(f"{'':12}POST {route} {json.dumps(body)} -> {response.status_code}")
        print(f"{'':14}{describe_answer(response.json())}")
    clock = time.perf_counter()
    settings = accept_live_events(settings)
    ok = ingest_via_sensor(settings, materialize, cursor) and materialize(settings, "refresh_monitoring")
    print(
        timed(
            time.perf_counter() - clock,
            f"loop: a simulated shop got {len(request_ids)} logged answers and posted {captured} interactions; "
            "the landing sensor ingested them and monitoring was rebuilt",
        )
    )
    print_report(settings, request_ids[0])
    if not ok:
        print(f"\ndemo FAILED after {time.perf_counter() - started:.1f} s in the closed loop: see the errors above")
        return 1
    print(f"\ndemo finished in {time.perf_counter() - started:.1f} s. Next:")
    print(f"  make ui    Dagster http://{HOST}:{DAGSTER_PORT}, MLflow http://{HOST}:{MLFLOW_PORT}, ", end="")
    print(f"API http://{HOST}:{args.serve_port} (Swagger UI); Ctrl-C stops all three")
    print("  then ask the API yourself:")
    for route, body in requests:
        print("  " + curl_line(f"http://{HOST}:{args.serve_port}", route, body))
    return 0


def warehouse_summary(settings: Settings) -> dict[str, int]:
    """Row counts of every table in pipeline order (raw, staging, snapshots, marts): the numbers DuckDB and
    Postgres must share."""
    from orchestration.warehouse import Warehouse

    warehouse = Warehouse.from_settings(settings)
    tables = warehouse.query(
        "SELECT table_schema, table_name FROM information_schema.tables "
        "WHERE table_schema IN ('raw', 'staging', 'marts', 'snapshots') "
        "ORDER BY CASE table_schema WHEN 'raw' THEN 1 WHEN 'staging' THEN 2 WHEN 'snapshots' THEN 3 ELSE 4 END, 2"
    )
    return {
        f"{schema}.{table}": warehouse.row_count(f"{schema}.{table}")
        for schema, table in tables.itertuples(index=False)
    }


def print_summary(settings: Settings) -> None:
    print(f"warehouse row counts ({settings.target.value}), raw -> staging -> snapshots -> marts:")
    for table, rows in warehouse_summary(settings).items():
        print(f"{'':12}{table:<36} {rows:>10,}")


def cmd_summary(args: argparse.Namespace) -> int:
    settings = _settings(args)
    require_state(settings, "warehouse")
    print_summary(settings)
    return 0


def quarantine_listing(settings: Settings, source: str | None = None, reason: str | None = None) -> pd.DataFrame:
    """Quarantined rows still waiting (not resolved by a late product), by source, reason and file."""
    from orchestration.landing.raw_tables import QUARANTINED_SOURCES, ensure_raw_schema, quarantine_table
    from orchestration.warehouse import Warehouse

    warehouse = Warehouse.from_settings(settings)
    with warehouse.transaction() as conn:
        ensure_raw_schema(conn)
    parts = [
        f"SELECT '{name}' AS source, reason, source_file, count(*) AS n_rows, min(source_line) AS first_line, "  # noqa: S608 -- source names come from the landing contract
        f"min(detail) AS example FROM {quarantine_table(name)} WHERE resolved_load_id IS NULL "
        f"{'AND reason = ?' if reason else ''} GROUP BY reason, source_file"
        for name in QUARANTINED_SOURCES
        if source in (None, name)
    ]
    params = tuple(reason for _ in parts) if reason else ()
    listing = warehouse.query(" UNION ALL ".join(parts), params) if parts else pd.DataFrame()
    return listing.sort_values(["source", "reason", "source_file"]).reset_index(drop=True) if len(listing) else listing


def cmd_quarantine(args: argparse.Namespace) -> int:
    settings = _settings(args)
    require_state(settings, "warehouse")
    listing = quarantine_listing(settings, args.source, args.reason)
    if listing.empty:
        print("nothing waiting in quarantine" + (f" for {args.source}" if args.source else ""))
        return 0
    total = int(listing["n_rows"].sum())
    print(f"{total:,} quarantined rows waiting ({len(listing)} source/reason/file groups):")
    for row in listing.itertuples(index=False):
        example = str(row.example)[:70]
        print(f"  {row.source:<12} {row.reason:<24} {row.n_rows:>7,}  {row.source_file}:{row.first_line}  {example}")
    return 0


def cmd_up(args: argparse.Namespace) -> int:
    """Dagster webserver and daemon (`dagster dev`) on the embedded state."""
    settings = _settings(args)
    require_state(settings, "dagster")
    return run_servers([dagster_server(settings, args.host, args.port)])


def cmd_ui(args: argparse.Namespace) -> int:
    """The three UIs at once: Dagster, MLflow and the serving API's Swagger page."""
    settings = _settings(args)
    require_state(settings, "dagster", "mlflow")
    return run_servers(
        [
            dagster_server(settings, HOST, args.dagster_port),
            mlflow_server(settings, args.mlflow_port),
            serving_server(settings, args.serve_port),
        ]
    )


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


def cmd_trace(args: argparse.Namespace) -> int:
    """Print one answer's lineage: request -> model version -> MLflow run -> Dagster run -> data snapshot."""
    from orchestration.trace import RequestNotFound, trace_request

    try:
        print("\n".join(trace_request(_settings(args), args.request_id)))
    except RequestNotFound as error:
        print(error, file=sys.stderr)
        return 1
    return 0


def cmd_token_create(args: argparse.Namespace) -> int:
    from serving.auth import TokenExists, create_token, token_store

    store = token_store(_settings(args))
    try:
        token = create_token(store, args.name, args.scope)
    except (TokenExists, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(token)
    print(
        f"token {args.name!r} (scope {args.scope}) stored as its SHA-256 in {store.describe()}; "
        "this is the only time it is shown. Send it as `Authorization: Bearer <token>`.",
        file=sys.stderr,
    )
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
    generate.add_argument(
        "--profile",
        choices=["demo", "long_history", "monthly_export", "weekly_short", "intermittent"],
        default="demo",
        help="demo: the simulated shop; the others mimic real exports (orchestration/demo/profiles.py)",
    )
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
    demo.add_argument("--out", type=Path, default=REPO_ROOT / "data")
    demo.add_argument("--scale", choices=["small", "demo", "large"], default="demo")
    demo.add_argument("--seed", type=int, default=42)
    demo.add_argument("--serve-port", type=int, default=SERVING_PORT, help="where the demo serves the champions")
    demo.set_defaults(func=cmd_demo)

    quarantine = with_target(commands.add_parser("quarantine", help="list quarantined rows waiting, and why"))
    quarantine.add_argument("--source", choices=["products", "sales", "interactions", "leads"])
    quarantine.add_argument("--reason", help="only this reason (e.g. unknown_product_id)")
    quarantine.set_defaults(func=cmd_quarantine)

    summary = with_target(commands.add_parser("summary", help="row counts of the warehouse tables"))
    summary.set_defaults(func=cmd_summary)

    up = commands.add_parser("up", help="Dagster UI and daemon on the embedded state")
    up.add_argument("--host", default=HOST)
    up.add_argument("--port", type=int, default=DAGSTER_PORT)
    up.set_defaults(func=cmd_up)

    serve = with_target(commands.add_parser("serve", help="serve the champion models (BentoML)"))
    serve.add_argument("--port", type=int, default=SERVING_PORT)
    serve.set_defaults(func=cmd_serve)

    trace = with_target(commands.add_parser("trace", help="lineage of one served answer, by its request_id"))
    trace.add_argument("request_id")
    trace.add_argument("--landing", help="landing folder (default OPTIMUM_LANDING_DIR)")
    trace.set_defaults(func=cmd_trace)

    token = commands.add_parser("token", help="API tokens of the serving API")
    token_commands = token.add_subparsers(dest="token_command", required=True)
    create = with_target(token_commands.add_parser("create", help="create a token, print it once, store its hash"))
    create.add_argument("name", help="who the token is for (logged with each request; the token never is)")
    create.add_argument("--scope", choices=list(SCOPES), default="predict")
    create.set_defaults(func=cmd_token_create)

    mlflow_ui = with_target(commands.add_parser("mlflow-ui", help="MLflow UI on the platform's tracking store"))
    mlflow_ui.add_argument("--port", type=int, default=MLFLOW_PORT)
    mlflow_ui.set_defaults(func=cmd_mlflow_ui)

    ui = with_target(commands.add_parser("ui", help="Dagster UI, MLflow UI and the serving API together"))
    ui.add_argument("--dagster-port", type=int, default=DAGSTER_PORT)
    ui.add_argument("--mlflow-port", type=int, default=MLFLOW_PORT)
    ui.add_argument("--serve-port", type=int, default=SERVING_PORT)
    ui.set_defaults(func=cmd_ui)

    backup = with_target(commands.add_parser("backup", help="write one checksummed backup of all state"))
    backup.set_defaults(func=cmd_backup)

    restore = with_target(commands.add_parser("restore", help="restore a backup into empty databases/folders"))
    restore.add_argument("backup", help="the optimum-backup-*.tar.gz file")
    restore.set_defaults(func=cmd_restore)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(line_buffering=True)  # the narrative shows stage by stage, piped or not
    try:
        return args.func(args)
    except MissingState as error:
        print(f"optimum {args.command}: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
