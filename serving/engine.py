"""The per-request path: champions turned into lookup tables once, so a request is a dict lookup plus numpy.

`RecommenderPackage.recommend` builds, sorts, groups and joins pandas frames (2-3 ms a call); the engines
answer the same questions from precomputed per-item rows: a user's first request scores one `score_all`
row (0.2-0.7 ms at demo scale), later ones are a cache hit (about 10 us). Forecasts and insights are
dicts built at load time. The answers equal the package's (tests/integration/test_serving.py checks it),
and a package whose recommender is not an `ml.recommend.Recommender` is served through its methods.
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

from ml.recommend import Recommender, UnknownItemError
from ml.recommend.base import top_k
from ml.search import ProductSearch
from serving.models import Champion, Champions

logger = logging.getLogger(f"bentoml.{__name__}")  # under bentoml, so its server log handlers apply

MAX_COUNT = 100  # the most items one request may ask for (the request schemas enforce it)
SIMILAR_CACHE_SIZE = 8192  # products whose similar-items list is kept, at MAX_COUNT items each
USER_CACHE_SIZE = 50_000  # users whose top MAX_COUNT is kept (two small arrays each, about 2 kB)
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
        self.champion = champion
        self.version = champion.version
        self.package = champion.model
        recommender = getattr(self.package, "recommender", None)
        catalog = getattr(self.package, "catalog", None)
        self.fast = isinstance(recommender, Recommender) and recommender.data is not None and catalog is not None
        self._similar = _LRU(SIMILAR_CACHE_SIZE)
        self._user_top = _LRU(USER_CACHE_SIZE)
        self.products = _catalog_rows(catalog) if catalog is not None else {}
        self.searcher = ProductSearch(catalog) if catalog is not None else None
        if not self.fast:
            return
        self.recommender = recommender
        data = recommender.data
        self.data = data
        info = pd.DataFrame(index=pd.Index(data.item_ids.astype(str), name="product_id"))
        info = info.join(catalog[["name", "category", "price"]], how="left")
        # One row of catalog fields per matrix column, in column order.
        self.items = [
            {"product_id": pid, "name": _text(name), "category": _text(category), "price": _number(price)}
            for pid, name, category, price in zip(
                info.index, info["name"], info["category"], info["price"], strict=True
            )
        ]
        popular, scores = top_k(data.item_popularity()[None, :], MAX_COUNT)
        self.popular = self._rows(popular[0], scores[0])

    def _rows(self, items: np.ndarray, scores: np.ndarray) -> list[dict[str, Any]]:
        rows = []
        for rank, (item, score) in enumerate(zip(items.tolist(), scores.tolist(), strict=True), start=1):
            if not math.isfinite(score):  # -inf: seen items padding a list longer than the unseen ones
                break
            rows.append({**self.items[item], "score": score, "rank": rank})
        return rows

    def recommend(self, user_id: str, count: int) -> tuple[bool, list[dict[str, Any]]]:
        """(cold_start, items): the user's top `count` unseen items; popular items for a user never seen."""
        if not self.fast:
            return self._recommend_by_package(user_id, count)
        position = self.data.user_index.get(user_id)
        if position is None:
            return True, self.popular[:count]
        top = self._user_top.get(user_id)
        if top is None:
            top = self._top_items(position)
            self._user_top.put(user_id, top)
        items, values = top
        return False, self._rows(items[:count], values[:count])

    def _top_items(self, position: int) -> tuple[np.ndarray, np.ndarray]:
        """The user's MAX_COUNT best unseen items (indices, scores), as `Recommender.recommend` ranks them.

        A request for fewer items takes a prefix, so the answers to count 5 and count 10 agree."""
        scores = np.asarray(self.recommender.score_all(np.array([position])), dtype=np.float64).reshape(1, -1)
        matrix = self.data.matrix
        seen = matrix.indices[matrix.indptr[position] : matrix.indptr[position + 1]]
        scores[0, seen] = -np.inf  # every stored score is > 0, so stored entries are exactly the seen items
        items, values = top_k(scores, MAX_COUNT)
        return items[0], values[0]

    def _recommend_by_package(self, user_id: str, count: int) -> tuple[bool, list[dict[str, Any]]]:
        frame = self.package.recommend(user_id, count)
        cold = bool(frame["cold_start"].iloc[0]) if len(frame) else False
        return cold, _records(frame, "product_id")

    def personal_scores(self, user_id: str) -> pd.Series | None:
        """The recommender's score of every fitted product for a known user (seen ones included); else None."""
        if not self.fast or (position := self.data.user_index.get(user_id)) is None:
            return None
        row = np.asarray(self.recommender.score_all(np.array([position])), dtype=np.float64).reshape(-1)
        return pd.Series(row, index=self.data.item_ids.astype(str))

    def search(self, query: str, user_id: str | None, count: int, weight: float) -> tuple[bool, list[dict[str, Any]]]:
        """(personalized, items) for a query; raises ml.search.InvalidQuery for an empty or absurd one."""
        if self.searcher is None:
            raise TypeError("this recommender package carries no catalogue to search")
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
        if self.fast and product_id not in self.data.item_index:
            raise UnknownItemError(product_id)
        rows = self._similar.get(product_id)
        if rows is None:
            rows = _records(self.package.similar_items(product_id, MAX_COUNT), "similar_product_id")
            self._similar.put(product_id, rows)
        return rows[:count]


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


def _records(frame: pd.DataFrame, id_column: str) -> list[dict[str, Any]]:
    return [
        {
            "product_id": str(pid),
            "name": _text(name),
            "category": _text(category),
            "price": _number(price),
            "score": _number(score),
            "rank": int(rank),
        }
        for pid, name, category, price, score, rank in zip(
            frame[id_column],
            frame["name"],
            frame["category"],
            frame["price"],
            frame["score"],
            frame["rank"],
            strict=True,
        )
    ]


class HorizonTooLarge(ValueError):
    """A forecast request past the champion's horizon; `horizon` is the largest one allowed."""

    def __init__(self, requested: int, horizon: int, freq: str):
        self.requested, self.horizon, self.freq = requested, horizon, freq
        super().__init__(
            f"horizon {requested} is larger than the champion's forecast horizon: "
            f"ask for 1 to {horizon} periods (freq {freq!r})"
        )


PERIOD_COLUMNS = ["forecast_date", "yhat", "yhat_lower", "yhat_upper"]


class ForecastEngine:
    """product_forecast / product_insights of one ForecastPackage champion, precomputed per product."""

    def __init__(self, champion: Champion):
        self.champion = champion
        self.version = champion.version
        package = champion.model
        self.package = package
        self.freq = str(package.freq)
        self.horizon = int(package.horizon)
        forecast = package.forecast.sort_values(["product_id", "forecast_date"], kind="stable")
        self.forecasts: dict[str, dict[str, Any]] = {}
        for pid, rows in forecast.groupby("product_id", sort=False):
            self.forecasts[str(pid)] = {
                "model_name": str(rows["model_name"].iloc[0]),
                "thin_history": bool(rows["thin_history"].iloc[0]) if "thin_history" in rows else False,
                "periods": [
                    {
                        "period_start": _as_date(start),
                        "yhat": _number(yhat),
                        "yhat_lower": _number(lower),
                        "yhat_upper": _number(upper),
                    }
                    for start, yhat, lower, upper in rows[PERIOD_COLUMNS].itertuples(index=False, name=None)
                ],
            }
        insights = package.insights
        self.all_insights = [
            {"product_id": str(pid), "insight_type": str(kind), "details": _text(details) or ""}
            for pid, kind, details in zip(
                insights["product_id"], insights["insight_type"], insights["details"], strict=True
            )
        ]
        self.insights_by_product: dict[str, list[dict[str, Any]]] = {}
        for row in self.all_insights:
            self.insights_by_product.setdefault(row["product_id"], []).append(row)
        catalog = getattr(package, "catalog", None)
        self.known = set(self.forecasts) | (set(map(str, catalog.index)) if catalog is not None else set())

    def forecast(self, product_id: str, horizon: int) -> dict[str, Any]:
        """model_name, thin_history and the first `horizon` periods; raises HorizonTooLarge / UnknownItemError."""
        if horizon > self.horizon:
            raise HorizonTooLarge(horizon, self.horizon, self.freq)
        found = self.forecasts.get(product_id)
        if found is None:
            raise UnknownItemError(product_id)
        return {**found, "periods": found["periods"][:horizon]}

    def knows_product(self, product_id: str) -> bool:
        return product_id in self.known

    def insights(self, product_id: str | None) -> list[dict[str, Any]]:
        if product_id is None:
            return self.all_insights
        if product_id not in self.known:
            raise UnknownItemError(product_id)
        return self.insights_by_product.get(product_id, [])


def _as_date(value: Any) -> date:
    return pd.Timestamp(value).date()


@dataclass(frozen=True)
class ServingState:
    """Champions and their engines, swapped as one object so a request never mixes two loads."""

    champions: Champions
    recommender: RecommenderEngine | None
    forecaster: ForecastEngine | None
    # (route, request body) -> (serialized 200 answer, model version); dies with the state it answered for.
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
