"""The crawler against a real HTTP server on 127.0.0.1: robots, pagination, rate limit, retries, budget.

Politeness is checked in the server's own request log, since a crawler's log of itself proves little.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import pairwise
from typing import NamedTuple

import pytest

from orchestration.landing.contract import LEAD_FIELDS, Reason
from orchestration.scraper.crawler import CrawlPolicy, CrawlResult, crawl
from tests.fixture_site import (
    ROBOTS_TXT,
    FixtureSite,
    business_page,
    fixture_site_fixture,  # noqa: F401 - provides the fixture_site fixture
    listing_page,
    running_site,
)

RATE = 20.0  # requests per second per host in the full crawl: a 50 ms minimum gap
# The crawler counts its interval from the end of the previous request, so even under load the server
# sees the full gap; the tolerance only absorbs float rounding.
TOLERANCE = 0.001


def policy(**overrides) -> CrawlPolicy:
    """Fast defaults for tests; each test overrides the knob it is about."""
    settings = dict(
        user_agent="OptimumLeadBot/0.1",
        max_pages=500,
        requests_per_second_per_host=200.0,
        max_retries=3,
        backoff_base_seconds=0.01,
        timeout_seconds=5.0,
        same_host_only=True,
    )
    return CrawlPolicy(**(settings | overrides))


def build_directory(site: FixtureSite) -> None:
    """Three listing pages with private links, a duplicate business, a malformed page and a 404."""
    site.write("/robots.txt", ROBOTS_TXT)
    site.write(
        "/directory/page-1.html",
        listing_page(
            [
                ("/business/smith-garage.html", "Smith & Sons Garage", "Springfield"),
                ("/business/acme-parts.html", "Acme Parts", "Shelbyville"),
                ("/private/internal-notes.html", "Internal notes", "-"),
                ("/business/smith-and-sons.html", "Smith and Sons Garage", "Springfield"),
            ],
            next_href="/directory/page-2.html",
        ),
    )
    site.write(
        "/directory/page-2.html",
        listing_page(
            [
                ("../business/brake-masters.html#reviews", "Brake Masters", "Ogdenville"),
                ("/business/broken.html", "Broken", "Nowhere"),
                ("/business/gone.html", "Gone", "Nowhere"),
                ("/business/smith-garage.html#top", "Smith & Sons Garage", "Springfield"),
            ],
            next_href="page-3.html",
            prev_href="page-1.html",
        ),
    )
    site.write(
        "/directory/page-3.html",
        listing_page(
            [("/business/tyre-town.html", "Tyre Town", "Capital City")],
            next_href=None,
            prev_href="/directory/page-2.html",
        ),
    )
    site.write(
        "/business/smith-garage.html",
        business_page(
            "Smith & Sons Garage",
            "Garage",
            "12 Main Street",
            "Springfield",
            "(555) 123-4567",
            website="https://smith-garage.example",
            rating="4.5",
            review_count="123",
        ),
    )
    site.write(
        "/business/smith-and-sons.html",
        business_page("Smith and Sons Garage", "Garage", "12 Main St.", "Springfield", "555.123.4567"),
    )
    site.write(
        "/business/acme-parts.html",
        business_page("Acme Parts", "Parts store", "1 Elm Road", "Shelbyville", "555-000-1111", rating="n/a"),
    )
    site.write(
        "/business/brake-masters.html",
        business_page("Brake Masters", "Brakes", "9 Oak Avenue", "Ogdenville", "555-222-3333"),
    )
    site.write(
        "/business/tyre-town.html",
        business_page("Tyre Town", "Tyres", "3 Ring Road", "Capital City", "555-444-5555"),
    )
    site.write("/business/broken.html", '<html><body><article class="business"><h1 itemprop="na')
    site.write(
        "/private/internal-notes.html",
        business_page("Internal", "Secret", "0 Hidden Lane", "Nowhere", "555-999-9999"),
    )
    site.write("/private/admin.html", "<html><body>Staff only</body></html>")


class Crawled(NamedTuple):
    site: FixtureSite
    result: CrawlResult


@pytest.fixture(scope="module")
def full_crawl(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Crawled]:
    """One real-time crawl of the whole directory, shared by the assertions below."""
    with running_site(tmp_path_factory.mktemp("directory")) as site:
        build_directory(site)
        result = crawl([site.url("/directory/page-1.html")], policy(requests_per_second_per_host=RATE))
        yield Crawled(site, result)


def lead_paths(result: CrawlResult, site: FixtureSite) -> list[str]:
    return sorted(lead["source_url"].removeprefix(site.base_url) for lead in result.leads)


def test_crawl_follows_pagination_and_extracts_every_business(full_crawl):
    site, result = full_crawl

    assert lead_paths(result, site) == [
        "/business/acme-parts.html",
        "/business/brake-masters.html",
        "/business/smith-and-sons.html",
        "/business/smith-garage.html",
        "/business/tyre-town.html",
    ]
    assert all(tuple(lead) == LEAD_FIELDS for lead in result.leads)
    assert all(lead["scraped_at"].utcoffset().total_seconds() == 0 for lead in result.leads)
    assert "/directory/page-3.html" in site.requested_paths()


def test_duplicate_businesses_are_both_returned(full_crawl):
    _, result = full_crawl

    smiths = [lead for lead in result.leads if lead["name"].startswith("Smith")]

    assert sorted(lead["phone"] for lead in smiths) == ["(555) 123-4567", "555.123.4567"]


def test_private_urls_are_never_requested(full_crawl):
    site, result = full_crawl

    assert not [path for path in site.requested_paths() if path.startswith("/private/")]
    # the listed /private/internal-notes.html and the footer's /private/admin.html, each counted once
    assert result.stats.pages_skipped_by_robots == 2


def test_no_url_is_requested_twice_and_every_request_is_logged(full_crawl):
    site, result = full_crawl

    paths = site.requested_paths()

    assert len(paths) == len(set(paths))
    assert len(result.stats.fetch_log) == result.stats.requests_made == len(paths)
    assert result.stats.pages_fetched == len(paths) - 1  # all but robots.txt


def test_rate_limit_holds_between_consecutive_requests_on_the_server(full_crawl):
    site, _ = full_crawl

    arrivals = site.request_times()
    gaps = [later - earlier for earlier, later in pairwise(arrivals)]

    assert len(gaps) >= 10
    assert min(gaps) >= 1 / RATE - TOLERANCE


def test_malformed_page_is_quarantined_as_unparseable(full_crawl):
    site, result = full_crawl

    [broken] = [row for row in result.quarantined if row["source_url"] == site.url("/business/broken.html")]

    assert broken["reason"] == Reason.UNPARSEABLE_PAGE
    assert broken["detail"].startswith("missing required field(s): name")
    assert broken["raw_snippet"].startswith('<html><body><article class="business">')


def test_missing_page_is_quarantined_as_fetch_failed_without_retries(full_crawl):
    site, result = full_crawl

    [gone] = [row for row in result.quarantined if row["source_url"] == site.url("/business/gone.html")]

    assert (gone["reason"], gone["detail"]) == (Reason.FETCH_FAILED, "HTTP 404")
    assert result.stats.retries == 0
    assert len(result.quarantined) == 2


def test_page_budget_stops_the_crawl(fixture_site):
    build_directory(fixture_site)

    result = crawl([fixture_site.url("/directory/page-1.html")], policy(max_pages=3))

    pages = [path for path in fixture_site.requested_paths() if path != "/robots.txt"]
    assert len(pages) == result.stats.pages_fetched == 3
    assert result.stats.budget_exhausted is True


def test_whole_site_within_budget_is_not_exhausted(fixture_site):
    build_directory(fixture_site)

    result = crawl([fixture_site.url("/directory/page-1.html")], policy(max_pages=10))

    assert result.stats.pages_fetched == 10
    assert result.stats.budget_exhausted is False


def single_business_site(site: FixtureSite) -> str:
    """robots.txt, one listing page and one business; returns the seed URL."""
    site.write("/robots.txt", ROBOTS_TXT)
    site.write("/directory/page-1.html", listing_page([("/business/acme.html", "Acme", "Shelbyville")], None))
    site.write("/business/acme.html", business_page("Acme", "Parts", "1 Elm Road", "Shelbyville", "555"))
    return site.url("/directory/page-1.html")


def test_flaky_page_is_retried_with_exponential_backoff(fixture_site):
    seed = single_business_site(fixture_site)
    fixture_site.script("/business/acme.html", 503, times=2)

    result = crawl([seed], policy(backoff_base_seconds=0.05))

    assert [lead["name"] for lead in result.leads] == ["Acme"]
    assert result.stats.retries == 2
    attempts = fixture_site.request_times("/business/acme.html")
    assert len(attempts) == 3
    first_wait, second_wait = (later - earlier for earlier, later in pairwise(attempts))
    assert first_wait >= 0.05 - TOLERANCE
    assert second_wait >= 0.10 - TOLERANCE


@pytest.mark.parametrize("status", [429, 500, 503])
def test_page_failing_every_retry_is_quarantined_as_fetch_failed(fixture_site, status):
    seed = single_business_site(fixture_site)
    fixture_site.script("/business/acme.html", status, times=10)

    result = crawl([seed], policy(max_retries=2))

    assert result.leads == []
    [failed] = result.quarantined
    assert failed["reason"] == Reason.FETCH_FAILED
    assert failed["detail"] == f"HTTP {status} after 3 attempt(s)"
    assert len(fixture_site.request_times("/business/acme.html")) == 3


def test_missing_robots_txt_allows_everything(fixture_site):
    seed = single_business_site(fixture_site)
    (fixture_site.root / "robots.txt").unlink()

    result = crawl([seed], policy())

    assert [lead["name"] for lead in result.leads] == ["Acme"]
    assert fixture_site.requested_paths()[0] == "/robots.txt"


def test_unreachable_robots_txt_keeps_the_crawler_out(fixture_site):
    seed = single_business_site(fixture_site)
    fixture_site.script("/robots.txt", 503, times=10)

    result = crawl([seed], policy(max_retries=1))

    assert fixture_site.requested_paths() == ["/robots.txt", "/robots.txt"]
    assert result.stats.pages_skipped_by_robots == 1
    assert result.leads == []


def test_crawl_delay_wins_over_a_faster_rate(fixture_site):
    """Uses the injected clock: the waits are computed exactly, and the test does not sleep 2 s each."""
    seed = single_business_site(fixture_site)
    fixture_site.write("/robots.txt", ROBOTS_TXT + "Crawl-delay: 2\n")
    now = [100.0]
    sleeps: list[float] = []

    def fake_sleep(seconds: float) -> None:
        sleeps.append(seconds)
        now[0] += seconds

    result = crawl([seed], policy(requests_per_second_per_host=100.0), clock=lambda: now[0], sleep=fake_sleep)

    times = [at for _, at in result.stats.fetch_log]
    assert [later - earlier for earlier, later in pairwise(times)] == [2.0, 2.0]
    assert sleeps == [2.0, 2.0]
    assert [lead["name"] for lead in result.leads] == ["Acme"]


def test_redirects_are_followed_only_within_the_host_and_past_robots(fixture_site):
    fixture_site.write("/robots.txt", ROBOTS_TXT)
    fixture_site.write(
        "/directory/page-1.html",
        listing_page(
            [
                ("/business/old-slug.html", "Acme (old link)", "Shelbyville"),
                ("/business/acme.html", "Acme", "Shelbyville"),
                ("/business/moved.html", "Brake Masters", "Ogdenville"),
                ("/business/elsewhere.html", "Elsewhere", "Far"),
                ("/business/sneaky.html", "Sneaky", "-"),
            ],
            next_href=None,
        ),
    )
    fixture_site.write("/business/acme.html", business_page("Acme", "Parts", "1 Elm Road", "Shelbyville", "555"))
    fixture_site.write("/business/brakes.html", business_page("Brake Masters", "Brakes", "9 Oak", "Ogden", "5"))
    fixture_site.script("/business/old-slug.html", 301, {"Location": "/business/acme.html"})
    fixture_site.script("/business/moved.html", 302, {"Location": "brakes.html"})
    fixture_site.script("/business/elsewhere.html", 302, {"Location": "http://elsewhere.invalid/x.html"})
    fixture_site.script("/business/sneaky.html", 302, {"Location": "/private/internal-notes.html"})

    result = crawl([fixture_site.url("/directory/page-1.html")], policy())

    assert lead_paths(result, fixture_site) == ["/business/acme.html", "/business/brakes.html"]
    paths = fixture_site.requested_paths()
    assert paths.count("/business/acme.html") == 1
    assert not [path for path in paths if path.startswith("/private/")]
    assert result.stats.pages_skipped_by_robots == 2  # the redirect target and the footer's admin link
    [elsewhere] = result.quarantined
    assert elsewhere["reason"] == Reason.FETCH_FAILED
    assert elsewhere["detail"] == "redirect to another host: http://elsewhere.invalid/x.html"


def test_seed_must_be_an_http_url():
    with pytest.raises(ValueError, match="not an http"):
        crawl(["directory/page-1.html"], policy())
