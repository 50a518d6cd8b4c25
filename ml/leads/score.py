"""The transparent lead scorer: six components in [0, 1], weighted into a 0-100 score with its reasons.

Every number a salesperson sees can be traced by hand: component x weight, summed, over the total
weight. Weights come from settings (OPTIMUM_LEAD_WEIGHT_*, README); the category table is below. Recency
is measured back from the data's latest scrape (or an explicit `as_of`), never from the wall clock.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

COMPONENTS = ("category_fit", "contact", "reputation", "target_city", "multi_source", "recency")

# First match wins (so "Parts Dealer" is a parts seller, not a car dealer). Fit = how likely such a
# business buys car parts from a wholesaler: workshops every day, parts sellers are competitors.
CATEGORY_FIT: tuple[tuple[str, tuple[str, ...], float], ...] = (
    ("parts seller", ("parts", "spares", "factors"), 0.2),
    ("repair workshop", ("repair", "garage", "mechanic", "service", "motors"), 1.0),
    ("auto electrician", ("electric", "electrics", "electrical", "electrician"), 0.9),
    ("MOT centre", ("mot", "inspection"), 0.8),
    ("tyre shop", ("tyre", "tyres", "tire", "tires", "wheel", "wheels"), 0.7),
    ("body shop", ("body", "paint", "panel", "collision", "accident"), 0.6),
    ("car dealer", ("dealer", "sales"), 0.5),
)
UNKNOWN_CATEGORY_FIT = 0.3
CONTACT_PARTS = {"phone": 0.5, "website": 0.3, "address": 0.2}  # share of the contact component
REVIEWS_FOR_FULL_VOLUME = 200  # review volume counts log-wise up to this many reviews
RECENCY_HALF_LIFE_DAYS = 7.0
TOP_REASONS = 3

LABELS = {
    "category_fit": "category fit",
    "contact": "contact data",
    "reputation": "rating and reviews",
    "target_city": "in a target city",
    "multi_source": "seen on several sources",
    "recency": "recently seen",
}


def category_group(category: object) -> str:
    """The CATEGORY_FIT group a free-text category falls in ('other' when none matches)."""
    words = set(re.findall(r"[a-z]+", str(category).lower().replace("_", " "))) if isinstance(category, str) else set()
    for label, keywords, _ in CATEGORY_FIT:
        if words & set(keywords):
            return label
    return "other"


_FIT = {label: fit for label, _, fit in CATEGORY_FIT} | {"other": UNKNOWN_CATEGORY_FIT}


def _present(values: pd.Series) -> pd.Series:
    return values.notna() & (values.astype("string").str.strip().fillna("") != "")


def _column(leads: pd.DataFrame, *names: str) -> pd.Series:
    """The first of `names` the frame has (dim_leads and a posted record name some fields differently)."""
    for name in names:
        if name in leads:
            return leads[name]
    return pd.Series(None, index=leads.index, dtype="object")


def _days_between(later: pd.Timestamp, earlier: pd.Series) -> pd.Series:
    return (later.normalize() - pd.to_datetime(earlier).dt.normalize()).dt.days


@dataclass(frozen=True)
class TransparentScorer:
    """weights: component -> points (any scale; the score divides by their sum). target_cities: empty
    means the team has no area preference, so every lead counts as in area."""

    weights: dict[str, float]
    target_cities: tuple[str, ...] = ()
    kind: str = field(default="transparent", init=False)

    def __post_init__(self) -> None:
        unknown = set(self.weights) - set(COMPONENTS)
        if unknown or sum(self.weights.values()) <= 0 or min(self.weights.values(), default=0) < 0:
            raise ValueError(f"weights must be non-negative, not all zero, over {COMPONENTS}; got {self.weights}")

    def config(self) -> dict:
        return {
            "scorer": self.kind,
            "weights": dict(sorted(self.weights.items())),
            "target_cities": list(self.target_cities),
        }

    def components(self, leads: pd.DataFrame, as_of: pd.Timestamp | None = None) -> pd.DataFrame:
        """One column per COMPONENTS entry, each in [0, 1], same index as `leads`."""
        index = leads.index
        fit = _column(leads, "category").map(category_group).map(_FIT).astype(float)
        contact = sum(
            share * _present(_column(leads, *names)).astype(float)
            for share, names in (
                (CONTACT_PARTS["phone"], ("phone_normalized", "phone")),
                (CONTACT_PARTS["website"], ("website",)),
                (CONTACT_PARTS["address"], ("address_normalized", "address")),
            )
        )
        rating = pd.to_numeric(_column(leads, "rating"), errors="coerce")
        reviews = pd.to_numeric(_column(leads, "review_count"), errors="coerce").fillna(0).clip(lower=0)
        rating_part = ((rating - 1) / 4).clip(0, 1).fillna(0)
        volume = (np.log1p(reviews) / math.log1p(REVIEWS_FOR_FULL_VOLUME)).clip(0, 1)
        city = _column(leads, "city").astype("string").str.strip().str.lower()
        targets = {c.strip().lower() for c in self.target_cities}
        in_area = city.isin(targets).fillna(False).astype(float) if targets else pd.Series(1.0, index=index)
        n_sources = pd.to_numeric(_column(leads, "n_sources"), errors="coerce").fillna(1)
        n_urls = pd.to_numeric(_column(leads, "n_source_urls"), errors="coerce").fillna(1)
        multi = np.where(n_sources >= 2, 1.0, np.where(n_urls >= 2, 0.5, 0.0))
        last_seen = pd.to_datetime(_column(leads, "last_seen_at"), errors="coerce")
        reference = as_of if as_of is not None else last_seen.max()
        if pd.isna(reference):
            recency = pd.Series(0.0, index=index)
        else:
            age = _days_between(pd.Timestamp(reference), last_seen).clip(lower=0)
            recency = (0.5 ** (age / RECENCY_HALF_LIFE_DAYS)).fillna(0.0)
        return pd.DataFrame(
            {
                "category_fit": fit.to_numpy(),
                "contact": np.asarray(contact, dtype=float),
                "reputation": (0.5 * rating_part + 0.5 * volume).to_numpy(),
                "target_city": in_area.to_numpy(),
                "multi_source": multi,
                "recency": recency.to_numpy(dtype=float),
            },
            index=index,
        )

    def points(self, components: pd.DataFrame) -> pd.DataFrame:
        """Each component's share of the 0-100 score."""
        total = sum(self.weights.values())
        return pd.DataFrame(
            {name: 100 * components[name] * self.weights.get(name, 0) / total for name in COMPONENTS},
            index=components.index,
        )

    def score(self, leads: pd.DataFrame, as_of: pd.Timestamp | None = None) -> pd.DataFrame:
        """lead_score (int 0-100) and score_reasons (the top contributions, '; '-separated)."""
        components = self.components(leads, as_of)
        points = self.points(components)
        scores = points.sum(axis=1).round().clip(0, 100).astype(int)
        reasons = [_reasons(row, leads.loc[i] if i in leads.index else None) for i, row in points.iterrows()]
        return pd.DataFrame({"lead_score": scores, "score_reasons": reasons}, index=leads.index)


def _reasons(points: pd.Series, lead: pd.Series | None) -> str:
    top = points[points > 0.5].sort_values(ascending=False, kind="stable").head(TOP_REASONS)  # ties: COMPONENTS order
    parts = []
    for name, value in top.items():
        label = LABELS[name]
        if name == "category_fit" and lead is not None:
            label = f"{label} ({category_group(lead.get('category'))})"
        parts.append(f"{label} +{value:.0f}")
    return "; ".join(parts) or "no strong signal"
