"""The gate every request passes before the API answers it: bounded work, who may call, and a log line.

For every HTTP request: an `X-Request-ID` (the caller's if it is sane, else a new one) echoed in the
answer, and one JSON log line (request id, token name, route, status, latency, model version). Probes
and /metrics pass without further checks.

On the API routes, in this order, each refusal a JSON {"error": ...} answer:
- 405 for a method other than POST (with Allow), 415 for a Content-Type other than application/json;
- 401 without a valid `Authorization: Bearer` token where tokens are required, or with an unknown one;
  403 for a token whose scope does not cover the route;
- 429 + Retry-After when the caller's token bucket is empty (serving/limits.py);
- 413 for a body over the route's limit (`max_body_bytes`; POST /interactions has its own,
  `interactions_max_body_bytes`, for batches of events): refused from Content-Length before reading, and a
  chunked body is read only until it passes the limit, so a worker never holds more than that of one request;
- past `max_in_flight` API requests answered at once by the worker, a request waits in line (first come,
  first served) for a slot; 503 + Retry-After when `max_queued` already wait (serving/limits.py Admission).
  Counted from the end of the body read to the last byte of the answer, so a slow client sending its body
  holds no slot.
The body read here goes straight to the route's answer function (serving/api.py ROUTES), with the request
id, which the answer and the prediction log carry: the API routes are dispatched here, without a second
routing pass through BentoML's and FastAPI's routers.

GET /docs redirects to BentoML's Swagger UI at /.
"""

from __future__ import annotations

import logging
import re
import sys
import time
import uuid
from collections.abc import Mapping
from typing import Any

import orjson
from starlette.responses import JSONResponse, RedirectResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serving.auth import Authenticator, Principal, token_store
from serving.limits import Admission, RateLimiter, retry_after_header

METRICS_PATH_KEY = "optimum.path"  # the real path, when the metrics label was collapsed (bentoml_patches)
OPEN_PATHS = frozenset({"/livez", "/healthz", "/readyz", "/metrics"})
_REQUEST_ID = re.compile(rb"^[A-Za-z0-9._:-]{1,128}$")

request_log = logging.getLogger("optimum.requests")


def _json_log_handler() -> None:
    """One JSON object per line on stderr, whatever BentoML does with its own loggers."""
    if not request_log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        request_log.addHandler(handler)
        request_log.setLevel(logging.INFO)
        request_log.propagate = False


def refusal(status: int, message: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def too_large(max_body: int) -> JSONResponse:
    """413, and the connection closed after it: the rest of an oversized body is never read."""
    return refusal(413, f"request body too large: at most {max_body} bytes of JSON", {"Connection": "close"})


def overloaded(admission: Admission) -> JSONResponse:
    """503 at once: the worker's line of requests waiting for a slot is full."""
    return refusal(
        503,
        f"overloaded: {admission.in_flight} requests in progress and {admission.queued} waiting in this worker, "
        "retry shortly",
        {"Retry-After": "1"},
    )


class PayloadTooLarge(Exception):
    pass


class ApiGateway:
    def __init__(self, app: ASGIApp, routes: Mapping[str, Any], settings) -> None:
        """`routes`: path -> serving.api.ApiRoute (its token `scope` and `answer(body) -> Reply`)."""
        self.app = app
        self.routes = dict(routes)
        serving = settings.serving
        # path -> its body limit: the ServingSettings field the route names
        self.max_bodies = {path: getattr(serving, route.body_limit) for path, route in self.routes.items()}
        self.auth = Authenticator(token_store(settings), required=settings.environment == "production")
        self.limiter = RateLimiter(serving.rate_per_second, serving.rate_burst)
        self.admission = Admission(serving.max_in_flight, serving.max_queued)
        _json_log_handler()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        if METRICS_PATH_KEY in scope:
            scope["path"] = scope.pop(METRICS_PATH_KEY)
        path = scope["path"]
        if path in OPEN_PATHS:
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        request_id = _request_id(scope)
        outcome = {"status": 500, "model_version": None}

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                outcome["status"] = message["status"]
                headers = message.setdefault("headers", [])
                for name, value in headers:
                    if name == b"x-model-version":
                        outcome["model_version"] = value.decode("latin-1")
                headers.append((b"x-request-id", request_id))
            await send(message)

        principal: Principal | None = None
        try:
            if path in ("/docs", "/docs/"):
                return await RedirectResponse("/", status_code=307)(scope, receive, send_with_id)
            route = self.routes.get(path)
            if route is None:
                return await self.app(scope, receive, send_with_id)
            max_body = self.max_bodies[path]
            principal, response = self._check(scope, route.scope, max_body)
            if response is None:
                try:
                    body = await self._read_body(receive, max_body)
                except PayloadTooLarge:
                    response = too_large(max_body)
            if response is None and not await self.admission.enter():
                response = overloaded(self.admission)
            if response is not None:
                return await response(scope, receive, send_with_id)
            try:
                reply = await route.answer(body, request_id.decode("latin-1"))
                await send_with_id(
                    {"type": "http.response.start", "status": reply.status, "headers": reply.raw_headers}
                )
                await send_with_id({"type": "http.response.body", "body": reply.body})
            finally:
                self.admission.leave()
        finally:
            label = path if path in self.routes or path in ("/", "/docs.json") else "/{other}"
            request_log.info(
                orjson.dumps(
                    {
                        "event": "request",
                        "request_id": request_id.decode("latin-1"),
                        "token": principal.name if principal else None,
                        "method": scope["method"],
                        "route": label,
                        "status": outcome["status"],
                        "latency_ms": round((time.perf_counter() - started) * 1000, 3),
                        "model_version": outcome["model_version"],
                    }
                ).decode()
            )

    def _check(self, scope: Scope, scope_needed: str, max_body: int) -> tuple[Principal | None, JSONResponse | None]:
        if scope["method"] != "POST":
            return None, refusal(
                405, f"{scope['method']} is not allowed on {scope['path']}: POST a JSON body", {"Allow": "POST"}
            )
        content_type = length = authorization = b""
        for name, value in scope["headers"]:
            if name == b"content-type":
                content_type = value.split(b";", 1)[0].strip().lower()
            elif name == b"content-length":
                length = value
            elif name == b"authorization":
                authorization = value
        if content_type != b"application/json":
            shown = content_type.decode("latin-1") or "none"
            return None, refusal(415, f"unsupported Content-Type {shown!r}: send application/json")
        principal = None
        if authorization:
            scheme, _, token = authorization.decode("latin-1").partition(" ")
            principal = self.auth.principal(token.strip()) if scheme.lower() == "bearer" else None
            if principal is None:
                return None, refusal(401, "invalid API token: send Authorization: Bearer <token>")
        elif self.auth.required:
            return None, refusal(401, "an API token is required: send Authorization: Bearer <token>")
        if principal is not None and not principal.allows(scope_needed):
            return principal, refusal(
                403, f"token {principal.name!r} has scope {principal.scope!r}; {scope['path']} needs {scope_needed!r}"
            )
        caller = principal.name if principal else "address:" + (scope.get("client") or ("?",))[0]
        if wait := self.limiter.retry_after(caller):
            return principal, refusal(
                429,
                f"rate limit of {self.limiter.rate:g} requests/s exceeded",
                {"Retry-After": retry_after_header(wait)},
            )
        if length and (not length.isdigit() or int(length) > max_body):
            return principal, too_large(max_body)
        return principal, None

    async def _read_body(self, receive: Receive, max_body: int) -> bytes:
        """The whole body, or PayloadTooLarge as soon as it passes max_body (the rest is never read)."""
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > max_body:
                raise PayloadTooLarge
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)


def _request_id(scope: Scope) -> bytes:
    for name, value in scope["headers"]:
        if name == b"x-request-id" and _REQUEST_ID.match(value):
            return value
    return uuid.uuid4().hex.encode()
