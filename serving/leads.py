"""`POST /leads` and `POST /score_lead`: request and response bodies, and the engine over the champion
lead scorer (ml/leads/package.py); serving/api.py registers the routes. Validation follows serving/schemas.py:
unknown fields, wrong types and out-of-range numbers are a 400 with pydantic's reasons before any model code
runs, and every limit is one the OpenAPI spec states.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from serving.models import Champion

MAX_PAGE_SIZE = 100
Status = Literal["new", "contacted", "qualified", "won", "lost"]
# Not stripped by validation (the spec could not say so): it must contain a non-blank character; the
# engine strips it.
Text = Annotated[str, StringConstraints(strict=True, min_length=1, max_length=200, pattern=r"\S")]


class LeadsRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", title="leads request")  # as serving/schemas.py
    min_score: Annotated[int, Field(strict=True, ge=0, le=100)] = Field(0, description="Lowest lead_score returned.")
    status: Status | None = Field(None, description="Only leads with this current CRM status.")
    city: Text | None = Field(None, description="Only leads in this city (case-insensitive).")
    category: Text | None = Field(
        None, description="Only this category, or category group such as 'repair workshop' (case-insensitive)."
    )
    page: Annotated[int, Field(strict=True, ge=1)] = Field(1, description="1-based page number.")
    page_size: Annotated[int, Field(strict=True, ge=1, le=MAX_PAGE_SIZE)] = 20


class ScoreLeadRequest(BaseModel):
    """A lead as an application knows it; only name is required. Missing contact fields score as missing."""

    model_config = ConfigDict(extra="forbid", title="score_lead request")
    name: Text
    category: Text | None = None
    city: Text | None = None
    address: Text | None = None
    phone: Text | None = None
    website: Text | None = None
    rating: Annotated[float, Field(strict=True, ge=0, le=5)] | None = None
    review_count: Annotated[int, Field(strict=True, ge=0, le=10_000_000)] | None = None
    n_sources: Annotated[int, Field(strict=True, ge=1, le=10)] = Field(1, description="Sources it was seen on.")
    last_seen_at: Annotated[datetime, Field(strict=True)] | None = Field(
        None, description="When it was last seen (ISO 8601); default: the latest scrape."
    )


class Lead(BaseModel):
    """A row of marts.scored_leads; its timestamps are UTC (the warehouse keeps them without a zone)."""

    lead_key: str
    name: str | None
    category: str | None
    city: str | None
    address_normalized: str | None
    phone_normalized: str | None
    website: str | None
    rating: float | None
    review_count: int | None
    sources: str | None
    status: str
    status_changed_at: datetime | None
    first_seen_at: datetime | None
    last_seen_at: datetime | None
    missing_from_recent_scrapes: bool | None
    lead_score: int
    score_reasons: str

    @field_validator("status_changed_at", "first_seen_at", "last_seen_at")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        """Answered with their zone (`...Z`), as the spec's date-time format requires."""
        return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


class LeadsResponse(BaseModel):
    model_version: str
    scorer: str = Field(description="transparent or outcome_model: which scorer the champion is.")
    total: int = Field(description="Leads matching the filters, over all pages.")
    page: int
    page_size: int
    leads: list[Lead]


class ScoreLeadResponse(BaseModel):
    model_version: str
    scorer: str
    lead_score: int = Field(description="0 to 100.")
    score_reasons: str = Field(description="The largest contributions to the score, '; '-separated.")


def _stripped(value: str | None) -> str | None:
    return value.strip() if value is not None else None


class LeadEngine:
    """The champion lead scorer's answers as JSON-ready dicts; the package holds every scored lead, so a
    request is a filter."""

    def __init__(self, champion: Champion):
        package = champion.model
        absent = [name for name in ("find_leads", "score_lead") if not callable(getattr(package, name, None))]
        if absent:
            raise TypeError(f"a {type(package).__name__} is not a lead scorer package: it lacks {absent}")
        self.champion = champion
        self.version = champion.version
        self.package = package
        self.scorer = str(getattr(package, "scorer_kind", "unknown"))

    def leads(self, request: LeadsRequest) -> dict[str, Any]:
        total, rows = self.package.find_leads(
            min_score=request.min_score,
            status=request.status,
            city=_stripped(request.city),
            category=_stripped(request.category),
            offset=(request.page - 1) * request.page_size,
            limit=request.page_size,
        )
        return LeadsResponse(
            model_version=self.version,
            scorer=self.scorer,
            total=total,
            page=request.page,
            page_size=request.page_size,
            leads=[Lead(**{field: row.get(field) for field in Lead.model_fields}) for row in rows],
        ).model_dump(mode="json")

    def score(self, request: ScoreLeadRequest) -> dict[str, Any]:
        record: dict[str, Any] = {
            name: _stripped(value) if isinstance(value, str) else value for name, value in request.model_dump().items()
        }
        seen = record["last_seen_at"]
        if seen is not None and seen.tzinfo is not None:
            record["last_seen_at"] = seen.astimezone(UTC).replace(tzinfo=None)
        answer = self.package.score_lead(record)
        return ScoreLeadResponse(model_version=self.version, scorer=self.scorer, **answer).model_dump(mode="json")
