"""POST /interactions: sustained events/s on one worker with batched posts, then exactly-once after kill -9.

Usage: .venv/bin/python bench/capture_throughput.py [--duration 20] [--batch 500] [--connections 8]
           [--kill-after 5] [--out /tmp/capture-bench]

1. Throughput: `bentoml serve serving.service:RecommenderService` (one worker, no champions needed: capture
   does not touch the models) in a subprocess, in production mode: every POST carries a token of scope
   `interactions` and passes the request gate (serving/middleware.py; the per-token rate limit is lifted
   so that the worker, not the limiter, is what is measured); --connections clients each POST batches of
   --batch valid events for --duration s; every answer must be 202. Reported: events/s acknowledged (durable: appended
   and fsync'd to the spool under landing/interactions/), requests/s, p50/p99 request latency, and the CPU
   seconds of the server's processes and of this client: on a shared machine, events per server CPU-second
   is the number that does not depend on how much of the cores the server got.
2. Exactly-once under a crash: a fresh server gets the same load, and after --kill-after s the arbiter and
   its worker get SIGKILL while requests are in flight. Every event id of a 202 answer is remembered; the
   landing zone is then ingested into a fresh DuckDB warehouse (orchestration/landing/load.py, which also
   closes the spool file the dead worker left open), twice. Reported: acknowledged, landed, acknowledged
   but missing (must be 0), landed twice (must be 0), landed without an acknowledgement (requests whose
   answer the kill cut off: written, not acknowledged; they are not lost either).
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import shutil
import statistics
import sys
import time
from pathlib import Path

import httpx
import pandas as pd
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from orchestration.landing.contract import INTERACTIONS, PRODUCTS  # noqa: E402
from orchestration.landing.load import load_source  # noqa: E402
from orchestration.warehouse import DuckDBWarehouse  # noqa: E402
from serving.auth import FileTokenStore, create_token  # noqa: E402
from tests.serving_fixtures import kill_server, server_env, start_server, stop_server, wait_until_up  # noqa: E402

N_PRODUCTS = 200


def prepare(out: Path, name: str) -> Path:
    landing = out / name / "landing"
    shutil.rmtree(out / name, ignore_errors=True)
    (landing / "products").mkdir(parents=True)
    pd.DataFrame(
        {
            "product_id": [f"B{i:04d}" for i in range(N_PRODUCTS)],
            "name": "part",
            "category": "misc",
            "brand": "",
            "price": 9.99,
            "stock_on_hand": 10,
        }
    ).to_csv(landing / "products" / "products.csv", index=False)
    return landing


def batch(client_id: int, n: int, size: int) -> dict:
    return {
        "events": [
            {
                "event_id": f"c{client_id}-b{n}-e{i}",
                "user_id": f"u{(n * size + i) % 5000}",
                "product_id": f"B{(client_id + n + i) % N_PRODUCTS:04d}",
                "interaction_type": ("view", "cart", "purchase", "like")[i % 4],
                "timestamp": f"2024-06-{1 + n % 28:02d}T12:00:00Z",
            }
            for i in range(size)
        ]
    }


def gated_env(home: Path, landing: Path, **extra: str) -> tuple[dict[str, str], str]:
    """(server environment, token): production mode, a token of scope `interactions`, no rate limit."""
    token = create_token(FileTokenStore(home / "api_tokens.json"), "capture-bench", "interactions")
    env = server_env(
        home,
        None,
        OPTIMUM_ENVIRONMENT="production",
        OPTIMUM_LANDING_DIR=str(landing),
        OPTIMUM_SERVING_REFRESH_SECONDS="0",
        OPTIMUM_SERVING_RATE_PER_SECOND="1000000",
        OPTIMUM_SERVING_RATE_BURST="1000000",
        **extra,
    )
    return env, token


async def load(
    url: str,
    token: str,
    connections: int,
    size: int,
    seconds: float,
    acknowledged: set[str],
    latencies: list[float],
):
    """Post batches until `seconds` pass (or the server dies); remember every acknowledged event id."""
    deadline = time.perf_counter() + seconds
    errors = 0

    async def client(client_id: int):
        nonlocal errors
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(base_url=url, timeout=30, headers=headers) as http:
            n = 0
            while time.perf_counter() < deadline:
                body = batch(client_id, n, size)
                n += 1
                started = time.perf_counter()
                try:
                    response = await http.post("/interactions", json=body)
                except httpx.TransportError:
                    errors += 1
                    return  # the server is gone
                latencies.append(time.perf_counter() - started)
                if response.status_code != 202:
                    errors += 1
                    continue
                acknowledged.update(response.json()["event_ids"])

    await asyncio.gather(*(client(c) for c in range(connections)))
    return errors


def server_cpu(server) -> float:
    """CPU seconds (user + system) used so far by the server's processes (arbiter and worker)."""
    root = psutil.Process(server.process.pid)
    return sum(sum(p.cpu_times()[:2]) for p in [root, *root.children(recursive=True)])


def client_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def throughput(args, out: Path) -> None:
    landing = prepare(out, "throughput")
    env, token = gated_env(out / "throughput" / "home", landing, OPTIMUM_SERVING_WORKERS="1")
    server = start_server(env, out / "throughput" / "server.log")
    try:
        wait_until_up(server, "/livez", timeout=300)
        asyncio.run(load(server.url, token, args.connections, args.batch, 3, set(), []))  # warm-up
        acknowledged: set[str] = set()
        latencies: list[float] = []
        started, cpu, client = time.perf_counter(), server_cpu(server), client_cpu()
        errors = asyncio.run(
            load(server.url, token, args.connections, args.batch, args.duration, acknowledged, latencies)
        )
        elapsed, cpu, client = time.perf_counter() - started, server_cpu(server) - cpu, client_cpu() - client
    finally:
        stop_server(server)
    latencies.sort()
    p50, p99 = statistics.median(latencies) * 1000, latencies[int(len(latencies) * 0.99)] * 1000
    print(
        f"throughput: {len(acknowledged) / elapsed:,.0f} events/s acknowledged ({len(latencies) / elapsed:.1f} "
        f"requests/s of {args.batch} events, {args.connections} connections, {elapsed:.1f} s, {errors} errors); "
        f"latency p50 {p50:.1f} ms, p99 {p99:.1f} ms; server CPU {cpu:.1f} s = "
        f"{len(acknowledged) / cpu:,.0f} events per CPU-second; client (this process) CPU {client:.1f} s"
    )


def crash(args, out: Path) -> None:
    landing = prepare(out, "crash")
    env, token = gated_env(out / "crash" / "home", landing, OPTIMUM_SERVING_SPOOL_MAX_BYTES=str(1 << 20))
    server = start_server(env, out / "crash" / "server.log")
    acknowledged: set[str] = set()
    try:
        wait_until_up(server, "/livez", timeout=300)

        async def load_then_kill():
            task = asyncio.create_task(load(server.url, token, args.connections, args.batch, 3600, acknowledged, []))
            await asyncio.sleep(args.kill_after)
            kill_server(server)  # SIGKILL, requests in flight
            return await task

        asyncio.run(load_then_kill())
    finally:
        kill_server(server)
    open_files = [p.name for p in (landing / "interactions").glob(".spool-*")]
    warehouse = DuckDBWarehouse(out / "crash" / "warehouse.duckdb")
    for _ in range(2):  # a second ingest must add nothing
        for source in (PRODUCTS, INTERACTIONS):
            load_source(warehouse, landing, source)
    landed = warehouse.query("SELECT event_id FROM raw.interactions")["event_id"]
    counts = landed.value_counts()
    missing = acknowledged - set(landed)
    print(
        f"kill -9 after {args.kill_after} s: {len(acknowledged):,} acknowledged, {len(landed):,} landed, "
        f"{len(missing)} acknowledged but missing, {int((counts > 1).sum())} landed twice, "
        f"{len(set(landed) - acknowledged)} landed without an acknowledgement (cut off by the kill); "
        f"spool files left open by the kill: {len(open_files)}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=20)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--kill-after", type=float, default=5)
    parser.add_argument("--out", type=Path, default=Path("/tmp/capture-bench"))  # noqa: S108 -- a benchmark's scratch folder, default only
    args = parser.parse_args()
    throughput(args, args.out)
    crash(args, args.out)


if __name__ == "__main__":
    main()
