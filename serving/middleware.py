"""Turn the requests BentoML would answer with plain text or a 500 into JSON 4xx answers, and keep
rejected input out of the error log.

On the API routes only: a method other than POST gets 405 (BentoML: plain-text "Method Not Allowed"),
a multipart or form-encoded body 415 (BentoML's multipart parser answers garbage with a 500), a pickle
body 415 with the same {"error": ...} shape as every other error, and a body declared larger than
`max_body` bytes (OPTIMUM_SERVING_MAX_BODY_BYTES) 413 before it is read. GET /docs redirects to
BentoML's Swagger UI at /. Every other request passes through untouched.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from pydantic import ValidationError
from starlette.responses import JSONResponse, RedirectResponse
from starlette.types import ASGIApp, Receive, Scope, Send

# Media types BentoML parses with something other than its JSON serde.
NON_JSON = {b"multipart/form-data", b"application/x-www-form-urlencoded", b"application/vnd.bentoml+pickle"}


class JsonApiMiddleware:
    def __init__(self, app: ASGIApp, routes: Iterable[str], max_body: int):
        self.app = app
        self.routes = frozenset(routes)
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in self.routes:
            if scope["type"] == "http" and scope["path"] in ("/docs", "/docs/"):
                # BentoML serves its Swagger UI at / (spec: /docs.json); /docs is where people look first.
                return await RedirectResponse("/", status_code=307)(scope, receive, send)
            return await self.app(scope, receive, send)
        response = self._reject(scope)
        if response is None:
            return await self.app(scope, receive, send)
        return await response(scope, receive, send)

    def _reject(self, scope: Scope) -> JSONResponse | None:
        if scope["method"] != "POST":
            return JSONResponse(
                {"error": f"{scope['method']} is not allowed on {scope['path']}: POST a JSON body"},
                status_code=405,
                headers={"Allow": "POST"},
            )
        content_type = length = b""
        for name, value in scope["headers"]:
            if name == b"content-type":
                content_type = value.split(b";")[0].strip().lower()
            elif name == b"content-length":
                length = value
        if content_type in NON_JSON:
            return JSONResponse(
                {"error": f"unsupported Content-Type {content_type.decode('latin-1')!r}: send application/json"},
                status_code=415,
            )
        if length and (not length.isdigit() or int(length) > self.max_body):
            return JSONResponse(
                {"error": f"request body too large: at most {self.max_body} bytes of JSON"}, status_code=413
            )
        return None


class ValidationErrorLogFilter(logging.Filter):
    """BentoML logs every request body that fails validation as an ERROR with a traceback (and pydantic's
    message quotes the input). A client's mistake is not a server error: make it one INFO line naming the
    fields and reasons, without the values sent."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, ValidationError):
            reasons = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in error.errors(include_input=False)
            )
            record.msg, record.args = "%s [%s] rejected: %s", (*record.args[:2], reasons)
            record.levelno, record.levelname = logging.INFO, "INFO"
            record.exc_info = record.exc_text = None
        return True


def quiet_validation_errors() -> None:
    """Install ValidationErrorLogFilter on the logger BentoML's request handler reports errors to."""
    target = logging.getLogger("bentoml._internal.server.http_app")
    if not any(isinstance(f, ValidationErrorLogFilter) for f in target.filters):
        target.addFilter(ValidationErrorLogFilter())
