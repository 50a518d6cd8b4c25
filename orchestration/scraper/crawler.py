"""Polite breadth-first crawler for the business directory: robots.txt, per-host rate limit, retries, budget.

Fetching policy lives here; what a page means lives in extract.py. The clock and sleep are injected so the
timing rules can be tested without waiting; a real crawl uses time.monotonic and time.sleep.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit
from urllib.robotparser import RobotFileParser

import httpx

from orchestration.landing.contract import Reason
from orchestration.scraper.extract import Lead, Listing, UnparseablePage, extract_page, normalize_url

MAX_REDIRECTS = 5
SNIPPET_CHARS = 500


@dataclass(frozen=True)
class CrawlPolicy:
    """How politely and how far to crawl."""

    user_agent: str = "OptimumLeadBot/0.1"
    max_pages: int = 500  # page URLs requested; robots.txt, retries and redirect hops do not count
    # 1/rate is the minimum gap from the end of one request to the start of the next on the same host;
    # robots.txt's Crawl-delay replaces it when longer
    requests_per_second_per_host: float = 10.0
    max_retries: int = 3  # extra attempts on connection errors, timeouts, 429 and 5xx
    backoff_base_seconds: float = 0.2  # retry n (0-based) waits base * 2**n
    timeout_seconds: float = 10.0
    same_host_only: bool = True  # follow links only to the seeds' hosts


@dataclass
class CrawlStats:
    """Counters for the run log and for tests; fetch_log holds (url, clock()) for every HTTP request."""

    pages_fetched: int = 0
    pages_skipped_by_robots: int = 0  # discovered URLs that robots.txt disallows; never requested
    requests_made: int = 0  # including robots.txt, retries and redirect hops
    retries: int = 0
    budget_exhausted: bool = False  # max_pages was reached with URLs still waiting
    fetch_log: list[tuple[str, float]] = field(default_factory=list)


@dataclass
class CrawlResult:
    """Leads have exactly LEAD_FIELDS; quarantined rows have source_url, reason, detail, raw_snippet."""

    leads: list[Lead] = field(default_factory=list)
    quarantined: list[dict[str, Any]] = field(default_factory=list)
    stats: CrawlStats = field(default_factory=CrawlStats)


@dataclass(frozen=True)
class _Failure:
    """A request that gave no usable response: why, and the start of what came back (body or error)."""

    detail: str
    snippet: str


def crawl(
    seed_urls: Iterable[str],
    policy: CrawlPolicy,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> CrawlResult:
    """Crawl breadth-first from the seeds, following listing pages and extracting business pages.

    Duplicate businesses under different URLs are all returned: merging them is the dbt staging layer's
    job. The same URL, however, is never requested twice.
    """
    headers = {"User-Agent": policy.user_agent}
    with httpx.Client(headers=headers, timeout=policy.timeout_seconds, follow_redirects=False) as client:
        return _Crawler(policy, client, clock, sleep).run(seed_urls)


class _Crawler:
    """One crawl's state: the frontier, the seen set, and per host its robots rules and pacing."""

    def __init__(
        self,
        policy: CrawlPolicy,
        client: httpx.Client,
        clock: Callable[[], float],
        sleep: Callable[[float], None],
    ) -> None:
        self.policy = policy
        self.client = client
        self.clock = clock
        self.sleep = sleep
        self.result = CrawlResult()
        self.stats = self.result.stats
        self.frontier: deque[str] = deque()
        self.seen: set[str] = set()
        self.seed_hosts: set[str] = set()
        self.robots: dict[str, RobotFileParser] = {}
        self.min_interval: dict[str, float] = {}
        self.last_finished: dict[str, float] = {}

    def run(self, seed_urls: Iterable[str]) -> CrawlResult:
        seeds = []
        for seed in seed_urls:
            url = normalize_url(seed)
            if url is None:
                raise ValueError(f"seed is not an http(s) URL: {seed!r}")
            seeds.append(url)
        self.seed_hosts = {_host(url) for url in seeds}
        for url in seeds:
            self._enqueue(url)
        while self.frontier:
            if self.stats.pages_fetched >= self.policy.max_pages:
                self.stats.budget_exhausted = True
                break
            self._visit(self.frontier.popleft())
        return self.result

    def _enqueue(self, url: str) -> None:
        if self._claim(url):
            self.frontier.append(url)

    def _claim(self, url: str) -> bool:
        """Mark `url` seen; True only the first time, and only on an allowed host whose robots permit it."""
        if url in self.seen:
            return False
        self.seen.add(url)
        return self._host_allowed(url) and not self._disallowed(url)

    def _note_if_disallowed(self, url: str) -> None:
        """Count a link we would not follow anyway when robots.txt forbids it, so the stat covers every
        disallowed URL the crawl came across. Allowed ones stay unseen: they may still turn up as entries."""
        if url not in self.seen and self._host_allowed(url) and self._disallowed(url):
            self.seen.add(url)

    def _host_allowed(self, url: str) -> bool:
        return not self.policy.same_host_only or _host(url) in self.seed_hosts

    def _disallowed(self, url: str) -> bool:
        if self._robots_for(url).can_fetch(self.policy.user_agent, url):
            return False
        self.stats.pages_skipped_by_robots += 1
        return True

    def _visit(self, url: str) -> None:
        self.stats.pages_fetched += 1
        response = self._get(url, may_follow=self._claim)
        if response is None:
            return
        if isinstance(response, _Failure):
            self._quarantine(url, Reason.FETCH_FAILED, response.detail, response.snippet)
            return
        page_url = str(response.url)
        if not response.is_success:
            detail = f"HTTP {response.status_code}"
            self._quarantine(page_url, Reason.FETCH_FAILED, detail, response.text[:SNIPPET_CHARS])
            return
        scraped_at = datetime.now(UTC)
        try:
            page = extract_page(response.text, page_url, scraped_at)
        except UnparseablePage as exc:
            self._quarantine(page_url, Reason.UNPARSEABLE_PAGE, str(exc), response.text[:SNIPPET_CHARS])
            return
        if isinstance(page, Listing):
            for link in page.detail_urls:
                self._enqueue(link)
            if page.next_url:
                self._enqueue(page.next_url)
            for link in page.other_urls:
                self._note_if_disallowed(link)
        elif page is not None:
            self.result.leads.append(page)

    def _quarantine(self, url: str, reason: Reason, detail: str, snippet: str) -> None:
        self.result.quarantined.append({"source_url": url, "reason": reason, "detail": detail, "raw_snippet": snippet})

    def _get(self, url: str, may_follow: Callable[[str], bool]) -> httpx.Response | _Failure | None:
        """GET following same-host redirects by hand, so each hop is rate-limited, logged and vetted.

        Returns None when `may_follow` rejects a redirect target (already seen, or disallowed).
        """
        for _ in range(MAX_REDIRECTS + 1):
            response = self._request(url)
            if isinstance(response, _Failure) or not response.is_redirect:
                return response
            location = response.headers["location"]
            target = normalize_url(location, url)
            if target is None or _host(target) != _host(url):
                return _Failure(f"redirect to another host: {location}", location[:SNIPPET_CHARS])
            if not may_follow(target):
                return None
            url = target
        return _Failure(f"more than {MAX_REDIRECTS} redirects", url)

    def _request(self, url: str) -> httpx.Response | _Failure:
        """One GET, retried with exponential backoff on transient failures (network, timeout, 429, 5xx)."""
        attempts = self.policy.max_retries + 1
        for attempt in range(attempts):
            if attempt:
                self.stats.retries += 1
                self.sleep(self.policy.backoff_base_seconds * 2 ** (attempt - 1))
            try:
                with self._turn(url):
                    response = self.client.get(url)
            except httpx.TransportError as exc:
                error, snippet = f"{type(exc).__name__}: {exc}", str(exc)
                continue
            if response.status_code != 429 and response.status_code < 500:
                return response
            error, snippet = f"HTTP {response.status_code}", response.text
        return _Failure(f"{error} after {attempts} attempt(s)", snippet[:SNIPPET_CHARS])

    @contextmanager
    def _turn(self, url: str) -> Iterator[None]:
        """Wait until the host's interval has passed since its last request finished, then log this one.

        Counting from the end of a request, not its start, keeps slow responses from bunching requests
        up, and guarantees the server itself sees at least the interval between consecutive arrivals.
        """
        host = _host(url)
        last = self.last_finished.get(host)
        if last is not None:
            delay = last + self.min_interval.get(host, self._base_interval) - self.clock()
            if delay > 0:
                self.sleep(delay)
        self.stats.requests_made += 1
        self.stats.fetch_log.append((url, self.clock()))
        try:
            yield
        finally:
            self.last_finished[host] = self.clock()

    @property
    def _base_interval(self) -> float:
        return 1.0 / self.policy.requests_per_second_per_host

    def _robots_for(self, url: str) -> RobotFileParser:
        """The host's robots.txt rules, fetched on first contact; a Crawl-delay there slows the host down."""
        host = _host(url)
        if host not in self.robots:
            rules = self._fetch_robots(f"{urlsplit(url).scheme}://{host}/robots.txt")
            delay = rules.crawl_delay(self.policy.user_agent)
            if delay:
                self.min_interval[host] = max(self._base_interval, float(delay))
            self.robots[host] = rules
        return self.robots[host]

    def _fetch_robots(self, robots_url: str) -> RobotFileParser:
        """Per RFC 9309: a 4xx robots.txt means no rules; an unreachable one (5xx, network) means keep out."""
        rules = RobotFileParser(robots_url)
        response = self._get(robots_url, may_follow=lambda _target: True)
        if isinstance(response, httpx.Response) and response.is_success:
            rules.parse(response.text.splitlines())
        elif isinstance(response, httpx.Response) and response.is_client_error:
            rules.parse([])
        else:
            rules.parse(["User-agent: *", "Disallow: /"])
        return rules


def _host(url: str) -> str:
    return urlsplit(url).netloc
