"""`POST /leads` and `POST /score_lead` on a real `bentoml serve` process over a real MLflow registry
holding only a lead scorer champion (the other routes answer 503 there; the leads routes do not care)."""

from __future__ import annotations

import json

import httpx
import pytest

from ml.leads.package import LEAD_SCORER_MODEL_NAME
from tests.serving_fixtures import build_model_store, running_server, server_env


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return build_model_store(tmp_path_factory.mktemp("lead-store"), recommender=False, forecaster=False)


@pytest.fixture(scope="module")
def client(store, tmp_path_factory):
    env = server_env(tmp_path_factory.mktemp("lead-home"), store.tracking_uri)
    log = tmp_path_factory.mktemp("logs") / "server.log"
    with (
        running_server(env, log, ready_path="/livez", timeout=300) as server,
        httpx.Client(base_url=server.url, timeout=10) as client,
    ):
        yield client


def test_leads_are_scored_best_first_and_paged(client, store):
    first = client.post("/leads", json={"page_size": 10}).json()
    assert first["model_version"] == store.versions[LEAD_SCORER_MODEL_NAME] and first["scorer"] == "transparent"
    assert first["total"] == len(store.leads) and len(first["leads"]) == 10
    scores = [lead["lead_score"] for lead in first["leads"]]
    assert scores == sorted(scores, reverse=True) and all(0 <= s <= 100 for s in scores)
    assert all(lead["score_reasons"] for lead in first["leads"])
    pages = [client.post("/leads", json={"page": n, "page_size": 10}).json()["leads"] for n in (1, 2, 3, 4)]
    keys = [lead["lead_key"] for page in pages for lead in page]
    assert len(keys) == len(set(keys)) == len(store.leads) and pages[3] == []


def test_filters(client, store):
    qualified = client.post("/leads", json={"status": "qualified", "page_size": 100}).json()
    assert qualified["total"] == int((store.leads["status"] == "qualified").sum())
    assert {lead["status"] for lead in qualified["leads"]} == {"qualified"}
    city = client.post("/leads", json={"city": "springfield", "category": "Parts Dealer"}).json()["leads"]
    assert city and all((lead["city"], lead["category"]) == ("Springfield", "Parts Dealer") for lead in city)
    group = client.post("/leads", json={"category": "repair workshop", "page_size": 100}).json()
    assert group["total"] == int((store.leads["category"] == "Garage").sum())
    high = client.post("/leads", json={"min_score": 60, "page_size": 100}).json()["leads"]
    assert all(lead["lead_score"] >= 60 for lead in high)
    assert client.post("/leads", json={"min_score": 100, "city": "Nowhere"}).json() | {"model_version": "-"} == {
        "model_version": "-",
        "scorer": "transparent",
        "total": 0,
        "page": 1,
        "page_size": 20,
        "leads": [],
    }


def test_score_lead_answers_with_reasons_and_completeness_never_hurts(client):
    bare = {"name": "Smith Motors", "category": "Garage", "city": "Springfield"}
    full = bare | {"phone": "(555) 123-4567", "website": "https://smith.example", "address": "1 Main St"}
    scored_bare = client.post("/score_lead", json=bare).json()
    scored_full = client.post("/score_lead", json=full | {"rating": 4.5, "review_count": 120}).json()
    assert scored_full["lead_score"] > scored_bare["lead_score"]
    assert "category fit (repair workshop)" in scored_full["score_reasons"]
    away = client.post("/score_lead", json=full | {"city": "Salem", "rating": 4.5, "review_count": 120}).json()
    assert away["lead_score"] < scored_full["lead_score"]
    stale = client.post(
        "/score_lead", json=full | {"rating": 4.5, "review_count": 120, "last_seen_at": "1995-01-01T00:00:00Z"}
    )
    assert stale.json()["lead_score"] < scored_full["lead_score"], "recency counts from the data's latest scrape"


@pytest.mark.parametrize(
    ("path", "body", "reason"),
    [
        ("/leads", {"min_score": 101}, "less than or equal to 100"),
        ("/leads", {"min_score": "50"}, "valid integer"),
        ("/leads", {"status": "closed"}, "'new', 'contacted', 'qualified', 'won' or 'lost'"),
        ("/leads", {"page": 0}, "greater than or equal to 1"),
        ("/leads", {"page_size": 1000}, "less than or equal to 100"),
        ("/leads", {"city": ""}, "at least 1 character"),
        ("/leads", {"town": "Salem"}, "Extra inputs are not permitted"),
        ("/score_lead", {}, "Field required"),
        ("/score_lead", {"name": "X", "rating": 7}, "less than or equal to 5"),
        ("/score_lead", {"name": "X", "review_count": -1}, "greater than or equal to 0"),
        ("/score_lead", {"name": "X", "last_seen_at": "yesterday"}, "datetime"),
        ("/score_lead", {"name": "X", "phone": 5551234567}, "valid string"),
    ],
    ids=lambda v: str(v)[:40],
)
def test_bad_input_is_a_400_json_reason(client, path, body, reason):
    response = client.post(path, json=body)
    assert response.status_code == 400, response.text
    assert reason in json.dumps(response.json()), response.json()


def test_same_middleware_as_the_other_routes(client):
    assert client.get("/leads").status_code == 405
    assert (
        client.post(
            "/score_lead", content=b"name=x", headers={"Content-Type": "application/x-www-form-urlencoded"}
        ).status_code
        == 415
    )
    assert client.post("/recommend", json={"user_id": "U1"}).status_code == 503, "no recommender in this registry"
    spec = client.get("/docs.json").json()
    assert "post" in spec["paths"]["/leads"] and "post" in spec["paths"]["/score_lead"]
