"""Screenshots of the three UIs on a materialized state, taken in headless Chromium.

Starts the Dagster UI (`dagster dev`), the MLflow UI and the BentoML API on free 127.0.0.1 ports with the
same commands `make ui` runs, waits until each answers, and saves to bench/results/ui/:

  dagster_asset_recommender.png   the recommender asset: its metadata with the clickable MLflow run link,
                                  on a fresh instance (no community pop-up)
  dagster_asset_fct_sales_daily.png   a dbt asset: row count and typed columns
  mlflow_runs.png                 the experiment's runs page (parent runs and nested candidates)
  mlflow_run.png                  the run the Dagster link points to
  swagger.png                     the API's Swagger UI (title, description, version, routes)

Needs a state made by `make demo` (or `optimum demo --scale small`), pointed at by OPTIMUM_HOME or
--home, and Debian's `chromium` (`apt-get install -y chromium`). Nothing is installed by this script.

Usage: .venv/bin/python bench/ui_screenshots.py [--home .optimum] [--out bench/results/ui]
"""

from __future__ import annotations

import argparse
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from mlflow import MlflowClient

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from optimum.settings import Settings  # noqa: E402
from orchestration import processes  # noqa: E402
from orchestration.cli import HOST, dagster_server, mlflow_server, require_state, serving_server  # noqa: E402

WINDOW = "1440,1000"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def wait_for(url: str, process: subprocess.Popen, log: Path, timeout_s: float = 300) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"{url}: the server exited with {process.returncode}; see {log}")
        try:
            if httpx.get(url, timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(1)
    sys.exit(f"{url} did not answer in {timeout_s:.0f} s; see {log}")


def screenshot(chromium: str, url: str, png: Path, budget_ms: int = 20000) -> None:
    """Load the page, let its scripts run for `budget_ms` of virtual time, save the viewport."""
    command = [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        f"--window-size={WINDOW}",
        f"--virtual-time-budget={budget_ms}",
        f"--screenshot={png}",
        url,
    ]
    subprocess.run(command, check=True, capture_output=True, timeout=180)
    print(f"{png.name:<36} {url}")


def latest_run(settings: Settings, run_name: str) -> tuple[str, str]:
    """(experiment id, run id) of the newest parent run with this name."""
    client = MlflowClient(settings.tracking_uri)
    experiment = client.get_experiment_by_name("optimum")
    runs = client.search_runs(
        [experiment.experiment_id], f"attributes.run_name = '{run_name}'", order_by=["attributes.start_time DESC"]
    )
    parent = next(run for run in runs if "mlflow.parentRunId" not in run.data.tags)
    return experiment.experiment_id, parent.info.run_id


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--home", type=Path, help="state folder (default OPTIMUM_HOME, else .optimum)")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "ui")
    args = parser.parse_args()
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        sys.exit("no chromium on PATH: apt-get install -y chromium")
    ports = {"dagster": free_port(), "mlflow": free_port(), "serve": free_port()}
    mlflow_url = f"http://{HOST}:{ports['mlflow']}"
    settings = Settings(**({"home": args.home} if args.home else {}))
    require_state(settings, "dagster", "mlflow")
    args.out.mkdir(parents=True, exist_ok=True)
    servers = {
        "dagster": (dagster_server(settings, HOST, ports["dagster"]), "/server_info"),
        "mlflow": (mlflow_server(settings, ports["mlflow"]), "/health"),
        "serve": (serving_server(settings, ports["serve"]), "/livez"),
    }
    started = {}
    try:
        for name, (server, _) in servers.items():
            log = args.out / f"{name}.log"
            started[name] = (processes.start(server, REPO, log), log)
        for name, (server, probe) in servers.items():
            wait_for(server.url + probe, *started[name])
        experiment_id, run_id = latest_run(settings, "recommender")
        dagster = servers["dagster"][0].url
        shots = {
            "dagster_asset_recommender.png": f"{dagster}/assets/recommender",
            "dagster_asset_fct_sales_daily.png": f"{dagster}/assets/marts/fct_sales_daily",
            "mlflow_runs.png": f"{mlflow_url}/#/experiments/{experiment_id}/runs",
            "mlflow_run.png": f"{mlflow_url}/#/experiments/{experiment_id}/runs/{run_id}",
            "swagger.png": servers["serve"][0].url + "/",
        }
        for png, url in shots.items():
            screenshot(chromium, url, args.out / png)
    finally:
        for process, _ in started.values():
            processes.stop(process)


if __name__ == "__main__":
    main()
