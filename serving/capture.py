"""POST /interactions: record what users do, durably, in the landing contract's interactions format.

The body is one event object or `{"events": [...]}` with up to `max_batch` events (Settings
`interactions_max_batch`, 1,000 by default). Fields are the landing contract's: user_id, product_id,
interaction_type (view | like | cart | purchase), timestamp (ISO 8601; naive means UTC; absent means
the time the service received it), and optional rating (1-5), session_id and event_id (generated when
absent). An event_id seen before by this process is accepted once and counted as a duplicate; one that
reaches ingestion twice (a client retrying across a restart) is quarantined there as a duplicate, so
raw.interactions holds every event exactly once.

Answers: 202 {"accepted", "duplicates", "event_ids"} once the events are fsync'd to the spool under
landing/interactions/ (serving/spool.py); 400 {"error", "invalid": [{"index", "event_id", "reasons"}]}
when any event is invalid, and then nothing of the batch is recorded; 405 / 413 / 415 for a wrong method,
a body over `max_body` bytes or a body that is not JSON.
"""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections import OrderedDict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from serving.spool import Spool

ROUTE = "/interactions"
# The landing contract (orchestration/landing/contract.py INTERACTIONS; tests/unit/test_capture.py keeps
# them equal): serving does not import the orchestration package.
COLUMNS = ("event_id", "user_id", "product_id", "interaction_type", "rating", "timestamp", "session_id")
INTERACTION_TYPES = ("view", "like", "cart", "purchase")
MAX_ID_LENGTH = 128
MAX_BODY = 4 * 1024 * 1024  # a full batch of long events, with room to spare
SEEN_EVENT_IDS = 1_000_000  # event ids remembered for de-duplication (about 100 MB at most)


def _text_reason(name: str, value: Any, required: bool) -> str | None:
    if value is None or value == "":
        return f"{name} is required" if required else None
    if not isinstance(value, str):
        return f"{name} must be a string, got {type(value).__name__}"
    if not value.strip():
        return f"{name} is blank" if required else None
    if len(value) > MAX_ID_LENGTH:
        return f"{name} is longer than {MAX_ID_LENGTH} characters"
    if any(ch < " " for ch in value):
        return f"{name} contains control characters"
    return None


def _timestamp(value: Any, received_at: datetime) -> tuple[str | None, str | None]:
    """(ISO timestamp in UTC, reason): absent means the time of receipt; naive means UTC."""
    if value is None:
        return received_at.isoformat(), None
    if not isinstance(value, str):
        return None, f"timestamp must be an ISO 8601 string, got {type(value).__name__}"
    try:
        stamp = datetime.fromisoformat(value.strip())
    except ValueError:
        return None, f"timestamp {value[:40]!r} is not ISO 8601"
    if not 1970 <= stamp.year <= 2999:
        return None, f"timestamp {value[:40]!r} is out of range"
    stamp = stamp.replace(tzinfo=UTC) if stamp.tzinfo is None else stamp.astimezone(UTC)
    return stamp.replace(tzinfo=None).isoformat(), None


def validate_event(event: Any, received_at: datetime) -> tuple[dict[str, str] | None, list[str]]:
    """(row of landing-contract strings, []) for a valid event, (None, reasons) otherwise."""
    if not isinstance(event, dict):
        return None, [f"an event must be a JSON object, got {type(event).__name__}"]
    reasons = [f"unknown field {name!r}" for name in event if name not in COLUMNS]
    for name, required in (("user_id", True), ("product_id", True), ("event_id", False), ("session_id", False)):
        if reason := _text_reason(name, event.get(name), required):
            reasons.append(reason)
    kind = event.get("interaction_type")
    if kind not in INTERACTION_TYPES:
        reasons.append(f"interaction_type must be one of {', '.join(INTERACTION_TYPES)}, got {kind!r}"[:200])
    rating = event.get("rating")
    if rating is not None and (isinstance(rating, bool) or not isinstance(rating, int | float) or not 1 <= rating <= 5):
        reasons.append(f"rating must be a number from 1 to 5, got {rating!r}"[:200])
    stamp, reason = _timestamp(event.get("timestamp"), received_at)
    if reason:
        reasons.append(reason)
    if reasons:
        return None, reasons
    row = {
        "event_id": (event.get("event_id") or "").strip() or uuid.uuid4().hex,
        "user_id": event["user_id"].strip(),
        "product_id": event["product_id"].strip(),
        "interaction_type": kind,
        "rating": "" if rating is None else repr(float(rating)),
        "timestamp": stamp,
        "session_id": (event.get("session_id") or "").strip(),
    }
    return row, []


def csv_bytes(rows: list[dict[str, str]], header: bool = False) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    if header:
        writer.writerow(COLUMNS)
    writer.writerows([row[column] for column in COLUMNS] for row in rows)
    return buffer.getvalue().encode()


class InteractionCapture:
    """Validates event batches and spools the valid ones; remembers event ids to accept each once."""

    def __init__(self, landing_dir: Path, max_batch: int, max_bytes: int, max_seconds: float):
        self.max_batch = max_batch
        self.spool = Spool(
            Path(landing_dir) / "interactions", "csv", csv_bytes([], header=True), max_bytes, max_seconds
        )
        self._seen: OrderedDict[str, None] = OrderedDict()

    def parse(self, body: Any, received_at: datetime) -> tuple[list[dict[str, str]], list[dict[str, Any]]]:
        """(valid rows, per-event errors) of a request body."""
        if isinstance(body, dict) and "events" in body:
            if set(body) != {"events"} or not isinstance(body["events"], list):
                return [], [{"index": None, "reasons": ['a batch is {"events": [event, ...]} and nothing else']}]
            events = body["events"]
        else:
            events = [body]
        if not events:
            return [], [{"index": None, "reasons": ["the batch is empty"]}]
        if len(events) > self.max_batch:
            return [], [{"index": None, "reasons": [f"{len(events)} events: at most {self.max_batch} per request"]}]
        rows, errors = [], []
        for index, event in enumerate(events):
            row, reasons = validate_event(event, received_at)
            if reasons:
                event_id = event.get("event_id") if isinstance(event, dict) else None
                errors.append(
                    {"index": index, "event_id": event_id if isinstance(event_id, str) else None, "reasons": reasons}
                )
            else:
                rows.append(row)
        return rows, errors

    def new_rows(self, rows: list[dict[str, str]]) -> list[dict[str, str]]:
        """Rows whose event_id was not accepted before, nor earlier in the same batch."""
        fresh, batch = [], set()
        for row in rows:
            if row["event_id"] not in self._seen and row["event_id"] not in batch:
                batch.add(row["event_id"])
                fresh.append(row)
        return fresh

    def remember(self, rows: list[dict[str, str]]) -> None:
        """Mark event ids as accepted, once they are durable (two concurrent requests with one event_id
        may both be written: ingestion keeps the first and quarantines the other as a duplicate)."""
        for row in rows:
            self._seen[row["event_id"]] = None
        while len(self._seen) > SEEN_EVENT_IDS:
            self._seen.popitem(last=False)

    async def record(self, body: Any) -> JSONResponse:
        rows, errors = self.parse(body, datetime.now(UTC).replace(tzinfo=None))
        if errors:
            bad = sum(1 for e in errors if e["index"] is not None)
            message = f"{bad} invalid event(s); nothing was recorded" if bad else errors[0]["reasons"][0]
            return JSONResponse({"error": message, "invalid": errors}, status_code=400)
        fresh = self.new_rows(rows)
        await anyio.to_thread.run_sync(self.spool.append, csv_bytes(fresh))
        self.remember(fresh)
        return JSONResponse(
            {
                "accepted": len(fresh),
                "duplicates": len(rows) - len(fresh),
                "event_ids": [row["event_id"] for row in rows],
            },
            status_code=202,
        )


class CaptureMiddleware:
    """Answers POST /interactions itself (before BentoML's per-route machinery); passes everything else on.

    `capture` is a zero-argument callable returning the InteractionCapture, so the spool is opened in
    the worker process that serves requests, not in the one that imports the service."""

    def __init__(self, app: ASGIApp, capture, max_body: int = MAX_BODY):
        self.app = app
        self.capture = capture
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != ROUTE:
            return await self.app(scope, receive, send)
        response = await self._answer(scope, receive)
        await response(scope, receive, send)

    async def _answer(self, scope: Scope, receive: Receive) -> JSONResponse:
        if scope["method"] != "POST":
            return JSONResponse(
                {"error": f"{scope['method']} is not allowed on {ROUTE}: POST a JSON body"},
                status_code=405,
                headers={"Allow": "POST"},
            )
        headers = dict(scope["headers"])
        content_type = headers.get(b"content-type", b"application/json").split(b";")[0].strip().lower()
        if content_type != b"application/json":
            return JSONResponse(
                {"error": f"unsupported Content-Type {content_type.decode('latin-1')!r}: send application/json"},
                status_code=415,
            )
        too_large = JSONResponse(
            {"error": f"request body too large: at most {self.max_body} bytes of JSON"}, status_code=413
        )
        length = headers.get(b"content-length", b"")
        if length and (not length.isdigit() or int(length) > self.max_body):
            return too_large
        chunks, size = [], 0
        while True:
            message = await receive()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                return too_large
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        try:
            body = json.loads(b"".join(chunks))
        except (ValueError, UnicodeDecodeError) as exc:
            return JSONResponse({"error": f"the body is not valid JSON: {exc}"[:300]}, status_code=400)
        return await self.capture().record(body)
