"""A static business directory of garages and repair shops for the lead scraper to crawl.

The site is a realistic crawl target with known answers: listing pages with pagination, schema.org detail
pages, businesses listed twice with different formatting, broken pages, a dead link, and a /private/ area
that only robots.txt keeps a polite crawler out of. The manifest records all of it so tests can check the
scraper against ground truth. All links are root-relative; serve the folder at the site root.
"""

from __future__ import annotations

import html
import re
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

SITE_TITLE = "Garage Finder"
PAGE_SIZE = 20
ROBOTS_TXT = "User-agent: *\nDisallow: /private/\n"
DUPLICATE_SHARE = 0.05
MALFORMED_SHARE = 0.03
PRIVATE_BUSINESS_PAGES = 5  # at most; one is linked per listing page
MALFORMED_KINDS = ("no_article", "no_name", "truncated")

CATEGORIES = ("Garage", "Tyre Shop", "Body Shop", "Auto Electrician", "Parts Dealer", "MOT Centre")
NAME_PATTERNS = {
    "Garage": ("{surname} & Sons Garage", "{surname} Motors", "{city} Auto Repairs", "{surname}'s Garage"),
    "Tyre Shop": ("{city} Tyre Centre", "{surname} Tyres", "Kwik Tread {city}"),
    "Body Shop": ("{surname} Bodyworks", "{city} Accident Repair Centre", "{surname} Paint & Panel"),
    "Auto Electrician": ("{surname} Auto Electrics", "Spark & Wire {city}"),
    "Parts Dealer": ("{surname} Motor Factors", "{city} Car Parts", "{surname} Spares"),
    "MOT Centre": ("{city} MOT Centre", "{surname}'s MOT & Service"),
}
# fmt: off
SURNAMES = (
    "Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Johnson", "Davies", "Patel", "Wright",
    "Walker", "Thompson", "White", "Hughes", "Edwards", "Green", "Hall", "Wood", "Harris", "Lewis",
    "Martin", "Jackson", "Clarke", "Clark", "Turner", "Hill", "Scott", "Cooper", "Morris", "Ward",
    "Moore", "King", "Watson", "Baker", "Harrison", "Morgan", "Young", "Allen", "Mitchell", "Bell",
    "Kelly", "Parker", "Bennett", "Murphy", "Price", "Griffiths", "Carter", "Phillips", "Shaw", "Lloyd",
    "O'Brien", "Nguyen", "Garcia", "Kowalski", "Novak", "Rossi", "Müller", "Schmidt", "Dubois", "Silva",
)
CITIES = (
    "Springfield", "Riverton", "Fairview", "Lakewood", "Greenville", "Franklin", "Madison",
    "Georgetown", "Clinton", "Salem", "Arlington", "Ashland", "Oxford", "Milton", "Newport", "Bristol",
    "Dover", "Hudson", "Kingston", "Marion", "Burlington", "Manchester", "Lexington", "Auburn",
    "Chester",
)
STREETS = (
    "Main", "High", "Church", "Station", "Mill", "Park", "Market", "Bridge", "Victoria", "King",
    "Queen", "Oak", "Elm", "Maple", "Cedar", "Forge", "Canal", "Meadow", "Union", "Harbor",
)
# fmt: on
STREET_SUFFIXES = {"Street": "st.", "Road": "rd.", "Avenue": "ave.", "Lane": "ln.", "Drive": "dr."}


@dataclass
class SiteManifest:
    """Ground truth about the generated site; paths are root-relative URLs like /business/x.html."""

    n_listing_pages: int
    detail_urls: list[str]
    malformed_urls: list[str]
    missing_urls: list[str]
    duplicate_groups: list[list[str]]
    disallowed_urls: list[str]
    n_unique_businesses: int
    # The businesses a correct scrape finds (one per business, canonical fields): ground truth for the
    # Places API fixture and the CRM export of the lead demo (orchestration/demo/leads.py).
    businesses: list[dict] = field(default_factory=list)


@dataclass
class _Business:
    name: str
    category: str
    street_no: int
    street: str
    suffix: str
    city: str
    phone: str  # 10 digits, area code first
    website: str | None
    rating: float | None
    reviews: int


@dataclass
class _Entry:
    """One listed link: the business, how this listing formats it, and how its page is rendered."""

    slug: str
    business: _Business
    name: str
    address: str
    phone: str
    style: str  # "ok", "missing" (never written) or a malformed kind


def slugify(text: str) -> str:
    """URL slug: lowercase ASCII letters and digits separated by single hyphens."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower().replace("ü", "u")).strip("-")


def _slug(b: _Business) -> str:
    """Name plus city, unless the name already says where it is."""
    return slugify(b.name if b.city in b.name else f"{b.name} {b.city}")


def generate_site(site_dir: Path, n_businesses: int, seed: int) -> SiteManifest:
    """Write the site into site_dir (replacing a previous one) and return its manifest.

    n_businesses counts distinct businesses; duplicates add extra listings on top, and the dead link is
    an extra listing whose page was never written.
    """
    if n_businesses < 10:
        raise ValueError("need at least 10 businesses to plant duplicates and broken pages")
    rng = np.random.default_rng(seed)
    site_dir = Path(site_dir)
    if site_dir.exists():
        shutil.rmtree(site_dir)

    businesses = _make_businesses(rng, n_businesses + PRIVATE_BUSINESS_PAGES + 1)
    private, ghost = businesses[n_businesses:-1], businesses[-1]
    slugs: set[str] = set()
    entries = [_entry(b, _slug(b), slugs, rng) for b in businesses[:n_businesses]]

    n_dup = max(2, round(DUPLICATE_SHARE * n_businesses))
    n_bad = max(len(MALFORMED_KINDS), round(MALFORMED_SHARE * n_businesses))
    picked = rng.permutation(n_businesses)
    duplicate_groups = []
    for i in picked[:n_dup]:
        original = entries[i].business
        twin = _entry(original, slugify(original.name) + "-listing", slugs, rng, variant=True)
        entries.append(twin)
        duplicate_groups.append([f"/business/{entries[i].slug}.html", f"/business/{twin.slug}.html"])
    for k, i in enumerate(picked[n_dup : n_dup + n_bad]):
        entries[i].style = MALFORMED_KINDS[k % len(MALFORMED_KINDS)]
    missing = _entry(ghost, _slug(ghost), slugs, rng)
    missing.style = "missing"
    entries.append(missing)
    entries = [entries[i] for i in rng.permutation(len(entries))]

    for entry in entries:
        if entry.style != "missing":
            _write(site_dir / "business" / f"{entry.slug}.html", _detail_page(entry))
    pages = [entries[i : i + PAGE_SIZE] for i in range(0, len(entries), PAGE_SIZE)]
    private_urls = []
    for b in private[: len(pages)]:
        slug = _slug(b)
        private_urls.append(f"/private/business/{slug}.html")
        _write(site_dir / "private" / "business" / f"{slug}.html", _detail_page(_entry(b, slug, set(), rng)))
    for n, page in enumerate(pages, start=1):
        private_link = private_urls[(n - 1) % len(private_urls)]
        _write(site_dir / "directory" / f"page-{n}.html", _listing_page(n, len(pages), page, private_link))
    _write(site_dir / "private" / "admin.html", _page("Admin", "<p>Staff only: pending listings.</p>\n"))
    _write(site_dir / "index.html", _page(SITE_TITLE, _INDEX_BODY))
    _write(site_dir / "robots.txt", ROBOTS_TXT)

    return SiteManifest(
        n_listing_pages=len(pages),
        detail_urls=[f"/business/{e.slug}.html" for e in entries if e.style != "missing"],
        malformed_urls=[f"/business/{e.slug}.html" for e in entries if e.style in MALFORMED_KINDS],
        missing_urls=[f"/business/{missing.slug}.html"],
        duplicate_groups=duplicate_groups,
        disallowed_urls=sorted(["/private/admin.html", *private_urls]),
        n_unique_businesses=n_businesses - n_bad,
        businesses=_scrapable(entries),
    )


def _scrapable(entries: list[_Entry]) -> list[dict]:
    """Every business with at least one well-formed page, once, in listing order."""
    broken = {id(e.business) for e in entries if e.style != "ok"}
    found: dict[str, dict] = {}
    for entry in entries:
        b = entry.business
        if entry.style == "ok" and id(b) not in broken and b.phone not in found:
            found[b.phone] = asdict(b) | {"address": f"{b.street_no} {b.street} {b.suffix}"}
    return list(found.values())


def _make_businesses(rng: np.random.Generator, n: int) -> list[_Business]:
    """Distinct businesses: unique (name, city) and unique phones, so the planted twins are the only duplicates.

    The same name can exist in two cities (chains, common surnames): a deduplicator must not merge on name
    alone.
    """
    seen: set[tuple[str, str]] = set()
    phones = rng.choice(10_000_000, size=n, replace=False)
    out = []
    while len(out) < n:
        category = CATEGORIES[rng.integers(len(CATEGORIES))]
        patterns = NAME_PATTERNS[category]
        city = CITIES[rng.integers(len(CITIES))]
        name = patterns[rng.integers(len(patterns))].format(surname=SURNAMES[rng.integers(len(SURNAMES))], city=city)
        if (name, city) in seen:
            continue
        seen.add((name, city))
        has_rating = rng.random() > 0.15
        out.append(
            _Business(
                name=name,
                category=category,
                street_no=int(rng.integers(1, 400)),
                street=STREETS[rng.integers(len(STREETS))],
                suffix=list(STREET_SUFFIXES)[rng.integers(len(STREET_SUFFIXES))],
                city=city,
                phone=f"555{phones[len(out)]:07d}",
                website=None if rng.random() < 0.25 else f"https://{slugify(f'{name} {city}')}.example",
                rating=round(float(rng.uniform(2.8, 5.0)), 1) if has_rating else None,
                reviews=int(rng.lognormal(3.5, 1.0)) + 1 if has_rating else 0,
            )
        )
    return out


def _unique_slug(slug: str, taken: set[str]) -> str:
    candidate, n = slug, 2
    while candidate in taken:
        candidate, n = f"{slug}-{n}", n + 1
    taken.add(candidate)
    return candidate


def _entry(b: _Business, slug: str, taken: set[str], rng: np.random.Generator, variant: bool = False) -> _Entry:
    """A listing for b; a duplicate's variant differs from the original only in formatting."""
    p = b.phone
    if not variant:
        return _Entry(
            _unique_slug(slug, taken),
            b,
            b.name,
            f"{b.street_no} {b.street} {b.suffix}",
            f"({p[:3]}) {p[3:6]}-{p[6:]}",
            "ok",
        )
    name = ("  " + "  ".join(b.name.upper().split()) + "  ", b.name.lower() + " ")[int(rng.integers(2))]
    address = f"{b.street_no} {b.street.lower()} {STREET_SUFFIXES[b.suffix]}"
    phone = (f"{p[:3]}.{p[3:6]}.{p[6:]}", f"+1 {p[:3]} {p[3:6]} {p[6:]}")[int(rng.integers(2))]
    return _Entry(_unique_slug(slug, taken), b, name, address, phone, "ok")


def _detail_page(x: _Entry) -> str:
    b, e = x.business, html.escape
    # Broken pages carry a generic title so the name cannot be recovered from anywhere else.
    if x.style == "no_article":
        return _page(SITE_TITLE, '<div class="notice">This listing is being updated.</div>\n')
    head = '<article class="business" itemscope itemtype="https://schema.org/AutoRepair">\n'
    if x.style == "truncated":
        # The transfer died inside the name tag and the rest is mojibake: no closing tags.
        return _page(SITE_TITLE, head).removesuffix(_PAGE_END) + "  <h1 itempr\u00c3\u00a9\u00ef\u00bf\u00bd\x1a"
    lines = [head]
    if x.style != "no_name":
        lines.append(f'  <h1 itemprop="name">{e(x.name)}</h1>\n')
    lines += [
        f'  <span class="category" itemprop="category">{e(b.category)}</span>\n',
        f'  <div itemprop="address"><span itemprop="streetAddress">{e(x.address)}</span>, '
        f'<span itemprop="addressLocality">{e(b.city)}</span></div>\n',
        f'  <a itemprop="telephone" href="tel:+1{b.phone}">{e(x.phone)}</a>\n',
    ]
    if b.website:
        lines.append(f'  <a itemprop="url" href="{e(b.website)}">Website</a>\n')
    if b.rating is not None:
        lines.append(
            f'  <span itemprop="ratingValue">{b.rating}</span> '
            f'(<span itemprop="reviewCount">{b.reviews}</span> reviews)\n'
        )
    lines.append("</article>\n")
    title = SITE_TITLE if x.style == "no_name" else f"{e(' '.join(x.name.split()))} | {SITE_TITLE}"
    return _page(title, "".join(lines))


def _listing_page(n: int, n_pages: int, entries: list[_Entry], private_link: str) -> str:
    items = "".join(
        f'  <li class="listing-item"><a class="business-link" href="/business/{x.slug}.html">'
        f"{html.escape(x.name)}</a> "
        f'<span class="city">{html.escape(x.business.city)}</span></li>\n'
        for x in entries
    )
    nav = []
    if n > 1:
        nav.append(f'<a class="prev" rel="prev" href="/directory/page-{n - 1}.html">Previous</a>')
    if n < n_pages:
        nav.append(f'<a class="next" rel="next" href="/directory/page-{n + 1}.html">Next</a>')
    body = (
        f"<h1>Garages and repair shops, page {n} of {n_pages}</h1>\n"
        f'<ul class="listing">\n{items}</ul>\n'
        f'<nav class="pagination">{" ".join(nav)}</nav>\n'
        '<footer><a href="/private/admin.html">Admin</a> '
        f'<a href="{private_link}">Pending listing</a></footer>\n'
    )
    return _page(f"Directory page {n}", body)


_INDEX_BODY = (
    "<h1>Garage Finder</h1>\n"
    "<p>Independent garages, tyre shops and repair specialists near you.</p>\n"
    '<a href="/directory/page-1.html">Browse the directory</a>\n'
)


def _page(title: str, body: str) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{title}</title>\n</head>\n<body>\n"
        '<nav><a href="/">Home</a> <a href="/directory/page-1.html">Directory</a></nav>\n'
        f"{body}{_PAGE_END}"
    )


_PAGE_END = "</body>\n</html>\n"


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8", newline="\n")
