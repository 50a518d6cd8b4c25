"""Pure JSON -> lead functions for the Places-style search API (the `places:searchText` shape).

No I/O happens here, so every record rule is unit-tested on literal dicts; places.py decides what to
request and when. A place becomes a lead with the directory scraper's LEAD_FIELDS plus the API's own
lineage (place id, the search that found it, the record's raw JSON).
"""

from __future__ import annotations

import json
import math
from datetime import datetime
from typing import Any

from orchestration.scraper.extract import Lead

# Columns a place lead carries beyond LEAD_FIELDS (raw.place_results has both).
PLACE_FIELDS = ("place_id", "search_query", "search_area", "raw_json")
RAW_JSON_CHARS = 20_000  # a record is a few hundred bytes; anything near this is not a place


class MalformedRecord(ValueError):
    """A place record that cannot become a lead; the message is the quarantine detail."""


def place_url(base_url: str, place_id: str) -> str:
    """The record's own resource URL (the API's place details path): a lead's source_url, never with a key."""
    return f"{base_url.rstrip('/')}/v1/places/{place_id}"


def parse_place(record: Any, base_url: str, query: str, area: str, fetched_at: datetime) -> Lead:
    """One record of a search page -> lead dict; raises MalformedRecord for anything without an id,
    a name, an address and a city. Optional fields with the wrong type become None, as on the HTML side."""
    if not isinstance(record, dict):
        raise MalformedRecord(f"record is a JSON {type(record).__name__}, not an object")
    place_id = _string(record.get("id"))
    name = _string(_get(record, "displayName", "text"))
    address_line = _string(record.get("formattedAddress"))
    missing = [field for field, value in (("id", place_id), ("displayName.text", name)) if value is None]
    if address_line is None:
        missing.append("formattedAddress")
    if missing:
        raise MalformedRecord(f"missing required field(s): {', '.join(missing)}")
    components = record.get("addressComponents")
    components = components if isinstance(components, list) else []
    city = _component(components, "locality") or _component(components, "postal_town")
    if city is None:
        raise MalformedRecord("no locality in addressComponents: the city is unknown")
    street = " ".join(filter(None, (_component(components, "street_number"), _component(components, "route"))))
    return {
        "name": name,
        "category": _string(_get(record, "primaryTypeDisplayName", "text")) or _string(record.get("primaryType")),
        "address": street or address_line.split(",")[0].strip(),
        "city": city,
        "phone": _string(record.get("nationalPhoneNumber")) or _string(record.get("internationalPhoneNumber")),
        "website": _string(record.get("websiteUri")),
        "rating": _number(record.get("rating"), 0, 5),
        "review_count": _count(record.get("userRatingCount")),
        "source_url": place_url(base_url, place_id),
        "scraped_at": fetched_at,
        "place_id": place_id,
        "search_query": query,
        "search_area": area,
        "raw_json": raw_json(record),
    }


def raw_json(record: Any) -> str:
    """The record as received (key order kept), for lineage; cut at RAW_JSON_CHARS."""
    return json.dumps(record, ensure_ascii=False, default=str)[:RAW_JSON_CHARS]


def _get(record: dict, *path: str) -> Any:
    for key in path:
        if not isinstance(record, dict):
            return None
        record = record.get(key)
    return record


def _string(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    value = " ".join(value.split())
    return value or None


def _component(components: list, kind: str) -> str | None:
    for component in components:
        if isinstance(component, dict) and kind in (component.get("types") or []):
            return _string(component.get("longText"))
    return None


def _number(value: Any, low: float, high: float) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    value = float(value)
    return value if math.isfinite(value) and low <= value <= high else None


def _count(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None
    return value
