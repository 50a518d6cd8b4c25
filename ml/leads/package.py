"""The lead scorer as an MLflow pyfunc package: the chosen scorer plus every lead scored by it.

Serving answers `/leads` from the bundled table and `/score_lead` with the scorer, so it never needs the
warehouse. Recency in a posted record is measured against `as_of`, the latest scrape day of the data the
package was built from.
"""

from __future__ import annotations

import math
from typing import Any

import mlflow
import pandas as pd

from ml.leads.outcome import Scorer
from ml.leads.score import category_group

LEAD_SCORER_MODEL_NAME = "optimum-lead-scorer"
LEAD_COLUMNS = [
    "lead_key",
    "name",
    "category",
    "city",
    "address_normalized",
    "phone_normalized",
    "website",
    "rating",
    "review_count",
    "sources",
    "n_sources",
    "n_source_urls",
    "first_seen_at",
    "last_seen_at",
    "missing_from_recent_scrapes",
    "status",
    "status_changed_at",
]


def _json_value(value: Any) -> Any:
    if value is None or (isinstance(value, float) and not math.isfinite(value)) or value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    return value


class LeadScoringPackage(mlflow.pyfunc.PythonModel):
    def __init__(self, scorer: Scorer, leads: pd.DataFrame, as_of: pd.Timestamp | None = None):
        self.scorer = scorer
        last_seen = pd.to_datetime(leads["last_seen_at"]) if len(leads) else pd.Series(dtype="datetime64[ns]")
        self.as_of = pd.Timestamp(as_of) if as_of is not None else (last_seen.max() if len(leads) else None)
        frame = leads.reindex(columns=LEAD_COLUMNS).copy()
        scored = (
            scorer.score(leads, self.as_of) if len(leads) else pd.DataFrame(columns=["lead_score", "score_reasons"])
        )
        frame["lead_score"] = scored["lead_score"].to_numpy()
        frame["score_reasons"] = scored["score_reasons"].to_numpy()
        frame["category_group"] = frame["category"].map(category_group)
        self.leads = frame.sort_values(["lead_score", "lead_key"], ascending=[False, True], kind="stable").reset_index(
            drop=True
        )

    @property
    def scorer_kind(self) -> str:
        return self.scorer.kind

    def find_leads(
        self,
        min_score: int = 0,
        status: str | None = None,
        city: str | None = None,
        category: str | None = None,
        offset: int = 0,
        limit: int = 20,
    ) -> tuple[int, list[dict[str, Any]]]:
        """(total matching, one page of leads best first). city and category match case-insensitively;
        category also matches a category group ('repair workshop')."""
        leads = self.leads
        keep = leads["lead_score"] >= min_score
        if status is not None:
            keep &= leads["status"] == status
        if city is not None:
            keep &= leads["city"].str.lower() == city.strip().lower()
        if category is not None:
            wanted = category.strip().lower()
            keep &= (leads["category"].str.lower() == wanted) | (leads["category_group"].str.lower() == wanted)
        found = leads[keep.fillna(False)]
        page = found.iloc[offset : offset + limit].drop(columns="category_group")
        return len(found), [{k: _json_value(v) for k, v in row.items()} for row in page.to_dict("records")]

    def score_lead(self, record: dict[str, Any]) -> dict[str, Any]:
        """lead_score and score_reasons of one lead record (dim_leads field names; phone/address accepted)."""
        frame = pd.DataFrame([record])
        if "last_seen_at" not in frame or frame["last_seen_at"].isna().all():
            frame["last_seen_at"] = self.as_of  # a lead posted now counts as seen in the latest scrape
        scored = self.scorer.score(frame, self.as_of).iloc[0]
        return {"lead_score": int(scored["lead_score"]), "score_reasons": str(scored["score_reasons"])}

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
        """model_input: lead records; returns lead_score and score_reasons per row."""
        return self.scorer.score(model_input, self.as_of)
