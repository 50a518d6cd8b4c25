"""Landing data shaped like real customers' exports, not like the demo world the models were tuned on.

Each profile writes products/, sales/ and interactions/ CSVs under the landing contract and returns the
same rows as frames:

  long_history   a ratings log turned clickstream over 16 years: users active in different eras, items
                 released over time whose popularity fades, a heavy tail, taste by genre; each rating is
                 a view (with its stars), 4+ stars also a cart, 5 stars also a purchase.
  monthly_export sales exported one row per product and month, stamped on the month's first day (4 years).
  weekly_short   a small business's weekly export (stamped on Mondays) with 40 weeks of history.
  intermittent   order lines over 2 years where slow movers (a sale every few weeks, in lumps) dominate.

Deterministic: the same profile, scale and seed give the same files.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from orchestration.landing.contract import INTERACTIONS, PRODUCTS, SALES

PROFILES = ("long_history", "monthly_export", "weekly_short", "intermittent")
# Rows grow with the scale; "small" keeps the tests fast, "demo" is what bench/model_quality.py reports.
SIZES = {"small": 1, "demo": 6}


@dataclass
class ProfileData:
    """What one profile wrote: the landing folder and its rows (contract columns, typed)."""

    landing_dir: Path
    products: pd.DataFrame
    sales: pd.DataFrame
    interactions: pd.DataFrame


def generate_profile(out_dir: Path, profile: str, scale: str = "small", seed: int = 0) -> ProfileData:
    """Write `profile` at `scale` under out_dir/landing (replacing earlier CSVs there) and return its rows."""
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {PROFILES}, got {profile!r}")
    if scale not in SIZES:
        raise ValueError(f"scale must be one of {sorted(SIZES)}, got {scale!r}")
    rng = np.random.default_rng([seed, PROFILES.index(profile)])
    size = SIZES[scale]
    builder = {
        "long_history": _long_history,
        "monthly_export": _monthly_export,
        "weekly_short": _weekly_short,
        "intermittent": _intermittent,
    }[profile]
    products, sales, interactions = builder(rng, size)
    landing = Path(out_dir) / "landing"
    for source, frame in ((PRODUCTS, products), (SALES, sales), (INTERACTIONS, interactions)):
        folder = landing / source.name
        folder.mkdir(parents=True, exist_ok=True)
        for stale in folder.glob("*.csv"):
            stale.unlink()
        frame = frame[list(source.columns)]
        frame.to_csv(folder / f"{source.name}.csv", index=False, lineterminator="\n", float_format="%.2f")
    return ProfileData(landing, products, sales, interactions)


def _catalogue(rng: np.random.Generator, n: int, categories: tuple[str, ...]) -> pd.DataFrame:
    category = rng.integers(len(categories), size=n)
    price = np.round(np.exp(rng.normal(3.0, 0.8, size=n)), 2) + 0.99
    return pd.DataFrame(
        {
            "product_id": [f"P{i:05d}" for i in range(1, n + 1)],
            "name": [f"Part {i} ({categories[c]})" for i, c in enumerate(category, start=1)],
            "category": np.asarray(categories)[category],
            "brand": rng.choice(["Bosch", "Mann", "TRW", "Castrol", "Denso"], size=n),
            "price": price,
            "stock_on_hand": rng.integers(0, 200, size=n),
        }
    )


def _stamped_sales(products: pd.DataFrame, stamps: pd.DatetimeIndex, quantity: np.ndarray, tag: str) -> pd.DataFrame:
    """One row per product and period with a sale, stamped on the period's first day (an aggregated export)."""
    product, period = np.nonzero(quantity)
    return pd.DataFrame(
        {
            "order_id": [
                f"{tag}{stamps[t]:%Y%m%d}-{products['product_id'].iloc[p]}"
                for p, t in zip(product, period, strict=True)
            ],
            "order_date": stamps[period].strftime("%Y-%m-%d"),
            "product_id": products["product_id"].to_numpy()[product],
            "quantity": quantity[product, period].astype(int),
            "unit_price": products["price"].to_numpy()[product],
            "customer_id": "",
        }
    )


def _browsing(rng: np.random.Generator, products: pd.DataFrame, start: str, days: int, n_events: int) -> pd.DataFrame:
    """A thin, taste-free clickstream so exports that carry no web data still load every source."""
    seconds = np.sort(rng.integers(0, days * 86400, size=n_events))
    return pd.DataFrame(
        {
            "event_id": [f"E{i:08d}" for i in range(1, n_events + 1)],
            "user_id": [f"U{u:05d}" for u in rng.integers(1, max(2, n_events // 10), size=n_events)],
            "product_id": rng.choice(products["product_id"].to_numpy(), size=n_events),
            "interaction_type": rng.choice(["view", "cart", "purchase"], size=n_events, p=[0.8, 0.15, 0.05]),
            "rating": np.nan,
            "timestamp": _iso(pd.Timestamp(start), seconds),
            "session_id": "",
        }
    )


def _iso(start: pd.Timestamp, seconds: np.ndarray) -> np.ndarray:
    instants = np.datetime64(start, "s") + seconds.astype("timedelta64[s]")
    return np.char.add(np.datetime_as_string(instants, unit="s"), "Z")


GENRES = ("brakes", "filters", "oil", "lighting", "tyres", "batteries", "wipers", "suspension")


def _long_history(rng: np.random.Generator, size: int) -> tuple[pd.DataFrame, ...]:
    """Ratings over 16 years (2005-2020): every user rates within their own window of 0.5-4 years."""
    n_items, n_users = 250 * size, 400 * size
    start, days = pd.Timestamp("2005-01-01"), 16 * 365
    products = _catalogue(rng, n_items, GENRES)
    genre = pd.Series(products["category"]).map({g: i for i, g in enumerate(GENRES)}).to_numpy()
    release = np.where(rng.random(n_items) < 0.2, 0, rng.integers(0, days - 180, size=n_items))
    appeal = 1.0 / (1.0 + rng.permutation(n_items)) ** 1.1  # heavy tail: a few items take most ratings
    fade = rng.uniform(300, 2000, size=n_items)  # days for an item's pull to fall to 1/e after release

    rows = []
    for user in range(n_users):
        length = int(rng.uniform(180, 4 * 365))
        begin = int(rng.integers(0, days - length))
        middle = begin + length / 2
        taste = rng.dirichlet(np.full(len(GENRES), 0.3))
        weight = appeal * np.exp(-np.clip(middle - release, 0, None) / fade) * taste[genre] * (release < begin + length)
        n = min(int(rng.lognormal(3.2, 0.8)) + 5, int((weight > 0).sum()))
        items = rng.choice(n_items, size=n, replace=False, p=weight / weight.sum())
        day = np.maximum(rng.uniform(begin, begin + length, size=n), release[items] + 1)
        stars = np.clip(np.round(2.5 + 2.5 * taste[genre[items]] / taste.max() + rng.normal(0, 0.8, size=n)), 1, 5)
        rows.append(
            pd.DataFrame({"user": user, "item": items, "seconds": (day * 86400).astype(np.int64), "stars": stars})
        )
    ratings = pd.concat(rows, ignore_index=True)

    # A rating becomes a view with its stars; 4+ stars a cart a minute later; 5 stars a purchase after that.
    steps = [
        ("view", 0, ratings["stars"] >= 1),
        ("cart", 60, ratings["stars"] >= 4),
        ("purchase", 120, ratings["stars"] >= 5),
    ]
    events = pd.concat(
        [
            ratings[keep].assign(interaction_type=kind, seconds=ratings.loc[keep, "seconds"] + offset)
            for kind, offset, keep in steps
        ],
        ignore_index=True,
    ).sort_values(["seconds", "user", "item"], kind="stable", ignore_index=True)
    interactions = pd.DataFrame(
        {
            "event_id": [f"E{i:09d}" for i in range(1, len(events) + 1)],
            "user_id": [f"U{u:06d}" for u in events["user"]],
            "product_id": products["product_id"].to_numpy()[events["item"]],
            "interaction_type": events["interaction_type"],
            "rating": np.where(events["interaction_type"] == "view", events["stars"], np.nan),
            "timestamp": _iso(start, events["seconds"].to_numpy()),
            "session_id": "",
        }
    )
    bought = interactions[interactions["interaction_type"] == "purchase"]
    sales = pd.DataFrame(
        {
            "order_id": [f"O{i:09d}" for i in range(1, len(bought) + 1)],
            "order_date": bought["timestamp"].str[:10].to_numpy(),
            "product_id": bought["product_id"].to_numpy(),
            "quantity": 1,
            "unit_price": products.set_index("product_id").loc[bought["product_id"], "price"].to_numpy(),
            "customer_id": bought["user_id"].to_numpy(),
        }
    )
    return products, sales, interactions


def _seasonal_levels(rng: np.random.Generator, n: int, periods: int, per_year: int, level: float) -> np.ndarray:
    """Expected demand [product, period]: lognormal level, yearly cycle with its own phase, mild trend."""
    base = np.exp(rng.normal(np.log(level), 0.9, size=n))[:, None]
    t = np.arange(periods)[None, :]
    phase = rng.uniform(0, 2 * np.pi, size=n)[:, None]
    amplitude = rng.uniform(0.1, 0.6, size=n)[:, None]
    trend = 1 + rng.normal(0, 0.15, size=n)[:, None] * t / per_year
    return base * (1 + amplitude * np.sin(2 * np.pi * t / per_year + phase)) * np.clip(trend, 0.3, None)


def _monthly_export(rng: np.random.Generator, size: int) -> tuple[pd.DataFrame, ...]:
    """Jan 2019 .. Dec 2022, one row per product and month stamped on the 1st."""
    n = 30 * size
    products = _catalogue(rng, n, GENRES)
    months = pd.date_range("2019-01-01", "2022-12-01", freq="MS")
    quantity = rng.poisson(_seasonal_levels(rng, n, len(months), 12, level=60.0))
    sales = _stamped_sales(products, months, quantity, "M")
    return products, sales, _browsing(rng, products, "2022-01-01", 365, 500 * size)


def _weekly_short(rng: np.random.Generator, size: int) -> tuple[pd.DataFrame, ...]:
    """40 weeks from Monday 2022-03-07, one row per product and week stamped on the Monday; some products
    are listed later."""
    n = 25 * size
    products = _catalogue(rng, n, GENRES)
    weeks = pd.date_range("2022-03-07", periods=40, freq="W-MON")
    quantity = rng.poisson(_seasonal_levels(rng, n, len(weeks), 52, level=12.0))
    listed = rng.integers(0, 20, size=n) * (rng.random(n) < 0.3)
    quantity[np.arange(len(weeks))[None, :] < listed[:, None]] = 0
    sales = _stamped_sales(products, weeks, quantity, "W")
    return products, sales, _browsing(rng, products, "2022-03-07", 280, 300 * size)


def _intermittent(rng: np.random.Generator, size: int) -> tuple[pd.DataFrame, ...]:
    """Order lines over 2021-2022: 85% slow movers (a sale every 2-15 weeks, 1-12 units at once), the rest
    regular sellers with a yearly cycle."""
    n = 40 * size
    products = _catalogue(rng, n, GENRES)
    days = pd.date_range("2021-01-01", "2022-12-31", freq="D")
    slow = rng.random(n) < 0.85
    daily_rate = np.where(slow, 1.0 / (7 * rng.uniform(2, 15, size=n)), 0.0)[:, None] * np.ones((1, len(days)))
    regular = _seasonal_levels(rng, n, len(days), 365, level=3.0)
    has_sale = rng.random((n, len(days))) < np.where(slow[:, None], daily_rate, 1.0)
    lump = rng.geometric(0.35, size=(n, len(days))).clip(max=12)
    quantity = np.where(slow[:, None], has_sale * lump, rng.poisson(regular))
    product, day = np.nonzero(quantity)
    sales = pd.DataFrame(
        {
            "order_id": [f"O{i:08d}" for i in range(1, len(product) + 1)],
            "order_date": days[day].strftime("%Y-%m-%d"),
            "product_id": products["product_id"].to_numpy()[product],
            "quantity": quantity[product, day].astype(int),
            "unit_price": products["price"].to_numpy()[product],
            "customer_id": "",
        }
    ).sort_values(["order_date", "order_id"], ignore_index=True)
    return products, sales, _browsing(rng, products, "2022-01-01", 365, 500 * size)
