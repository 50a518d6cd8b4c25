"""The Places-style API connector against a real local API server (orchestration/demo/places_api.py).

Timing rules run on an injected clock (the fake sleep advances it), except the rate-limit test, which
checks the arrival times the server itself saw.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

import pytest

from orchestration.demo.places_api import FixturePlace, PlacesApi, serve_places_api
from orchestration.landing.contract import Reason
from orchestration.scraper.places import PlacesPolicy, search_places

KEY = "test-key-5f3a9c-do-not-log"
FETCHED = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)


def place(i: int, city: str = "Springfield", **overrides) -> dict:
    record = {
        "id": f"place-{city[:3].lower()}-{i:03d}",
        "displayName": {"text": f"Garage {i}", "languageCode": "en"},
        "primaryType": "car_repair",
        "primaryTypeDisplayName": {"text": "Car repair"},
        "formattedAddress": f"{i} Main St, {city}, ST 12345, USA",
        "addressComponents": [
            {"longText": str(i), "types": ["street_number"]},
            {"longText": "Main St", "types": ["route"]},
            {"longText": city, "types": ["locality", "political"]},
        ],
        "nationalPhoneNumber": f"(555) 100-{i:04d}",
        "websiteUri": f"https://garage{i}.example",
        "rating": 4.5,
        "userRatingCount": 10 + i,
    }
    return record | overrides


class FakeTime:
    """An injected clock: sleep advances it and records how long each wait was; on_sleep runs once."""

    def __init__(self):
        self.now = 0.0
        self.sleeps: list[float] = []
        self.on_sleep = None

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        if self.on_sleep is not None:
            hook, self.on_sleep = self.on_sleep, None
            hook()


def run(api: PlacesApi, searches, policy: PlacesPolicy | None = None, fake: FakeTime | None = None, key=KEY):
    fake = fake or FakeTime()
    return search_places(
        api.base_url, key, searches, policy or PlacesPolicy(), fake.clock, fake.sleep, now=lambda: FETCHED
    )


@pytest.fixture
def api():
    places = [FixturePlace("Springfield", ("repair", "garage"), place(i)) for i in range(45)]
    places += [FixturePlace("Riverton", ("repair", "garage"), place(i, "Riverton")) for i in range(5)]
    with serve_places_api(PlacesApi(places, api_key=KEY)) as served:
        yield served


def test_paginates_to_the_last_page_and_keeps_the_raw_json(api):
    result = run(api, [("car repair", "Springfield"), ("garage", "Riverton")])
    assert len(result.leads) == 50
    assert result.stats.pages_fetched == 4  # 20 + 20 + 5, then one page of 5
    assert result.stats.searches_completed == 2 and result.stats.stopped_reason is None
    lead = result.leads[0]
    assert lead | {"raw_json": None} == {
        "name": "Garage 0",
        "category": "Car repair",
        "address": "0 Main St",
        "city": "Springfield",
        "phone": "(555) 100-0000",
        "website": "https://garage0.example",
        "rating": 4.5,
        "review_count": 10,
        "source_url": f"{api.base_url}/v1/places/place-spr-000",
        "scraped_at": FETCHED,
        "place_id": "place-spr-000",
        "search_query": "car repair",
        "search_area": "Springfield",
        "raw_json": None,
    }
    assert json.loads(lead["raw_json"]) == place(0)
    bodies = [json.loads(request.body) for request in api.requests]
    assert bodies[0] == {"textQuery": "car repair in Springfield", "pageSize": 20}
    assert bodies[1]["pageToken"] and bodies[1]["textQuery"] == "car repair in Springfield"


def test_the_key_travels_in_a_header_and_is_never_logged_or_stored(api, caplog):
    caplog.set_level(logging.DEBUG)
    api.script(503, times=1)
    result = run(api, [("car repair", "Springfield"), ("repair", "Nowhere")], key=KEY)
    assert all(request.headers["x-goog-api-key"] == KEY for request in api.requests)
    assert all(KEY not in request.path and KEY not in request.body for request in api.requests)
    stored = json.dumps([result.leads, result.quarantined, vars(result.stats)], default=str)
    assert KEY not in stored
    assert caplog.records, "httpx logs every request at DEBUG/INFO: the test must see them"
    assert all(KEY not in record.getMessage() for record in caplog.records)

    wrong = run(api, [("car repair", "Springfield")], key="a-wrong-key")
    assert wrong.stats.stopped_reason.startswith("PERMISSION_DENIED") and not wrong.leads
    assert "a-wrong-key" not in json.dumps(wrong.quarantined)


def test_quota_exhaustion_stops_the_run_and_keeps_what_was_fetched(api):
    api.quota = 2
    fake = FakeTime()
    result = run(api, [("car repair", "Springfield"), ("garage", "Riverton")], fake=fake)
    assert len(result.leads) == 40  # two pages before the quota ran out
    assert result.stats.quota_exhausted and result.stats.stopped_reason.startswith("RESOURCE_EXHAUSTED")
    assert result.stats.retries == 3, "429 is retried before giving up"
    assert [q["reason"] for q in result.quarantined] == [Reason.FETCH_FAILED]
    assert "RESOURCE_EXHAUSTED" in result.quarantined[0]["detail"]
    assert not any("Riverton" in request.body for request in api.requests), "no search after the quota is gone"


def test_own_request_budget_is_a_per_run_quota(api):
    result = run(api, [("car repair", "Springfield")], PlacesPolicy(max_requests=2))
    assert len(api.requests) == 2 and len(result.leads) == 40
    assert result.stats.budget_exhausted and "budget" in result.stats.stopped_reason


def test_expired_page_token_restarts_the_search_once_without_duplicates(api):
    fake = FakeTime()
    fake.on_sleep = api.expire_tokens  # the token of page 1 expires before page 2 is asked for
    result = run(api, [("car repair", "Springfield")], fake=fake)
    assert result.stats.token_restarts == 1
    assert len(result.leads) == 45 and len({lead["place_id"] for lead in result.leads}) == 45
    assert result.stats.duplicate_places == 20
    assert not result.quarantined


def test_a_token_that_expires_again_is_quarantined_and_the_run_goes_on(api):
    class Expiring(FakeTime):
        def sleep(self, seconds):
            super().sleep(seconds)
            api.expire_tokens()

    result = run(api, [("car repair", "Springfield"), ("garage", "Riverton")], fake=Expiring())
    assert result.stats.token_restarts == 1
    assert [q["reason"] for q in result.quarantined] == [Reason.FETCH_FAILED]
    assert "expired" in result.quarantined[0]["detail"] and "page=2" in result.quarantined[0]["source_url"]
    assert {lead["city"] for lead in result.leads} == {"Springfield", "Riverton"}


def test_retries_back_off_exponentially_and_honour_retry_after(api):
    api.script(503, times=2)
    fake = FakeTime()
    result = run(api, [("garage", "Riverton")], PlacesPolicy(backoff_base_seconds=0.5), fake=fake)
    assert len(result.leads) == 5 and result.stats.retries == 2
    backoffs = [s for s in fake.sleeps if s >= 0.5]
    assert backoffs == [0.5, 1.0]

    api.script(429, headers={"Retry-After": "7"})
    fake = FakeTime()
    result = run(api, [("garage", "Riverton")], fake=fake)
    assert len(result.leads) == 5 and max(fake.sleeps) == 7.0


def test_server_errors_after_every_retry_quarantine_that_search_only(api):
    api.script(500, times=4)
    result = run(api, [("garage", "Riverton"), ("car repair", "Springfield")])
    assert [q["reason"] for q in result.quarantined] == [Reason.FETCH_FAILED]
    assert "HTTP 500" in result.quarantined[0]["detail"] and "4 attempt(s)" in result.quarantined[0]["detail"]
    assert len(result.leads) == 45


def test_rate_limit_as_the_server_sees_it(api):
    search_places(api.base_url, KEY, [("car repair", "Springfield")], PlacesPolicy(requests_per_second=20))
    arrivals = api.arrival_times()
    assert len(arrivals) == 3
    assert min(b - a for a, b in zip(arrivals, arrivals[1:], strict=False)) >= 0.05 - 0.002


def test_malformed_records_are_quarantined_with_a_reason_and_the_rest_kept():
    records = [
        place(1),
        "just a string",
        place(2, id=""),
        {k: v for k, v in place(3).items() if k != "displayName"},
        place(4, addressComponents=[{"longText": "Main St", "types": ["route"]}]),
        place(5, rating="five", userRatingCount=-3, websiteUri=42),
    ]
    api = PlacesApi([FixturePlace("Springfield", (), record) for record in records], api_key=KEY)
    with serve_places_api(api):
        result = run(api, [("car repair", "Springfield")])
    assert [lead["place_id"] for lead in result.leads] == ["place-spr-001", "place-spr-005"]
    bad = result.leads[1]
    assert (bad["rating"], bad["review_count"], bad["website"]) == (None, None, None)
    details = [(q["reason"], q["detail"]) for q in result.quarantined]
    assert details == [
        (Reason.MALFORMED_RECORD, "record is a JSON str, not an object"),
        (Reason.MALFORMED_RECORD, "missing required field(s): id"),
        (Reason.MALFORMED_RECORD, "missing required field(s): displayName.text"),
        (Reason.MALFORMED_RECORD, "no locality in addressComponents: the city is unknown"),
    ]
    assert json.loads(result.quarantined[3]["raw_snippet"])["id"] == "place-spr-004"


def test_a_body_that_is_not_json_is_an_unparseable_page(api):
    api.script(200, body="<html>maintenance</html>")
    result = run(api, [("garage", "Riverton")])
    assert [q["reason"] for q in result.quarantined] == [Reason.UNPARSEABLE_PAGE]
    assert result.quarantined[0]["raw_snippet"] == "<html>maintenance</html>"


def test_raw_place_results_keep_one_observation_per_place_per_scrape_day(api, tmp_path):
    from datetime import timedelta

    from orchestration.landing.contract import PLACE_RESULTS
    from orchestration.landing.load import load_leads
    from orchestration.warehouse import DuckDBWarehouse

    warehouse = DuckDBWarehouse(tmp_path / "warehouse.duckdb")
    first = run(api, [("garage", "Riverton")])
    assert load_leads(warehouse, first.leads, first.quarantined, table=PLACE_RESULTS).rows_loaded == 5
    assert load_leads(warehouse, first.leads, first.quarantined, table=PLACE_RESULTS).rows_loaded == 0
    next_day = [lead | {"scraped_at": lead["scraped_at"] + timedelta(days=1)} for lead in first.leads]
    assert load_leads(warehouse, next_day, [], table=PLACE_RESULTS).rows_loaded == 5, "still there the next day"
    stored = warehouse.query("SELECT place_id, raw_json, source_url FROM raw.place_results")
    assert len(stored) == 10 and stored["raw_json"].map(json.loads).map(lambda r: r["id"]).eq(stored["place_id"]).all()
    assert not stored["source_url"].str.contains(KEY).any()
