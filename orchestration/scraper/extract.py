"""Pure HTML -> lead / link functions for the business-directory scraper.

No I/O happens here, so every parsing rule can be unit-tested on literal HTML; the crawler decides what
to fetch and when.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

from selectolax.lexbor import LexborHTMLParser, LexborNode

Lead = dict[str, Any]

# A well-formed business page always carries these; website, rating and review count may be absent.
# Requiring them is what catches truncated pages that still happen to contain the name.
REQUIRED_FIELDS = ("name", "category", "address", "city", "phone")

_DEFAULT_PORTS = {"http": 80, "https": 443}


class UnparseablePage(ValueError):
    """A business page that cannot become a lead; the message says why (stored as the quarantine detail)."""


@dataclass(frozen=True)
class Listing:
    """A directory page: its entries, the page after it (None on the last page) and every other link.

    Only entries and the next page are followed; other_urls (navigation, footer) are reported so the
    crawler can account for the ones robots.txt forbids.
    """

    detail_urls: tuple[str, ...]
    next_url: str | None
    other_urls: tuple[str, ...]


def normalize_url(href: str, base: str | None = None) -> str | None:
    """Absolute http(s) URL without fragment, default port or userinfo, host and scheme lower-cased.

    One resource gets one spelling, which is what lets the crawler promise never to fetch a URL twice.
    Returns None for links a crawler never follows (mailto:, tel:, javascript:, malformed ports).
    """
    absolute = urljoin(base, href.strip()) if base else href.strip()
    parts = urlsplit(absolute)
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    try:
        port = parts.port
    except ValueError:
        return None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    netloc = host if port in (None, _DEFAULT_PORTS[scheme]) else f"{host}:{port}"
    return urlunsplit((scheme, netloc, parts.path or "/", parts.query, ""))


def _is_detail_url(url: str) -> bool:
    """Business pages live under /business/; such a page without a business article is malformed."""
    return urlsplit(url).path.startswith("/business/")


def extract_page(html: str, url: str, scraped_at: datetime) -> Listing | Lead | None:
    """Classify a fetched page and pull out what the crawl needs, parsing the HTML once.

    Returns a Listing for a directory page (has ul.listing), a lead dict with exactly LEAD_FIELDS for a
    business page (under /business/ or containing article.business), and None for any other page.
    Raises UnparseablePage for a business page that lacks the fields a lead needs.
    """
    tree = LexborHTMLParser(html)
    if tree.css_first("ul.listing") is not None:
        return _listing(tree, url)
    article = tree.css_first("article.business")
    if article is None:
        if _is_detail_url(url):
            raise UnparseablePage('no <article class="business"> element')
        return None
    return _lead(article, url, scraped_at)


def _listing(tree: LexborHTMLParser, url: str) -> Listing:
    detail_urls = _links(tree.css("ul.listing li a[href]"), url)
    next_links = _links(tree.css('a[rel~="next"][href]'), url)
    next_url = next_links[0] if next_links else None
    followed = {*detail_urls, next_url}
    other_urls = tuple(link for link in _links(tree.css("a[href]"), url) if link not in followed)
    return Listing(detail_urls=detail_urls, next_url=next_url, other_urls=other_urls)


def _links(anchors: list[LexborNode], base: str) -> tuple[str, ...]:
    """Normalized, de-duplicated hrefs in page order, without the ones a crawler never follows."""
    urls = (normalize_url(anchor.attributes.get("href") or "", base) for anchor in anchors)
    return tuple(dict.fromkeys(url for url in urls if url))


def _lead(article: LexborNode, url: str, scraped_at: datetime) -> Lead:
    # Built in contract order: the keys are exactly LEAD_FIELDS.
    lead: Lead = {
        "name": _text(article, '[itemprop="name"]'),
        "category": _text(article, '[itemprop="category"]'),
        "address": _text(article, '[itemprop="streetAddress"]'),
        "city": _text(article, '[itemprop="addressLocality"]'),
        "phone": _text(article, '[itemprop="telephone"]'),
        "website": _href(article, 'a[itemprop="url"]'),
        "rating": _number(_text(article, '[itemprop="ratingValue"]'), float),
        "review_count": _number(_text(article, '[itemprop="reviewCount"]'), int),
        "source_url": url,
        "scraped_at": scraped_at,
    }
    missing = [field for field in REQUIRED_FIELDS if lead[field] is None]
    if missing:
        raise UnparseablePage(f"missing required field(s): {', '.join(missing)}")
    return lead


def _text(scope: LexborNode, selector: str) -> str | None:
    """Whitespace-collapsed text of the first match; None when the element is absent or empty."""
    node = scope.css_first(selector)
    text = " ".join(node.text(deep=True).split()) if node is not None else ""
    return text or None


def _href(scope: LexborNode, selector: str) -> str | None:
    """The link target (not its text, which is just "Website") of the first match; None when absent."""
    node = scope.css_first(selector)
    href = (node.attributes.get("href") or "").strip() if node is not None else ""
    return href or None


def _number(text: str | None, kind: type[float] | type[int]) -> float | int | None:
    """Parse an optional number; anything non-numeric (or NaN/inf) is None, not a reason to drop the lead."""
    if text is None:
        return None
    try:
        value = kind(text.replace(",", ""))
    except ValueError:
        return None
    return value if math.isfinite(value) else None
