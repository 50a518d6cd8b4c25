"""The API routes: a lean FastAPI app that BentoML mounts (serving/service.py), and its exact OpenAPI spec.

Each route takes the body serving/middleware.py already read and bounded, parses it with orjson, checks
nesting and sizes, validates it with the pydantic request model of serving/schemas.py and answers bytes
serialized once: a 200 for a body already answered under the same champion comes from the state's
response cache (serving/engine.py `ServingState.responses`, dropped with the state when a champion
changes), so a repeated question costs a dict lookup. No FastAPI body or response model machinery runs
per request; the spec is declared here instead, in OpenAPI 3.0 terms (nullable, no $defs), listing
every status a route can answer.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response
from pydantic import BaseModel, ValidationError

from ml.packaging import FORECASTER_MODEL_NAME, RECOMMENDER_MODEL_NAME
from ml.recommend import UnknownItemError
from ml.search import InvalidQuery
from serving.engine import HorizonTooLarge, ServingState
from serving.middleware import BODY_KEY
from serving.models import CHAMPION_ALIAS
from serving.schemas import (
    ErrorBody,
    ForecastRequest,
    ForecastResponse,
    InsightsRequest,
    InsightsResponse,
    RecommendRequest,
    RecommendResponse,
    SearchRequest,
    SearchResponse,
    SimilarItemsRequest,
    SimilarItemsResponse,
)

CACHEABLE_BODY = 512  # bytes: longer bodies are answered without the response cache

api = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
ROUTE_SCOPES: dict[str, str] = {}  # path -> token scope it needs (serving/auth.py SCOPES)


class Answer(Exception):
    """A non-200 answer raised from anywhere in a route: status, message and extra fields."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None, **extra: Any):
        self.status, self.headers, self.body = status, headers, {"error": message, **extra}


def json_response(status: int, body: Any, model_version: str | None = None, headers=None) -> Response:
    response = Response(orjson.dumps(body), status_code=status, media_type="application/json", headers=headers)
    if model_version is not None:
        response.headers["x-model-version"] = model_version
    return response


# --- parsing --------------------------------------------------------------------------------------------


def _check_bounds(value: Any, depth: int, max_depth: int, max_items: int) -> None:
    if isinstance(value, dict | list):
        if depth > max_depth:
            raise Answer(400, f"request body nested deeper than {max_depth} levels")
        if len(value) > max_items:
            raise Answer(400, f"request body has a list or object of {len(value)} entries: at most {max_items}")
        for child in value.values() if isinstance(value, dict) else value:
            _check_bounds(child, depth + 1, max_depth, max_items)


def parse(request: Request, model: type[BaseModel]) -> BaseModel:
    """The body as `model`, or Answer(400) that says why (pydantic's reasons in `detail`)."""
    body = request.scope[BODY_KEY]
    if not body.strip():
        raise Answer(400, "the request body is empty: send a JSON object")
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise Answer(400, f"Invalid JSON: {error}") from None
    serving = request.app.state.settings.serving
    _check_bounds(value, 1, serving.max_json_depth, serving.max_json_items)
    try:
        return model.model_validate(value)
    except ValidationError as error:
        detail = [
            {"loc": [str(part) if not isinstance(part, int) else part for part in e["loc"]], "msg": e["msg"], "type": e["type"]}
            for e in error.errors(include_url=False, include_input=False, include_context=False)
        ]
        raise Answer(400, "the request body is not valid: see detail", detail=detail) from None


def state(request: Request) -> ServingState:
    return request.app.state.service.state


def no_champion(request: Request, name: str) -> Answer:
    current = state(request)
    reason = current.champions.missing.get(name, "not loaded")
    picked_up = (
        "the service picks it up without a restart."
        if request.app.state.settings.serving.refresh_seconds > 0
        else "restart the service."
    )
    return Answer(
        503,
        f"no champion is registered yet for {name!r} (alias {CHAMPION_ALIAS!r}): {reason}. Train and register "
        f"one; {picked_up}",
        model=name,
    )


def unknown_product(product_id: str, what: str) -> Answer:
    return Answer(404, f"unknown product_id {product_id!r}: {what}", product_id=product_id)


# --- OpenAPI 3.0 --------------------------------------------------------------------------------------


def openapi30(model: type[BaseModel]) -> dict[str, Any]:
    """The model's JSON schema in OpenAPI 3.0 terms: $defs inlined, `X | None` as nullable."""
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
            node = {**base, **node, "nullable": True}
        return node

    return convert(schema)


ERROR_SCHEMA = openapi30(ErrorBody)
ALWAYS = {
    400: "The body is not a valid JSON object for this route (`detail` lists each problem).",
    401: "A token is required (production) or the one sent is unknown.",
    403: "The token's scope does not cover this route.",
    413: "The body is larger than the limit.",
    415: "The Content-Type is not application/json.",
    429: "The token's rate limit is exhausted; see Retry-After.",
    503: "No champion is loaded for this route yet, or the worker is overloaded (see Retry-After).",
}
NOT_FOUND = {404: "The product is unknown to the champion."}


def route(
    path: str, scope: str, request_model: type[BaseModel], response_model: type[BaseModel], errors: dict[int, str]
) -> Callable[[Callable[[Request], Awaitable[Response]]], Callable[[Request], Awaitable[Response]]]:
    """Register a POST route with its spec; Answer exceptions become JSON answers."""

    def register(handler: Callable[[Request], Awaitable[Response]]):
        async def endpoint(request: Request) -> Response:
            try:
                return await handler(request)
            except Answer as answer:
                return json_response(answer.status, answer.body, headers=answer.headers)

        endpoint.__name__ = handler.__name__
        endpoint.__doc__ = handler.__doc__
        responses: dict[int | str, Any] = {
            200: {"description": "OK", "content": {"application/json": {"schema": openapi30(response_model)}}}
        }
        for status, description in sorted((ALWAYS | errors).items()):
            responses[status] = {
                "description": f"{HTTPStatus(status).phrase}: {description}",
                "content": {"application/json": {"schema": ERROR_SCHEMA}},
            }
        api.add_api_route(
            path,
            endpoint,
            methods=["POST"],
            name=handler.__name__,
            response_class=Response,
            responses=responses,
            openapi_extra={
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": openapi30(request_model)}},
                }
            },
        )
        ROUTE_SCOPES[path] = scope
        return endpoint

    return register


def cached(handler: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
    """Serve a 200 already given for the same route, body and champions from the state's response cache."""

    async def answer(request: Request) -> Response:
        body = request.scope[BODY_KEY]
        current = state(request)
        key = (request.scope["path"], body) if len(body) <= CACHEABLE_BODY else None
        if key is not None and (hit := current.responses.get(key)) is not None:
            content, version = hit
            return Response(content, media_type="application/json", headers={"x-model-version": version})
        response = await handler(request)
        if key is not None and response.status_code == 200:
            current.responses.put(key, (response.body, response.headers["x-model-version"]))
        return response

    answer.__name__, answer.__doc__ = handler.__name__, handler.__doc__
    return answer


# --- routes -------------------------------------------------------------------------------------------


@route("/recommend", "predict", RecommendRequest, RecommendResponse, {})
@cached
async def recommend(request: Request) -> Response:
    """Top `count` products for a customer, best first; a customer the model never saw gets the popular
    items, with cold_start true."""
    ask = parse(request, RecommendRequest)
    engine = state(request).recommender
    if engine is None:
        raise no_champion(request, RECOMMENDER_MODEL_NAME)
    cold_start, items = engine.recommend(ask.user_id, ask.count)
    body = {"user_id": ask.user_id, "model_version": engine.version, "cold_start": cold_start, "items": items}
    return json_response(200, body, engine.version)


@route("/similar_items", "predict", SimilarItemsRequest, SimilarItemsResponse, NOT_FOUND)
@cached
async def similar_items(request: Request) -> Response:
    """The `count` products most similar to one product (bought or viewed by the same customers)."""
    ask = parse(request, SimilarItemsRequest)
    engine = state(request).recommender
    if engine is None:
        raise no_champion(request, RECOMMENDER_MODEL_NAME)
    try:
        items = engine.similar_items(ask.product_id, ask.count)
    except UnknownItemError:
        raise unknown_product(ask.product_id, "the recommender has no interactions with it") from None
    return json_response(200, {"product_id": ask.product_id, "model_version": engine.version, "items": items}, engine.version)


@route("/forecast", "predict", ForecastRequest, ForecastResponse, NOT_FOUND)
@cached
async def forecast(request: Request) -> Response:
    """Demand forecast of one product for the next `horizon` periods, with its 80% interval."""
    ask = parse(request, ForecastRequest)
    engine = state(request).forecaster
    if engine is None:
        raise no_champion(request, FORECASTER_MODEL_NAME)
    try:
        found = engine.forecast(ask.product_id, ask.horizon)
    except HorizonTooLarge as exc:
        raise Answer(400, str(exc), max_horizon=exc.horizon, freq=exc.freq) from None
    except UnknownItemError:
        raise unknown_product(ask.product_id, "no forecast: the product is unknown or has never sold") from None
    body = {"product_id": ask.product_id, "model_version": engine.version, "freq": engine.freq, **found}
    return json_response(200, body, engine.version)


@route("/insights", "predict", InsightsRequest, InsightsResponse, NOT_FOUND)
@cached
async def insights(request: Request) -> Response:
    """Restock, spike and decline alerts from the forecast: one product's, or all of them."""
    ask = parse(request, InsightsRequest)
    engine = state(request).forecaster
    if engine is None:
        raise no_champion(request, FORECASTER_MODEL_NAME)
    try:
        rows = engine.insights(ask.product_id)
    except UnknownItemError:
        raise unknown_product(ask.product_id, "not in the forecaster's catalog") from None
    body = {"model_version": engine.version, "product_id": ask.product_id, "insights": rows}
    return json_response(200, body, engine.version)


@route("/search", "predict", SearchRequest, SearchResponse, {})
@cached
async def search(request: Request) -> Response:
    """Products whose name, category or brand match the words of `q` (BM25), best first; with a known
    `user_id`, re-ranked by the recommender's scores for that customer (both scores shown per item)."""
    ask = parse(request, SearchRequest)
    engine = state(request).recommender
    if engine is None:
        raise no_champion(request, RECOMMENDER_MODEL_NAME)
    weight = request.app.state.settings.serving.search_personal_weight
    try:
        personalized, items = engine.search(ask.q, ask.user_id, ask.count, weight)
    except InvalidQuery as exc:
        raise Answer(400, f"invalid query: {exc}") from None
    body = {
        "q": ask.q,
        "user_id": ask.user_id,
        "personalized": personalized,
        "personal_weight": weight,
        "model_version": engine.version,
        "items": items,
    }
    return json_response(200, body, engine.version)
