"""Request and response bodies of the serving API (pydantic: BentoML validates requests with these and
publishes them in the OpenAPI spec at /docs.json).

Requests are strict: unknown fields, numbers sent as strings or booleans, empty or blank ids and counts
outside 1..100 are rejected with 400 and the pydantic reason, before any model code runs.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from serving.engine import MAX_COUNT

Id = Annotated[str, StringConstraints(strict=True, strip_whitespace=True, min_length=1, max_length=128)]
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
    horizon: Annotated[int, Field(strict=True, ge=1)] = Field(
        description="Periods to forecast, 1 to the champion's horizon (answered in `periods`)."
    )


class InsightsRequest(_Request):
    model_config = ConfigDict(title="insights request")
    product_id: Id | None = Field(None, description="One product's alerts; omitted or null: every product's.")


class Item(BaseModel):
    product_id: str
    name: str | None
    category: str | None
    price: float | None
    score: float | None
    rank: int


class RecommendResponse(BaseModel):
    user_id: str
    model_version: str
    cold_start: bool
    items: list[Item]


class SimilarItemsResponse(BaseModel):
    product_id: str
    model_version: str
    items: list[Item]


class Period(BaseModel):
    period_start: date
    yhat: float | None
    yhat_lower: float | None
    yhat_upper: float | None


class ForecastResponse(BaseModel):
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


class InsightsResponse(BaseModel):
    model_version: str
    product_id: str | None
    insights: list[Insight]
