"""The scraper's pure HTML -> lead / links rules, on literal pages in the directory generator's format."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from orchestration.landing.contract import LEAD_FIELDS
from orchestration.scraper.extract import Listing, UnparseablePage, extract_page, normalize_url
from tests.fixture_site import business_page, listing_page

BASE = "http://directory.test"
SCRAPED_AT = datetime(2025, 3, 1, 12, 30, tzinfo=UTC)
NAME_TAG = '<h1 itemprop="name">Smith &amp; Sons Garage</h1>'

FULL_PAGE = """<html><body>
<article class="business" itemscope itemtype="https://schema.org/AutoRepair">
  <h1 itemprop="name">Smith &amp; Sons Garage</h1>
  <span class="category" itemprop="category">Garage</span>
  <div itemprop="address"><span itemprop="streetAddress">12 Main Street</span>, <span itemprop="addressLocality">Springfield</span></div>
  <a itemprop="telephone" href="tel:+15551234567">(555) 123-4567</a>
  <a itemprop="url" href="https://smith-garage.example">Website</a>
  <span itemprop="ratingValue">4.5</span> (<span itemprop="reviewCount">123</span> reviews)
</article>
</body></html>"""  # noqa: E501 - the generator's exact markup


def test_full_business_page_becomes_a_lead_with_exactly_the_contract_fields():
    lead = extract_page(FULL_PAGE, f"{BASE}/business/smith-garage.html", SCRAPED_AT)

    assert tuple(lead) == LEAD_FIELDS
    assert lead == {
        "name": "Smith & Sons Garage",
        "category": "Garage",
        "address": "12 Main Street",
        "city": "Springfield",
        "phone": "(555) 123-4567",
        "website": "https://smith-garage.example",
        "rating": 4.5,
        "review_count": 123,
        "source_url": f"{BASE}/business/smith-garage.html",
        "scraped_at": SCRAPED_AT,
    }


def test_optional_fields_absent_become_none():
    page = business_page("Acme Parts", "Parts store", "1 Elm Road", "Shelbyville", "555-000-1111")

    lead = extract_page(page, f"{BASE}/business/acme.html", SCRAPED_AT)

    assert (lead["website"], lead["rating"], lead["review_count"]) == (None, None, None)
    assert (lead["name"], lead["phone"]) == ("Acme Parts", "555-000-1111")


@pytest.mark.parametrize("rating", ["n/a", "four", "nan", "inf"])
def test_non_numeric_rating_is_none_and_the_lead_is_kept(rating):
    page = business_page("Acme Parts", "Parts", "1 Elm Road", "Shelbyville", "555", rating=rating)

    lead = extract_page(page, f"{BASE}/business/acme.html", SCRAPED_AT)

    assert lead["rating"] is None
    assert lead["name"] == "Acme Parts"


def test_review_count_with_thousands_separator_is_an_int():
    page = business_page("Acme", "Parts", "1 Elm Road", "Shelbyville", "555", review_count="1,204")

    assert extract_page(page, f"{BASE}/business/acme.html", SCRAPED_AT)["review_count"] == 1204


@pytest.mark.parametrize(
    ("page", "reason"),
    [
        pytest.param("<html><body><p>Coming soon</p></body></html>", "no <article", id="no-article"),
        pytest.param(FULL_PAGE.replace(NAME_TAG, ""), "missing required field\\(s\\): name$", id="no-name"),
        pytest.param(FULL_PAGE.replace("Smith &amp; Sons Garage", "  "), "name", id="empty-name"),
        pytest.param("\x00\x89PNG\x1a\ufffd\ufffd<<</ garbage", "no <article", id="garbage"),
        pytest.param("", "no <article", id="empty-body"),
        pytest.param(FULL_PAGE[: FULL_PAGE.index("Garage</span>")], "address, city, phone", id="cut-after-name"),
        pytest.param(
            FULL_PAGE[: FULL_PAGE.index(NAME_TAG)] + "  <h1 itempr\u00c3\u00a9\u00ef\u00bf\u00bd\x1a",
            "missing required field\\(s\\): name, category",
            id="cut-inside-name-tag",
        ),
    ],
)
def test_unparseable_business_pages_say_why(page, reason):
    with pytest.raises(UnparseablePage, match=reason):
        extract_page(page, f"{BASE}/business/broken.html", SCRAPED_AT)


def test_business_article_outside_business_path_is_still_a_lead():
    lead = extract_page(FULL_PAGE, f"{BASE}/featured/today.html", SCRAPED_AT)

    assert lead["name"] == "Smith & Sons Garage"


def test_page_that_is_neither_listing_nor_business_yields_nothing():
    assert extract_page("<html><body><p>About us</p></body></html>", f"{BASE}/about.html", SCRAPED_AT) is None


def test_listing_page_yields_absolute_entry_links_the_next_page_and_other_links():
    page = listing_page(
        [
            ("/business/smith-garage.html", "Smith & Sons Garage", "Springfield"),
            ("../business/acme.html#reviews", "Acme Parts", "Shelbyville"),
            ("/private/internal.html", "Internal", "-"),
        ],
        next_href="page-3.html",
        prev_href="page-1.html",
    )

    listing = extract_page(page, f"{BASE}/directory/page-2.html", SCRAPED_AT)

    assert listing == Listing(
        detail_urls=(
            f"{BASE}/business/smith-garage.html",
            f"{BASE}/business/acme.html",
            f"{BASE}/private/internal.html",  # robots.txt is the crawler's business, not the parser's
        ),
        next_url=f"{BASE}/directory/page-3.html",
        other_urls=(
            f"{BASE}/",
            f"{BASE}/directory/page-1.html",
            f"{BASE}/private/admin.html",
        ),
    )


def test_last_listing_page_has_no_next_url():
    page = listing_page([("/business/a.html", "A", "B")], next_href=None, prev_href="page-8.html")

    assert extract_page(page, f"{BASE}/directory/page-9.html", SCRAPED_AT).next_url is None


@pytest.mark.parametrize(
    ("href", "base", "expected"),
    [
        ("/business/a.html#top", BASE + "/directory/page-1.html", BASE + "/business/a.html"),
        ("../business/a.html", BASE + "/directory/page-1.html", BASE + "/business/a.html"),
        ("page-2.html", BASE + "/directory/page-1.html", BASE + "/directory/page-2.html"),
        ("HTTP://Directory.TEST:80/a?x=1#f", None, "http://directory.test/a?x=1"),
        ("https://directory.test:8443", None, "https://directory.test:8443/"),
        ("  /business/a.html ", BASE + "/", BASE + "/business/a.html"),
        ("mailto:owner@example.com", BASE + "/", None),
        ("tel:+15551234567", BASE + "/", None),
        ("javascript:void(0)", BASE + "/", None),
        ("http://directory.test:notaport/", None, None),
    ],
)
def test_normalize_url(href, base, expected):
    assert normalize_url(href, base) == expected
