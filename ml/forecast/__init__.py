"""Demand forecasting on the sales mart: period series, models, backtest, choice per demand class, alerts.

Pure library: functions take DataFrames (marts.fct_sales_daily, marts.dim_products) and return
DataFrames or models; orchestration and serving live elsewhere. Start at forecast_demand.
"""

from ml.forecast.backtest import (
    Backtest,
    demand_classes,
    fit_predict,
    model_metrics,
    rolling_origin_backtest,
    select_models,
    thin_products,
)
from ml.forecast.insights import demand_insights
from ml.forecast.lightgbm_model import LightGBMGlobalForecaster
from ml.forecast.models import EnsembleForecaster, Forecaster, MovingAverage, SeasonalNaive
from ml.forecast.pipeline import ForecastResult, default_models, forecast_demand
from ml.forecast.prophet_model import ProphetForecaster
from ml.forecast.series import aggregate_sales

__all__ = [
    "Backtest",
    "EnsembleForecaster",
    "ForecastResult",
    "Forecaster",
    "LightGBMGlobalForecaster",
    "MovingAverage",
    "ProphetForecaster",
    "SeasonalNaive",
    "aggregate_sales",
    "default_models",
    "demand_classes",
    "demand_insights",
    "fit_predict",
    "forecast_demand",
    "model_metrics",
    "rolling_origin_backtest",
    "select_models",
    "thin_products",
]
