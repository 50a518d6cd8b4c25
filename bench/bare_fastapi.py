"""A bare FastAPI POST /recommend over the same champion as the BentoML service, for bench/serving_throughput.py.

    OPTIMUM_MLFLOW_TRACKING_URI=sqlite:////path/mlflow.db .venv/bin/uvicorn bench.bare_fastapi:app --port 3100

Same request and response bodies as the service's /recommend (the pydantic models of serving/schemas.py, so
the same validation and the same JSON: user_id, model_version, cold_start, items with the catalog's name,
category and price, and the prediction log's request_id, variant and lineage), and the same durable work:
each answer is appended to the prediction-log spool under OPTIMUM_HOME's landing folder with
serving/prediction_log.py before it leaves. What ranks is chosen by OPTIMUM_BENCH_BARE_SCORING:

- `engine` (default): `serving.engine.RecommenderEngine`, the code the BentoML service calls, so the two
  servers differ only in the framework around it;
- `package`: `Recommender.recommend([user_id], count)` joined to the package's catalog on every request
  (pandas, milliseconds a call), its frame turned into the same items.

Like the service, the handler is `async def` and the heap is frozen after loading (gc.freeze), so a full
collection does not walk the loaded model on every request. Benchmark use only: no /similar_items etc.
"""

from __future__ import annotations

import gc
import math
import os
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from serving.prediction_log import new_request_id
from serving.schemas import RecommendRequest, RecommendResponse

MODEL_NAME = "optimum-recommender"
SCORING = os.environ.get("OPTIMUM_BENCH_BARE_SCORING", "engine")
if SCORING not in ("engine", "package"):
    raise ValueError(f"OPTIMUM_BENCH_BARE_SCORING must be engine or package, got {SCORING!r}")

state: dict[str, Any] = {}


def load() -> None:
    from ml.registry import ModelRegistry
    from optimum.settings import Settings
    from serving.prediction_log import Lineage, PredictionLog

    settings = Settings()  # OPTIMUM_MLFLOW_TRACKING_URI, OPTIMUM_HOME: the same store and landing folder
    registry = ModelRegistry(settings.tracking_uri)
    # Resolve the alias once and load that version, so the version reported is the one answering.
    champion = registry.champion(MODEL_NAME)
    version = champion.version
    package = registry.load(MODEL_NAME, version)
    state["version"], state["package"] = version, package
    state["lineage"] = Lineage.of(settings.tracking_uri, MODEL_NAME, version, champion.run_id)
    serving = settings.serving
    state["log"] = PredictionLog(settings.landing_dir, serving.spool_max_bytes, serving.spool_max_seconds)
    if SCORING == "engine":
        from serving.engine import RecommenderEngine
        from serving.models import Champion

        state["engine"] = RecommenderEngine(Champion(name=MODEL_NAME, version=version, model=package))
    gc.collect()
    gc.freeze()


def _number(value: Any) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def _text(value: Any) -> str | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)


def recommend_with_package(user_id: str, count: int) -> tuple[bool, list[dict[str, Any]]]:
    package = state["package"]
    frame = package.recommender.recommend([user_id], count).join(package.catalog, on="product_id")
    cold = bool(frame["cold_start"].iloc[0]) if len(frame) else False
    items = [
        {
            "product_id": str(pid),
            "name": _text(name),
            "category": _text(category),
            "price": _number(price),
            "score": _number(score),
            "rank": int(rank),
        }
        for pid, name, category, price, score, rank in zip(
            frame["product_id"],
            frame["name"],
            frame["category"],
            frame["price"],
            frame["score"],
            frame["rank"],
            strict=True,
        )
    ]
    return cold, items


@asynccontextmanager
async def lifespan(_: FastAPI):
    load()
    yield
    state["log"].spool.close()


app = FastAPI(lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)


@app.get("/readyz")
async def readyz() -> JSONResponse:
    return JSONResponse({"ready": "version" in state, "scoring": SCORING}, status_code=200 if state else 503)


@app.post("/recommend")
async def recommend(request: RecommendRequest) -> RecommendResponse:
    if SCORING == "engine":
        cold_start, items = state["engine"].recommend(request.user_id, request.count)
    else:
        cold_start, items = recommend_with_package(request.user_id, request.count)
    request_id, lineage = new_request_id(), state["lineage"]
    scored = [(item["product_id"], item["score"]) for item in items]
    await state["log"].record(request_id, "/recommend", request.user_id, "champion", lineage, scored)
    return RecommendResponse(
        user_id=request.user_id,
        model_version=state["version"],
        cold_start=cold_start,
        items=items,
        request_id=request_id,
        variant="champion",
        lineage=lineage.as_dict(),
    )
