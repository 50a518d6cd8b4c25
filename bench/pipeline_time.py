"""Wall time of the whole demo pipeline (generate -> serve and scrape the site -> ingest -> dbt -> checks).

Each run uses a fresh state folder and data folder, so nothing is reused between runs.
Usage: .venv/bin/python bench/pipeline_time.py --scale demo [--target postgres --pg-dsn DSN] [--repeat 1]
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

OPTIMUM = str(Path(sys.executable).with_name("optimum"))


def run_once(scale: str, target: str, pg_dsn: str | None) -> dict[str, float | str]:
    with tempfile.TemporaryDirectory(prefix="optimum-bench-") as tmp:
        env = os.environ | {"OPTIMUM_HOME": f"{tmp}/state", "OPTIMUM_TARGET": target}
        if pg_dsn:
            env["OPTIMUM_PG_DSN"] = pg_dsn
        started = time.perf_counter()
        command = [OPTIMUM, "demo", "--out", f"{tmp}/data", "--scale", scale, "--serve-port", str(free_port())]
        result = subprocess.run(command, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(f"optimum demo failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    materialize = re.search(r"refresh_everything succeeded in ([\d.]+) s", result.stdout)
    generate = re.search(r"\[\s*([\d.]+) s\] generate: (.*) in ", result.stdout)
    return {
        "wall_s": round(wall, 1),
        "generate_s": float(generate.group(1)) if generate else float("nan"),
        "materialize_s": float(materialize.group(1)) if materialize else float("nan"),
        "data": generate.group(2) if generate else "",
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", choices=["small", "demo", "large"], default="demo")
    parser.add_argument("--target", choices=["duckdb", "postgres"], default="duckdb")
    parser.add_argument("--pg-dsn")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    for attempt in range(1, args.repeat + 1):
        print(f"{args.scale}/{args.target} run {attempt}: {run_once(args.scale, args.target, args.pg_dsn)}", flush=True)


if __name__ == "__main__":
    main()
