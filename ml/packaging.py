"""Champion models as MLflow pyfunc packages: what training registers and what serving loads.

A package bundles the fitted model with the catalog rows serving must show (name, category, price), so a
served answer never needs the warehouse. `predict` keeps MLflow's generic interface working; serving calls
the typed methods through `unwrap_python_model()`.
"""

from __future__ import annotations

from typing import Any

import mlflow
import pandas as pd

from ml.recommend import Recommender, UnknownItemError

RECOMMENDER_MODEL_NAME = "optimum-recommender"
FORECASTER_MODEL_NAME = "optimum-demand-forecaster"
CATALOG_COLUMNS = ["product_id", "name", "category", "price"]
OPTIONAL_CATALOG_COLUMNS = ["brand"]  # searched by /search when the products carry it


def _catalog(products: pd.DataFrame) -> pd.DataFrame:
    columns = CATALOG_COLUMNS + [column for column in OPTIONAL_CATALOG_COLUMNS if column in products.columns]
    catalog = products[columns].drop_duplicates("product_id").copy()
    catalog["product_id"] = catalog["product_id"].astype(str)
    catalog["price"] = pd.to_numeric(catalog["price"], errors="coerce").astype(float)
    return catalog.set_index("product_id")


class RecommenderPackage(mlflow.pyfunc.PythonModel):
    """A fitted recommender plus the product catalog; unknown users get popular items flagged cold_start."""

    def __init__(self, recommender: Recommender, products: pd.DataFrame, candidate: str):
        self.recommender = recommender
        self.catalog = _catalog(products)
        self.candidate = candidate

    def _with_catalog(self, frame: pd.DataFrame, id_column: str) -> pd.DataFrame:
        return frame.join(self.catalog, on=id_column)

    def recommend(self, user_id: str, count: int) -> pd.DataFrame:
        """product_id, rank, score, cold_start, name, category, price for one user."""
        frame = self.recommender.recommend([str(user_id)], count, exclude_seen=True)
        return self._with_catalog(frame.drop(columns="user_id"), "product_id")

    def recommend_many(self, user_ids: list[str], count: int) -> pd.DataFrame:
        return self.recommender.recommend([str(u) for u in user_ids], count, exclude_seen=True)

    def similar_items(self, product_id: str, count: int) -> pd.DataFrame:
        """similar_product_id, rank, score, name, category, price; raises UnknownItemError."""
        frame = self.recommender.similar_items(str(product_id), count)
        return self._with_catalog(frame.drop(columns="product_id"), "similar_product_id")

    def knows_product(self, product_id: str) -> bool:
        return str(product_id) in self.catalog.index

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
        """model_input: a user_id column; params: {"count": k} (default 10)."""
        count = int((params or {}).get("count", 10))
        return self.recommend_many(model_input["user_id"].astype(str).tolist(), count)


class ForecastPackage(mlflow.pyfunc.PythonModel):
    """The champion's forecast for every product with sales history, its intervals and insights.

    Forecasts are computed for the full horizon at training time (one global LightGBM model and a model per
    demand class are cheap to serve as a table); requests ask for a prefix of that horizon.
    """

    def __init__(self, forecast: pd.DataFrame, insights: pd.DataFrame, products: pd.DataFrame, freq: str):
        self.forecast = forecast.copy()
        self.forecast["product_id"] = self.forecast["product_id"].astype(str)
        self.insights = insights.copy()
        self.insights["product_id"] = self.insights["product_id"].astype(str)
        self.catalog = _catalog(products)
        self.freq = freq
        self.horizon = int(self.forecast.groupby("product_id").size().max()) if len(self.forecast) else 0

    def product_forecast(self, product_id: str, horizon: int) -> pd.DataFrame:
        """forecast_date, yhat, yhat_lower, yhat_upper, model_name; raises UnknownItemError / ValueError."""
        if horizon < 1 or horizon > self.horizon:
            raise ValueError(f"horizon must be between 1 and {self.horizon} {self.freq} periods, got {horizon}")
        rows = self.forecast[self.forecast["product_id"] == str(product_id)]
        if rows.empty:
            raise UnknownItemError(f"no forecast for product_id {product_id!r}: unknown or never sold")
        return rows.sort_values("forecast_date").head(horizon).drop(columns="product_id")

    def product_insights(self, product_id: str | None = None) -> pd.DataFrame:
        if product_id is None:
            return self.insights
        if not self.knows_product(product_id):
            raise UnknownItemError(f"unknown product_id {product_id!r}")
        return self.insights[self.insights["product_id"] == str(product_id)]

    def knows_product(self, product_id: str) -> bool:
        return str(product_id) in self.catalog.index or str(product_id) in set(self.forecast["product_id"])

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
        """model_input: a product_id column; params: {"horizon": n} (default: the full horizon)."""
        horizon = int((params or {}).get("horizon", self.horizon))
        frames = [self.product_forecast(p, horizon).assign(product_id=p) for p in model_input["product_id"]]
        return pd.concat(frames, ignore_index=True)
