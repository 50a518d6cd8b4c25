"""A local Places-style search API over real HTTP, for the connector's tests and `make demo`.

It speaks the `POST /v1/places:searchText` shape (JSON body textQuery/pageSize/pageToken, key in the
X-Goog-Api-Key header, `places` + `nextPageToken` back, Google-style {"error": {code, status, message}}
errors) with what makes a paid API hard: a per-key request quota (429 RESOURCE_EXHAUSTED once spent),
page tokens that expire, a wrong key (403 PERMISSION_DENIED), and scripted failures (flaky 503s, 429s
with Retry-After) for tests. It records every request, with its arrival time, as the server saw it.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

logger = logging.getLogger(__name__)

SEARCH_PATH = "/v1/places:searchText"
MAX_PAGE_SIZE = 20


@dataclass(frozen=True)
class FixturePlace:
    """One listing: the area it is found in, the words a query must contain one of (empty: any query), and
    the record exactly as the API returns it (possibly malformed on purpose)."""

    area: str
    terms: tuple[str, ...]
    record: Any


@dataclass
class RecordedRequest:
    path: str
    headers: dict[str, str]
    body: str
    at: float  # time.monotonic() on arrival


@dataclass
class PlacesApi:
    """The server's state; tests script failures and read `requests`."""

    places: list[FixturePlace]
    api_key: str
    quota: int | None = None  # requests the key may make in total; None: unlimited
    base_url: str = ""
    requests: list[RecordedRequest] = field(default_factory=list)
    _tokens: dict[str, tuple[str, int]] = field(default_factory=dict)
    _scripts: deque = field(default_factory=deque)
    _used: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def script(self, status: int, times: int = 1, headers: dict[str, str] | None = None, body: str | None = None):
        """Answer the next `times` searches with `status` (Google-style error body unless `body` is given)."""
        with self._lock:
            self._scripts.extend([(status, headers or {}, body)] * times)

    def expire_tokens(self) -> None:
        """Every page token handed out so far stops working (the API's tokens are short-lived)."""
        with self._lock:
            self._tokens.clear()

    def arrival_times(self) -> list[float]:
        with self._lock:
            return [request.at for request in self.requests]

    def answer(self, headers: dict[str, str], raw_body: bytes) -> tuple[int, dict[str, str], str]:
        with self._lock:
            if self._scripts:
                status, extra, body = self._scripts.popleft()
                return status, extra, body if body is not None else _error(status, "SCRIPTED", "scripted failure")
            if headers.get("x-goog-api-key") != self.api_key:
                return 403, {}, _error(403, "PERMISSION_DENIED", "The provided API key is invalid.")
            if self.quota is not None and self._used >= self.quota:
                return 429, {}, _error(429, "RESOURCE_EXHAUSTED", "Quota exceeded for this API key.")
            self._used += 1
            try:
                request = json.loads(raw_body)
                text = str(request["textQuery"])
                size = min(int(request.get("pageSize", MAX_PAGE_SIZE)), MAX_PAGE_SIZE)
            except (ValueError, KeyError, TypeError):
                return 400, {}, _error(400, "INVALID_ARGUMENT", "textQuery is required.")
            offset = 0
            if token := request.get("pageToken"):
                if token not in self._tokens or self._tokens[token][0] != text:
                    return 400, {}, _error(400, "INVALID_ARGUMENT", "The page token is invalid or has expired.")
                offset = self._tokens.pop(token)[1]
            found = self._matches(text)
            body: dict[str, Any] = {"places": [place.record for place in found[offset : offset + size]]}
            if offset + size < len(found):
                next_token = f"page-{len(self.requests)}-{offset + size}"
                self._tokens[next_token] = (text, offset + size)
                body["nextPageToken"] = next_token
            return 200, {}, json.dumps(body)

    def _matches(self, text: str) -> list[FixturePlace]:
        query, _, area = text.lower().rpartition(" in ")
        words = set(query.split())
        return [
            place
            for place in self.places
            if place.area.lower() == area.strip() and (not place.terms or words & set(place.terms))
        ]


def _error(code: int, status: str, message: str) -> str:
    return json.dumps({"error": {"code": code, "status": status, "message": message}})


def _handler_for(api: PlacesApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            logger.debug("%s - %s", self.address_string(), format % args)

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            headers = {name.lower(): value for name, value in self.headers.items()}
            with api._lock:
                api.requests.append(
                    RecordedRequest(self.path, headers, raw.decode("utf-8", "replace"), time.monotonic())
                )
            if self.path != SEARCH_PATH:
                status, extra, body = 404, {}, _error(404, "NOT_FOUND", f"no route {self.path}")
            else:
                status, extra, body = api.answer(headers, raw)
            payload = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            for name, value in extra.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    return Handler


@contextmanager
def serve_places_api(api: PlacesApi, host: str = "127.0.0.1", port: int = 0) -> Iterator[PlacesApi]:
    """Serve `api` on a free port (port=0) in a background thread; `api.base_url` is set inside the block."""
    server = ThreadingHTTPServer((host, port), _handler_for(api))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    api.base_url = f"http://{host}:{server.server_address[1]}"
    try:
        yield api
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
