"""Demo data for the prospector beyond the directory site: what a Places-style API knows about the same
market, and a CRM export whose won/lost outcomes depend on the leads' features.

- places_api.json: records for the directory's businesses in the target cities (formatted the API's way,
  so the warehouse must merge them with their directory pages), API-only businesses the directory does
  not list, and a few malformed records. `optimum demo` serves it with orchestration/demo/places_api.py.
- landing/lead_status/lead_status.csv: each worked lead moves new -> contacted -> (qualified) -> won or
  lost. P(won) follows PLANTED_WIN_LOGIT, which weighs things differently from the transparent scorer's
  defaults (reviews and websites matter more, rating not at all), so an outcome model has something to
  learn. Leads are referenced by phone (formatted as a CRM would), sometimes by website only, and a few
  planted bad rows (no reference, unknown status, bad timestamp) must land in quarantine.
- leads_manifest.json: ground truth (API-only and malformed records, planted status rows, outcomes).
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path

import numpy as np

from orchestration.demo.site import STREET_SUFFIXES, STREETS, SURNAMES, slugify
from orchestration.landing.contract import LEAD_STATUS, Reason

DEMO_TARGET_CITIES = ("Springfield", "Riverton", "Fairview", "Lakewood", "Greenville", "Franklin", "Madison")
DEMO_PLACES_API_KEY = "demo-places-key"
PLACES_QUERIES = ("car repair", "tyre shop", "auto electrician", "body shop", "parts dealer", "mot centre")
# Which query finds which directory category (the API matches words of the query).
QUERY_TERMS = {
    "Garage": ("repair", "garage"),
    "Tyre Shop": ("tyre",),
    "Body Shop": ("body",),
    "Auto Electrician": ("electrician",),
    "Parts Dealer": ("parts",),
    "MOT Centre": ("mot",),
}
PRIMARY_TYPES = {
    "Garage": ("car_repair", "Car repair"),
    "Tyre Shop": ("tire_shop", "Tire shop"),
    "Body Shop": ("auto_body_shop", "Auto body shop"),
    "Auto Electrician": ("car_repair", "Auto electrician"),
    "Parts Dealer": ("auto_parts_store", "Auto parts store"),
    "MOT Centre": ("car_inspection", "MOT centre"),
}
API_ONLY_SHARE = 0.15  # businesses the API knows that the directory does not list
MALFORMED_RECORDS = 3
WORKED_SHARE = 0.85  # leads the sales team touched
DECIDED_SHARE = 0.8  # of those, leads that reached won or lost
HISTORY_DAYS = 240  # the CRM history ends at the data's last day and starts this long before
PLANTED_CATEGORY_EFFECT = {
    "Garage": 0.8,
    "Auto Electrician": 0.6,
    "Body Shop": 1.2,
    "Tyre Shop": 0.0,
    "MOT Centre": -0.2,
    "Parts Dealer": -1.8,
}


def planted_win_logit(business: dict, in_target_city: bool) -> float:
    """Log-odds of winning a worked lead in the demo world."""
    volume = math.log1p(business["reviews"]) / math.log1p(200)
    return (
        -2.9
        + PLANTED_CATEGORY_EFFECT[business["category"]]
        + 1.4 * (business["website"] is not None)
        + 2.2 * volume
        + 0.7 * in_target_city
    )


@dataclass
class LeadsManifest:
    n_places_records: int
    api_only_phones: list[str]
    malformed_record_ids: list[str]
    directory_phones_in_api: list[str]
    planted_status_rows: list[dict]  # {"line", "reason"} in lead_status.csv
    n_worked: int
    n_won: int
    n_lost: int


def generate_lead_data(out_dir: Path, directory_businesses: list[dict], seed: int, end: date) -> LeadsManifest:
    """Write places_api.json, landing/lead_status/lead_status.csv and leads_manifest.json under out_dir."""
    rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(7)[6])
    out_dir = Path(out_dir)
    in_targets = [b for b in directory_businesses if b["city"] in DEMO_TARGET_CITIES]
    taken_phones = {b["phone"] for b in directory_businesses}
    api_only = _api_only_businesses(rng, max(3, round(API_ONLY_SHARE * len(in_targets))), taken_phones)
    entries = [_fixture_entry(b, rng) for b in in_targets + api_only]
    malformed = _malformed_records(rng)
    entries += malformed
    order = rng.permutation(len(entries))
    entries = [entries[i] for i in order]
    (out_dir / "places_api.json").write_text(json.dumps(entries, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")

    crm_rows, outcomes = _crm_history(rng, directory_businesses + api_only, end)
    planted = _plant_bad_status_rows(rng, crm_rows)
    folder = out_dir / "landing" / LEAD_STATUS.name
    folder.mkdir(parents=True, exist_ok=True)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(LEAD_STATUS.columns)
    writer.writerows(crm_rows)
    (folder / "lead_status.csv").write_text(buffer.getvalue(), encoding="utf-8")

    manifest = LeadsManifest(
        n_places_records=len(entries),
        api_only_phones=[b["phone"] for b in api_only],
        malformed_record_ids=[str(e["record"].get("id")) if isinstance(e["record"], dict) else "" for e in malformed],
        directory_phones_in_api=[b["phone"] for b in in_targets],
        planted_status_rows=planted,
        n_worked=len(outcomes),
        n_won=sum(1 for o in outcomes.values() if o == "won"),
        n_lost=sum(1 for o in outcomes.values() if o == "lost"),
    )
    (out_dir / "leads_manifest.json").write_text(json.dumps(asdict(manifest), indent=1) + "\n", encoding="utf-8")
    return manifest


def load_places_fixture(path: Path):
    """The FixturePlace list `optimum demo` serves."""
    from orchestration.demo.places_api import FixturePlace

    return [
        FixturePlace(e["area"], tuple(e["terms"]), e["record"]) for e in json.loads(path.read_text(encoding="utf-8"))
    ]


def _api_only_businesses(rng: np.random.Generator, n: int, taken_phones: set[str]) -> list[dict]:
    out = []
    categories = list(QUERY_TERMS)
    while len(out) < n:
        phone = f"556{int(rng.integers(10_000_000)):07d}"
        if phone in taken_phones:
            continue
        taken_phones.add(phone)
        city = DEMO_TARGET_CITIES[int(rng.integers(len(DEMO_TARGET_CITIES)))]
        surname = SURNAMES[int(rng.integers(len(SURNAMES)))]
        category = categories[int(rng.integers(len(categories)))]
        street = STREETS[int(rng.integers(len(STREETS)))]
        suffix = list(STREET_SUFFIXES)[int(rng.integers(len(STREET_SUFFIXES)))]
        number = int(rng.integers(1, 400))
        name = f"{surname} {category} {city}"
        has_rating = rng.random() > 0.2
        out.append(
            {
                "name": name,
                "category": category,
                "address": f"{number} {street} {suffix}",
                "city": city,
                "phone": phone,
                "website": None if rng.random() < 0.4 else f"https://{slugify(name)}.example",
                "rating": round(float(rng.uniform(2.8, 5.0)), 1) if has_rating else None,
                "reviews": int(rng.lognormal(3.0, 1.0)) + 1 if has_rating else 0,
            }
        )
    return out


def _fixture_entry(b: dict, rng: np.random.Generator) -> dict:
    phone = b["phone"]
    number, street = b["address"].split(" ", 1)
    primary_type, type_name = PRIMARY_TYPES[b["category"]]
    record = {
        "id": "ChIJ" + slugify(f"{b['name']} {phone}").replace("-", "")[:22],
        "displayName": {"text": b["name"], "languageCode": "en"},
        "primaryType": primary_type,
        "primaryTypeDisplayName": {"text": type_name, "languageCode": "en"},
        "formattedAddress": f"{b['address']}, {b['city']}, USA",
        "addressComponents": [
            {"longText": number, "shortText": number, "types": ["street_number"]},
            {"longText": street, "shortText": street, "types": ["route"]},
            {"longText": b["city"], "shortText": b["city"], "types": ["locality", "political"]},
        ],
        "nationalPhoneNumber": f"({phone[:3]}) {phone[3:6]}-{phone[6:]}",
        "internationalPhoneNumber": f"+1 {phone[:3]}-{phone[3:6]}-{phone[6:]}",
    }
    if b["website"]:
        record["websiteUri"] = b["website"] + "/"
    if b["rating"] is not None:
        # The API's review count runs a little ahead of the directory's mirror.
        record |= {"rating": b["rating"], "userRatingCount": b["reviews"] + int(rng.integers(0, 4))}
    return {"area": b["city"], "terms": list(QUERY_TERMS[b["category"]]), "record": record}


def _malformed_records(rng: np.random.Generator) -> list[dict]:
    city = DEMO_TARGET_CITIES[0]
    no_name = {"id": "ChIJmalformednoname", "formattedAddress": f"1 Main St, {city}, USA"}
    no_locality = {
        "id": "ChIJmalformednocity",
        "displayName": {"text": "Somewhere Garage"},
        "formattedAddress": "2 Main St, USA",
        "addressComponents": [{"longText": "Main St", "types": ["route"]}],
    }
    records = [no_name, no_locality, "<html>upstream error</html>"][:MALFORMED_RECORDS]
    return [{"area": city, "terms": ["repair"], "record": record} for record in records]  # one query finds them


def _crm_history(rng: np.random.Generator, businesses: list[dict], end: date) -> tuple[list[list[str]], dict[str, str]]:
    """Status rows in time order, and each worked lead's final status by phone."""
    start = datetime.combine(end - timedelta(days=HISTORY_DAYS), time(9))
    last = datetime.combine(end, time(17))
    events: list[tuple[datetime, list[str]]] = []
    outcomes: dict[str, str] = {}
    owners = ("ann", "bob", "chen", "dana")
    for b in businesses:
        if rng.random() >= WORKED_SHARE:
            continue
        owner = owners[int(rng.integers(len(owners)))]
        at = start + timedelta(days=float(rng.uniform(0, HISTORY_DAYS - 45)), hours=float(rng.uniform(0, 8)))
        path = ["new", "contacted"]
        if rng.random() < DECIDED_SHARE:
            won = rng.random() < 1 / (1 + math.exp(-planted_win_logit(b, b["city"] in DEMO_TARGET_CITIES)))
            path += ["qualified", "won"] if won else (["qualified", "lost"] if rng.random() < 0.5 else ["lost"])
        by_website = b["website"] is not None and rng.random() < 0.1
        for status in path:
            at = min(at + timedelta(days=float(rng.uniform(1, 12))), last)
            events.append((at, [*_reference(b, rng, by_website), status, at.strftime("%Y-%m-%dT%H:%M:%SZ"), owner, ""]))
        outcomes[b["phone"]] = path[-1]
    events.sort(key=lambda event: event[0])
    return [row for _, row in events], outcomes


def _reference(b: dict, rng: np.random.Generator, by_website: bool) -> list[str]:
    """lead_key, phone, website as a CRM user typed them."""
    if by_website:
        return ["", "", b["website"].replace("https://", "http://www.")]
    p = b["phone"]
    formats = (f"({p[:3]}) {p[3:6]}-{p[6:]}", f"{p[:3]}.{p[3:6]}.{p[6:]}", f"+1 {p[:3]} {p[3:6]} {p[6:]}", p)
    return ["", formats[int(rng.integers(len(formats)))], ""]


def _plant_bad_status_rows(rng: np.random.Generator, rows: list[list[str]]) -> list[dict]:
    """Insert one row per kind of defect at random places; returns their physical lines (header = 1)."""
    base = (
        rows[int(rng.integers(len(rows)))]
        if rows
        else ["", "5550000000", "", "contacted", "2024-01-01T09:00:00Z", "ann", ""]
    )
    bad = [
        (Reason.UNRESOLVED_LEAD, ["", "", "", "contacted", base[4], "ann", "forgot who"]),
        (Reason.INVALID_STATUS, [*base[:3], "Closed Won", base[4], base[5], ""]),
        (Reason.INVALID_TIMESTAMP, [*base[:4], "next tuesday", base[5], ""]),
    ]
    for _, row in bad:
        rows.insert(int(rng.integers(len(rows) + 1)), row)
    lines = {id(row): n + 2 for n, row in enumerate(rows)}
    return [{"line": lines[id(row)], "reason": str(reason)} for reason, row in bad]


DEMO_PLACES_REQUESTS_PER_SECOND = 50.0  # our own server on loopback


@contextmanager
def serving_lead_sources(out_dir: Path) -> Iterator[dict]:
    """Serve the generated directory site and Places API on 127.0.0.1 and yield the settings that point
    the lead sources at them (seed URL, API URL and key, target cities, queries)."""
    from orchestration.demo.places_api import PlacesApi, serve_places_api
    from orchestration.scraper.static_server import serve_directory

    out_dir = Path(out_dir)
    api = PlacesApi(load_places_fixture(out_dir / "places_api.json"), api_key=DEMO_PLACES_API_KEY)
    with serve_directory(out_dir / "site") as site_url, serve_places_api(api):
        yield {
            "lead_seed_urls": f"{site_url}/directory/page-1.html",
            "places_api_url": api.base_url,
            "places_api_key": DEMO_PLACES_API_KEY,
            "places_queries": ",".join(PLACES_QUERIES),
            "lead_target_cities": ",".join(DEMO_TARGET_CITIES),
            "places_requests_per_second": DEMO_PLACES_REQUESTS_PER_SECOND,
        }
