"""POST /interactions against a real `bentoml serve`, killed with SIGKILL right after its last answer:
every acknowledged event reaches raw.interactions exactly once, on DuckDB and on PostgreSQL."""

from __future__ import annotations

import shutil
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from orchestration.landing.contract import INTERACTIONS, PRODUCTS
from orchestration.landing.load import load_source
from orchestration.warehouse import DuckDBWarehouse, PostgresWarehouse
from serving.spool import OPEN_PREFIX
from tests.serving_fixtures import kill_server, server_env, start_server, wait_until_up


@pytest.fixture(scope="module")
def killed_service(small_demo, tmp_path_factory):
    """A landing zone with the demo products, and the events a service acknowledged before it was killed."""
    root = tmp_path_factory.mktemp("capture")
    landing = root / "landing"
    (landing / "products").mkdir(parents=True)
    shutil.copy(small_demo.products_path, landing / "products")
    catalog = DuckDBWarehouse(root / "catalog.duckdb")
    load_source(catalog, landing, PRODUCTS)
    products = catalog.query("SELECT DISTINCT product_id FROM raw.products ORDER BY 1 LIMIT 40")["product_id"].tolist()
    env = server_env(
        root / "home",
        tracking_uri=None,
        OPTIMUM_LANDING_DIR=str(landing),
        OPTIMUM_SERVING_SPOOL_MAX_BYTES="8192",  # several closed files, and one left open by the kill
        OPTIMUM_SERVING_SPOOL_MAX_SECONDS="600",
        OPTIMUM_SERVING_REFRESH_SECONDS="0",
    )
    server = start_server(env, root / "server.log")
    acknowledged: set[str] = set()
    answers: dict[str, httpx.Response] = {}
    try:
        wait_until_up(server, "/livez", timeout=300)

        def batch(n: int, size: int) -> list[dict]:
            return [
                {
                    "user_id": f"api-user-{(n * size + i) % 37}",
                    "product_id": products[(n + i) % len(products)],
                    "interaction_type": ("view", "cart", "purchase", "like")[i % 4],
                    "timestamp": f"2024-03-{1 + n % 28:02d}T10:{i % 60:02d}:00+02:00",
                    **({"event_id": f"client-{n}-{i}"} if i % 2 else {}),
                    **({"rating": 4} if i % 4 == 3 else {}),
                }
                for i in range(size)
            ]

        with httpx.Client(base_url=server.url, timeout=30) as client:
            answers["single"] = client.post("/interactions", json=batch(0, 1)[0] | {"event_id": "single-1"})
            # A repeat of an acknowledged event, and one event twice in a batch: each lands once.
            repeat = batch(0, 3)
            repeat[0]["event_id"], repeat[1]["event_id"], repeat[2]["event_id"] = "single-1", "in-batch", "in-batch"
            answers["repeat"] = client.post("/interactions", json={"events": repeat})
            bad = batch(1, 3)
            bad[1] |= {"interaction_type": "stare", "rating": 9}
            bad[2].pop("user_id")
            answers["invalid"] = client.post("/interactions", json={"events": bad})
            answers["not_json"] = client.post(
                "/interactions", content=b"{oops", headers={"content-type": "application/json"}
            )
            for response in (answers["single"], answers["repeat"]):
                acknowledged.update(response.json()["event_ids"])

            def post(n: int) -> list[str]:
                response = client.post("/interactions", json={"events": batch(n, 50)})
                assert response.status_code == 202, response.text
                return response.json()["event_ids"]

            with ThreadPoolExecutor(4) as pool:
                for ids in pool.map(post, range(2, 42)):
                    acknowledged.update(ids)
    finally:
        kill_server(server)  # right after the last acknowledgement
    return landing, acknowledged, answers


def test_answers(killed_service):
    _, acknowledged, answers = killed_service
    assert answers["single"].status_code == 202
    assert answers["single"].json() == {"accepted": 1, "duplicates": 0, "event_ids": ["single-1"]}
    repeat = answers["repeat"].json()
    assert answers["repeat"].status_code == 202
    assert (repeat["accepted"], repeat["duplicates"]) == (1, 2)
    invalid = answers["invalid"]
    assert invalid.status_code == 400
    assert [e["index"] for e in invalid.json()["invalid"]] == [1, 2]
    reasons = invalid.json()["invalid"]
    assert any("interaction_type" in r for r in reasons[0]["reasons"])
    assert any("rating" in r for r in reasons[0]["reasons"])
    assert reasons[1]["reasons"] == ["user_id is required"]
    assert answers["not_json"].status_code == 400
    assert len(acknowledged) == 2 + 40 * 50


def _land(warehouse, landing):
    for source in (PRODUCTS, INTERACTIONS):
        load_source(warehouse, landing, source)
    return warehouse.query("SELECT event_id, event_at FROM raw.interactions")


@pytest.mark.parametrize("target", ["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_every_acknowledged_event_lands_exactly_once(killed_service, target, tmp_path, request):
    landing, acknowledged, _ = killed_service
    landing = shutil.copytree(landing, tmp_path / "landing")  # each target ingests its own copy
    assert list((landing / "interactions").glob(f"{OPEN_PREFIX}*")), "the kill left no open spool file"
    if target == "duckdb":
        warehouse = DuckDBWarehouse(tmp_path / "warehouse.duckdb")
    else:
        warehouse = PostgresWarehouse(request.getfixturevalue("pg_dsn"))
    landed = _land(warehouse, landing)
    assert len(landed) == len(acknowledged)
    assert set(landed["event_id"]) == acknowledged
    assert not list((landing / "interactions").glob(f"{OPEN_PREFIX}*")), "the orphaned spool was not closed"
    assert str(landed["event_at"].min()) >= "2024-03-01 08:00:00"  # +02:00 stored as UTC
    again = _land(warehouse, landing)
    assert len(again) == len(acknowledged)
