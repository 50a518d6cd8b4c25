"""Client for a Places-style JSON search API (`POST /v1/places:searchText`): the second lead source.

Each search is a text query in an area ("car repair in Springfield"), paged with `nextPageToken`. The
policy here is what a paid, per-key API needs: the key travels only in the X-Goog-Api-Key header (never
in a URL, a log line, a stat or a quarantine row), the run spends at most `max_requests` requests of the
key's quota, requests are spaced by a rate limit, 429 and 5xx are retried with exponential backoff
(Retry-After honoured), and a quota the server reports as exhausted stops the run with what it has.
An expired page token restarts its search once (place ids de-duplicate the repeated pages).

What a record means lives in places_records.py. The clock, sleep and the fetch time are injected so the
timing rules are tested without waiting; a real run uses time.monotonic, time.sleep and datetime.now.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import httpx

from orchestration.landing.contract import Reason
from orchestration.scraper.extract import Lead
from orchestration.scraper.places_records import MalformedRecord, parse_place, raw_json

SEARCH_PATH = "/v1/places:searchText"
FIELD_MASK = (
    ",".join(
        f"places.{name}"
        for name in (
            "id",
            "displayName",
            "primaryType",
            "primaryTypeDisplayName",
            "formattedAddress",
            "addressComponents",
            "nationalPhoneNumber",
            "internationalPhoneNumber",
            "websiteUri",
            "rating",
            "userRatingCount",
        )
    )
    + ",nextPageToken"
)
SNIPPET_CHARS = 500


@dataclass(frozen=True)
class PlacesPolicy:
    """How much of the key's quota one run may use, and how fast."""

    max_requests: int = 200  # per run, retries included: the share of the key's quota this run may spend
    requests_per_second: float = 5.0  # minimum gap between the end of one request and the next start
    max_retries: int = 3  # extra attempts on connection errors, timeouts, 429 and 5xx
    backoff_base_seconds: float = 0.5  # retry n (0-based) waits base * 2**n, or Retry-After when longer
    max_backoff_seconds: float = 60.0  # a Retry-After above this is not waited for: the attempt fails
    timeout_seconds: float = 10.0
    page_size: int = 20
    max_pages_per_search: int = 10


@dataclass
class PlacesStats:
    """Counters for the run log and tests; fetch_log holds (search, page, clock()) for every request."""

    requests_made: int = 0
    retries: int = 0
    pages_fetched: int = 0
    searches_completed: int = 0
    token_restarts: int = 0  # searches restarted from page one after an expired page token
    duplicate_places: int = 0  # records of a place this run already returned (overlapping searches)
    budget_exhausted: bool = False  # max_requests was reached with work left
    quota_exhausted: bool = False  # the server answered RESOURCE_EXHAUSTED after every retry
    stopped_reason: str | None = None  # why the run ended early, if it did
    fetch_log: list[tuple[str, int, float]] = field(default_factory=list)


@dataclass
class PlacesResult:
    """Leads have LEAD_FIELDS + PLACE_FIELDS; quarantined rows have source_url, reason, detail, raw_snippet."""

    leads: list[Lead] = field(default_factory=list)
    quarantined: list[dict[str, Any]] = field(default_factory=list)
    stats: PlacesStats = field(default_factory=PlacesStats)


class _StopRun(Exception):
    """Nothing more can be asked of this key in this run (quota, budget, rejected key)."""


@dataclass(frozen=True)
class _Failure:
    status: int | None
    api_status: str | None
    detail: str
    snippet: str
    retry_after: float | None = None  # seconds, from a Retry-After header


def search_places(
    base_url: str,
    api_key: str,
    searches: Iterable[tuple[str, str]],
    policy: PlacesPolicy,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> PlacesResult:
    """Run every (query, area) search to its last page, or until the key's quota or the budget runs out."""
    if not api_key:
        raise ValueError("the Places API needs a key (OPTIMUM_PLACES_API_KEY)")
    headers = {"X-Goog-Api-Key": api_key, "X-Goog-FieldMask": FIELD_MASK, "Content-Type": "application/json"}
    with httpx.Client(headers=headers, timeout=policy.timeout_seconds) as client:
        return _Search(base_url.rstrip("/"), policy, client, clock, sleep, now).run(searches)


class _Search:
    """One run's state: the request budget spent, the places already returned, the pacing."""

    def __init__(
        self,
        base_url: str,
        policy: PlacesPolicy,
        client: httpx.Client,
        clock: Callable[[], float],
        sleep: Callable[[float], None],
        now: Callable[[], datetime],
    ) -> None:
        self.base_url = base_url
        self.policy = policy
        self.client = client
        self.clock = clock
        self.sleep = sleep
        self.now = now
        self.result = PlacesResult()
        self.stats = self.result.stats
        self.seen_places: set[str] = set()
        self.last_finished: float | None = None

    def run(self, searches: Iterable[tuple[str, str]]) -> PlacesResult:
        try:
            for query, area in searches:
                self._search(query, area)
        except _StopRun as stop:
            self.stats.stopped_reason = str(stop)
        return self.result

    def _search(self, query: str, area: str) -> None:
        token: str | None = None
        restarted = False
        page = 1
        while page <= self.policy.max_pages_per_search:
            response = self._request(query, area, page, token)
            if isinstance(response, _Failure):
                if response.status == 400 and token is not None and not restarted:
                    self.stats.token_restarts += 1
                    restarted, token, page = True, None, 1
                    continue
                self._quarantine(
                    self._search_url(query, area, page), Reason.FETCH_FAILED, response.detail, response.snippet
                )
                if response.api_status in ("RESOURCE_EXHAUSTED", "PERMISSION_DENIED", "UNAUTHENTICATED"):
                    self.stats.quota_exhausted = response.api_status == "RESOURCE_EXHAUSTED"
                    raise _StopRun(f"{response.api_status}: {response.detail}")
                return
            body = self._json(response, query, area, page)
            if body is None:
                return
            self.stats.pages_fetched += 1
            fetched_at = self.now()
            places = body.get("places") or []
            if not isinstance(places, list):
                detail = f"'places' is a JSON {type(places).__name__}, not a list"
                self._quarantine(self._search_url(query, area, page), Reason.UNPARSEABLE_PAGE, detail, raw_json(places))
                return
            for record in places:
                self._take(record, query, area, page, fetched_at)
            token = body.get("nextPageToken")
            if not isinstance(token, str) or not token:
                self.stats.searches_completed += 1
                return
            page += 1

    def _take(self, record: Any, query: str, area: str, page: int, fetched_at: datetime) -> None:
        try:
            lead = parse_place(record, self.base_url, query, area, fetched_at)
        except MalformedRecord as exc:
            self._quarantine(self._search_url(query, area, page), Reason.MALFORMED_RECORD, str(exc), raw_json(record))
            return
        if lead["place_id"] in self.seen_places:
            self.stats.duplicate_places += 1
            return
        self.seen_places.add(lead["place_id"])
        self.result.leads.append(lead)

    def _json(self, response: httpx.Response, query: str, area: str, page: int) -> dict | None:
        try:
            body = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            body, error = None, f"not JSON: {exc}"
        else:
            error = None if isinstance(body, dict) else f"body is a JSON {type(body).__name__}, not an object"
        if error is None:
            return body
        self._quarantine(self._search_url(query, area, page), Reason.UNPARSEABLE_PAGE, error, response.text)
        return None

    def _search_url(self, query: str, area: str, page: int) -> str:
        """Where a quarantined page came from, as a readable URL (the request is a POST; no key in it)."""
        return f"{self.base_url}{SEARCH_PATH}?{urlencode({'query': query, 'area': area, 'page': page})}"

    def _quarantine(self, url: str, reason: Reason, detail: str, snippet: str) -> None:
        self.result.quarantined.append(
            {"source_url": url, "reason": reason, "detail": detail, "raw_snippet": snippet[:SNIPPET_CHARS]}
        )

    def _request(self, query: str, area: str, page: int, token: str | None) -> httpx.Response | _Failure:
        """One search page, retried with exponential backoff on network errors, 429 and 5xx."""
        body: dict[str, Any] = {"textQuery": f"{query} in {area}", "pageSize": self.policy.page_size}
        if token:
            body["pageToken"] = token
        attempts = self.policy.max_retries + 1
        wait = 0.0
        for attempt in range(attempts):
            if attempt:
                self.stats.retries += 1
                self.sleep(wait)
            self._pace()
            self.stats.requests_made += 1
            self.stats.fetch_log.append((f"{query} in {area}", page, self.clock()))
            try:
                response = self.client.post(self.base_url + SEARCH_PATH, json=body)
            except httpx.TransportError as exc:
                failure = _Failure(None, None, f"{type(exc).__name__}: {exc}", str(exc))
            else:
                if response.is_success:
                    return response
                failure = _failure(response)
                if response.status_code != 429 and response.status_code < 500:
                    return failure
            finally:
                self.last_finished = self.clock()
            wait = self.policy.backoff_base_seconds * 2**attempt
            if failure.retry_after is not None:
                if failure.retry_after > self.policy.max_backoff_seconds:
                    break
                wait = max(wait, failure.retry_after)
        return _Failure(
            failure.status, failure.api_status, f"{failure.detail} after {attempt + 1} attempt(s)", failure.snippet
        )

    def _pace(self) -> None:
        """Spend one request of the budget, after the rate limit's gap since the previous one finished."""
        if self.stats.requests_made >= self.policy.max_requests:
            self.stats.budget_exhausted = True
            raise _StopRun(f"request budget of {self.policy.max_requests} spent (OPTIMUM_PLACES_MAX_REQUESTS)")
        if self.last_finished is not None:
            delay = self.last_finished + 1.0 / self.policy.requests_per_second - self.clock()
            if delay > 0:
                self.sleep(delay)


def _failure(response: httpx.Response) -> _Failure:
    """A non-2xx answer: its HTTP status, the API's error status (RESOURCE_EXHAUSTED, ...) and message."""
    api_status = message = None
    try:
        error = response.json().get("error", {})
        api_status, message = error.get("status"), error.get("message")
    except (ValueError, AttributeError):
        pass
    detail = (
        f"HTTP {response.status_code}" + (f" {api_status}" if api_status else "") + (f": {message}" if message else "")
    )
    try:
        retry_after = float(response.headers["retry-after"])
    except (KeyError, ValueError):
        retry_after = None
    return _Failure(response.status_code, api_status, detail, response.text, retry_after)
