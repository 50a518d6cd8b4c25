"""The OpenAPI document of the serving API (Swagger UI at /, spec at /docs.json).

BentoML 1.4.39 builds the spec from the service class: its class name as title, a BentoML README as
description, "None" as version, a BentoML contact, and the same 400/404/500 answers (named after its own
exception classes) on every route. `openapi_document` keeps BentoML's paths and request/response schemas
and replaces the rest with what this API actually does: its title, description and version, request
examples with ids of the demo data (`make demo`, seed 42), and per route every status code it can answer,
each with the one error shape the service uses. `OpenApiMiddleware` serves the result at /docs.json, and
at / a Swagger UI page that shows the title (BentoML's page hides it, and loads Google Tag Manager).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from importlib.metadata import version

from starlette.responses import HTMLResponse, JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from optimum.settings import ServingSettings
from serving import capture
from serving.api import ROUTES as API_ROUTES

TITLE = "Optimum serving API"
DESCRIPTION = """\
Recommendations, similar items, product search, demand forecasts, restock/spike/decline insights and
scored sales leads from the champion models of the Optimum MLflow registry (aliases `champion` of
`optimum-recommender`, `optimum-demand-forecaster` and `optimum-lead-scorer`). Every call is a `POST`
with a JSON body; every answer is JSON, errors included: `{"error": "<what went wrong and how to fix it>",
...}`.

`POST /interactions` records what users do (one event or a batch) for the next ingestion. Every answer
echoes `X-Request-ID` (the caller's, or a new one); recommendations, similar items and forecasts carry it
as `request_id`, the key of their prediction-log entry (`optimum trace REQUEST_ID`).

A new champion is picked up without a restart. `/readyz` answers 200 once the recommender and the
forecaster are loaded (the lead scorer is optional); the routes that need a missing one answer 503.

The examples use ids of the demo data (`make demo`).
"""

# One shape for every error answer (the routes' own, the request validation's and the middleware's).
ERROR_SCHEMA = {
    "type": "object",
    "title": "Error",
    "required": ["error"],
    "properties": {
        "error": {"type": "string", "description": "What went wrong, in words."},
        "detail": {
            "type": "array",
            "items": {"type": "object"},
            "description": "400 on a body that fails validation: one entry per problem (loc, msg, type).",
        },
        "invalid": {
            "type": "array",
            "items": {"type": "object"},
            "description": "400 from POST /interactions: one entry per invalid event (index, event_id, reasons).",
        },
    },
    "additionalProperties": True,
}

INVALID_BODY = "The body is not valid JSON or fails validation (`detail` lists each problem)."


def common_errors(limits: ServingSettings, body_limit: str = "max_body_bytes") -> dict[int, str]:
    """Answers every API route can give, on top of its own (serving/middleware.py, the request timeout);
    `body_limit` is the ServingSettings field bounding the route's body."""
    return {
        400: INVALID_BODY,
        401: "A token is required (OPTIMUM_ENVIRONMENT=production) or the one sent is unknown: send "
        "`Authorization: Bearer <token>` (`optimum token create`).",
        403: "The token's scope does not cover this route.",
        405: "A method other than POST.",
        413: f"A body larger than {getattr(limits, body_limit):,} bytes (OPTIMUM_SERVING_{body_limit.upper()}).",
        415: "A body that is not `application/json`.",
        429: "The token's rate limit (OPTIMUM_SERVING_RATE_PER_SECOND) is used up; `Retry-After` says when to retry.",
        500: "An unexpected server error (the server log has the traceback).",
        504: f"The request took longer than {limits.request_timeout_seconds:g} s.",
    }


NO_CHAMPION = (
    "No champion is loaded for the model this route needs yet (the body says which, and why), or the worker "
    "is overloaded (`Retry-After` says when to retry)."
)

# Per route: its own error answers, and named request examples.
ROUTES: dict[str, dict] = {
    "/interactions": {
        "errors": {
            400: "The body is not JSON, or some events are invalid: `invalid` lists each with its reasons, and "
            "nothing of the batch was recorded.",
            403: "The token's scope does not cover this route: it needs `interactions` or `admin`.",
        },
        "examples": {
            "one event": {"user_id": "U00001", "product_id": "P00001", "interaction_type": "view"},
            "a batch": {
                "events": [
                    {
                        "event_id": "shop-42-1",
                        "user_id": "U00001",
                        "product_id": "P00001",
                        "interaction_type": "purchase",
                        "timestamp": "2024-06-01T12:30:00Z",
                        "session_id": "s-9",
                    },
                    {"user_id": "U00002", "product_id": "P00003", "interaction_type": "like", "rating": 5},
                ]
            },
        },
    },
    "/recommend": {
        "errors": {503: NO_CHAMPION},
        "examples": {
            "known customer": {"user_id": "U00001", "count": 5},
            "new customer (cold start: popular items)": {"user_id": "a-customer-we-never-saw", "count": 3},
        },
    },
    "/similar_items": {
        "errors": {404: "The recommender has no interactions with this product.", 503: NO_CHAMPION},
        "examples": {"a product": {"product_id": "P00001", "count": 5}},
    },
    "/forecast": {
        "errors": {
            400: INVALID_BODY + " Also a horizon past the champion's (`max_horizon` says the largest).",
            404: "The product is unknown or has never sold.",
            503: NO_CHAMPION,
        },
        "examples": {"next four periods": {"product_id": "P00001", "horizon": 4}},
    },
    "/search": {
        "errors": {
            400: INVALID_BODY + " Also a query with no letter or digit, with the reason.",
            503: NO_CHAMPION,
        },
        "examples": {
            "words, any case, accents or small typos": {"q": "brake pads", "count": 5},
            "re-ranked for a customer": {"q": "filter", "user_id": "U00001", "count": 5},
        },
    },
    "/insights": {
        "errors": {404: "The product is not in the forecaster's catalog.", 503: NO_CHAMPION},
        "examples": {"one product": {"product_id": "P00001"}, "every product": {}},
    },
    "/leads": {
        "errors": {503: NO_CHAMPION},
        "examples": {
            "the best leads": {"page_size": 10},
            "qualified repair workshops in one city": {
                "status": "qualified",
                "city": "Springfield",
                "category": "repair workshop",
                "min_score": 50,
            },
        },
    },
    "/score_lead": {
        "errors": {503: NO_CHAMPION},
        "examples": {
            "a name only": {"name": "Smith Motors"},
            "a full record": {
                "name": "Smith Motors",
                "category": "car repair",
                "city": "Springfield",
                "address": "1 Main St",
                "phone": "(555) 123-4567",
                "website": "https://smith-motors.example",
                "rating": 4.5,
                "review_count": 120,
                "n_sources": 2,
                "last_seen_at": "2024-06-01T00:00:00Z",
            },
        },
    },
}

# BentoML's own copy of Swagger UI (static_content/), without its stylesheet that hides the title.
SWAGGER_PAGE = f"""<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="UTF-8">
  <title>{TITLE}</title>
  <link rel="stylesheet" type="text/css" href="./static_content/swagger-ui.css">
  <style>body {{ margin: 0; background: #fafafa; }} .topbar {{ display: none; }}</style>
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="./static_content/swagger-ui-bundle.js" charset="UTF-8"></script>
  <script src="./static_content/swagger-ui-standalone-preset.js" charset="UTF-8"></script>
  <script>
    window.onload = () => {{
      window.ui = SwaggerUIBundle({{
        url: "./docs.json",
        dom_id: "#swagger-ui",
        deepLinking: true,
        presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
        layout: "StandaloneLayout",
      }});
    }};
  </script>
</body>
</html>
"""

ERROR_REF = {"$ref": "#/components/schemas/Error"}
INTERNAL_SUFFIX = "IODescriptor"  # BentoML's name for the request/response models it wraps


def route_statuses(route: str, limits: ServingSettings) -> dict[int, str]:
    """Every status code the route can answer, with what it means (202 for POST /interactions: recorded)."""
    ok = 202 if route == capture.ROUTE else 200
    return {ok: "The answer.", **common_errors(limits, API_ROUTES[route].body_limit), **ROUTES[route]["errors"]}


def openapi_document(bentoml_spec: dict, limits: ServingSettings) -> dict:
    """BentoML's spec with this API's own info, examples, status codes and error shape."""
    spec = json.loads(json.dumps(bentoml_spec))  # a deep copy
    spec["info"] = {"title": TITLE, "description": DESCRIPTION, "version": version("optimum")}
    spec["tags"] = [
        {"name": "Service APIs", "description": "The models' answers."},
        {"name": "Infrastructure", "description": "Probes and Prometheus metrics."},
    ]
    schemas = spec["components"]["schemas"]
    for name in ("InvalidArgument", "NotFound", "InternalServerError", "TaskStatusResponse"):
        schemas.pop(name, None)
    spec["components"]["schemas"] = {name.removesuffix(INTERNAL_SUFFIX): s for name, s in schemas.items()} | {
        "Error": ERROR_SCHEMA
    }
    for schema in spec["components"]["schemas"].values():
        schema["title"] = schema["title"].removesuffix(INTERNAL_SUFFIX)
    for route, documented in ROUTES.items():
        operation = spec["paths"][route]["post"]
        ok = next(answer for status, answer in operation["responses"].items() if status.startswith("2"))
        operation["responses"] = {
            str(status): ok | {"description": meaning}
            if status < 300
            else {"description": meaning, "content": {"application/json": {"schema": ERROR_REF}}}
            for status, meaning in sorted(route_statuses(route, limits).items())
        }
        body = operation["requestBody"]["content"]["application/json"]
        if route == capture.ROUTE:  # the configured batch size
            body["schema"] = capture.request_schema(limits.interactions_max_batch)
        body["examples"] = {name: {"value": value} for name, value in documented["examples"].items()}
        for media in (body, ok["content"]["application/json"]):
            media["schema"]["title"] = media["schema"]["title"].removesuffix(INTERNAL_SUFFIX)
        operation["operationId"] = route.strip("/")
    return spec


class OpenApiMiddleware:
    """Answer GET /docs.json with `openapi_document` (built on first request) and GET / with the Swagger UI
    page; pass everything else on."""

    def __init__(self, app: ASGIApp, bentoml_spec: Callable[[], dict], limits: ServingSettings):
        self.app = app
        self.bentoml_spec = bentoml_spec
        self.limits = limits
        self.document: dict | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("GET", "HEAD"):
            return await self.app(scope, receive, send)
        if scope["path"] == "/docs.json":
            if self.document is None:
                self.document = openapi_document(self.bentoml_spec(), self.limits)
            return await JSONResponse(self.document)(scope, receive, send)
        if scope["path"] == "/":
            return await HTMLResponse(SWAGGER_PAGE)(scope, receive, send)
        return await self.app(scope, receive, send)
