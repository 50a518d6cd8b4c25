"""Figures that explain a training run (logged to MLflow by the training assets)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # headless: training runs in workers and CI without a display

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402


def metric_by_candidate(metrics: pd.DataFrame, metric: str, highlight: str | None = None) -> Figure:
    """Horizontal bars of one metric per candidate (index), the chosen one highlighted."""
    ordered = metrics[metric].sort_values()
    colors = ["tab:orange" if name == highlight else "tab:blue" for name in ordered.index]
    figure, axis = plt.subplots(figsize=(7, 0.45 * len(ordered) + 1.2))
    axis.barh([str(name) for name in ordered.index], ordered.to_numpy(), color=colors)
    axis.set_xlabel(metric)
    axis.set_title(f"{metric} by candidate (same evaluation)")
    figure.tight_layout()
    return figure


def backtest_plot(predictions: pd.DataFrame, product_ids: list[str], models: list[str]) -> Figure:
    """Actuals and each model's backtest forecasts for a few products, one panel each.

    Each model keeps one colour across its backtest windows and panels, so the legend reads true."""
    colors = {model: f"C{i % 10}" for i, model in enumerate(models)}
    figure, axes = plt.subplots(len(product_ids), 1, figsize=(9, 2.6 * len(product_ids)), squeeze=False)
    for axis, product_id in zip(axes[:, 0], product_ids, strict=True):
        rows = predictions[predictions["product_id"] == product_id]
        actual = rows.drop_duplicates("period_start").sort_values("period_start")
        axis.plot(actual["period_start"], actual["actual"], color="black", marker=".", label="actual")
        for model in models:
            for _, window in rows[rows["model"] == model].groupby("origin"):
                window = window.sort_values("period_start")
                axis.plot(window["period_start"], window["yhat"], color=colors[model], label=model)
        handles, labels = axis.get_legend_handles_labels()
        unique = dict(zip(labels, handles, strict=True))
        axis.legend(unique.values(), unique.keys(), fontsize=7, loc="upper left")
        axis.set_title(f"backtest, product {product_id}", fontsize=9)
    figure.tight_layout()
    return figure


def feature_importance_plot(importance: pd.DataFrame, title: str, top: int = 15) -> Figure:
    """Horizontal bars of the `top` features by share of split gain (feature, gain_share), largest on top."""
    shown = importance.head(top).iloc[::-1]
    figure, axis = plt.subplots(figsize=(7, 0.35 * len(shown) + 1.2))
    axis.barh(shown["feature"].astype(str), shown["gain_share"].to_numpy(), color="tab:blue")
    axis.set_xlabel("share of total split gain")
    axis.set_title(title)
    figure.tight_layout()
    return figure
