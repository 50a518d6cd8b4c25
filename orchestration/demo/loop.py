"""The end of `optimum demo`: one short turn of the closed loop against the running service.

Ask the service for recommendations, POST simulated interactions on some of the served items (as a web
shop would), let the landing sensor see the closed spool files and run the ingest it asks for, rebuild
the warehouse and the monitoring assets, then print the monitoring report, the A/B summary and the
lineage of one served answer.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import dagster as dg
import httpx
import pandas as pd

from optimum.settings import Settings
from orchestration.automation import landing_sensor
from orchestration.trace import trace_request
from orchestration.warehouse import Warehouse

ANSWERS = 200  # /recommend calls of the simulated shop
ENGAGED_SHARE = 0.35  # of the answers, how many lead to an interaction with a served item


def simulate_traffic(settings: Settings, base_url: str, seed: int = 0) -> tuple[list[str], int]:
    """(request ids of the answers, events acknowledged): a shop asking and its users reacting. The shop
    names each request (X-Request-ID), as a front end that traces its own calls would: the service logs
    the answer under that id."""
    rng = random.Random(seed)  # noqa: S311 -- seeded demo traffic, not a secret
    shop_run = uuid.uuid4().hex[:8]  # ids unique across demo runs on the same state
    users = Warehouse.from_settings(settings).query("SELECT DISTINCT user_id FROM marts.user_item_scores ORDER BY 1")
    chosen = rng.sample(users["user_id"].tolist(), min(ANSWERS, len(users)))
    request_ids, events = [], []
    with httpx.Client(base_url=base_url, timeout=30) as client:
        for n, user in enumerate(chosen):
            request_id = f"shop-{shop_run}-{n:04d}"
            headers = {"X-Request-ID": request_id}
            response = client.post("/recommend", json={"user_id": user, "count": 5}, headers=headers)
            answer = response.json()
            if answer["request_id"] != request_id or response.headers["x-request-id"] != request_id:
                raise RuntimeError(f"the service answered {request_id} as {answer['request_id']}")
            request_ids.append(request_id)
            if rng.random() < ENGAGED_SHARE:
                item = rng.choice(answer["items"])["product_id"]
                events.append({"user_id": user, "product_id": item, "interaction_type": rng.choice(["view", "cart"])})
        acknowledged = 0
        for start in range(0, len(events), 100):
            response = client.post("/interactions", json={"events": events[start : start + 100]})
            response.raise_for_status()
            acknowledged += response.json()["accepted"]
    return request_ids, acknowledged


def sensor_cursor(settings: Settings) -> str | None:
    """The landing sensor's cursor once it has seen every file landed so far (the demo's CSVs)."""
    context = dg.build_sensor_context(resources={"settings": settings})
    landing_sensor(context)
    return context.cursor


def ingest_via_sensor(
    settings: Settings, materialize: Callable[[Settings, str], bool], cursor: str | None, wait_s: float = 60
) -> bool:
    """Evaluate the landing sensor until the spool files it waits for are closed, then run what it asks."""
    deadline = time.monotonic() + wait_s
    while True:
        result = landing_sensor(dg.build_sensor_context(cursor=cursor, resources={"settings": settings}))
        if isinstance(result, dg.RunRequest):
            print(f"  landing sensor: new files {result.tags['optimum/new_files'][:200]}")
            return materialize(settings, "ingest_landing")
        if time.monotonic() > deadline:
            print(f"  landing sensor: {result.skip_message}")
            return False
        time.sleep(2)


def accept_live_events(settings: Settings) -> Settings:
    """The demo's history ends in the past but its loop runs today: widen ingestion's date window (which
    judges dates against the data's own) so that the events stamped today are accepted."""
    last = Warehouse.from_settings(settings).query("SELECT max(event_at) AS last FROM raw.interactions")["last"]
    gap = (datetime.now(UTC).replace(tzinfo=None) - pd.Timestamp(last.iloc[0])).days
    days_after = max(settings.landing.date_days_after, gap + settings.landing.date_days_after)
    return settings.model_copy(update={"landing": settings.landing.model_copy(update={"date_days_after": days_after})})


def print_report(settings: Settings, request_id: str) -> None:
    warehouse = Warehouse.from_settings(settings)
    for title, table in (
        ("recommendation outcomes (hit rate within the window, per variant and version)", "recommendation_outcomes"),
        ("data drift (Jensen-Shannon distance, PSI; recent vs reference window)", "data_drift"),
        ("A/B summary", "ab_report"),
        ("alerts", "alerts"),
    ):
        if warehouse.table_exists("monitoring", table):
            frame = warehouse.query(f"SELECT * FROM monitoring.{table}")  # noqa: S608 -- table names come from the code
            print(f"\n{title}:\n{frame.to_string(index=False) if len(frame) else '  (none)'}")
    print(f"\noptimum trace {request_id}")
    print("\n".join(trace_request(settings, request_id)))
