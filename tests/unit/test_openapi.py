"""The serving API's OpenAPI document: its own name, valid examples, every status code, no internal names."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from optimum.settings import ServingSettings
from serving import schemas
from serving.openapi import TITLE, openapi_document
from serving.service import API_ROUTES, RecommenderService

REQUESTS = {
    "/recommend": schemas.RecommendRequest,
    "/similar_items": schemas.SimilarItemsRequest,
    "/forecast": schemas.ForecastRequest,
    "/insights": schemas.InsightsRequest,
}


@pytest.fixture(scope="module")
def spec() -> dict:
    return openapi_document(RecommenderService.openapi_spec.asdict(), ServingSettings(max_body_bytes=1000))


def test_the_document_describes_this_service_not_bentoml(spec):
    assert spec["info"]["title"] == TITLE
    assert spec["info"]["version"] == "0.1.0"
    assert "champion" in spec["info"]["description"] and "BentoML" not in spec["info"]["description"]
    assert "contact" not in spec["info"]


def test_every_route_lists_every_status_code_it_can_answer(spec):
    own = {"/recommend": {503}, "/similar_items": {404, 503}, "/forecast": {404, 503}, "/insights": {404, 503}}
    for route in API_ROUTES:
        responses = spec["paths"][route]["post"]["responses"]
        assert set(map(int, responses)) == {200, 400, 405, 413, 415, 500, 504} | own[route], route
        for status, response in responses.items():
            assert response["description"], (route, status)
            if status != "200":
                assert response["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
        assert "1,000 bytes" in responses["413"]["description"], "the configured limit, not a constant"


def test_request_examples_are_valid_requests_with_demo_ids(spec):
    for route, model in REQUESTS.items():
        examples = spec["paths"][route]["post"]["requestBody"]["content"]["application/json"]["examples"]
        assert examples, route
        for example in examples.values():
            request = model.model_validate(example["value"])  # raises if an example is not a valid request
            ids = [value for value in request.model_dump().values() if isinstance(value, str)]
            assert all(i.startswith(("U0", "P0")) or i == "a-customer-we-never-saw" for i in ids), ids


def test_no_internal_class_names_in_the_document_or_in_validation_errors(spec):
    text = json.dumps(spec)
    for internal in ("IODescriptor", "InvalidArgument", "NotFound", "InternalServerError", "TaskStatusResponse"):
        assert internal not in text, internal
    # BentoML answers a body that fails validation with "<n> validation error for <title>"
    input_spec = RecommenderService.apis["recommend"].input_spec
    with pytest.raises(ValidationError) as error:
        input_spec.model_validate({"user_id": ""})
    assert f"{error.value.error_count()} validation error for {error.value.title}" == (
        "1 validation error for recommend request"
    )
