"""A tiny real model store for the serving tests and the serving benchmark, and a real server to run on it.

`build_model_store` fits a real recommender and a real demand forecast on synthetic data, logs both as
MLflow pyfunc packages into a throw-away SQLite registry and points the `champion` alias at them, the
way training does. `running_server` starts `bentoml serve serving.service:RecommenderService` in a
subprocess against such a store and stops it (its whole process group) afterwards.

Everything is dated in the 1990s and seeded, so nothing depends on the wall clock or on chance.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

REPO_ROOT = Path(__file__).resolve().parent.parent
SERVICE = "serving.service:RecommenderService"
FREQ = "W"
HORIZON = 4
N_USERS = 30
N_SOLD = 20  # products with interactions and sales; the catalog has two more that never sold
CATEGORIES = ["brakes", "filters", "ignition", "suspension"]


@dataclass
class ModelStore:
    """What build_model_store wrote: where, which versions, and the data behind them (for assertions)."""

    root: Path
    tracking_uri: str
    versions: dict[str, str] = field(default_factory=dict)  # registered model name -> champion version
    products: pd.DataFrame | None = None
    scores: pd.DataFrame | None = None
    forecast: pd.DataFrame | None = None
    insights: pd.DataFrame | None = None

    @property
    def known_users(self) -> list[str]:
        return sorted(self.scores["user_id"].unique())

    @property
    def sold_products(self) -> list[str]:
        return sorted(self.scores["product_id"].unique())

    @property
    def unsold_products(self) -> list[str]:
        """In the catalog, but no interactions or sales: unknown to both models' per-item answers."""
        return sorted(set(self.products["product_id"]) - set(self.sold_products))


# --- synthetic data -------------------------------------------------------------------------------------


def synthetic_products(n_sold: int = N_SOLD, n_unsold: int = 2) -> pd.DataFrame:
    """marts.dim_products-shaped rows: P001.. sold, the last `n_unsold` never; every 4th is short of stock."""
    n = n_sold + n_unsold
    ids = [f"P{i:03d}" for i in range(1, n + 1)]
    return pd.DataFrame(
        {
            "product_id": ids,
            "name": [f"Part {i} {CATEGORIES[i % len(CATEGORIES)]}" for i in range(1, n + 1)],
            "category": [CATEGORIES[i % len(CATEGORIES)] for i in range(1, n + 1)],
            "price": np.round(np.linspace(4.99, 249.99, n), 2),
            "stock_on_hand": [1 if i % 4 == 0 else 500 for i in range(1, n + 1)],
        }
    )


def synthetic_scores(n_users: int = N_USERS, n_items: int = N_SOLD, seed: int = 0) -> pd.DataFrame:
    """marts.user_item_scores-shaped rows: each user touches 3-8 items, mostly from one of two halves."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(1, n_users + 1):
        half = np.arange(n_items)[(np.arange(n_items) % 2) == (u % 2)]
        picks = rng.choice(half, size=rng.integers(3, 9), replace=False)
        for item in picks:
            rows.append((f"U{u:03d}", f"P{item + 1:03d}", float(rng.gamma(2.0, 1.5)) + 0.1))
    return pd.DataFrame(rows, columns=["user_id", "product_id", "score"])


def synthetic_daily_sales(n_items: int = N_SOLD, days: int = 364, seed: int = 1) -> pd.DataFrame:
    """marts.fct_sales_daily-shaped rows from Monday 1996-01-01: Poisson demand, a weekly cycle, one new product."""
    rng = np.random.default_rng(seed)
    dates = pd.date_range("1996-01-01", periods=days, freq="D")
    weekly = np.array([1.0, 0.9, 0.9, 1.0, 1.1, 1.4, 0.7])[np.arange(days) % 7]
    frames = []
    for i in range(1, n_items + 1):
        start = days - 60 if i == n_items else 0  # a thin-history product
        quantity = rng.poisson((1 + i % 5) * weekly[start:])
        price = 5.0 + i
        frames.append(
            pd.DataFrame(
                {
                    "product_id": f"P{i:03d}",
                    "sales_date": dates[start:].date,
                    "quantity": quantity.astype(int),
                    "revenue": quantity * price,
                    "n_orders": (quantity > 0).astype(int),
                    "avg_unit_price": np.where(quantity > 0, price, np.nan),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


# --- the packages training registers --------------------------------------------------------------------


def recommender_package(products: pd.DataFrame, scores: pd.DataFrame):
    from ml.packaging import RecommenderPackage
    from ml.recommend import ItemKNNRecommender

    return RecommenderPackage(ItemKNNRecommender(n_neighbors=10).fit(scores), products, candidate="item_knn")


def forecast_tables(products: pd.DataFrame, daily: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(forecast, insights) from the real ml.forecast pipeline; a hand-built equivalent if it is not importable."""
    try:
        from ml.forecast import demand_insights, forecast_demand
    except ImportError:
        return _hand_built_forecast(products, daily)
    result = forecast_demand(daily, products, freq=FREQ, horizon=HORIZON, n_origins=2, prophet_top_n=0, n_jobs=1)
    insights = demand_insights(result.forecast, products, result.history, freq=FREQ)
    return result.forecast, insights


def _hand_built_forecast(products: pd.DataFrame, daily: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    last = pd.Timestamp(max(daily["sales_date"]))
    starts = pd.date_range(last + pd.Timedelta(days=1), periods=HORIZON, freq="W-MON")
    weekly = daily.groupby("product_id")["quantity"].sum() / 52
    forecast = pd.DataFrame(
        [
            (pid, start, mean, max(mean - 2, 0.0), mean + 2, "moving_average", False)
            for pid, mean in weekly.items()
            for start in starts
        ],
        columns=["product_id", "forecast_date", "yhat", "yhat_lower", "yhat_upper", "model_name", "thin_history"],
    )
    stock = products.set_index("product_id")["stock_on_hand"]
    short = [pid for pid, mean in weekly.items() if mean * HORIZON > stock.get(pid, np.inf) * 1.5]
    insights = pd.DataFrame(
        {
            "product_id": short,
            "insight_type": "restock",
            "details": [f"Forecast demand exceeds 1.5x the stock of {pid}." for pid in short],
        }
    )
    return forecast, insights


def forecast_package(products: pd.DataFrame, forecast: pd.DataFrame, insights: pd.DataFrame):
    from ml.packaging import ForecastPackage

    return ForecastPackage(forecast, insights, products, FREQ, HORIZON)


# --- the MLflow store -----------------------------------------------------------------------------------


def tracking_uri_for(root: Path) -> str:
    return f"sqlite:///{root / 'mlflow.db'}"


@contextmanager
def using_tracking_uri(uri: str) -> Iterator[None]:
    """Point mlflow at `uri` for the block, then back where it was (other tests share the process)."""
    import mlflow

    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(previous)


def create_store(root: Path, experiment: str = "optimum-serving-tests") -> tuple[str, str]:
    """An empty registry at root/mlflow.db with an experiment whose artifacts live under root/artifacts.

    Returns (tracking_uri, experiment_id)."""
    from mlflow import MlflowClient

    root.mkdir(parents=True, exist_ok=True)
    uri = tracking_uri_for(root)
    client = MlflowClient(uri)
    found = client.get_experiment_by_name(experiment)
    if found is not None:
        return uri, found.experiment_id
    artifacts = root / "artifacts"
    artifacts.mkdir(exist_ok=True)
    return uri, client.create_experiment(experiment, artifact_location=artifacts.as_uri())


def log_champion(tracking_uri: str, experiment_id: str, name: str, python_model) -> str:
    """Log `python_model` as a pyfunc, register it under `name` and point the champion alias at it."""
    import mlflow
    from mlflow import MlflowClient

    os.environ.setdefault("MLFLOW_SKIP_PIP_REQUIREMENTS_CHECK", "true")
    with using_tracking_uri(tracking_uri), mlflow.start_run(experiment_id=experiment_id, run_name=f"{name}-test"):
        info = mlflow.pyfunc.log_model(
            name="model", python_model=python_model, registered_model_name=name, pip_requirements=[]
        )
    version = str(info.registered_model_version)
    MlflowClient(tracking_uri).set_registered_model_alias(name, "champion", version)
    return version


def build_model_store(
    root: Path, recommender: bool = True, forecaster: bool = True, n_users: int = N_USERS, n_items: int = N_SOLD
) -> ModelStore:
    """A registry under `root` with real champions fitted on the synthetic data (either can be left out).

    The tests use the tiny default; a benchmark can ask for more users and items (demo scale is about
    2,000 users x 500 products; the forecast then takes a few seconds more)."""
    from ml.packaging import FORECASTER_MODEL_NAME, RECOMMENDER_MODEL_NAME

    uri, experiment_id = create_store(root)
    store = ModelStore(
        root=root,
        tracking_uri=uri,
        products=synthetic_products(n_sold=n_items),
        scores=synthetic_scores(n_users=n_users, n_items=n_items),
    )
    if recommender:
        package = recommender_package(store.products, store.scores)
        store.versions[RECOMMENDER_MODEL_NAME] = log_champion(uri, experiment_id, RECOMMENDER_MODEL_NAME, package)
    if forecaster:
        store.forecast, store.insights = forecast_tables(store.products, synthetic_daily_sales(n_items=n_items))
        package = forecast_package(store.products, store.forecast, store.insights)
        store.versions[FORECASTER_MODEL_NAME] = log_champion(uri, experiment_id, FORECASTER_MODEL_NAME, package)
    return store


# --- a real server --------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_env(home: Path, tracking_uri: str | None, **extra: str) -> dict[str, str]:
    """The environment docker-compose gives the service, pointed at a test home and store."""
    # mlflow.set_tracking_uri and set_registry_uri export MLFLOW_TRACKING_URI and MLFLOW_REGISTRY_URI: a test
    # that trained in-process must not hand its store to the server.
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OPTIMUM_", "BENTOML_", "MLFLOW_TRACKING", "MLFLOW_REGISTRY"))
    }
    env |= {
        "OPTIMUM_HOME": str(home),
        "OPTIMUM_LANDING_DIR": str(home / "landing"),  # captured events and the prediction log
        "BENTOML_HOME": str(home / "bentoml"),
        "BENTOML_DO_NOT_TRACK": "true",
        "PYTHONUNBUFFERED": "1",
    }
    if tracking_uri is not None:
        env["OPTIMUM_MLFLOW_TRACKING_URI"] = tracking_uri
    return env | extra


@dataclass
class Server:
    url: str
    process: subprocess.Popen
    log: Path

    def log_tail(self, chars: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""


def start_server(env: dict[str, str], log: Path, port: int | None = None) -> Server:
    """Start `bentoml serve` in its own process group; wait with wait_until_up."""
    port = port or free_port()
    bentoml = Path(sys.executable).parent / "bentoml"
    command = [str(bentoml), "serve", SERVICE, "--host", "127.0.0.1", "--port", str(port)]
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    return Server(url=f"http://127.0.0.1:{port}", process=process, log=log)


def wait_until_up(server: Server, path: str = "/readyz", timeout: float = 90.0) -> None:
    """Poll `path` until it answers 200; fail with the server log if the process dies or time runs out."""
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"server exited with {server.process.returncode}:\n{server.log_tail()}")
        try:
            if httpx.get(server.url + path, timeout=2.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.25)
    raise TimeoutError(f"{server.url}{path} not 200 after {timeout:.0f}s:\n{server.log_tail()}")


def stop_server(server: Server, timeout: float = 20.0) -> None:
    """SIGTERM the server's process group (the arbiter and its workers), SIGKILL what is left after `timeout`."""
    if server.process.poll() is None:
        os.killpg(server.process.pid, signal.SIGTERM)
        try:
            server.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(server.process.pid, signal.SIGKILL)
            server.process.wait(5)
    with suppress(ProcessLookupError):  # workers still alive after the arbiter exited
        os.killpg(server.process.pid, signal.SIGKILL)


@contextmanager
def running_server(env: dict[str, str], log: Path, ready_path: str = "/readyz", timeout: float = 90.0):
    server = start_server(env, log)
    try:
        wait_until_up(server, ready_path, timeout)
        yield server
    finally:
        stop_server(server)


def kill_server(server: Server) -> None:
    """SIGKILL the arbiter and every worker at once (workers run in process groups of their own), the way
    a crash or the OOM killer would end the service: no shutdown hook runs."""
    import psutil

    try:
        processes = [psutil.Process(server.process.pid)]
    except psutil.NoSuchProcess:
        return
    processes += processes[0].children(recursive=True)
    for process in processes:
        with suppress(psutil.NoSuchProcess):
            process.send_signal(signal.SIGKILL)
    psutil.wait_procs(processes, timeout=10)
    server.process.wait(10)
