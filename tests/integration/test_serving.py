"""The serving API end to end: a real `bentoml serve` process on a real MLflow registry.

Two servers run for the whole module: one on a registry holding real champions (tests/serving_fixtures.py
fits them on synthetic data), one on an OPTIMUM_HOME where nothing was ever trained. The second boots
while the registry is being built, and the last test registers champions under it to check they are
picked up without a restart. A few in-process tests check the loader and that the serving engines give
the packages' own answers.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import httpx
import pandas as pd
import pytest

from ml.leads.package import LEAD_SCORER_MODEL_NAME
from ml.packaging import FORECASTER_MODEL_NAME, RECOMMENDER_MODEL_NAME
from tests.serving_fixtures import (
    FREQ,
    HORIZON,
    ModelStore,
    Server,
    build_model_store,
    running_server,
    server_env,
    start_server,
    stop_server,
    using_tracking_uri,
    wait_until_up,
)

ROUTES = ["/recommend", "/similar_items", "/forecast", "/insights", "/search", "/leads", "/score_lead"]


# --- servers --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def empty_home(tmp_path_factory):
    return tmp_path_factory.mktemp("serving-empty-home")


@pytest.fixture(scope="module")
def empty_process(empty_home, tmp_path_factory):
    """A server on a home with no registry at all; started first so it boots while the store is built."""
    env = server_env(empty_home, tracking_uri=None, OPTIMUM_SERVING_REFRESH_SECONDS="1")
    server = start_server(env, tmp_path_factory.mktemp("logs") / "empty-server.log")
    yield server
    stop_server(server)


@pytest.fixture(scope="module")
def store(empty_process, tmp_path_factory) -> ModelStore:
    return build_model_store(tmp_path_factory.mktemp("serving-store"))


@pytest.fixture(scope="module")
def server(store, tmp_path_factory):
    env = server_env(tmp_path_factory.mktemp("serving-home"), store.tracking_uri)
    with running_server(env, tmp_path_factory.mktemp("logs") / "server.log", timeout=300) as server:
        yield server


@pytest.fixture(scope="module")
def client(server):
    with httpx.Client(base_url=server.url, timeout=10) as client:
        yield client


@pytest.fixture(scope="module")
def empty_server(empty_process) -> Server:
    wait_until_up(empty_process, "/livez", timeout=300)
    return empty_process


def post(client: httpx.Client, path: str, body) -> httpx.Response:
    response = client.post(path, json=body)
    assert response.status_code < 500, f"{path} {body!r} -> {response.status_code} {response.text}"
    return response


# --- happy paths ----------------------------------------------------------------------------------------


def catalog(store: ModelStore) -> dict[str, dict]:
    return store.products.set_index("product_id")[["name", "category", "price"]].to_dict("index")


def assert_enriched(items: list[dict], store: ModelStore) -> None:
    rows = catalog(store)
    for item in items:
        expected = rows[item["product_id"]]
        assert (item["name"], item["category"]) == (expected["name"], expected["category"])
        assert item["price"] == pytest.approx(expected["price"])
    assert [item["rank"] for item in items] == list(range(1, len(items) + 1))
    scores = [item["score"] for item in items]
    assert scores == sorted(scores, reverse=True)


def test_recommend_known_user(client, store):
    user = store.known_users[0]
    body = post(client, "/recommend", {"user_id": user, "count": 5}).json()
    assert body["user_id"] == user
    assert body["model_version"] == store.versions[RECOMMENDER_MODEL_NAME]
    assert body["cold_start"] is False
    assert len(body["items"]) == 5
    assert_enriched(body["items"], store)
    seen = set(store.scores.loc[store.scores["user_id"] == user, "product_id"])
    assert not seen & {item["product_id"] for item in body["items"]}, "already-seen items recommended"


def test_recommend_counts_are_prefixes(client, store):
    user = store.known_users[1]
    three = post(client, "/recommend", {"user_id": user, "count": 3}).json()["items"]
    default = post(client, "/recommend", {"user_id": user}).json()["items"]
    assert len(three) == 3 and len(default) == 10
    assert default[:3] == three


def test_recommend_unknown_user_gets_popular_items(client, store):
    body = post(client, "/recommend", {"user_id": "never-seen-customer", "count": 100}).json()
    assert body["cold_start"] is True
    assert body["model_version"] == store.versions[RECOMMENDER_MODEL_NAME]
    popularity = store.scores.groupby("product_id")["score"].sum().sort_values(ascending=False)
    assert len(body["items"]) == len(popularity)  # count 100 > catalogue: every fitted item once
    assert [item["product_id"] for item in body["items"]][:5] == list(popularity.index[:5])
    assert [item["score"] for item in body["items"]] == pytest.approx(popularity.to_numpy())
    assert_enriched(body["items"], store)


def test_similar_items(client, store):
    product = store.sold_products[0]
    body = post(client, "/similar_items", {"product_id": product, "count": 3}).json()
    assert body["product_id"] == product
    assert body["model_version"] == store.versions[RECOMMENDER_MODEL_NAME]
    assert 1 <= len(body["items"]) <= 3
    assert product not in {item["product_id"] for item in body["items"]}
    assert_enriched(body["items"], store)


def test_forecast(client, store):
    product = store.sold_products[0]
    body = post(client, "/forecast", {"product_id": product, "horizon": 2}).json()
    expected = store.forecast[store.forecast["product_id"] == product].sort_values("forecast_date")
    assert body["product_id"] == product
    assert body["model_version"] == store.versions[FORECASTER_MODEL_NAME]
    assert body["freq"] == FREQ
    assert body["model_name"] == expected["model_name"].iloc[0]
    assert len(body["periods"]) == 2
    starts = [date.fromisoformat(period["period_start"]) for period in body["periods"]]
    assert starts[0] == pd.Timestamp(expected["forecast_date"].iloc[0]).date()
    assert starts[1] - starts[0] == timedelta(weeks=1)
    for period, row in zip(body["periods"], expected.itertuples(), strict=False):
        assert period["yhat"] == pytest.approx(row.yhat)
        assert period["yhat_lower"] <= period["yhat"] <= period["yhat_upper"]


def test_forecast_full_horizon(client, store):
    body = post(client, "/forecast", {"product_id": store.sold_products[-1], "horizon": HORIZON}).json()
    assert len(body["periods"]) == HORIZON


def test_insights(client, store):
    everything = post(client, "/insights", {}).json()
    assert everything["model_version"] == store.versions[FORECASTER_MODEL_NAME]
    assert len(everything["insights"]) == len(store.insights) > 0
    assert set(everything["insights"][0]) == {"product_id", "insight_type", "details"}

    product = store.insights["product_id"].iloc[0]
    one = post(client, "/insights", {"product_id": product}).json()
    assert one["insights"] and {row["product_id"] for row in one["insights"]} == {product}
    assert all(row["details"] for row in one["insights"])

    quiet = sorted(set(store.products["product_id"]) - set(store.insights["product_id"]))[0]
    assert post(client, "/insights", {"product_id": quiet}).json()["insights"] == []


def test_search(client, store):
    # Synthetic names are "Part <n> <category>": the category word finds exactly that category's products.
    products = store.products.set_index("product_id")
    brakes = set(products.index[products["category"] == "brakes"])
    body = post(client, "/search", {"q": "BRAKES", "count": 100}).json()
    assert {item["product_id"] for item in body["items"]} == brakes
    assert body["personalized"] is False and all(item["personal_score"] is None for item in body["items"])
    typo = post(client, "/search", {"q": "brkaes", "count": 100}).json()
    assert {item["product_id"] for item in typo["items"]} == brakes

    user = store.known_users[0]
    mine = post(client, "/search", {"q": "brakes", "user_id": user, "count": 100}).json()
    assert mine["personalized"] is True and mine["model_version"] == store.versions[RECOMMENDER_MODEL_NAME]
    assert {item["product_id"] for item in mine["items"]} == brakes  # re-ranked, never widened
    weight = mine["personal_weight"]
    for item in mine["items"]:
        assert item["score"] == pytest.approx((1 - weight) * item["lexical_score"] + weight * item["personal_score"])
    assert [item["score"] for item in mine["items"]] == sorted((i["score"] for i in mine["items"]), reverse=True)

    exact = post(client, "/search", {"q": "part 7 ignition", "count": 1}).json()["items"]
    assert [item["product_id"] for item in exact] == ["P007"]
    assert post(client, "/search", {"q": "xylophone"}).json()["items"] == []


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"q": "   "}, "no letters or digits"),
        ({"q": "?!"}, "no letters or digits"),
        ({"q": ""}, "at least 1 character"),
        ({"q": "brake " * 40}, "at most 200 characters"),
        ({"q": "brake", "count": 0}, "greater than or equal to 1"),
        ({"user_id": "U001"}, "Field required"),
    ],
)
def test_search_refuses_empty_or_absurd_queries(client, body, reason):
    response = client.post("/search", json=body)
    assert response.status_code == 400, response.text
    assert reason in json.dumps(response.json())


# --- bad input: always a 4xx JSON body that says why ----------------------------------------------------

BAD_REQUESTS = [
    # (path, body, status, a phrase the error body must contain)
    ("/recommend", {"user_id": 123}, 400, "valid string"),
    ("/recommend", {"user_id": None}, 400, "valid string"),
    ("/recommend", {"count": 5}, 400, "Field required"),
    ("/recommend", {}, 400, "Field required"),
    ("/recommend", {"user_id": ""}, 400, "at least 1 character"),
    ("/recommend", {"user_id": "   "}, 400, "should match pattern"),
    ("/recommend", {"user_id": "x" * 200}, 400, "at most 128 characters"),
    ("/recommend", {"user_id": "U001", "count": 0}, 400, "greater than or equal to 1"),
    ("/recommend", {"user_id": "U001", "count": -1}, 400, "greater than or equal to 1"),
    ("/recommend", {"user_id": "U001", "count": 101}, 400, "less than or equal to 100"),
    ("/recommend", {"user_id": "U001", "count": 10**30}, 400, "less than or equal to 100"),
    ("/recommend", {"user_id": "U001", "count": "5"}, 400, "valid integer"),
    ("/recommend", {"user_id": "U001", "count": 2.5}, 400, "valid integer"),
    ("/recommend", {"user_id": "U001", "count": True}, 400, "valid integer"),
    ("/recommend", {"user_id": "U001", "cnt": 5}, 400, "Extra inputs are not permitted"),
    ("/recommend", ["U001"], 400, "Input should be an object"),
    ("/similar_items", {"product_id": "NO-SUCH-PART"}, 404, "unknown product_id 'NO-SUCH-PART'"),
    ("/similar_items", {"product_id": "P021"}, 404, "unknown product_id 'P021'"),  # in the catalog, never sold
    ("/similar_items", {"product_id": "P001", "count": 0}, 400, "greater than or equal to 1"),
    ("/similar_items", {"product_id": "P001", "count": 1000}, 400, "less than or equal to 100"),
    ("/similar_items", {"count": 3}, 400, "Field required"),
    ("/similar_items", {"product_id": ""}, 400, "at least 1 character"),
    ("/forecast", {"product_id": "NO-SUCH-PART", "horizon": 2}, 404, "unknown product_id 'NO-SUCH-PART'"),
    ("/forecast", {"product_id": "P021", "horizon": 2}, 404, "never sold"),
    ("/forecast", {"product_id": "P001", "horizon": HORIZON + 1}, 400, f"1 to {HORIZON} periods"),
    ("/forecast", {"product_id": "P001", "horizon": 10**12}, 400, "less than or equal to 104"),
    ("/forecast", {"product_id": "P001", "horizon": 0}, 400, "greater than or equal to 1"),
    ("/forecast", {"product_id": "P001", "horizon": -3}, 400, "greater than or equal to 1"),
    ("/forecast", {"product_id": "P001", "horizon": "2"}, 400, "valid integer"),
    ("/forecast", {"product_id": "P001"}, 400, "Field required"),
    ("/forecast", {"horizon": 2}, 400, "Field required"),
    ("/insights", {"product_id": "NO-SUCH-PART"}, 404, "unknown product_id 'NO-SUCH-PART'"),
    ("/insights", {"product_id": ""}, 400, "at least 1 character"),
    ("/insights", {"product_id": 42}, 400, "valid string"),
]


@pytest.mark.parametrize(("path", "body", "status", "reason"), BAD_REQUESTS, ids=lambda v: str(v)[:40])
def test_bad_input_is_a_4xx_json_reason(client, path, body, status, reason):
    response = client.post(path, json=body)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    payload = response.json()
    assert "error" in payload
    assert reason in json.dumps(payload), payload


@pytest.mark.parametrize(
    ("content", "headers", "status", "reason"),
    [
        (b'{"user_id": "U001", ', {"Content-Type": "application/json"}, 400, "Invalid JSON"),
        (b"", {"Content-Type": "application/json"}, 400, "body is empty"),
        (b'{"user_id": "U001"}', {"Content-Type": "text/plain"}, 415, "application/json"),
        (b'{"user_id": "U001"}', {}, 415, "application/json"),
        (b'{"user_id": ' + b"[" * 20 + b"]" * 20 + b"}", {"Content-Type": "application/json"}, 400, "nested deeper"),
        (b"[" * 5000 + b"]" * 5000, {"Content-Type": "application/json"}, 400, "depth"),
        (b'{"user_id": "U001", "x": [' + b"1," * 1000 + b"1]}", {"Content-Type": "application/json"}, 400, "at most"),
        (b"user_id=U001", {"Content-Type": "application/x-www-form-urlencoded"}, 415, "application/json"),
        (b"--x\r\n", {"Content-Type": "multipart/form-data; boundary=x"}, 415, "application/json"),
        (b"\x80\x04", {"Content-Type": "application/vnd.bentoml+pickle"}, 415, "application/json"),
        (b'{"user_id": "' + b"x" * 70_000 + b'"}', {"Content-Type": "application/json"}, 413, "too large"),
    ],
    ids=[
        "truncated-json",
        "empty-body",
        "text",
        "no-type",
        "deep",
        "very-deep",
        "long-list",
        "form",
        "multipart",
        "pickle",
        "oversized",
    ],
)
def test_malformed_bodies(client, content, headers, status, reason):
    response = client.post("/recommend", content=content, headers=headers)
    assert response.status_code == status, response.text
    assert reason in response.json()["error"] + json.dumps(response.json().get("detail", ""))


def test_wrong_method_is_a_json_405(client):
    response = client.get("/recommend")
    assert response.status_code == 405
    assert "POST" in response.json()["error"]


# --- probes, metrics, docs ------------------------------------------------------------------------------


def test_probes_and_metrics(client):
    post(client, "/recommend", {"user_id": "U001"})
    for path in ("/livez", "/readyz", "/metrics"):
        assert client.get(path).status_code == 200, path
    metrics = client.get("/metrics").text
    assert 'endpoint="/recommend"' in metrics and "bentoml_service_request_duration_seconds" in metrics


def test_openapi_lists_the_routes(client):
    spec = client.get("/docs.json").json()
    assert spec["info"]["title"] == "Optimum serving API"  # serving/openapi.py, not BentoML's default
    for route in ROUTES:
        assert "post" in spec["paths"][route], route
        assert "503" in spec["paths"][route]["post"]["responses"], route
    invalid = client.post("/recommend", json={"user_id": ""}).json()["error"]
    assert invalid == "1 validation error for recommend request"  # the request in words, no Python class name
    page = client.get("/")  # the Swagger UI page
    assert page.status_code == 200 and "<title>Optimum serving API</title>" in page.text
    docs = client.get("/docs", follow_redirects=True)
    assert docs.status_code == 200 and "swagger-ui" in docs.text


def test_the_spec_matches_the_answers(server, tmp_path):
    """schemathesis against /docs.json: every operation, schema-valid and invalid bodies, all checks
    (no 5xx, statuses, content types and bodies as the spec declares them)."""
    command = [
        str(Path(sys.executable).parent / "schemathesis"), "run", f"{server.url}/docs.json", "--checks", "all",
        "--max-examples", "15", "--seed", "1", "--no-color", "--report-dir", str(tmp_path),
    ]  # fmt: skip
    # cwd: schemathesis keeps a cache folder where it runs
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "No issues found" in result.stdout


# --- no champion yet ------------------------------------------------------------------------------------


def test_without_champions_the_server_is_live_not_ready(empty_server, empty_home):
    with httpx.Client(base_url=empty_server.url, timeout=10) as client:
        assert client.get("/livez").status_code == 200
        assert client.get("/readyz").status_code == 503
        for path, body in [
            ("/recommend", {"user_id": "U001"}),
            ("/similar_items", {"product_id": "P001"}),
            ("/forecast", {"product_id": "P001", "horizon": 1}),
            ("/insights", {}),
            ("/leads", {}),
            ("/score_lead", {"name": "Smith Motors"}),
        ]:
            response = client.post(path, json=body)
            assert response.status_code == 503, response.text
            assert "no champion is registered yet" in response.json()["error"]
        # input is still checked first: bad input stays a 400, not a 503
        assert client.post("/recommend", json={"user_id": ""}).status_code == 400
    assert not (empty_home / "mlflow").exists(), "looking for a champion must not create the registry"


# --- in process: the loader and the engines -------------------------------------------------------------


@pytest.fixture(scope="module")
def champions(store, tmp_path_factory):
    """Loaded while the process-wide tracking URI points elsewhere: the registry uses its own client."""
    import mlflow

    from serving.models import load_champions

    elsewhere = f"sqlite:///{tmp_path_factory.mktemp('elsewhere') / 'mlflow.db'}"
    with using_tracking_uri(elsewhere):
        loaded = load_champions(store.tracking_uri)
        assert mlflow.get_tracking_uri() == elsewhere
    return loaded


def test_load_champions_resolves_the_alias(champions, store):
    assert champions.complete and champions.missing == {}
    assert champions.versions() == store.versions


def test_load_champions_without_a_registry(tmp_path):
    from serving.models import load_champions

    uri = f"sqlite:///{tmp_path / 'mlflow' / 'mlflow.db'}"
    loaded = load_champions(uri)
    assert not loaded.complete
    assert set(loaded.missing) == {RECOMMENDER_MODEL_NAME, FORECASTER_MODEL_NAME, LEAD_SCORER_MODEL_NAME}
    assert "does not exist yet" in loaded.missing[RECOMMENDER_MODEL_NAME]
    assert not (tmp_path / "mlflow").exists(), "looking for a champion must not create the registry"


def test_recommender_engine_gives_the_models_answers(champions, store):
    """The engine only shapes and caches: its answers are the recommender's own, with the catalog fields."""
    from serving.engine import RecommenderEngine

    engine = RecommenderEngine(champions.recommender)
    package = champions.recommender.model
    catalog = package.catalog
    for user in [*store.known_users, "nobody"]:
        for count in (1, 7, 100):
            cold, items = engine.recommend(user, count)
            expected = package.recommender.recommend([user], count)
            assert cold == bool(expected["cold_start"].iloc[0])
            assert [i["score"] for i in items] == pytest.approx(expected["score"].to_numpy())
            # Ids agree except in the order of tied scores (one user scored alone or in a batch).
            last = expected["score"].min()
            assert {i["product_id"] for i in items if i["score"] > last} == set(
                expected.loc[expected["score"] > last, "product_id"]
            )
            assert [i["name"] for i in items] == catalog.loc[[i["product_id"] for i in items], "name"].tolist()
    product = store.sold_products[0]
    similar = package.recommender.similar_items(product, 5)
    assert [i["product_id"] for i in engine.similar_items(product, 5)] == similar["similar_product_id"].tolist()


def test_forecast_engine_gives_the_package_answers(champions, store):
    from ml.packaging import HorizonTooLarge
    from serving.engine import ForecastEngine

    engine = ForecastEngine(champions.forecaster)
    package = champions.forecaster.model
    assert engine.horizon == package.horizon == HORIZON
    for product in store.sold_products:
        found = engine.forecast(product, HORIZON)
        expected = package.product_forecast(product, HORIZON)
        assert [p["period_start"] for p in found["periods"]] == [d.date() for d in expected["forecast_date"]]
        for column in ("yhat", "yhat_lower", "yhat_upper"):
            assert [p[column] for p in found["periods"]] == pytest.approx(expected[column].to_numpy())
        assert found["model_name"] == expected["model_name"].iloc[0]
        assert sorted(engine.insights(product), key=str) == sorted(
            package.product_insights(product)[["product_id", "insight_type", "details"]].to_dict("records"), key=str
        )
    with pytest.raises(HorizonTooLarge):
        engine.forecast(store.sold_products[0], HORIZON + 1)


def test_a_champion_that_cannot_be_served(champions):
    from dataclasses import replace

    from serving.engine import ServingState
    from serving.models import Champion

    broken = replace(champions, forecaster=Champion(FORECASTER_MODEL_NAME, "99", object()))
    state = ServingState.build(broken)
    assert state.forecaster is None and state.recommender is not None
    assert not state.champions.complete
    assert "version 99 cannot be served" in state.champions.missing[FORECASTER_MODEL_NAME]

    served = ServingState.build(champions)
    after = ServingState.build(broken, previous=served)  # a broken new version keeps the served one
    assert after.forecaster is served.forecaster and after.recommender is served.recommender
    assert after.champions.versions() == champions.versions()


# --- a champion registered after start-up is picked up without a restart -----------------------------


def test_champions_registered_later_are_picked_up(empty_server, empty_home, tmp_path):
    # Build the registry beside the home and move it in whole, so the server never sees a half-made one.
    staged = build_model_store(tmp_path / "staged")
    registry = empty_home / "mlflow"
    registry.mkdir(exist_ok=True)
    shutil.copy(staged.root / "mlflow.db", registry / "mlflow.db.tmp")
    os.replace(registry / "mlflow.db.tmp", registry / "mlflow.db")

    wait_until_up(empty_server, "/readyz", timeout=60)
    with httpx.Client(base_url=empty_server.url, timeout=10) as client:
        body = client.post("/recommend", json={"user_id": "U001", "count": 2}).json()
        assert body["model_version"] == staged.versions[RECOMMENDER_MODEL_NAME]
        assert len(body["items"]) == 2
