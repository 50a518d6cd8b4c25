"""Ingestion throughput (rows/s): landing files -> raw tables, on a fresh warehouse, no dbt.

Generates the demo data once (kept in --data, reused by later runs), then loads products, sales and
interactions into a new DuckDB file or a new PostgreSQL database and reports rows read per second
(loaded + quarantined), by wall time and by this process's CPU time (the fair number on a shared
machine: other processes' load stretches wall time, not CPU time; on PostgreSQL the server's share of
the work is not in it). --code-root points at another checkout (e.g. `git archive 57ffa8e`) to measure the
code before a change on the same files.

Usage: .venv/bin/python bench/ingest_throughput.py --scale large --target duckdb|postgres [--code-root DIR]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from pathlib import Path

ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"


def _admin(sql: str) -> None:
    import psycopg2

    con = psycopg2.connect(ADMIN_DSN)
    con.autocommit = True
    with con.cursor() as cur:
        cur.execute(sql)
    con.close()


def _line(name: str, rows: int, wall: float, cpu: float) -> str:
    return (
        f"{name:<13} {rows:>10,} rows in {wall:7.1f} s wall = {rows / wall:>9,.0f} rows/s; "
        f"{cpu:7.1f} s CPU = {rows / cpu:>9,.0f} rows/CPU-s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", choices=["small", "demo", "large"], default="large")
    parser.add_argument("--target", choices=["duckdb", "postgres"], default="duckdb")
    parser.add_argument("--data", default=None, help="folder for the generated data (default: a temp folder)")
    parser.add_argument("--code-root", default=str(Path(__file__).resolve().parents[1]))
    args = parser.parse_args()
    sys.path.insert(0, str(Path(args.code_root).resolve()))

    from orchestration.demo.generate import generate_demo_data
    from orchestration.landing.contract import LANDING_SOURCES
    from orchestration.landing.load import load_source
    from orchestration.warehouse import DuckDBWarehouse, PostgresWarehouse

    data = Path(args.data or tempfile.mkdtemp(prefix="optimum-ingest-")) / args.scale
    if not (data / "landing").is_dir():
        started = time.perf_counter()
        generate_demo_data(data, scale=args.scale)
        print(f"generated {args.scale} data in {time.perf_counter() - started:.1f} s", flush=True)

    with tempfile.TemporaryDirectory(prefix="optimum-ingest-state-") as state:
        database = f"optimum_bench_{uuid.uuid4().hex[:8]}"
        if args.target == "postgres":
            _admin(f'CREATE DATABASE "{database}"')
            warehouse = PostgresWarehouse(ADMIN_DSN.rsplit("/", 1)[0] + f"/{database}")
        else:
            warehouse = DuckDBWarehouse(Path(state) / "warehouse.duckdb")
        try:
            total_rows, total_s, total_cpu = 0, 0.0, 0.0
            for source in LANDING_SOURCES:
                started, started_cpu = time.perf_counter(), time.process_time()
                report = load_source(warehouse, data / "landing", source)
                elapsed, cpu = time.perf_counter() - started, time.process_time() - started_cpu
                rows = report.rows_loaded + report.rows_quarantined
                total_rows, total_s, total_cpu = total_rows + rows, total_s + elapsed, total_cpu + cpu
                print(_line(source.name, rows, elapsed, cpu), flush=True)
            print(_line("all", total_rows, total_s, total_cpu))
            print(f"code: {args.code_root}  target: {args.target}  scale: {args.scale}")
        finally:
            if args.target == "postgres":
                _admin(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


if __name__ == "__main__":
    main()
