"""The closing table of issue 8: every hostile file of the test corpus -> what it became, on DuckDB and PostgreSQL.

Drops the corpus (tests/landing_corpus.py) among small demo files (seed 7, 120 days: the data the
integration test uses), loads every landing source on both targets, then the second delivery (a
correction, a re-delivery, the late product, good data, lone stray dates), and prints one Markdown row per
file: rows loaded and quarantined with their reasons as each warehouse recorded them (raw.load_log and
raw.<source>_quarantine), against what the corpus expects. The same outcomes, through Dagster runs and dbt,
are asserted by tests/integration/test_landing_hostile.py; the cases that are not files (overlapping runs,
kill -9) are tests/integration/test_landing_concurrency.py.

Usage: .venv/bin/python bench/hostile_table.py [--out FILE.md]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import uuid
from collections import Counter
from pathlib import Path

from pg_admin import admin, database_dsn  # bench/ is on sys.path when a script here runs

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _load_everything(warehouse, landing: Path) -> None:
    from orchestration.landing.contract import LANDING_SOURCES
    from orchestration.landing.load import load_source

    for source in LANDING_SOURCES:  # products first
        load_source(warehouse, landing, source)


def _outcome(warehouse, case) -> tuple[int, Counter]:
    log = warehouse.query(
        "SELECT rows_loaded FROM raw.load_log WHERE source = ? AND source_file = ?", (case.source, case.file)
    )
    reasons = warehouse.query(
        f"SELECT reason FROM raw.{case.source}_quarantine WHERE source_file = ?",  # noqa: S608 -- corpus source names
        (case.file,),
    )["reason"]
    return int(log["rows_loaded"].sum()), Counter(reasons)


def _late_rows_resolved(warehouse) -> int:
    sql = "SELECT count(*) AS n FROM raw.sales_quarantine WHERE resolved_load_id IS NOT NULL"
    return int(warehouse.query(sql)["n"].iloc[0])


def _text(loaded: int, reasons: Counter) -> str:
    quarantined = ", ".join(f"{reason} {n}" for reason, n in sorted(reasons.items()))
    return f"{loaded} loaded" + (f"; quarantined: {quarantined}" if quarantined else "")


def run_target(target: str, demo_landing: Path, work: Path) -> dict[str, tuple[int, Counter]]:
    import shutil

    from orchestration.warehouse import DuckDBWarehouse, PostgresWarehouse
    from tests.landing_corpus import first_delivery, second_delivery

    landing = work / target / "landing"
    shutil.copytree(demo_landing, landing)
    database = f"optimum_hostile_{uuid.uuid4().hex[:8]}"
    if target == "postgres":
        admin(f'CREATE DATABASE "{database}"')
        warehouse = PostgresWarehouse(database_dsn(database))
    else:
        warehouse = DuckDBWarehouse(work / target / "warehouse.duckdb")
    try:
        outcomes = {}
        for delivery in (first_delivery(), second_delivery()):
            for case in delivery:
                (landing / case.source / case.file).write_bytes(case.data)
            _load_everything(warehouse, landing)
            outcomes.update({case.file: _outcome(warehouse, case) for case in delivery})
        outcomes["(late rows resolved)"] = (_late_rows_resolved(warehouse), Counter())
        return outcomes
    finally:
        if target == "postgres":
            admin(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", help="also write the table to this Markdown file")
    args = parser.parse_args()

    from orchestration.demo.generate import generate_demo_data
    from tests.landing_corpus import first_delivery, second_delivery

    with tempfile.TemporaryDirectory(prefix="optimum-hostile-") as work:
        demo = generate_demo_data(Path(work) / "demo", scale="small", seed=7, days=120)
        landing = demo.out_dir / "landing"
        results = {target: run_target(target, landing, Path(work)) for target in ("duckdb", "postgres")}

    lines = [
        "| # | hostile case | file | expected | DuckDB | PostgreSQL | as expected |",
        "|---|---|---|---|---|---|---|",
    ]
    all_ok = True
    cases = [("1st", case) for case in first_delivery()] + [("2nd", case) for case in second_delivery()]
    for n, (delivery, case) in enumerate(cases, 1):
        expected = (case.loaded, case.reasons)
        duck, pg = results["duckdb"][case.file], results["postgres"][case.file]
        ok = duck == expected == pg
        all_ok &= ok
        lines.append(
            f"| {n} | {case.what} ({delivery} delivery) | `{case.source}/{case.file}` | {_text(*expected)} | "
            f"{_text(*duck)} | {_text(*pg)} | {'yes' if ok else '**NO**'} |"
        )
    resolved = [results[target]["(late rows resolved)"][0] for target in ("duckdb", "postgres")]
    lines.append(
        f"| {len(cases) + 1} | the waiting sale of the late product, once it lands | `sales_quarantine` | "
        f"1 resolved | {resolved[0]} resolved | {resolved[1]} resolved | {'yes' if resolved == [1, 1] else '**NO**'} |"
    )
    table = "\n".join(lines)
    print(table)
    print(f"\nall {len(cases) + 1} cases as expected on both targets: {all_ok and resolved == [1, 1]}")
    if args.out:
        Path(args.out).write_text(table + "\n")


if __name__ == "__main__":
    main()
