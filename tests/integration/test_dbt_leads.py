"""The lead models on both targets: two sources merged into one dim_leads, CRM status resolved and
snapshotted, leads that recent scrapes no longer find flagged, and marts.lead_daily.

Four scrape days (Mar 1, 2, 4, 5; nothing on Mar 3) over a directory and a Places-style API, and two
CRM deliveries; `dbt build` after each delivery so the snapshot sees the status move.
"""

from __future__ import annotations

import datetime as dt

from tests.integration.test_dbt_project import T, _landed, _load, _records, dbt, settings, warehouse  # noqa: F401

DIRECTORY = "http://dir.test/business"
API = "http://api.test/v1/places"


def _directory(load_id: int, rows):
    return _landed("leads", load_id, [(*row[:8], f"{DIRECTORY}/{row[8]}", row[9]) for row in rows])


def _api(load_id: int, rows):
    return _landed(
        "place_results",
        load_id,
        [(*row[:8], f"{API}/{row[8]}", row[9], row[8], "car repair", row[3], "{}") for row in rows],
    )


GARAGE = ("Main Street Garage", "Garage", "12 Main Street", "Springfield", "(555) 123-4567", None, 4.6, 120)
GARAGE_API = (
    "Main St Garage",
    "Car repair",
    "12 Main St",
    "Springfield",
    "+1 555-123-4567",
    "https://msg.example",
    4.7,
    125,
)
TYRES = ("Oak Tyres", "Tyre Shop", "4 Oak Ave", "Riverton", "555 987 6543", "https://oak.example/", None, None)
GONE = ("Closed Motors", "Garage", "9 Mill Rd", "Salem", "555-000-1111", None, 3.1, 4)
LATE = ("New Wheels", "Garage", "1 Park Ln", "Dover", "555-222-3333", None, 4.0, 10)

SCRAPES = [
    _directory(1, [(*GARAGE, "main", T(2024, 3, 1, 8)), (*GONE, "gone", T(2024, 3, 1, 8))]),
    _api(2, [(*GARAGE_API, "p-main", T(2024, 3, 2, 9)), (*TYRES, "p-oak", T(2024, 3, 2, 9))]),
    _directory(3, [(*GARAGE, "main", T(2024, 3, 4, 8)), (*LATE, "late", T(2024, 3, 4, 8))]),
    _directory(4, [(*GARAGE, "main", T(2024, 3, 5, 8)), (*TYRES, "oak", T(2024, 3, 5, 8))]),
]

STATUS_1 = _landed(
    "lead_status",
    5,
    [
        (None, "(555) 123-4567", None, "contacted", T(2024, 3, 2, 10), "ann", None),
        (None, "5551234567", None, "qualified", T(2024, 3, 3, 11), "ann", "wants a price list"),
        (None, None, "http://www.OAK.example", "contacted", T(2024, 3, 4, 12), "bob", None),
        (None, None, "https://nobody.example", "contacted", T(2024, 3, 4, 12), "bob", "no such lead"),
    ],
)
STATUS_2 = _landed(
    "lead_status",
    6,
    [
        (None, "5551234567", None, "qualified", T(2024, 3, 3, 11), "ann", "re-delivered"),  # overlap: once
        (None, "555.123.4567", None, "won", T(2024, 3, 6, 9), "ann", None),
        (None, "555 987 6543", None, "lost", T(2024, 3, 6, 10), "bob", None),
    ],
)


def test_two_sources_merge_status_history_and_daily_counts(warehouse, dbt):  # noqa: F811
    for batch in SCRAPES:
        _load(warehouse, _table_of(batch))
    _load(warehouse, {"lead_status": STATUS_1})
    dbt("build")

    leads = {r["name"]: r for r in _records(warehouse, "select * from marts.dim_leads")}
    assert set(leads) == {"Main Street Garage", "Oak Tyres", "Closed Motors", "New Wheels"}
    garage = leads["Main Street Garage"]
    assert (garage["n_sources"], garage["sources"]) == (2, "directory | places_api")
    assert garage["n_source_urls"] == 2 and garage["n_observations"] == 4
    assert garage["website"] == "https://msg.example" and garage["review_count"] == 125
    assert (garage["status"], garage["status_owner"]) == ("qualified", "ann")
    assert leads["Oak Tyres"]["status"] == "contacted", "resolved by its normalized website"
    assert leads["Oak Tyres"]["sources"] == "directory | places_api"
    assert leads["New Wheels"]["status"] == "new" and leads["New Wheels"]["status_changed_at"] is None
    assert (
        str(garage["first_seen_at"]) == "2024-03-01 08:00:00" and str(garage["last_seen_at"]) == "2024-03-05 08:00:00"
    )
    missing = {name for name, r in leads.items() if r["missing_from_recent_scrapes"]}
    assert missing == {"Closed Motors"}, "seen only before the latest 3 scrape days (Mar 2, 4, 5)"
    assert str(garage["latest_scrape_day"])[:10] == "2024-03-05"

    unresolved = _records(warehouse, "select * from staging.stg_lead_status where lead_key is null")
    assert [r["note"] for r in unresolved] == ["no such lead"]

    daily = {str(r["lead_day"])[:10]: r for r in _records(warehouse, "select * from marts.lead_daily")}
    assert sorted(daily) == [f"2024-03-0{d}" for d in range(1, 6)]
    assert [daily[d]["new_leads"] for d in sorted(daily)] == [2, 1, 0, 1, 0]
    assert [daily[d]["leads_seen"] for d in sorted(daily)] == [2, 2, 0, 2, 2]
    assert daily["2024-03-03"]["qualified_leads"] == 1 and not daily["2024-03-03"]["is_scrape_day"]

    _load(warehouse, {"lead_status": STATUS_2})
    dbt("build")
    history = _records(
        warehouse,
        "select lead_key, status, dbt_valid_from, dbt_valid_to from snapshots.snap_lead_status"
        " order by lead_key, dbt_valid_from",
    )
    garage_key = garage["lead_key"]
    garage_history = [
        (r["status"], str(r["dbt_valid_from"]), r["dbt_valid_to"] is None)
        for r in history
        if r["lead_key"] == garage_key
    ]
    assert garage_history == [("qualified", "2024-03-03 11:00:00", False), ("won", "2024-03-06 09:00:00", True)]
    every_change = _records(
        warehouse,
        "select status from staging.stg_lead_status where lead_key = '" + garage_key + "' order by changed_at",
    )
    assert [r["status"] for r in every_change] == ["contacted", "qualified", "won"]
    current = {r["name"]: r["status"] for r in _records(warehouse, "select name, status from marts.dim_leads")}
    assert current["Main Street Garage"] == "won" and current["Oak Tyres"] == "lost"


def _table_of(batch) -> dict:
    return {"place_results" if "place_id" in batch.columns else "leads": batch}


def test_dates_are_the_datas_own(warehouse, dbt):  # noqa: F811
    """Nothing here may depend on today: a scrape from 1999 flags by 1999's scrape days."""
    old = _directory(1, [(*GONE, "gone", T(1999, 1, 1, 8))])
    newer = [_directory(n, [(*GARAGE, "main", T(1999, 1, 1, 8) + dt.timedelta(days=n))]) for n in range(2, 5)]
    for batch in (old, *newer):
        _load(warehouse, {"leads": batch})
    dbt("build")
    flags = {r["name"]: r["missing_from_recent_scrapes"] for r in _records(warehouse, "select * from marts.dim_leads")}
    assert flags == {"Closed Motors": True, "Main Street Garage": False}
