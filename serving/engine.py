"""The per-request path: the champions' own answers (ml/), shaped as JSON and cached.

Every behaviour (ranking, seen-item masking, cold start, similar items, forecast lookup, the horizon
check, insights) lives once in ml/: `Recommender` and `ForecastPackage`. The engines keep only what is
about serving: a row of catalog fields per item, built once, so a ranking becomes JSON without pandas,
and LRU caches, so a user's or product's repeated request is a dict lookup (about 10 us) instead of a
scoring pass (0.2-0.7 ms at demo scale).
"""

from __future__ import annotations

import logging
import math
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass, field, replace
from datetime import date
from threading import Lock
from typing import Any

import numpy as np
import pandas as pd

from ml.packaging import ForecastPackage, RecommenderPackage
from ml.search import ProductSearch
from serving.models import Champion, Champions
from serving.schemas import MAX_COUNT

logger = logging.getLogger(f"bentoml.{__name__}")  # under bentoml, so its server log handlers apply

SIMILAR_CACHE_SIZE = 8192  # products whose similar-items list is kept, at MAX_COUNT items each
USER_CACHE_SIZE = 50_000  # users whose top MAX_COUNT is kept (about 2 kB each)
FORECAST_CACHE_SIZE = 50_000  # (product, horizon) answers kept
RESPONSE_CACHE_SIZE = 20_000  # serialized 200 answers kept per state (about 1-2 kB each at count 10)


def _number(value: Any) -> float | None:
    """A JSON-safe float: NaN / inf (a product missing from the catalog, say) become None."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _text(value: Any) -> str | None:
    return None if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)) else str(value)


class _LRU:
    """A small thread-safe LRU map (functools.lru_cache cannot be sized per instance or cleared by key)."""

    def __init__(self, size: int):
        self.size = size
        self._data: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = Lock()

    def get(self, key: Hashable) -> Any:
        with self._lock:
            value = self._data.get(key)
            if value is not None:
                self._data.move_to_end(key)
            return value

    def put(self, key: Hashable, value: Any) -> None:
        with self._lock:
            self._data[key] = value
            if len(self._data) > self.size:
                self._data.popitem(last=False)


class RecommenderEngine:
    """recommend / similar_items of one RecommenderPackage champion, as lists of JSON-ready dicts."""

    def __init__(self, champion: Champion):
        package: RecommenderPackage = champion.model
        self.champion = champion
        self.version = champion.version
        self.recommender = package.recommender
        data = self.recommender.data
        self.user_index = data.user_index
        self.item_ids = data.item_ids.astype(str)
        self.products = _catalog_rows(package.catalog)
        self.searcher = ProductSearch(package.catalog)
        info = pd.DataFrame(index=pd.Index(data.item_ids.astype(str), name="product_id"))
        info = info.join(package.catalog[["name", "category", "price"]], how="left")
        # One row of catalog fields per matrix column, in column order.
        self.items = [
            {"product_id": pid, "name": _text(name), "category": _text(category), "price": _number(price)}
            for pid, name, category, price in zip(
                info.index, info["name"], info["category"], info["price"], strict=True
            )
        ]
        self.popular = self._rows(*self.recommender.popular_items(MAX_COUNT))
        self._similar = _LRU(SIMILAR_CACHE_SIZE)
        self._user_top = _LRU(USER_CACHE_SIZE)

    def _rows(self, items: np.ndarray, scores: np.ndarray) -> list[dict[str, Any]]:
        """Catalog rows with score and rank; a non-finite score (a seen item padding the list) ends it."""
        rows = []
        for rank, (item, score) in enumerate(zip(items.tolist(), scores.tolist(), strict=True), start=1):
            if not math.isfinite(score):
                break
            rows.append({**self.items[item], "score": score, "rank": rank})
        return rows

    def recommend(self, user_id: str, count: int) -> tuple[bool, list[dict[str, Any]]]:
        """(cold_start, items): the user's top `count` unseen items; popular items for a user never seen.

        The user's top MAX_COUNT is cached and a request takes a prefix, so count 5 and count 10 agree."""
        position = self.user_index.get(user_id)
        if position is None:
            return True, self.popular[:count]
        rows = self._user_top.get(user_id)
        if rows is None:
            items, scores = self.recommender.top_items(np.array([position]), MAX_COUNT)
            rows = self._rows(items[0], scores[0])
            self._user_top.put(user_id, rows)
        return False, rows[:count]

    def personal_scores(self, user_id: str) -> pd.Series | None:
        """The recommender's score of every fitted product for a known user (seen ones included); else None."""
        position = self.user_index.get(user_id)
        if position is None:
            return None
        row = np.asarray(self.recommender.score_all(np.array([position])), dtype=np.float64).reshape(-1)
        return pd.Series(row, index=self.item_ids)

    def search(self, query: str, user_id: str | None, count: int, weight: float) -> tuple[bool, list[dict[str, Any]]]:
        """(personalized, items) for a query; raises ml.search.InvalidQuery for an empty or absurd one."""
        personal = self.personal_scores(user_id) if user_id is not None else None
        hits = self.searcher.search(query, count, personal, weight)
        items = [
            {
                **self.products[hit.product_id],
                "score": hit.score,
                "lexical_score": hit.lexical_score,
                "personal_score": hit.personal_score,
                "rank": rank,
            }
            for rank, hit in enumerate(hits, start=1)
        ]
        return personal is not None, items

    def similar_items(self, product_id: str, count: int) -> list[dict[str, Any]]:
        """The `count` items most like `product_id`; raises UnknownItemError for a product not fitted on."""
        rows = self._similar.get(product_id)
        if rows is None:
            rows = self._rows(*self.recommender.similar_top(product_id, MAX_COUNT))
            self._similar.put(product_id, rows)
        return rows[:count]


class ForecastEngine:
    """forecast / insights of one ForecastPackage champion, as JSON-ready dicts."""

    def __init__(self, champion: Champion):
        package: ForecastPackage = champion.model
        self.champion = champion
        self.version = champion.version
        self.package = package
        self.freq = str(package.freq)
        self.horizon = int(package.horizon)
        self.all_insights = _insight_rows(package.product_insights(None))
        self._forecasts = _LRU(FORECAST_CACHE_SIZE)
        self._insights = _LRU(FORECAST_CACHE_SIZE)

    def forecast(self, product_id: str, horizon: int) -> dict[str, Any]:
        """model_name, thin_history and the first `horizon` periods; raises HorizonTooLarge / UnknownItemError."""
        found = self._forecasts.get((product_id, horizon))
        if found is None:
            rows = self.package.product_forecast(product_id, horizon)
            found = {
                "model_name": str(rows["model_name"].iloc[0]),
                "thin_history": bool(rows["thin_history"].iloc[0]) if "thin_history" in rows else False,
                "periods": [
                    {
                        "period_start": _as_date(start),
                        "yhat": _number(yhat),
                        "yhat_lower": _number(lower),
                        "yhat_upper": _number(upper),
                    }
                    for start, yhat, lower, upper in rows[
                        ["forecast_date", "yhat", "yhat_lower", "yhat_upper"]
                    ].itertuples(index=False, name=None)
                ],
            }
            self._forecasts.put((product_id, horizon), found)
        return found

    def insights(self, product_id: str | None) -> list[dict[str, Any]]:
        """One product's alerts, or every product's; raises UnknownItemError for a product it does not know."""
        if product_id is None:
            return self.all_insights
        rows = self._insights.get(product_id)
        if rows is None:
            rows = _insight_rows(self.package.product_insights(product_id))
            self._insights.put(product_id, rows)
        return rows


def _catalog_rows(catalog: pd.DataFrame) -> dict[str, dict[str, Any]]:
    brands = catalog["brand"] if "brand" in catalog.columns else [None] * len(catalog)
    return {
        str(pid): {
            "product_id": str(pid),
            "name": _text(name),
            "category": _text(category),
            "brand": _text(brand),
            "price": _number(price),
        }
        for pid, name, category, brand, price in zip(
            catalog.index, catalog["name"], catalog["category"], brands, catalog["price"], strict=True
        )
    }


def _insight_rows(insights: pd.DataFrame) -> list[dict[str, Any]]:
    return [
        {"product_id": str(pid), "insight_type": str(kind), "details": _text(details) or ""}
        for pid, kind, details in zip(
            insights["product_id"], insights["insight_type"], insights["details"], strict=True
        )
    ]


def _as_date(value: Any) -> date:
    return pd.Timestamp(value).date()


@dataclass(frozen=True)
class ServingState:
    """Champions and their engines, swapped as one object so a request never mixes two loads."""

    champions: Champions
    recommender: RecommenderEngine | None
    forecaster: ForecastEngine | None
    # (route, request body) -> the serialized 200 answer (serving/api.py); dies with the state it answered for.
    responses: _LRU = field(default_factory=lambda: _LRU(RESPONSE_CACHE_SIZE), compare=False, repr=False)

    @classmethod
    def build(cls, champions: Champions, previous: ServingState | None = None) -> ServingState:
        """Engines for the champions, reusing `previous` ones whose champion did not change. A champion
        whose engine cannot be built (a package of an unexpected shape) leaves the previous one in place,
        or counts as missing."""
        engines: dict[str, RecommenderEngine | ForecastEngine | None] = {}
        missing = dict(champions.missing)
        for attr, make in (("recommender", RecommenderEngine), ("forecaster", ForecastEngine)):
            champion, old = getattr(champions, attr), getattr(previous, attr, None)
            if champion is None or (old is not None and old.champion is champion):
                engines[attr] = old if champion is not None else None
                continue
            try:
                engines[attr] = make(champion)
            except Exception as exc:
                logger.exception("cannot serve %s version %s", champion.name, champion.version)
                engines[attr] = old  # keep serving the previous champion, if there is one
                champions = replace(champions, **{attr: old.champion if old is not None else None})
                if old is None:
                    missing[champion.name] = f"version {champion.version} cannot be served: {type(exc).__name__}: {exc}"
        return cls(champions=replace(champions, missing=missing), **engines)
