"""The API routes: a lean FastAPI app that BentoML mounts (serving/service.py), and its exact OpenAPI spec.

The request gate (serving/middleware.py) calls each route's `answer` (ROUTES) with the body it read and
bounded, and the request id (X-Request-ID); the route parses the body with orjson, checks nesting and
sizes, validates it with the pydantic request model of serving/schemas.py and answers bytes serialized
once. A 200 for a body already answered under the same models comes from the state's response cache
(serving/engine.py `ServingState.responses`, dropped with the state when a champion changes), so a
repeated question costs a dict lookup. Logged answers (/recommend, /similar_items, /forecast) take the
same path: the cache keeps their JSON and their prediction-log line without the request id, and every
answer, a cached one too, is logged under its own request id before it leaves, which is spliced into both.
No FastAPI routing, body or response-model machinery runs per request: the FastAPI app
carries the spec of the bodies, declared here in OpenAPI 3.0 terms (nullable, no $defs); serving/openapi.py
adds every other status a route can answer and the examples.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response
from pydantic import BaseModel, ValidationError

from ml.leads.package import LEAD_SCORER_MODEL_NAME
from ml.packaging import FORECASTER_MODEL_NAME, RECOMMENDER_MODEL_NAME, HorizonTooLarge
from ml.recommend import UnknownItemError
from ml.registry import CHAMPION
from ml.search import InvalidQuery
from optimum.settings import MAX_FORECAST_HORIZON
from serving import capture
from serving.engine import ServingState
from serving.leads import LeadsRequest, LeadsResponse, ScoreLeadRequest, ScoreLeadResponse
from serving.prediction_log import log_fields, new_request_id
from serving.schemas import (
    ForecastRequest,
    ForecastResponse,
    InsightsRequest,
    InsightsResponse,
    InteractionsResponse,
    RecommendRequest,
    RecommendResponse,
    SearchRequest,
    SearchResponse,
    SimilarItemsRequest,
    SimilarItemsResponse,
)

CACHEABLE_BODY = 512  # bytes: longer bodies are answered without the response cache

api = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)


class Answer(Exception):
    """A non-200 answer raised from anywhere in a route: status, message and extra fields."""

    def __init__(self, status: int, message: str, **extra: Any):
        self.status, self.body = status, {"error": message, **extra}


@dataclass(frozen=True)
class Reply:
    """An answer already serialized: what the gate sends as two ASGI messages, and what the cache keeps.

    A logged answer also has `log`: its prediction-log fields but the request id and time (serving/
    prediction_log.py); its body then lacks the request id, which `for_request` adds."""

    status: int
    body: bytes
    headers: tuple[tuple[bytes, bytes], ...] = ()
    log: bytes | None = None

    def for_request(self, request_id: str) -> Reply:
        """The answer to one request: the request id (the gate's X-Request-ID, JSON-safe) first in the body."""
        return replace(self, body=b'{"request_id":"' + request_id.encode() + b'",' + self.body[1:], log=None)

    @classmethod
    def json(cls, status: int, content: Any, model_version: str | None = None) -> Reply:
        headers = ((b"x-model-version", model_version.encode()),) if model_version is not None else ()
        return cls(status, orjson.dumps(content), headers)

    @property
    def raw_headers(self) -> list[tuple[bytes, bytes]]:
        return [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(self.body)).encode()),
            *self.headers,
        ]

    def response(self) -> Response:
        response = Response(self.body, status_code=self.status)
        response.raw_headers = self.raw_headers
        return response


@dataclass(frozen=True)
class ApiRoute:
    """A POST route: the token scope it needs, the function answering a request body and request id, and
    the ServingSettings field that bounds its body."""

    path: str
    scope: str
    answer: Callable[[bytes, str], Awaitable[Reply]]
    body_limit: str = "max_body_bytes"


ROUTES: dict[str, ApiRoute] = {}
REQUEST_SCHEMAS: dict[str, dict[str, Any]] = {}  # path -> the request body schema the spec publishes


# --- parsing --------------------------------------------------------------------------------------------


def _check_bounds(value: Any, depth: int, max_depth: int, max_items: int) -> None:
    if isinstance(value, dict | list):
        if depth > max_depth:
            raise Answer(400, f"request body nested deeper than {max_depth} levels")
        if len(value) > max_items:
            raise Answer(400, f"request body has a list or object of {len(value)} entries: at most {max_items}")
        for child in value.values() if isinstance(value, dict) else value:
            _check_bounds(child, depth + 1, max_depth, max_items)


def settings():
    return api.state.settings


def load_json(body: bytes) -> Any:
    """The body's JSON value, or Answer(400)."""
    if not body.strip():
        raise Answer(400, "the request body is empty: send a JSON object")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise Answer(400, f"Invalid JSON: {error}") from None


def parse(body: bytes, model: type[BaseModel]) -> BaseModel:
    """The body as `model`, or Answer(400) that says why (pydantic's reasons in `detail`)."""
    value = load_json(body)
    serving = settings().serving
    _check_bounds(value, 1, serving.max_json_depth, serving.max_json_items)
    try:
        return model.model_validate_json(body)  # JSON-mode rules and messages ("Input should be an object")
    except ValidationError as error:
        detail = [
            {
                "loc": [str(part) if not isinstance(part, int) else part for part in e["loc"]],
                "msg": e["msg"],
                "type": e["type"],
            }
            for e in error.errors(include_url=False, include_input=False, include_context=False)
        ]
        count = error.error_count()  # "1 validation error for recommend request": the request named in words
        raise Answer(400, f"{count} validation error{'s' * (count != 1)} for {error.title}", detail=detail) from None


def state() -> ServingState:
    return api.state.service.state


def no_champion(name: str) -> Answer:
    reason = state().champions.missing.get(name, "not loaded")
    picked_up = (
        "the service picks it up without a restart."
        if settings().serving.refresh_seconds > 0
        else "restart the service."
    )
    return Answer(
        503,
        f"no champion is registered yet for {name!r} (alias {CHAMPION!r}): {reason}. Train and register "
        f"one; {picked_up}",
        model=name,
    )


def unknown_product(product_id: str, what: str) -> Answer:
    return Answer(404, f"unknown product_id {product_id!r}: {what}", product_id=product_id)


# --- OpenAPI 3.0 --------------------------------------------------------------------------------------


def openapi30(model: type[BaseModel]) -> dict[str, Any]:
    """The model's JSON schema in OpenAPI 3.0 terms: $defs inlined, `X | None` as nullable (null listed in
    an enum)."""
    schema = model.model_json_schema()
    definitions = schema.pop("$defs", {})

    def convert(node: Any) -> Any:
        if isinstance(node, list):
            return [convert(child) for child in node]
        if not isinstance(node, dict):
            return node
        if "$ref" in node:
            return convert(definitions[node["$ref"].rsplit("/", 1)[-1]])
        node = {key: convert(value) for key, value in node.items()}
        options = node.get("anyOf")
        if options and {"type": "null"} in options:
            rest = [option for option in options if option != {"type": "null"}]
            node.pop("anyOf")
            base = rest[0] if len(rest) == 1 else {"anyOf": rest}
            if "enum" in base:  # OpenAPI 3.0: `nullable` does not extend an enum, null must be listed
                base = {**base, "enum": [*base["enum"], None]}
            node = {**base, **node, "nullable": True}
        return node

    return convert(schema)


def route(
    path: str,
    scope: str,
    request_schema: dict[str, Any] | type[BaseModel],
    response_model: type[BaseModel],
    cacheable: bool = True,
    ok: int = 200,
    body_limit: str = "max_body_bytes",
) -> Callable[[Callable[[bytes], Awaitable[Reply]]], ApiRoute]:
    """Register a POST route: in ROUTES for the gate, and in the FastAPI app for its spec (the `ok` answer
    and the request body; serving/openapi.py adds every other status and the examples). Answer exceptions
    become JSON answers, and a 200 is kept in the state's response cache unless the route is not
    `cacheable`. A logged answer (Reply.log) is logged under the request id, a cached one too, and then
    carries it."""

    def register(handler: Callable[[bytes], Awaitable[Reply]]) -> ApiRoute:
        async def answer(body: bytes, request_id: str) -> Reply:
            current = state()
            # The challenger's version is in the key: it can change without a new state.
            cached = cacheable and len(body) <= CACHEABLE_BODY
            key = (path, body, api.state.service.experiment.version) if cached else None
            reply = current.responses.get(key) if key is not None else None
            if reply is None:
                try:
                    reply = await handler(body)
                except Answer as refused:
                    reply = Reply.json(refused.status, refused.body)
                if key is not None and reply.status == 200:
                    current.responses.put(key, reply)
            if reply.log is not None:
                await api.state.service.prediction_log.record(request_id, reply.log)
                return reply.for_request(request_id)
            return reply

        async def endpoint(request: Request) -> Response:  # the app on its own; behind the gate, never reached
            return (await answer(await request.body(), new_request_id())).response()

        endpoint.__name__, endpoint.__doc__ = handler.__name__, handler.__doc__
        schema = openapi30(response_model)
        responses = {ok: {"description": "OK", "content": {"application/json": {"schema": schema}}}}
        REQUEST_SCHEMAS[path] = request_schema if isinstance(request_schema, dict) else openapi30(request_schema)
        api.add_api_route(
            path,
            endpoint,
            methods=["POST"],
            name=handler.__name__,
            response_class=Response,
            status_code=ok,
            responses=responses,
            openapi_extra={
                "requestBody": {"required": True, "content": {"application/json": {"schema": REQUEST_SCHEMAS[path]}}}
            },
        )
        ROUTES[path] = ApiRoute(path, scope, answer, body_limit)
        return ROUTES[path]

    return register


def publish_limits(current: ServingState) -> None:
    """Put what the loaded champions allow into the spec (it is generated per /docs.json request): the
    largest /forecast horizon is the forecaster champion's."""
    horizon = REQUEST_SCHEMAS["/forecast"]["properties"]["horizon"]
    horizon["maximum"] = MAX_FORECAST_HORIZON if current.forecaster is None else current.forecaster.horizon


def logged(content: dict, endpoint: str, caller_id: str, engine, variant: str, items: list[tuple[str, Any]]) -> Reply:
    """A 200 that is logged: the answer with its variant and lineage, and its prediction-log fields."""
    champion = engine.champion
    lineage = api.state.service.lineage.get(champion.name, champion.version, champion.run_id)
    content |= {"variant": variant, "lineage": lineage.as_dict()}
    log = log_fields(endpoint, caller_id, variant, lineage, items)
    return replace(Reply.json(200, content, engine.version), log=log)


def _scored(items: list[dict]) -> list[tuple[str, Any]]:
    return [(item["product_id"], item["score"]) for item in items]


# --- routes -------------------------------------------------------------------------------------------


@route("/recommend", "predict", RecommendRequest, RecommendResponse)
async def recommend(body: bytes) -> Reply:
    """Top `count` products for a customer, best first; a customer the model never saw gets the popular
    items, with cold_start true. With an A/B test on, the challenger answers its share of customers."""
    ask = parse(body, RecommendRequest)
    champion = state().recommender
    if champion is None:
        raise no_champion(RECOMMENDER_MODEL_NAME)
    variant, engine = api.state.service.experiment.arm(ask.user_id, champion)
    cold_start, items = engine.recommend(ask.user_id, ask.count)
    content = {"user_id": ask.user_id, "model_version": engine.version, "cold_start": cold_start, "items": items}
    return logged(content, "/recommend", ask.user_id, engine, variant, _scored(items))


@route("/similar_items", "predict", SimilarItemsRequest, SimilarItemsResponse)
async def similar_items(body: bytes) -> Reply:
    """The `count` products most similar to one product (bought or viewed by the same customers)."""
    ask = parse(body, SimilarItemsRequest)
    engine = state().recommender
    if engine is None:
        raise no_champion(RECOMMENDER_MODEL_NAME)
    try:
        items = engine.similar_items(ask.product_id, ask.count)
    except UnknownItemError:
        raise unknown_product(ask.product_id, "the recommender has no interactions with it") from None
    content = {"product_id": ask.product_id, "model_version": engine.version, "items": items}
    return logged(content, "/similar_items", ask.product_id, engine, "champion", _scored(items))


@route("/forecast", "predict", ForecastRequest, ForecastResponse)
async def forecast(body: bytes) -> Reply:
    """Demand forecast of one product for the next `horizon` periods, with its 80% interval."""
    ask = parse(body, ForecastRequest)
    engine = state().forecaster
    if engine is None:
        raise no_champion(FORECASTER_MODEL_NAME)
    try:
        found = engine.forecast(ask.product_id, ask.horizon)
    except HorizonTooLarge as exc:
        raise Answer(400, str(exc), max_horizon=exc.horizon, freq=exc.freq) from None
    except UnknownItemError:
        raise unknown_product(ask.product_id, "no forecast: the product is unknown or has never sold") from None
    content = {"product_id": ask.product_id, "model_version": engine.version, "freq": engine.freq, **found}
    periods = [(str(period["period_start"]), period["yhat"]) for period in found["periods"]]
    return logged(content, "/forecast", ask.product_id, engine, "champion", periods)


@route("/insights", "predict", InsightsRequest, InsightsResponse)
async def insights(body: bytes) -> Reply:
    """Restock, spike and decline alerts from the forecast: one product's, or all of them."""
    ask = parse(body, InsightsRequest)
    engine = state().forecaster
    if engine is None:
        raise no_champion(FORECASTER_MODEL_NAME)
    try:
        rows = engine.insights(ask.product_id)
    except UnknownItemError:
        raise unknown_product(ask.product_id, "not in the forecaster's catalog") from None
    content = {"model_version": engine.version, "product_id": ask.product_id, "insights": rows}
    return Reply.json(200, content, engine.version)


@route("/search", "predict", SearchRequest, SearchResponse)
async def search(body: bytes) -> Reply:
    """Products whose name, category or brand match the words of `q` (BM25), best first; with a known
    `user_id`, re-ranked by the recommender's scores for that customer (both scores shown per item)."""
    ask = parse(body, SearchRequest)
    engine = state().recommender
    if engine is None:
        raise no_champion(RECOMMENDER_MODEL_NAME)
    weight = settings().serving.search_personal_weight
    try:
        personalized, items = engine.search(ask.q, ask.user_id, ask.count, weight)
    except InvalidQuery as exc:
        raise Answer(400, f"invalid query: {exc}") from None
    content = {
        "q": ask.q,
        "user_id": ask.user_id,
        "personalized": personalized,
        "personal_weight": weight,
        "model_version": engine.version,
        "items": items,
    }
    return Reply.json(200, content, engine.version)


@route("/leads", "predict", LeadsRequest, LeadsResponse)
async def leads(body: bytes) -> Reply:
    """Scored leads, best first, filtered by min_score, status, city and category, one page at a time."""
    ask = parse(body, LeadsRequest)
    engine = state().lead_scorer
    if engine is None:
        raise no_champion(LEAD_SCORER_MODEL_NAME)
    return Reply.json(200, engine.leads(ask), engine.version)


@route("/score_lead", "predict", ScoreLeadRequest, ScoreLeadResponse)
async def score_lead(body: bytes) -> Reply:
    """Score one posted lead record with the champion lead scorer: 0-100 and the reasons."""
    ask = parse(body, ScoreLeadRequest)
    engine = state().lead_scorer
    if engine is None:
        raise no_champion(LEAD_SCORER_MODEL_NAME)
    return Reply.json(200, engine.score(ask), engine.version)


@route(
    capture.ROUTE,
    "interactions",
    capture.request_schema(),
    InteractionsResponse,
    cacheable=False,
    ok=202,
    body_limit="interactions_max_body_bytes",
)
async def interactions(body: bytes) -> Reply:
    """Record one user event or a batch of them (`{"events": [...]}`) for ingestion: answered 202 once they
    are durable; 400 with the reasons of each invalid event, and then nothing of the batch is recorded."""
    status, content = await api.state.service.capture.record(load_json(body))
    return Reply.json(status, content)
