"""Request and response bodies of the serving API (pydantic: BentoML validates requests with these and
publishes them in the OpenAPI spec at /docs.json).

Requests are strict: unknown fields, numbers sent as strings or booleans, empty or blank ids, counts
outside 1..MAX_COUNT and horizons outside 1..MAX_FORECAST_HORIZON are rejected with 400 and the pydantic
reason, before any model code runs. These limits are the API contract: every one of them is stated by the
OpenAPI spec (serving/api.py publishes these schemas), so a body the spec allows is never refused for its
shape and one it forbids never accepted.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from ml.search import MAX_QUERY_CHARS, QUERY_PATTERN
from optimum.settings import MAX_FORECAST_HORIZON

MAX_COUNT = 100  # the most items one request may ask for

# Not stripped (the spec could not say so): an id must contain a non-blank character.
Id = Annotated[str, StringConstraints(strict=True, min_length=1, max_length=128, pattern=r"\S")]
Count = Annotated[int, Field(strict=True, ge=1, le=MAX_COUNT, description=f"Items to return, 1 to {MAX_COUNT}.")]


class _Request(BaseModel):
    """Each request names itself in plain words (`title`): validation errors read "1 validation error for
    recommend request", never a Python class name."""

    model_config = ConfigDict(extra="forbid")


class RecommendRequest(_Request):
    model_config = ConfigDict(title="recommend request")
    user_id: Id = Field(description="Customer id; one the model never saw gets popular items (cold_start).")
    count: Count = 10


class SimilarItemsRequest(_Request):
    model_config = ConfigDict(title="similar_items request")
    product_id: Id = Field(description="Product the similar items are for.")
    count: Count = 10


class ForecastRequest(_Request):
    model_config = ConfigDict(title="forecast request")
    product_id: Id
    horizon: Annotated[int, Field(strict=True, ge=1, le=MAX_FORECAST_HORIZON)] = Field(
        description="Periods to forecast (answered in `periods`): 1 to the champion's horizon, the "
        f"OPTIMUM_FORECAST_HORIZON it was trained with (at most {MAX_FORECAST_HORIZON}). A horizon past the "
        "champion's is answered 400 with `max_horizon`."
    )


class InsightsRequest(_Request):
    model_config = ConfigDict(title="insights request")
    product_id: Id | None = Field(None, description="One product's alerts; omitted or null: every product's.")


class SearchRequest(_Request):
    model_config = ConfigDict(title="search request")
    q: Annotated[str, StringConstraints(strict=True, min_length=1, max_length=MAX_QUERY_CHARS)] = Field(
        description="Words to look for in product names, categories and brands (case, accents and small "
        "typos do not matter). A query with no letter or digit is refused with 400.",
        # Checked by ml.search (with a reason), published here so the spec says it.
        json_schema_extra={"pattern": QUERY_PATTERN},
    )
    user_id: Id | None = Field(None, description="A known customer gets the matches re-ranked for them.")
    count: Count = 10


class Item(BaseModel):
    product_id: str
    name: str | None
    category: str | None
    price: float | None
    score: float | None
    rank: int


class Lineage(BaseModel):
    """Where the model behind an answer came from (`optimum trace REQUEST_ID` follows the whole chain)."""

    model_name: str
    model_version: str
    mlflow_run_id: str | None = Field(description="The MLflow run that trained and registered the model.")
    dagster_run_id: str | None = Field(description="The Dagster run that materialized the training asset.")
    data_as_of: str | None = Field(description="The latest event or sale in the training data.")


class Logged(BaseModel):
    """Fields of every logged answer: it is in raw.prediction_log under `request_id`."""

    request_id: str = Field(
        description="Id of this answer in the prediction log: the request's X-Request-ID (the caller's, or one "
        "generated); `optimum trace REQUEST_ID` follows it to the training data."
    )
    variant: str = Field(description="A/B arm that answered: champion or challenger.")
    lineage: Lineage


class RecommendResponse(Logged):
    user_id: str
    model_version: str
    cold_start: bool
    items: list[Item]


class SimilarItemsResponse(Logged):
    product_id: str
    model_version: str
    items: list[Item]


class Period(BaseModel):
    period_start: date
    yhat: float | None
    yhat_lower: float | None
    yhat_upper: float | None


class ForecastResponse(Logged):
    product_id: str
    model_version: str
    freq: str = Field(description="Period grain: D (day), W (week starting Monday) or M (month).")
    model_name: str = Field(description="The model the backtest chose for this product.")
    thin_history: bool = Field(description="Too little history to backtest: a moving average or run rate.")
    periods: list[Period]


class Insight(BaseModel):
    product_id: str
    insight_type: str = Field(description="restock, spike or decline.")
    details: str


class SearchItem(BaseModel):
    product_id: str
    name: str | None
    category: str | None
    brand: str | None
    price: float | None
    score: float = Field(description="The ranking score: (1 - w) * lexical_score + w * personal_score.")
    lexical_score: float = Field(description="BM25 relevance, 1 for the query's best match.")
    personal_score: float | None = Field(
        description="The recommender's score for the customer, scaled to 0..1 over the matches; null when "
        "not personalized."
    )
    rank: int


class SearchResponse(BaseModel):
    q: str
    user_id: str | None
    personalized: bool = Field(description="True when user_id is a customer the recommender knows.")
    personal_weight: float = Field(description="w: the share of personal_score in score.")
    model_version: str
    items: list[SearchItem]


class InsightsResponse(BaseModel):
    model_version: str
    product_id: str | None
    insights: list[Insight]


class InteractionsResponse(BaseModel):
    """POST /interactions, 202: the events are durable in the landing zone's spool."""

    accepted: int = Field(description="Events recorded by this request.")
    duplicates: int = Field(description="Events whose event_id was already accepted (recorded once).")
    event_ids: list[str] = Field(description="The event_id of every event, in request order (generated ones too).")
