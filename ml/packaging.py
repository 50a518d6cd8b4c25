"""Champion models as MLflow pyfunc packages: what training registers and what serving loads.

A package bundles the fitted model with the catalog rows serving must show (name, category, price), so a
served answer never needs the warehouse. `predict` keeps MLflow's generic interface working; serving and
the batch outputs call the model's own methods through `unwrap_python_model()`.
"""

from __future__ import annotations

from functools import cached_property
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
    """A fitted recommender (it ranks, masks seen items, answers cold start) plus the product catalog."""

    def __init__(self, recommender: Recommender, products: pd.DataFrame, candidate: str):
        self.recommender = recommender
        self.catalog = _catalog(products)
        self.candidate = candidate

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
        """model_input: a user_id column; params: {"count": k} (default 10)."""
        count = int((params or {}).get("count", 10))
        return self.recommender.recommend(model_input["user_id"].astype(str).tolist(), count)


class HorizonTooLarge(ValueError):
    """A forecast request past the package's horizon; `horizon` is the largest one allowed."""

    def __init__(self, requested: int, horizon: int, freq: str):
        self.requested, self.horizon, self.freq = requested, horizon, freq
        super().__init__(
            f"horizon {requested} is larger than the champion's forecast horizon: "
            f"ask for 1 to {horizon} periods (freq {freq!r})"
        )


class ForecastPackage(mlflow.pyfunc.PythonModel):
    """The champion's forecast for every product with sales history, its intervals and insights.

    Forecasts are computed for the full horizon at training time (one global LightGBM model and a model per
    demand class are cheap to serve as a table); requests ask for a prefix of that horizon.
    """

    def __init__(self, forecast: pd.DataFrame, insights: pd.DataFrame, products: pd.DataFrame, freq: str, horizon: int):
        self.forecast = forecast.copy()
        self.forecast["product_id"] = self.forecast["product_id"].astype(str)
        self.insights = insights.copy()
        self.insights["product_id"] = self.insights["product_id"].astype(str)
        self.catalog = _catalog(products)
        self.freq = freq
        self.horizon = horizon  # periods forecast per product: the training's horizon

    def __getstate__(self) -> dict:
        """Pickle (register) the tables only: the per-product indexes are rebuilt on first use."""
        return {key: value for key, value in self.__dict__.items() if not key.startswith("_")}

    @cached_property
    def _forecast_by_product(self) -> dict[str, pd.DataFrame]:
        ordered = self.forecast.sort_values(["product_id", "forecast_date"], kind="stable")
        return {str(pid): rows.drop(columns="product_id") for pid, rows in ordered.groupby("product_id", sort=False)}

    def product_forecast(self, product_id: str, horizon: int) -> pd.DataFrame:
        """forecast_date, yhat, yhat_lower, yhat_upper, model_name, thin_history for the first `horizon`
        periods; raises HorizonTooLarge / UnknownItemError."""
        if horizon < 1 or horizon > self.horizon:
            raise HorizonTooLarge(horizon, self.horizon, self.freq)
        rows = self._forecast_by_product.get(str(product_id))
        if rows is None:
            raise UnknownItemError(f"no forecast for product_id {product_id!r}: unknown or never sold")
        return rows.head(horizon)

    @cached_property
    def _insights_by_product(self) -> dict[str, pd.DataFrame]:
        return {str(pid): rows for pid, rows in self.insights.groupby("product_id", sort=False)}

    def product_insights(self, product_id: str | None = None) -> pd.DataFrame:
        """Every product's alerts, or one known product's (possibly none); raises UnknownItemError."""
        if product_id is None:
            return self.insights
        if not self.knows_product(product_id):
            raise UnknownItemError(f"unknown product_id {product_id!r}")
        return self._insights_by_product.get(str(product_id), self.insights.iloc[:0])

    def knows_product(self, product_id: str) -> bool:
        return str(product_id) in self.catalog.index or str(product_id) in self._forecast_by_product

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
        """model_input: a product_id column; params: {"horizon": n} (default: the full horizon)."""
        horizon = int((params or {}).get("horizon", self.horizon))
        frames = [self.product_forecast(p, horizon).assign(product_id=p) for p in model_input["product_id"]]
        return pd.concat(frames, ignore_index=True)
