"""POST /interactions: record what users do, durably, in the landing contract's interactions format.

The body is one event object or `{"events": [...]}` with up to `max_batch` events (Settings
`interactions_max_batch`, 1,000 by default). Fields are the landing contract's: user_id, product_id,
interaction_type (view | like | cart | purchase), timestamp (ISO 8601 between 1970 and 2999; naive means
UTC; absent means the time the service received it), and optional rating (1-5), session_id and event_id
(generated when absent). An event_id seen before by this process is accepted once and counted as a
duplicate; one that reaches ingestion twice (a client retrying across a restart) is quarantined there as
a duplicate, so raw.interactions holds every event exactly once.

The route sits behind the request gate like every API route (serving/middleware.py: a token of scope
`interactions` or `admin` where tokens are required, its own body limit `interactions_max_body_bytes`).
Answers: 202 {"accepted", "duplicates", "event_ids"} once the events are fsync'd to the spool under
landing/interactions/ (serving/spool.py); 400 {"error", "invalid": [{"index", "event_id", "reasons"}]}
when any event is invalid, and then nothing of the batch is recorded.

`request_schema` is the OpenAPI statement of exactly these rules (its patterns are the ones the
validation uses), so a body the spec allows is never refused and one it forbids never recorded.
"""

from __future__ import annotations

import csv
import io
import re
import uuid
from collections import OrderedDict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio

from serving.spool import Spool

ROUTE = "/interactions"
# The landing contract (orchestration/landing/contract.py INTERACTIONS; tests/unit/test_capture.py keeps
# them equal): serving does not import the orchestration package.
COLUMNS = ("event_id", "user_id", "product_id", "interaction_type", "rating", "timestamp", "session_id")
INTERACTION_TYPES = ("view", "like", "cart", "purchase")
MAX_ID_LENGTH = 128
SEEN_EVENT_IDS = 1_000_000  # event ids remembered for de-duplication (about 100 MB at most)

# An id, once stripped of surrounding whitespace, is not empty and has no control character; an optional
# one may also be empty or blank (then event_id is generated). `[0-9]`, never `\d`: Python's \d takes any
# Unicode digit.
REQUIRED_ID = r"^\s*[^\x00-\x1f]*[^\x00-\x1f\s][^\x00-\x1f]*\s*$"
OPTIONAL_ID = r"^\s*[^\x00-\x1f]*\s*$"
_YEAR = r"(19[7-9][0-9]|2[0-9]{3})"
_LEAP_YEAR = r"(19(7[26]|8[048]|9[26])|2[0-9](0[48]|[2468][048]|[13579][26])|2[048]00)"
_MONTH_DAY = r"((0[13578]|1[02])-(0[1-9]|[12][0-9]|3[01])|(0[469]|11)-(0[1-9]|[12][0-9]|30)|02-(0[1-9]|1[0-9]|2[0-8]))"
_TIME = r"[T ]([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,6})?)?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])?"
# A calendar date from 1970 to 2999, then optionally a time and an offset: what datetime.fromisoformat
# reads, written out so the spec can state it.
TIMESTAMP = rf"^({_YEAR}-{_MONTH_DAY}|{_LEAP_YEAR}-02-29)({_TIME})?$"
_REQUIRED_ID, _OPTIONAL_ID, _TIMESTAMP = (re.compile(p) for p in (REQUIRED_ID, OPTIONAL_ID, TIMESTAMP))


def _text_reason(name: str, value: Any, required: bool) -> str | None:
    if value is None or value == "":
        return f"{name} is required" if required else None
    if not isinstance(value, str):
        return f"{name} must be a string, got {type(value).__name__}"
    if len(value) > MAX_ID_LENGTH:
        return f"{name} is longer than {MAX_ID_LENGTH} characters"
    if not (_REQUIRED_ID if required else _OPTIONAL_ID).search(value):
        return f"{name} is blank" if not value.strip() else f"{name} contains control characters"
    return None


def _timestamp(value: Any, received_at: datetime) -> tuple[str | None, str | None]:
    """(ISO timestamp in UTC, reason): absent means the time of receipt; naive means UTC."""
    if value is None:
        return received_at.isoformat(), None
    if not isinstance(value, str):
        return None, f"timestamp must be an ISO 8601 string, got {type(value).__name__}"
    if not _TIMESTAMP.search(value):
        return None, f"timestamp {value[:40]!r} is not an ISO 8601 date or date-time from 1970 to 2999"
    stamp = datetime.fromisoformat(value.strip())
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

    async def record(self, body: Any) -> tuple[int, dict[str, Any]]:
        """(status, answer) for a parsed request body: 202 once the new events are durable, else 400."""
        rows, errors = self.parse(body, datetime.now(UTC).replace(tzinfo=None))
        if errors:
            bad = sum(1 for e in errors if e["index"] is not None)
            message = f"{bad} invalid event(s); nothing was recorded" if bad else errors[0]["reasons"][0]
            return 400, {"error": message, "invalid": errors}
        fresh = self.new_rows(rows)
        await anyio.to_thread.run_sync(self.spool.append, csv_bytes(fresh))
        self.remember(fresh)
        return 202, {
            "accepted": len(fresh),
            "duplicates": len(rows) - len(fresh),
            "event_ids": [row["event_id"] for row in rows],
        }


def request_schema(max_batch: int | None = None) -> dict[str, Any]:
    """The request body in OpenAPI 3.0 terms: one event, or a batch of 1..max_batch of them (the published
    spec states the configured maximum: serving/openapi.py)."""

    def text(pattern: str, description: str) -> dict[str, Any]:
        return {"type": "string", "maxLength": MAX_ID_LENGTH, "pattern": pattern, "description": description}

    optional = {"nullable": True}
    event = {
        "title": "interaction event",
        "type": "object",
        "additionalProperties": False,
        "required": ["user_id", "product_id", "interaction_type"],
        "properties": {
            "user_id": text(REQUIRED_ID, "Customer id (surrounding whitespace is dropped)."),
            "product_id": text(REQUIRED_ID, "Product id (surrounding whitespace is dropped)."),
            "interaction_type": {"type": "string", "enum": list(INTERACTION_TYPES)},
            "timestamp": {
                "type": "string",
                "pattern": TIMESTAMP,
                "description": "ISO 8601 date or date-time from 1970 to 2999; naive means UTC; absent or null: "
                "the time the service received it.",
                **optional,
            },
            "rating": {"type": "number", "minimum": 1, "maximum": 5, **optional},
            "session_id": text(OPTIONAL_ID, "Optional session id.") | optional,
            "event_id": text(
                OPTIONAL_ID,
                "Idempotency key: generated when absent or blank; an id already accepted is counted "
                "as a duplicate and recorded once.",
            )
            | optional,
        },
    }
    batch = {
        "title": "interaction batch",
        "type": "object",
        "additionalProperties": False,
        "required": ["events"],
        "properties": {"events": {"type": "array", "minItems": 1, "items": event}},
    }
    if max_batch is not None:
        batch["properties"]["events"]["maxItems"] = max_batch
    return {"title": "interactions request", "anyOf": [event, batch]}
