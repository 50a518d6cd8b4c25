"""A real-HTTP fixture site for the scraper tests.

Pages are files in a tmp dir served by the project's static server. The server records every request it
receives, so tests check politeness where it matters (on the server, not in the crawler's own log), and
it can answer chosen paths with scripted statuses (flaky 503s, redirects) before serving them normally.
Page builders write HTML in exactly the directory generator's format.
"""

from __future__ import annotations

import html
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from orchestration.scraper.static_server import QuietHandler, serve_directory

ROBOTS_TXT = "User-agent: *\nDisallow: /private/\n"


@dataclass
class FixtureSite:
    """A served directory plus what its server saw: `requests` holds (path, time.monotonic() on arrival)."""

    root: Path
    base_url: str = ""
    requests: list[tuple[str, float]] = field(default_factory=list)
    _scripts: dict[str, deque[tuple[int, dict[str, str]]]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str) -> str:
        return self.base_url + path

    def write(self, path: str, content: str) -> None:
        target = self.root / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content, encoding="utf-8")

    def script(self, path: str, status: int, headers: dict[str, str] | None = None, times: int = 1) -> None:
        """Answer the next `times` requests for `path` with `status` (and headers) instead of the file."""
        with self._lock:
            self._scripts.setdefault(path, deque()).extend([(status, headers or {})] * times)

    def requested_paths(self) -> list[str]:
        with self._lock:
            return [path for path, _ in self.requests]

    def request_times(self, path: str | None = None) -> list[float]:
        with self._lock:
            return [at for requested, at in self.requests if path is None or requested == path]

    def _record(self, path: str) -> None:
        with self._lock:
            self.requests.append((path, time.monotonic()))

    def _next_scripted(self, path: str) -> tuple[int, dict[str, str]] | None:
        with self._lock:
            queue = self._scripts.get(path)
            return queue.popleft() if queue else None


def _handler_for(site: FixtureSite) -> type[QuietHandler]:
    class RecordingHandler(QuietHandler):
        def parse_request(self) -> bool:
            parsed = super().parse_request()
            if parsed:
                site._record(self.path)
            return parsed

        def do_GET(self) -> None:
            scripted = site._next_scripted(self.path)
            if scripted is None:
                super().do_GET()
                return
            status, headers = scripted
            body = f"scripted {status}".encode()
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return RecordingHandler


@contextmanager
def running_site(root: Path) -> Iterator[FixtureSite]:
    """Serve `root` on a free 127.0.0.1 port for the duration of the block."""
    root.mkdir(parents=True, exist_ok=True)
    site = FixtureSite(root)
    with serve_directory(root, handler_class=_handler_for(site)) as base_url:
        site.base_url = base_url
        yield site


@pytest.fixture(name="fixture_site")
def fixture_site_fixture(tmp_path: Path) -> Iterator[FixtureSite]:
    """A fresh served site per test; importing fixture_site_fixture into a test module provides it."""
    with running_site(tmp_path / "site") as site:
        yield site


def listing_page(entries: list[tuple[str, str, str]], next_href: str | None, prev_href: str | None = None) -> str:
    """A directory page: site navigation, entries as (href, name, city), pagination (next_href None on the
    last page) and a footer link into /private/ that only robots.txt keeps a crawler out of."""
    items = "\n".join(
        f'  <li class="listing-item"><a class="business-link" href="{html.escape(href)}">'
        f'{html.escape(name)}</a> <span class="city">{html.escape(city)}</span></li>'
        for href, name, city in entries
    )
    pagination = []
    if prev_href:
        pagination.append(f'<a class="prev" rel="prev" href="{html.escape(prev_href)}">Previous</a>')
    if next_href:
        pagination.append(f'<a class="next" rel="next" href="{html.escape(next_href)}">Next</a>')
    return (
        "<!DOCTYPE html>\n<html><head><title>Directory</title></head><body>\n"
        '<nav><a href="/">Home</a> <a href="/directory/page-1.html">Directory</a></nav>\n'
        f'<ul class="listing">\n{items}\n</ul>\n'
        f'<nav class="pagination">{" ".join(pagination)}</nav>\n'
        '<footer><a href="/private/admin.html">Admin</a></footer>\n'
        "</body></html>\n"
    )


def business_page(
    name: str,
    category: str,
    street: str,
    city: str,
    phone: str,
    website: str | None = None,
    rating: str | None = None,
    review_count: str | None = None,
) -> str:
    """A business detail page; website, rating and review count are left out when None."""
    tel = "+1" + "".join(ch for ch in phone if ch.isdigit())
    lines = [
        '<article class="business" itemscope itemtype="https://schema.org/AutoRepair">',
        f'  <h1 itemprop="name">{html.escape(name)}</h1>',
        f'  <span class="category" itemprop="category">{html.escape(category)}</span>',
        f'  <div itemprop="address"><span itemprop="streetAddress">{html.escape(street)}</span>, '
        f'<span itemprop="addressLocality">{html.escape(city)}</span></div>',
        f'  <a itemprop="telephone" href="tel:{tel}">{html.escape(phone)}</a>',
    ]
    if website is not None:
        lines.append(f'  <a itemprop="url" href="{html.escape(website)}">Website</a>')
    if rating is not None:
        lines.append(f'  <span itemprop="ratingValue">{html.escape(rating)}</span>')
    if review_count is not None:
        lines.append(f'  (<span itemprop="reviewCount">{html.escape(review_count)}</span> reviews)')
    lines.append("</article>")
    return "<html><body>\n" + "\n".join(lines) + "\n</body></html>\n"
