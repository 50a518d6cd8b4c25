"""The serving API's OpenAPI document: its own name, valid examples, every status code, no internal names."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from optimum.settings import ServingSettings
from serving import leads, schemas
from serving.api import ROUTES as API_ROUTES
from serving.capture import InteractionCapture
from serving.openapi import TITLE, openapi_document
from serving.service import RecommenderService

REQUESTS = {
    "/recommend": schemas.RecommendRequest,
    "/similar_items": schemas.SimilarItemsRequest,
    "/forecast": schemas.ForecastRequest,
    "/insights": schemas.InsightsRequest,
    "/search": schemas.SearchRequest,
    "/leads": leads.LeadsRequest,
    "/score_lead": leads.ScoreLeadRequest,
}


@pytest.fixture(scope="module")
def spec() -> dict:
    return openapi_document(
        RecommenderService.openapi_spec.asdict(),
        ServingSettings(max_body_bytes=1000, interactions_max_body_bytes=2000, interactions_max_batch=7),
    )


def test_the_document_describes_this_service_not_bentoml(spec):
    assert spec["info"]["title"] == TITLE
    assert spec["info"]["version"] == "0.1.0"
    assert "champion" in spec["info"]["description"] and "BentoML" not in spec["info"]["description"]
    assert "contact" not in spec["info"]


def test_every_route_lists_every_status_code_it_can_answer(spec):
    own = {
        "/recommend": {503},
        "/similar_items": {404, 503},
        "/forecast": {404, 503},
        "/insights": {404, 503},
        "/search": {503},
        "/leads": {503},
        "/score_lead": {503},
        "/interactions": set(),
    }
    every_route = {400, 401, 403, 405, 413, 415, 429, 500, 504}  # the gate's, validation's, the timeout's
    for route in API_ROUTES:
        responses = spec["paths"][route]["post"]["responses"]
        ok = 202 if route == "/interactions" else 200
        assert set(map(int, responses)) == every_route | own[route] | {ok}, route
        for status, response in responses.items():
            assert response["description"], (route, status)
            if int(status) >= 300:
                assert response["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
        limit = "2,000 bytes" if route == "/interactions" else "1,000 bytes"
        assert limit in responses["413"]["description"], "the configured limit, not a constant"


def test_request_examples_are_valid_requests_with_demo_ids(spec):
    for route, model in REQUESTS.items():
        examples = spec["paths"][route]["post"]["requestBody"]["content"]["application/json"]["examples"]
        assert examples, route
        for example in examples.values():
            # raises if an example is not a valid request; JSON mode, as serving/api.py parses a body
            request = model.model_validate_json(json.dumps(example["value"]))
            ids = [value for name, value in request.model_dump().items() if name.endswith("_id") and value]
            assert all(i.startswith(("U0", "P0")) or i == "a-customer-we-never-saw" for i in ids), ids


def test_interactions_spec_states_the_configured_batch_and_its_examples_are_accepted(spec, tmp_path):
    body = spec["paths"]["/interactions"]["post"]["requestBody"]["content"]["application/json"]
    _, batch = body["schema"]["anyOf"]
    assert batch["properties"]["events"]["maxItems"] == 7
    capture = InteractionCapture(tmp_path, max_batch=7, max_bytes=4096, max_seconds=60)
    for example in body["examples"].values():
        rows, errors = capture.parse(example["value"], datetime(2024, 6, 1))
        assert rows and not errors, errors


def test_no_internal_class_names_in_the_document(spec):
    text = json.dumps(spec)
    for internal in (
        "IODescriptor",
        "InvalidArgument",
        "NotFound",
        "InternalServerError",
        "TaskStatusResponse",
        "HTTPValidationError",
    ):
        assert internal not in text, internal
