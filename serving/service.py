"""The Optimum serving API: recommendations, similar items, search, demand forecasts, insights and leads
over HTTP.

    bentoml serve serving.service:RecommenderService --port 3000

BentoML is the deployed unit: its lifecycle (workers, start-up, shutdown), /livez, /readyz (503 until
both champions are loaded), /metrics (Prometheus: a histogram per route, unknown paths under one label,
and `optimum_served_model_version`), configuration and the OpenAPI spec at /docs.json (Swagger UI at /,
/docs redirects there). The API routes themselves are a lean FastAPI app mounted into it
(serving/api.py), behind the request gate of serving/middleware.py (tokens, rate limit, body limits,
request log): BentoML's own per-request path cost about half the throughput (BENCHMARKS.md).

Champions come from the MLflow registry named by the settings (OPTIMUM_HOME, OPTIMUM_MLFLOW_TRACKING_URI),
loaded at start-up and re-checked every `serving.refresh_seconds` so a newly promoted champion is picked
up without a restart. The lead scorer (/leads, /score_lead) is optional: readiness waits for the
recommender and the forecaster only. The service starts without champions too; the routes that need a missing one
answer 503 with a JSON reason. Every answer but a 200 is JSON with an "error" string (serving/api.py
lists the statuses per route). Deployment knobs are `Settings.serving` (OPTIMUM_SERVING_*), read when
this module is imported, before BentoML starts its workers.

The closed loop: POST /interactions records user events durably for ingestion (serving/capture.py);
every /recommend, /similar_items and /forecast answer carries a request_id (its X-Request-ID), its A/B
variant and the lineage of its model, and is logged durably before it leaves (serving/prediction_log.py); with
`serving.ab_challenger_share` > 0 the registry's challenger answers that share of users (serving/ab.py).
"""

from __future__ import annotations

import gc
import logging
import threading

import bentoml
from starlette.middleware.cors import CORSMiddleware

from optimum.settings import ServingSettings, Settings
from serving import bentoml_patches
from serving.ab import RecommenderExperiment
from serving.api import ROUTES, api, publish_limits
from serving.capture import InteractionCapture
from serving.engine import ServingState
from serving.middleware import OPEN_PATHS, ApiGateway
from serving.models import load_champions
from serving.openapi import OpenApiMiddleware
from serving.prediction_log import LineageCache, PredictionLog

logger = logging.getLogger(f"bentoml.{__name__}")  # under bentoml, so its server log handlers apply

SETTINGS = Settings()


def service_config(serving: ServingSettings) -> dict:
    """BentoML settings. BentoML's access log and OpenTelemetry spans on the API routes are off unless asked
    for: together they cost about as much CPU as answering (the gate's JSON request log stays on)."""
    config: dict = {
        "workers": serving.workers,
        "traffic": {"timeout": serving.request_timeout_seconds},
        "logging": {"access": {"enabled": serving.access_log, "skip_paths": sorted(OPEN_PATHS)}},
    }
    if not serving.tracing:
        config["tracing"] = {"excluded_urls": [*ROUTES, *OPEN_PATHS]}
    return config


def _freeze_heap() -> None:
    """Move everything loaded so far (mlflow, pandas, the models) out of the garbage collector's reach.

    Otherwise every full collection walks millions of long-lived objects, a pause of tens of ms that
    lands on whichever requests are in flight (it dominated p99 under load)."""
    gc.collect()
    gc.freeze()


def _version_gauge():
    """Created in the worker, after BentoML pointed prometheus_client at its multiprocess directory."""
    from prometheus_client import Gauge

    return Gauge(
        "optimum_served_model_version",
        "1 for each model version a champion is served from (0 once replaced)",
        ["model", "version"],
        multiprocess_mode="livemax",
    )


@bentoml.service(**service_config(SETTINGS.serving))
@bentoml.asgi_app(api, path="/")
class RecommenderService:
    """Serves the registered champions of optimum-recommender, optimum-demand-forecaster and, when there is
    one, optimum-lead-scorer."""

    def __init__(self) -> None:
        self.tracking_uri = SETTINGS.tracking_uri
        self.refresh_seconds = SETTINGS.serving.refresh_seconds
        self.versions = _version_gauge()
        serving = SETTINGS.serving
        self.capture = InteractionCapture(
            SETTINGS.landing_dir, serving.interactions_max_batch, serving.spool_max_bytes, serving.spool_max_seconds
        )
        self.prediction_log = PredictionLog(SETTINGS.landing_dir, serving.spool_max_bytes, serving.spool_max_seconds)
        self.spools = [self.capture.spool, self.prediction_log.spool]
        self.lineage = LineageCache(self.tracking_uri)
        self.experiment = RecommenderExperiment(self.tracking_uri, serving.ab_challenger_share)
        self.state = ServingState.build(load_champions(self.tracking_uri))
        self.lineage.prime(self.state.champions)
        self._refresh_challenger()
        self._served: dict[str, str | None] = {}
        self._log_state()
        api.state.service, api.state.settings = self, SETTINGS
        _freeze_heap()
        self._stop = threading.Event()
        if self.refresh_seconds > 0:
            threading.Thread(target=self._refresh_loop, name="champion-refresh", daemon=True).start()
        threading.Thread(target=self._rotate_loop, name="spool-rotation", daemon=True).start()

    def _rotate_loop(self) -> None:
        """Close spool files that reached their age even when no request comes, so ingestion sees them."""
        while not self._stop.wait(1.0):
            for spool in self.spools:
                try:
                    spool.rotate_if_old()
                except OSError:
                    logger.exception("could not close spool file in %s", spool.directory)

    def _log_state(self) -> None:
        publish_limits(self.state)
        for name, version in self.state.champions.versions().items():
            if version is None:
                logger.warning("no champion for %s: %s", name, self.state.champions.missing.get(name))
            else:
                logger.info("serving %s version %s", name, version)
            previous = self._served.get(name)
            if previous is not None and previous != version:
                self.versions.labels(model=name, version=previous).set(0)
            if version is not None:
                self.versions.labels(model=name, version=version).set(1)
            self._served[name] = version

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
                self.lineage.prime(state.champions)
                self.state = state
                self._log_state()
                _freeze_heap()
        self._refresh_challenger()

    def _refresh_challenger(self) -> None:
        self.experiment.refresh(self.state.champions.recommender)
        if (challenger := self.experiment.engine) is not None:
            self.lineage.get(challenger.champion.name, challenger.version, challenger.champion.run_id)

    @bentoml.on_shutdown
    def _shutdown(self) -> None:
        self._stop.set()
        for spool in self.spools:
            spool.close()

    def __is_ready__(self) -> bool:
        return self.state.champions.complete


if SETTINGS.serving.cors_allow_list:  # outside the gate, so refusals carry CORS headers and preflights pass
    RecommenderService.add_asgi_middleware(
        CORSMiddleware,
        allow_origins=SETTINGS.serving.cors_allow_list,
        allow_methods=["POST"],
        allow_headers=["Authorization", "Content-Type", "X-Request-ID"],
        expose_headers=["X-Request-ID", "X-Model-Version", "Retry-After"],
    )
RecommenderService.add_asgi_middleware(ApiGateway, routes=ROUTES, settings=SETTINGS)
RecommenderService.add_asgi_middleware(
    OpenApiMiddleware, bentoml_spec=lambda: RecommenderService.openapi_spec.asdict(), limits=SETTINGS.serving
)
bentoml_patches.collapse_unknown_metric_paths(frozenset({*ROUTES, *OPEN_PATHS, "/", "/docs.json", "/docs"}))
