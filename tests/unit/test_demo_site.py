"""The demo business directory: its pages, links and traps agree with the manifest it returns."""

from __future__ import annotations

import re
from dataclasses import asdict
from pathlib import Path

import pytest
from selectolax.lexbor import LexborHTMLParser

from orchestration.demo.site import PAGE_SIZE, generate_site

N_BUSINESSES = 60


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    root = tmp_path_factory.mktemp("site")
    return root, generate_site(root, N_BUSINESSES, seed=3)


def _tree(root: Path, url: str) -> LexborHTMLParser:
    return LexborHTMLParser((root / url.lstrip("/")).read_text(encoding="utf-8"))


def _hrefs(tree: LexborHTMLParser, selector: str = "a[href]") -> list[str]:
    return [a.attributes["href"] for a in tree.css(selector)]


def _listing_pages(root: Path, manifest) -> list[LexborHTMLParser]:
    return [_tree(root, f"/directory/page-{n}.html") for n in range(1, manifest.n_listing_pages + 1)]


def _text(tree: LexborHTMLParser, selector: str) -> str | None:
    node = tree.css_first(selector)
    return " ".join(node.text().split()) if node is not None and node.text().strip() else None


def test_robots_txt_keeps_crawlers_out_of_private(site):
    root, _ = site
    assert (root / "robots.txt").read_text() == "User-agent: *\nDisallow: /private/\n"


def test_index_links_to_the_first_listing_page(site):
    root, _ = site
    assert "/directory/page-1.html" in _hrefs(_tree(root, "/index.html"))


def test_listing_pages_chain_with_next_links_and_hold_twenty_entries(site):
    root, manifest = site
    pages = _listing_pages(root, manifest)
    assert len(list((root / "directory").glob("page-*.html"))) == manifest.n_listing_pages == len(pages)
    sizes = [len(page.css("ul.listing > li.listing-item")) for page in pages]
    assert sizes[:-1] == [PAGE_SIZE] * (len(pages) - 1) and 0 < sizes[-1] <= PAGE_SIZE
    for n, page in enumerate(pages, start=1):
        expected = [] if n == len(pages) else [f"/directory/page-{n + 1}.html"]
        assert _hrefs(page, 'a.next[rel="next"]') == expected


def test_every_link_is_root_relative_or_leaves_the_site(site):
    root, _ = site
    for page in root.rglob("*.html"):
        for href in _hrefs(LexborHTMLParser(page.read_text(encoding="utf-8"))):
            assert href.startswith("/") or re.match(r"(https://[a-z0-9-]+\.example|tel:\+1\d{10})$", href), href


def test_listed_links_are_the_manifest_detail_and_missing_urls(site):
    root, manifest = site
    listed = [href for page in _listing_pages(root, manifest) for href in _hrefs(page, "li a.business-link")]
    assert len(listed) == len(set(listed)) == N_BUSINESSES + len(manifest.duplicate_groups) + 1
    assert set(listed) == set(manifest.detail_urls) | set(manifest.missing_urls)
    assert len(manifest.missing_urls) == 1 and manifest.missing_urls[0] not in manifest.detail_urls
    for url in manifest.detail_urls:
        assert (root / url.lstrip("/")).is_file(), url
    assert not (root / manifest.missing_urls[0].lstrip("/")).exists()


def test_private_links_are_on_every_listing_page_and_exist(site):
    root, manifest = site
    linked = set()
    for page in _listing_pages(root, manifest):
        private = {href for href in _hrefs(page) if href.startswith("/private/")}
        assert "/private/admin.html" in private and any(h.startswith("/private/business/") for h in private)
        linked |= private
    assert linked == set(manifest.disallowed_urls)
    for url in linked:
        assert (root / url.lstrip("/")).is_file(), url
    assert _text(_tree(root, sorted(linked)[-1]), 'article.business [itemprop="name"]')  # tempting to scrape


def test_malformed_pages_have_no_parseable_name_and_the_rest_do(site):
    root, manifest = site
    kinds = set()
    for url in manifest.detail_urls:
        tree = _tree(root, url)
        name = _text(tree, 'article.business [itemprop="name"]')
        if url in manifest.malformed_urls:
            assert name is None, url
            truncated = not (root / url.lstrip("/")).read_text(encoding="utf-8").endswith("</html>\n")
            kinds.add("truncated" if truncated else "no name" if tree.css_first("article") else "no article")
        else:
            assert name and _text(tree, '[itemprop="category"]') and _text(tree, '[itemprop="streetAddress"]')
            assert re.fullmatch(r"tel:\+1555\d{7}", tree.css_first('a[itemprop="telephone"]').attributes["href"])
    assert kinds == {"truncated", "no name", "no article"}


def test_optional_fields_are_sometimes_absent(site):
    root, manifest = site
    good = [_tree(root, u) for u in manifest.detail_urls if u not in manifest.malformed_urls]
    with_site = [t.css_first('a[itemprop="url"]') is not None for t in good]
    with_rating = [t.css_first('[itemprop="ratingValue"]') is not None for t in good]
    assert 0 < sum(with_site) < len(good) and 0 < sum(with_rating) < len(good)


def _phone_digits(tree: LexborHTMLParser) -> str:
    """Digits of the displayed phone, without the +1 country code some listings add."""
    return re.sub(r"\D", "", _text(tree, '[itemprop="telephone"]'))[-10:]


def test_duplicates_are_one_business_formatted_differently(site):
    root, manifest = site
    assert len(manifest.duplicate_groups) >= 2
    for group in manifest.duplicate_groups:
        trees = [_tree(root, url) for url in group]
        assert len({_phone_digits(t) for t in trees}) == 1
        assert len({_text(t, '[itemprop="name"]').casefold() for t in trees}) == 1
        assert len({_text(t, '[itemprop="telephone"]') for t in trees}) == len(group)  # formats differ
        assert len({_text(t, '[itemprop="streetAddress"]') for t in trees}) == len(group)


def test_unique_business_count_matches_distinct_phones(site):
    root, manifest = site
    well_formed = [u for u in manifest.detail_urls if u not in manifest.malformed_urls]
    phones = [_phone_digits(_tree(root, u)) for u in well_formed]
    assert len(set(phones)) == manifest.n_unique_businesses == N_BUSINESSES - len(manifest.malformed_urls)
    assert len(phones) - len(set(phones)) == len(manifest.duplicate_groups)


def test_same_seed_same_site_and_another_seed_differs(site, tmp_path):
    root, manifest = site
    again = generate_site(tmp_path / "again", N_BUSINESSES, seed=3)
    other = generate_site(tmp_path / "other", N_BUSINESSES, seed=4)
    assert asdict(again) == asdict(manifest) and asdict(other) != asdict(manifest)
    for page in ("index.html", "directory/page-1.html", manifest.detail_urls[0].lstrip("/")):
        assert (tmp_path / "again" / page).read_bytes() == (root / page).read_bytes()
