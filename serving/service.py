"""The Optimum serving API: recommendations, similar items, demand forecasts and insights over HTTP.

    bentoml serve serving.service:RecommenderService --port 3000

Champions come from the MLflow registry named by `optimum.settings.Settings` (OPTIMUM_HOME,
OPTIMUM_MLFLOW_TRACKING_URI), loaded at start-up and re-checked every `serving.refresh_seconds`
(OPTIMUM_SERVING_REFRESH_SECONDS, default 60, 0: never) so a newly promoted champion is picked up
without a restart. The service starts without champions too: /livez is 200, /readyz 503 until both are
loaded, and the endpoints that need a missing champion answer 503 with a JSON reason.

Every endpoint is POST with a JSON body (schemas in serving/schemas.py). Status codes: 200; 400 for a
body that fails validation (BentoML's pydantic handler: {"error", "detail": [{loc, msg, type}]}) or a
horizon past the champion's; 404 for a product the champion does not know; 405 / 413 / 415 for a wrong
method, an oversized or a non-JSON body (serving/middleware.py); 503 only without a champion. Every error
body is JSON with an "error" string. BentoML adds /livez, /readyz, /metrics (Prometheus) and the OpenAPI
spec at /docs.json (Swagger UI at /, and /docs redirects there).

Deployment knobs (workers, access log, tracing, request limits) are `Settings.serving`
(OPTIMUM_SERVING_* variables), read once when this module is imported, before BentoML starts its workers.
"""

from __future__ import annotations

import gc
import logging
import threading

import bentoml
from starlette.responses import JSONResponse

import serving.bentoml_patches  # noqa: F401  (cancels BentoML's per-request timeout timers)
from ml.packaging import FORECASTER_MODEL_NAME, RECOMMENDER_MODEL_NAME
from ml.recommend import UnknownItemError
from optimum.settings import ServingSettings, Settings
from serving.engine import HorizonTooLarge, ServingState
from serving.middleware import JsonApiMiddleware, quiet_validation_errors
from serving.models import CHAMPION_ALIAS, load_champions
from serving.openapi import OpenApiMiddleware
from serving.schemas import (
    ForecastRequest,
    ForecastResponse,
    InsightsRequest,
    InsightsResponse,
    RecommendRequest,
    RecommendResponse,
    SimilarItemsRequest,
    SimilarItemsResponse,
)

logger = logging.getLogger(f"bentoml.{__name__}")  # under bentoml, so its server log handlers apply

API_ROUTES = ("/recommend", "/similar_items", "/forecast", "/insights")

SETTINGS = Settings()  # read before BentoML starts its workers: the decorator below needs the knobs


def service_config(serving: ServingSettings) -> dict:
    """BentoML settings. Access logs and OpenTelemetry spans on the API routes are off unless asked for:
    together they cost about as much CPU as answering the request (Prometheus /metrics still counts and
    times every request, and every error is logged)."""
    config: dict = {
        "workers": serving.workers,
        "traffic": {"timeout": serving.request_timeout_seconds},
        "logging": {"access": {"enabled": serving.access_log, "skip_paths": ["/livez", "/readyz", "/metrics"]}},
    }
    if not serving.tracing:
        config["tracing"] = {"excluded_urls": [*API_ROUTES, "/livez", "/readyz", "/healthz", "/metrics"]}
    return config


def _freeze_heap() -> None:
    """Move everything loaded so far (mlflow, pandas, the models) out of the garbage collector's reach.

    Otherwise every full collection walks millions of long-lived objects, a pause of tens of ms that
    lands on whichever requests are in flight (it dominated p99 under load)."""
    gc.collect()
    gc.freeze()


def error(status: int, message: str, **extra) -> JSONResponse:
    return JSONResponse({"error": message, **extra}, status_code=status)


def no_champion(state: ServingState, name: str) -> JSONResponse:
    reason = state.champions.missing.get(name, "not loaded")
    picked_up = "the service picks it up without a restart." if SETTINGS.serving.refresh_seconds else "restart."
    return error(
        503,
        f"no champion is registered yet for {name!r} (alias {CHAMPION_ALIAS!r}): {reason}. Train and "
        + f"register one; {picked_up}",
        model=name,
    )


def unknown_product(product_id: str, what: str) -> JSONResponse:
    return error(404, f"unknown product_id {product_id!r}: {what}", product_id=product_id)


@bentoml.service(**service_config(SETTINGS.serving))
class RecommenderService:
    """Serves the registered champions of optimum-recommender and optimum-demand-forecaster."""

    def __init__(self) -> None:
        self.tracking_uri = SETTINGS.tracking_uri
        self.refresh_seconds = SETTINGS.serving.refresh_seconds
        self.state = ServingState.build(load_champions(self.tracking_uri))
        self._log_state()
        _freeze_heap()
        self._stop = threading.Event()
        if self.refresh_seconds > 0:
            threading.Thread(target=self._refresh_loop, name="champion-refresh", daemon=True).start()

    def _log_state(self) -> None:
        for name, version in self.state.champions.versions().items():
            if version is None:
                logger.warning("no champion for %s: %s", name, self.state.champions.missing.get(name))
            else:
                logger.info("serving %s version %s", name, version)

    def _refresh_loop(self) -> None:
        while not self._stop.wait(self.refresh_seconds):
            try:
                self.refresh()
            except Exception:  # keep serving what is loaded, and keep checking
                logger.exception("champion refresh failed")

    def refresh(self) -> None:
        """Load champions whose alias moved (or appeared) since the last load; keep the others."""
        current = self.state
        champions = load_champions(self.tracking_uri, previous=current.champions)
        if champions.versions() != current.champions.versions():
            state = ServingState.build(champions, previous=current)
            if state.champions.versions() != current.champions.versions():
                self.state = state
                self._log_state()
                _freeze_heap()

    @bentoml.on_shutdown
    def _shutdown(self) -> None:
        self._stop.set()

    def __is_ready__(self) -> bool:
        return self.state.champions.complete

    @bentoml.api(input_spec=RecommendRequest)
    async def recommend(self, user_id: str, count: int = 10) -> RecommendResponse:
        """Top `count` products for a customer, best first; a customer the model never saw gets the
        popular items, with cold_start true."""
        engine = self.state.recommender
        if engine is None:
            return no_champion(self.state, RECOMMENDER_MODEL_NAME)
        cold_start, items = engine.recommend(user_id, count)
        return RecommendResponse(user_id=user_id, model_version=engine.version, cold_start=cold_start, items=items)

    @bentoml.api(input_spec=SimilarItemsRequest)
    async def similar_items(self, product_id: str, count: int = 10) -> SimilarItemsResponse:
        """The `count` products most similar to one product (bought or viewed by the same customers)."""
        engine = self.state.recommender
        if engine is None:
            return no_champion(self.state, RECOMMENDER_MODEL_NAME)
        try:
            items = engine.similar_items(product_id, count)
        except UnknownItemError:
            return unknown_product(product_id, "the recommender has no interactions with it")
        return SimilarItemsResponse(product_id=product_id, model_version=engine.version, items=items)

    @bentoml.api(input_spec=ForecastRequest)
    async def forecast(self, product_id: str, horizon: int) -> ForecastResponse:
        """Demand forecast of one product for the next `horizon` periods, with its 80% interval."""
        engine = self.state.forecaster
        if engine is None:
            return no_champion(self.state, FORECASTER_MODEL_NAME)
        try:
            found = engine.forecast(product_id, horizon)
        except HorizonTooLarge as exc:
            return error(400, str(exc), max_horizon=exc.horizon, freq=exc.freq)
        except UnknownItemError:
            return unknown_product(product_id, "no forecast: the product is unknown or has never sold")
        return ForecastResponse(product_id=product_id, model_version=engine.version, freq=engine.freq, **found)

    @bentoml.api(input_spec=InsightsRequest)
    async def insights(self, product_id: str | None = None) -> InsightsResponse:
        """Restock, spike and decline alerts from the forecast: one product's, or all of them."""
        engine = self.state.forecaster
        if engine is None:
            return no_champion(self.state, FORECASTER_MODEL_NAME)
        try:
            rows = engine.insights(product_id)
        except UnknownItemError:
            return unknown_product(product_id, "not in the forecaster's catalog")
        return InsightsResponse(model_version=engine.version, product_id=product_id, insights=rows)


assert {method.route for method in RecommenderService.apis.values()} == set(API_ROUTES)  # noqa: S101 -- import-time invariant: every API has its JSON route
RecommenderService.add_asgi_middleware(JsonApiMiddleware, routes=API_ROUTES, max_body=SETTINGS.serving.max_body_bytes)
RecommenderService.add_asgi_middleware(
    OpenApiMiddleware, bentoml_spec=lambda: RecommenderService.openapi_spec.asdict(), limits=SETTINGS.serving
)
quiet_validation_errors()
