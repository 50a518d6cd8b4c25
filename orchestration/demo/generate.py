"""Deterministic demo landing data: a product catalogue, order lines and web interactions.

The data later trains recommenders and demand forecasters, so it carries real structure: power-law
popularity, weekly and per-category yearly seasonality, holidays, per-product trends, promotions with
uplift, stock-outs, intermittent slow movers, users whose car make and category tastes drift, and a
view -> like/cart -> purchase funnel.

A small share of deliberately bad rows is spliced in and listed in planted_bad_rows.json by file and
physical line. Each has exactly one Reason under the validator's check order: field count, encoding,
required fields, types, unknown product, duplicate key (first occurrence wins). Good rows never quote a
field, so every row is one line and a plain split on "," gives its fields.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from orchestration.demo.site import SiteManifest, generate_site
from orchestration.landing.contract import INTERACTION_TYPES, INTERACTIONS, PRODUCTS, SALES, Reason, Source


@dataclass(frozen=True)
class Scale:
    """How big one generated world is; rows grow linearly with every field."""

    n_products: int
    n_users: int
    sales_lines_per_day: float  # expected order lines per day across the catalogue, before seasonality
    events_per_user: float  # expected interactions per user over the whole period
    n_businesses: int  # distinct businesses on the directory site


SCALES = {
    "small": Scale(n_products=40, n_users=150, sales_lines_per_day=25, events_per_user=100, n_businesses=60),
    "demo": Scale(n_products=500, n_users=2000, sales_lines_per_day=250, events_per_user=100, n_businesses=300),
    "large": Scale(n_products=5000, n_users=20000, sales_lines_per_day=2500, events_per_user=100, n_businesses=1500),
}

MAKES = ("Toyota", "VW", "Ford", "BMW", "Honda")
MAKE_SHARES = (0.25, 0.22, 0.2, 0.13, 0.2)
GENERIC = len(MAKES)  # make index of parts that fit every car, and of "no make preference"

WEEKLY_SALES = np.array([1.0, 0.95, 0.95, 1.0, 1.1, 1.35, 0.6])  # Mon..Sun: Saturday DIY peak, Sunday dip
WEEKLY_WEB = np.array([1.0, 1.0, 1.0, 1.0, 0.9, 1.05, 1.25])  # people browse most on Sundays
HOLIDAYS = {(1, 1): 0.1, (7, 4): 0.4, (12, 24): 0.6, (12, 25): 0.05, (12, 26): 0.3, (12, 31): 0.7}
BLACK_FRIDAY_UPLIFT = 2.0
# fmt: off
HOUR_WEIGHTS = np.array([0, 0, 0, 0, 0, 0, 1, 2, 4, 5, 5, 5, 6, 6, 5, 5, 5, 6, 8, 10, 10, 8, 5, 2], float)
# fmt: on
ORDER_SIZE_P = (0.55, 0.25, 0.13, 0.07)  # order lines per order: 1, 2, 3, 4
LOYALTY_SHARE = 0.6  # orders that carry a customer_id
PRICE_DRIFT = 0.03  # yearly list-price inflation; products.csv holds the price on the last day
EVENTS_PER_SESSION = 5.0  # what the funnel below produces on average, used to size sessions
BAD_SHARE = 0.003
MIN_PLANTED = 3  # per reason and source, so even the small scale exercises every check


@dataclass(frozen=True)
class _Category:
    name: str
    share: float  # of the catalogue
    base_price: float
    price_sigma: float  # lognormal spread around base_price
    season_amp: float
    season_peak: int  # day of year of the (first) peak
    season_cycles: int  # 2 = spring and autumn peaks (tyre changes)
    generic_share: float  # share of its products that fit every make
    parts: tuple[str, ...]
    brands: tuple[str, ...]
    qty: tuple[int, ...]  # units on one order line ...
    qty_p: tuple[float, ...]  # ... and their probabilities


# fmt: off
CATEGORIES = (
    _Category("brakes", 0.13, 45, 0.5, 0.05, 60, 1, 0.05,
              ("Front Brake Pads", "Rear Brake Pads", "Brake Disc", "Brake Caliper"),
              ("Brembo", "ATE", "TRW", "Bosch"), (1, 2), (0.7, 0.3)),
    _Category("filters", 0.12, 14, 0.4, 0.2, 130, 1, 0.1,
              ("Oil Filter", "Air Filter", "Cabin Filter", "Fuel Filter"),
              ("Mann-Filter", "Mahle", "Bosch"), (1, 2), (0.8, 0.2)),
    _Category("engine oil", 0.08, 38, 0.3, 0.15, 190, 1, 0.8,
              ("Engine Oil 5W-30 5L", "Engine Oil 5W-40 4L", "Engine Oil 0W-20 5L", "Engine Oil 10W-40 1L"),
              ("Castrol", "Mobil 1", "Shell Helix", "Total Quartz"), (1, 2, 3), (0.7, 0.2, 0.1)),
    _Category("batteries", 0.06, 110, 0.3, 0.55, 15, 1, 0.3,
              ("Battery 60Ah", "Battery 74Ah", "AGM Battery 95Ah", "EFB Start-Stop Battery 70Ah"),
              ("Varta", "Exide", "Bosch", "Yuasa"), (1,), (1.0,)),
    _Category("tyres", 0.12, 95, 0.35, 0.45, 105, 2, 0.6,
              ("Summer Tyre 205/55 R16", "All-Season Tyre 195/65 R15", "Winter Tyre 205/55 R16",
               "Winter Tyre 225/45 R17"),
              ("Michelin", "Continental", "Pirelli", "Bridgestone", "Goodyear"),
              (1, 2, 4), (0.15, 0.35, 0.5)),
    _Category("lighting", 0.1, 12, 0.6, 0.3, 355, 1, 0.6,
              ("H7 Headlight Bulb", "H4 Headlight Bulb", "LED Tail Light Bulb", "Fog Light"),
              ("Philips", "Osram", "Hella"), (1, 2), (0.55, 0.45)),
    _Category("wipers", 0.07, 18, 0.35, 0.5, 300, 1, 0.3,
              ("Wiper Blade 600mm", "Wiper Blade 450mm", "Rear Wiper Blade", "Wiper Blade Set"),
              ("Bosch", "Valeo", "Trico"), (1, 2), (0.5, 0.5)),
    _Category("suspension", 0.09, 70, 0.5, 0.05, 100, 1, 0.05,
              ("Front Shock Absorber", "Rear Shock Absorber", "Coil Spring", "Control Arm"),
              ("Monroe", "KYB", "Bilstein", "Sachs"), (1, 2), (0.6, 0.4)),
    _Category("spark plugs", 0.06, 9, 0.4, 0.15, 20, 1, 0.1,
              ("Iridium Spark Plug", "Platinum Spark Plug", "Glow Plug", "Ignition Coil"),
              ("NGK", "Denso", "Bosch", "Champion"), (1, 4, 6), (0.3, 0.55, 0.15)),
    _Category("accessories", 0.11, 20, 0.8, 0.35, 345, 1, 0.9,
              ("Floor Mat Set", "Phone Holder", "Seat Cover Set", "Dash Cam", "Roof Box"),
              ("Optimum", "Würth", "Hama", "Ring"), (1, 2), (0.85, 0.15)),
    _Category("coolant", 0.06, 15, 0.3, 0.4, 10, 1, 0.9,
              ("Antifreeze Concentrate 5L", "Coolant Ready-Mix 1L", "Screenwash Winter 5L"),
              ("Prestone", "Comma", "Würth"), (1, 2), (0.7, 0.3)),
)
# fmt: on


@dataclass
class GenerationResult:
    """Where everything was written and how many rows of each kind."""

    out_dir: Path
    products_path: Path
    sales_paths: list[Path]
    interactions_paths: list[Path]
    planted_path: Path
    site_dir: Path
    site_manifest_path: Path
    good_rows: dict[str, int]  # source -> rows a correct validator loads
    planted_rows: dict[str, dict[str, int]]  # source -> reason -> planted bad rows
    site_manifest: SiteManifest

    def describe(self) -> str:
        """A human summary for the CLI; the first line stands on its own."""
        planted = {source: sum(reasons.values()) for source, reasons in self.planted_rows.items()}
        site = self.site_manifest
        lines = [
            f"{self.good_rows['products']:,} products, {self.good_rows['sales']:,} order lines, "
            f"{self.good_rows['interactions']:,} interactions, {sum(planted.values()):,} planted bad rows, "
            f"{len(site.detail_urls)} directory listings"
        ]
        for source, reasons in self.planted_rows.items():
            detail = ", ".join(f"{reason} {n}" for reason, n in reasons.items())
            lines.append(f"  {source}: {self.good_rows[source]} good + {planted[source]} bad ({detail})")
        lines.append(
            f"  site: {site.n_listing_pages} listing pages, {site.n_unique_businesses} unique businesses, "
            f"{len(site.duplicate_groups)} duplicated, {len(site.malformed_urls)} malformed, "
            f"{len(site.missing_urls)} dead link"
        )
        return "\n".join(lines)


def generate_demo_data(
    out_dir: Path,
    scale: str = "demo",
    seed: int = 42,
    start: date = date(2023, 1, 1),
    days: int = 730,
    demand_shift: tuple[date, float] | None = None,
) -> GenerationResult:
    """Write landing CSVs, planted_bad_rows.json, the directory site and its manifest under out_dir.

    Same arguments give byte-identical files: all randomness comes from `seed`, never from the clock.
    demand_shift (date, factor): every product's demand is multiplied by factor from that date on, a
    break no model trained before it can foresee (what the forecast accuracy monitor must catch).
    """
    cfg = SCALES[scale]
    out_dir = Path(out_dir)
    rng_products, rng_users, rng_sales, rng_web, rng_plant = (
        np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(5)
    )
    cal = _Calendar.build(start, days)
    catalog = _Catalog.build(rng_products, cfg, cal)
    users = _Users.build(rng_users, cfg, cal)
    sales, sales_quarter = _sales(rng_sales, catalog, users, cal, cfg, demand_shift)
    interactions, web_quarter = _interactions(rng_web, catalog, users, cal, cfg)

    landing = out_dir / "landing"
    for source in (PRODUCTS, SALES, INTERACTIONS):
        (landing / source.name).mkdir(parents=True, exist_ok=True)
        for stale in (landing / source.name).glob(f"{source.name}*.csv"):
            stale.unlink()
    product_files = [_CsvFile.render(landing / "products" / "products.csv", catalog.frame())]
    sales_files = _split(landing / "sales", "sales", sales, sales_quarter)
    web_files = _split(landing / "interactions", "interactions", interactions, web_quarter)

    corruptors = {
        "products": _ProductCorruptor(rng_plant, cfg.n_products + 1),
        "sales": _SalesCorruptor(rng_plant, sales["order_id"].nunique() + 1),
        "interactions": _InteractionCorruptor(rng_plant, len(interactions) + 1),
    }
    planted: list[dict] = []
    good_rows: dict[str, int] = {}
    planted_rows: dict[str, dict[str, int]] = {}
    for source, files in ((PRODUCTS, product_files), (SALES, sales_files), (INTERACTIONS, web_files)):
        corrupt = corruptors[source.name]
        good_rows[source.name] = sum(f.n_rows for f in files)
        per_reason = max(MIN_PLANTED, round(BAD_SHARE * good_rows[source.name] / len(corrupt.reasons)))
        _plant(files, corrupt, per_reason, rng_plant)
        planted_rows[source.name] = {str(r): per_reason for r in corrupt.reasons}
        header = (",".join(source.columns) + "\n").encode()
        for f in files:
            planted += [
                {"source": source.name, "file": f.path.name, "line": line, "reason": str(reason)}
                for line, reason in f.write(header)
            ]
    planted_path = out_dir / "planted_bad_rows.json"
    planted_path.write_text(json.dumps(planted, indent=1) + "\n", encoding="utf-8")

    manifest = generate_site(out_dir / "site", cfg.n_businesses, seed)
    manifest_path = out_dir / "site_manifest.json"
    manifest_path.write_text(json.dumps(asdict(manifest), indent=1) + "\n", encoding="utf-8")
    return GenerationResult(
        out_dir=out_dir,
        products_path=product_files[0].path,
        sales_paths=[f.path for f in sales_files],
        interactions_paths=[f.path for f in web_files],
        planted_path=planted_path,
        site_dir=out_dir / "site",
        site_manifest_path=manifest_path,
        good_rows=good_rows,
        planted_rows=planted_rows,
        site_manifest=manifest,
    )


# --- the simulated world -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Calendar:
    start: date
    days: int
    day_str: np.ndarray  # ISO date of each day
    dow: np.ndarray  # 0 = Monday
    quarter: np.ndarray  # "2023Q1" for each day
    holiday: np.ndarray  # demand multiplier: closures, Black Friday
    season: np.ndarray  # [category, day] demand multiplier

    @classmethod
    def build(cls, start: date, days: int) -> _Calendar:
        dates = np.datetime64(start, "D") + np.arange(days)
        stamps = pd.DatetimeIndex(dates)
        holiday = np.ones(days)
        for (month, day), factor in HOLIDAYS.items():
            holiday[(stamps.month == month) & (stamps.day == day)] = factor
        for year in range(start.year, stamps[-1].year + 1):
            nov1 = date(year, 11, 1)
            black_friday = nov1 + timedelta(days=(3 - nov1.weekday()) % 7 + 22)
            holiday[stamps == pd.Timestamp(black_friday)] = BLACK_FRIDAY_UPLIFT
        doy = stamps.day_of_year.to_numpy()
        season = np.array(
            [
                1 + c.season_amp * np.cos(2 * np.pi * c.season_cycles * (doy - c.season_peak) / 365.25)
                for c in CATEGORIES
            ]
        )
        quarter = np.array([f"{y}Q{q}" for y, q in zip(stamps.year, stamps.quarter, strict=True)])
        return cls(
            start=start,
            days=days,
            day_str=np.datetime_as_string(dates, unit="D"),
            dow=stamps.day_of_week.to_numpy(),
            quarter=quarter,
            holiday=holiday,
            season=season,
        )


@dataclass(frozen=True)
class _Catalog:
    ids: np.ndarray
    names: list[str]
    category: np.ndarray  # index into CATEGORIES
    brand: list[str]
    make: np.ndarray  # index into MAKES, or GENERIC
    price: np.ndarray  # list price on the last day
    stock: np.ndarray
    weight: np.ndarray  # power-law share of demand, sums to 1
    quality: np.ndarray  # latent 1-5 score that drives likes and ratings
    launch: np.ndarray  # first day on sale
    trend: np.ndarray  # [product, day] growth or decline
    discount: np.ndarray  # [product, day] promotional price cut, 0 outside promotions
    uplift: np.ndarray  # [product, day] promotional demand multiplier
    available: np.ndarray  # [product, day] launched and in stock

    @classmethod
    def build(cls, rng: np.random.Generator, cfg: Scale, cal: _Calendar) -> _Catalog:
        n, days = cfg.n_products, cal.days
        # Every category at least once, the rest by catalogue share, interleaved across product ids.
        shares = np.array([c.share for c in CATEGORIES])
        category = rng.permutation(
            np.r_[
                np.arange(len(CATEGORIES)),
                rng.choice(len(CATEGORIES), n - len(CATEGORIES), p=shares / shares.sum()),
            ]
        )[:n]
        generic = rng.random(n) < np.array([c.generic_share for c in CATEGORIES])[category]
        make = np.where(generic, GENERIC, rng.choice(len(MAKES), n, p=MAKE_SHARES))
        names, brands = [], []
        for c, m in zip(category, make, strict=True):
            spec = CATEGORIES[c]
            brand = "" if rng.random() < 0.03 else spec.brands[rng.integers(len(spec.brands))]
            part = spec.parts[rng.integers(len(spec.parts))]
            fits = "universal" if m == GENERIC else f"for {MAKES[m]}"
            names.append(f"{brand} {part} {fits}".strip())
            brands.append(brand)
        base = np.array([c.base_price for c in CATEGORIES])[category]
        sigma = np.array([c.price_sigma for c in CATEGORIES])[category]
        price = np.maximum(np.floor(base * rng.lognormal(0, sigma)), 1) + 0.99
        weight = (rng.permutation(n) + 1.0) ** -1.1  # popularity rank r gets demand ~ r^-1.1
        weight /= weight.sum()

        # Some products launch mid-period (cold start); each drifts up or down by its own yearly rate.
        launch = np.where(rng.random(n) < 0.08, rng.integers(int(0.15 * days), int(0.75 * days) + 1, n), 0)
        t = np.arange(days) / 365.25
        trend = np.exp(np.clip(rng.normal(0.05, 0.3, n), -0.8, 0.8)[:, None] * t)
        # About 1.5 promotions per product-year, 1-3 weeks at 10-30% off; demand rises with elasticity 1.5-3.
        discount = np.zeros((n, days))
        for p in range(n):
            for _ in range(rng.poisson(1.5 * days / 365.25)):
                begin = rng.integers(days)
                discount[p, begin : begin + rng.integers(7, 22)] = rng.choice([0.1, 0.15, 0.2, 0.25, 0.3])
        uplift = (1 - discount) ** -rng.uniform(1.5, 3.0, n)[:, None]

        # Stock-outs: 15% of products run dry once or twice for up to a month, and the ones with no stock
        # today have been out for the last few days.
        available = np.arange(days)[None, :] >= launch[:, None]
        for p in np.flatnonzero(rng.random(n) < 0.15):
            for _ in range(rng.integers(1, 3)):
                begin = rng.integers(days)
                available[p, begin : begin + rng.integers(5, 31)] = False
        mean_daily_units = cfg.sales_lines_per_day * weight * 1.5
        stock = rng.poisson(mean_daily_units * 45 * rng.lognormal(0, 0.5, n)) + 1
        sold_out = rng.permutation(n) < max(1, round(0.07 * n))
        stock[sold_out] = 0
        for p in np.flatnonzero(sold_out):
            available[p, days - rng.integers(3, 21) :] = False
        return cls(
            ids=np.array([f"P{i:05d}" for i in range(1, n + 1)]),
            names=names,
            category=category,
            brand=brands,
            make=make,
            price=price,
            stock=stock,
            weight=weight,
            quality=np.clip(rng.normal(3.9, 0.5, n), 2.0, 4.9),
            launch=launch,
            trend=trend,
            discount=discount,
            uplift=uplift,
            available=available,
        )

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "product_id": self.ids,
                "name": self.names,
                "category": [CATEGORIES[c].name for c in self.category],
                "brand": self.brand,
                "price": self.price,
                "stock_on_hand": self.stock,
            },
            columns=list(PRODUCTS.columns),
        )


@dataclass(frozen=True)
class _Users:
    ids: np.ndarray
    activity: np.ndarray  # relative engagement, mean 1
    join: np.ndarray  # first active day
    make_before: np.ndarray  # car make until switch_day ...
    make_after: np.ndarray  # ... and after (some users buy a different car)
    switch_day: np.ndarray
    taste_start: np.ndarray  # [user, category] affinity on day 0 ...
    taste_end: np.ndarray  # ... drifting linearly to this on the last day

    @classmethod
    def build(cls, rng: np.random.Generator, cfg: Scale, cal: _Calendar) -> _Users:
        n, days, n_cat = cfg.n_users, cal.days, len(CATEGORIES)
        activity = rng.lognormal(0, 0.9, n)
        make = rng.choice(len(MAKES), n, p=MAKE_SHARES)
        switches = rng.random(n) < 0.1
        taste = rng.dirichlet(np.full(n_cat, 0.4), n)
        return cls(
            ids=np.array([f"U{i:05d}" for i in range(1, n + 1)]),
            activity=activity / activity.mean(),
            join=np.where(rng.random(n) < 0.35, rng.integers(0, int(0.9 * days) + 1, n), 0),
            make_before=make,
            make_after=np.where(switches, rng.choice(len(MAKES), n, p=MAKE_SHARES), make),
            switch_day=np.where(switches, rng.integers(0, days, n), days),
            taste_start=taste,
            taste_end=0.5 * taste + 0.5 * rng.dirichlet(np.full(n_cat, 0.4), n),
        )


def _sales(
    rng: np.random.Generator,
    cat: _Catalog,
    users: _Users,
    cal: _Calendar,
    cfg: Scale,
    demand_shift: tuple[date, float] | None = None,
) -> tuple[pd.DataFrame, np.ndarray]:
    """Order lines from a negative-binomial daily demand model, grouped into orders of 1-4 products."""
    shift = np.ones(cal.days)
    if demand_shift is not None:
        shift[cal.day_str >= demand_shift[0].isoformat()] = demand_shift[1]
    rate = (
        shift[None, :]
        * cfg.sales_lines_per_day
        * cat.weight[:, None]
        * WEEKLY_SALES[cal.dow]
        * cal.holiday
        * cal.season[cat.category]
        * cat.trend
        * cat.uplift
        * cat.available
    )
    lines = rng.poisson(rate * rng.gamma(4.0, 0.25, rate.shape))
    product, day = np.nonzero(lines)
    product, day = np.repeat(product, lines[product, day]), np.repeat(day, lines[product, day])
    shuffle = np.lexsort((rng.random(len(day)), day))
    product, day = product[shuffle], day[shuffle]

    quantity = np.ones(len(product), dtype=np.int64)
    for c, spec in enumerate(CATEGORIES):
        here = cat.category[product] == c
        quantity[here] = rng.choice(spec.qty, here.sum(), p=spec.qty_p)

    # Consecutive lines of one day form baskets; a product drawn twice into one basket moves to an order
    # of its own, which keeps (order_id, product_id) unique.
    basket = np.searchsorted(np.cumsum(rng.choice(4, len(day), p=ORDER_SIZE_P) + 1), np.arange(len(day)), "right")
    basket = np.cumsum(np.r_[True, (np.diff(basket) != 0) | (np.diff(day) != 0)])
    repeat = pd.DataFrame({"b": basket, "p": product}).groupby(["b", "p"]).cumcount().to_numpy()
    key = basket * 4 + repeat
    by_order = np.argsort(key, kind="stable")
    product, day, quantity, key = product[by_order], day[by_order], quantity[by_order], key[by_order]
    order = np.cumsum(np.r_[True, np.diff(key) != 0])

    n_orders = order[-1]
    customer = np.where(
        rng.random(n_orders) < LOYALTY_SHARE,
        rng.choice(len(users.ids), n_orders, p=users.activity / users.activity.sum()),
        -1,
    )
    customer_ids = np.r_[users.ids, [""]]
    price = cat.price[product] * (1 - cat.discount[product, day]) * (1 - PRICE_DRIFT * (cal.days - 1 - day) / 365.25)
    frame = pd.DataFrame(
        {
            "order_id": _ids("O", order, 7),
            "order_date": cal.day_str[day],
            "product_id": cat.ids[product],
            "quantity": quantity,
            "unit_price": np.maximum(np.round(price, 2), 0.01),
            "customer_id": customer_ids[customer[order - 1]],
        },
        columns=list(SALES.columns),
    )
    return frame, cal.quarter[day]


def _interactions(
    rng: np.random.Generator, cat: _Catalog, users: _Users, cal: _Calendar, cfg: Scale
) -> tuple[pd.DataFrame, np.ndarray]:
    """Sessions of views in one favourite category, some of which turn into likes, carts and purchases."""
    days, n_cat = cal.days, len(CATEGORIES)
    # Sessions: day from a weekly pattern with growth, never before the user joined; evening-heavy hours.
    n_sessions = rng.poisson(users.activity * cfg.events_per_user / EVENTS_PER_SESSION)
    user = np.repeat(np.arange(len(users.ids)), n_sessions)
    day_cdf = np.cumsum(WEEKLY_WEB[cal.dow] * (1 + 0.3 * np.arange(days) / days))
    day_cdf /= day_cdf[-1]
    floor = np.r_[0.0, day_cdf][users.join[user]]
    s_day = np.minimum(np.searchsorted(day_cdf, floor + rng.random(len(user)) * (1 - floor), "right"), days - 1)
    s_start = (
        s_day * 86400
        + rng.choice(24, len(user), p=HOUR_WEIGHTS / HOUR_WEIGHTS.sum()) * 3600
        + rng.integers(0, 3600, len(user))
    )
    s_make = np.where(s_day < users.switch_day[user], users.make_before[user], users.make_after[user])
    drift = (s_day / max(days - 1, 1))[:, None]
    taste = ((1 - drift) * users.taste_start[user] + drift * users.taste_end[user]) * cal.season[:, s_day].T
    s_cat = _draw_rows(rng, taste)

    # Views: mostly in the session's category, mostly parts that fit the user's car.
    n_views = 1 + rng.poisson(3.2, len(user))
    session = np.repeat(np.arange(len(user)), n_views)
    cat_share = np.bincount(cat.category, cat.weight, n_cat)
    v_cat = np.where(rng.random(len(session)) < 0.8, s_cat[session], rng.choice(n_cat, len(session), p=cat_share))
    v_make = np.where(rng.random(len(session)) < 0.85, s_make[session], GENERIC)
    product = _draw_products(rng, cat, v_cat, v_make)
    gaps = 5 + rng.exponential(40, len(session))
    elapsed = np.cumsum(gaps)
    first = np.cumsum(n_views) - n_views
    v_time = s_start[session] + np.round(elapsed - np.repeat(elapsed[first] - gaps[first], n_views)).astype(np.int64)
    s_end = v_time[first + n_views - 1]
    launched = cat.launch[product] <= s_day[session]
    session, product, v_time = session[launched], product[launched], v_time[launched]

    # Funnel: likes follow quality, carts follow fit and intent, purchases need stock.
    fits = (cat.make[product] == s_make[session]) | (cat.make[product] == GENERIC)
    q = cat.quality[product]
    liked = rng.random(len(product)) < 0.12 * (q / 5) ** 2 * (0.4 + 0.6 * fits)
    carted = rng.random(len(product)) < 0.14 * (0.3 + 0.7 * fits)
    bought = carted & (rng.random(len(product)) < 0.5) & cat.available[product, s_day[session]]
    like_at = v_time + rng.integers(3, 20, len(v_time))
    cart_at = v_time + rng.integers(5, 60, len(v_time))
    buy_at = s_end[session] + rng.integers(30, 150, len(v_time))  # at checkout, after the last view
    like_stars = _stars(rng, q + 0.6, 0.6, share=0.35)
    buy_stars = _stars(rng, q, 0.9, share=0.4)

    # One row per event; `view` points each event back at the view it came from.
    view = np.concatenate([np.arange(len(product)), *(np.flatnonzero(f) for f in (liked, carted, bought))])
    kind = np.repeat(np.arange(4), [len(product), liked.sum(), carted.sum(), bought.sum()])
    when = np.concatenate([v_time, like_at[liked], cart_at[carted], buy_at[bought]])
    rating = np.concatenate([np.zeros(len(product)), like_stars[liked], np.zeros(carted.sum()), buy_stars[bought]])
    keep = np.flatnonzero(when < days * 86400)  # a late session on the last day may run past the period
    order = keep[np.lexsort((kind[keep], when[keep]))]
    view, kind, when, rating = view[order], kind[order], when[order], rating[order]

    session_ids = np.where(rng.random(len(user)) < 0.03, "", _ids("S", np.arange(1, len(user) + 1), 7))
    frame = pd.DataFrame(
        {
            "event_id": _ids("E", np.arange(1, len(kind) + 1), 8),
            "user_id": users.ids[user[session[view]]],
            "product_id": cat.ids[product[view]],
            "interaction_type": np.array(INTERACTION_TYPES)[kind],  # kinds are numbered in contract order
            "rating": pd.array(np.where(rating > 0, rating, np.nan), dtype="Int64"),
            "timestamp": _timestamps(rng, cal.start, when),
            "session_id": session_ids[session[view]],
        },
        columns=list(INTERACTIONS.columns),
    )
    return frame, cal.quarter[when // 86400]


def _stars(rng: np.random.Generator, mean: np.ndarray, sd: float, share: float) -> np.ndarray:
    """1-5 star ratings around mean, left on `share` of the events; 0 means no rating."""
    stars = np.clip(np.round(mean + rng.normal(0, sd, len(mean))), 1, 5)
    return np.where(rng.random(len(mean)) < share, stars, 0)


def _draw_rows(rng: np.random.Generator, weights: np.ndarray) -> np.ndarray:
    """One column index per row, with probability proportional to that row's weights."""
    cum = np.cumsum(weights, axis=1)
    return (cum < rng.random(len(cum))[:, None] * cum[:, -1:]).sum(axis=1)


def _draw_products(rng: np.random.Generator, cat: _Catalog, category: np.ndarray, make: np.ndarray) -> np.ndarray:
    """A product per view: popularity within the category, parts that don't fit the make strongly damped."""
    out = np.empty(len(category), dtype=np.int64)
    key = category * (GENERIC + 1) + make
    for k in np.unique(key):
        c, m = divmod(k, GENERIC + 1)
        members = np.flatnonzero(cat.category == c)
        fit = (m == GENERIC) | (cat.make[members] == m) | (cat.make[members] == GENERIC)
        cum = np.cumsum(cat.weight[members] ** 0.9 * np.where(fit, 1.0, 0.05))
        here = key == k
        out[here] = members[np.searchsorted(cum, rng.random(here.sum()) * cum[-1], "right").clip(max=len(members) - 1)]
    return out


def _ids(prefix: str, numbers: np.ndarray, width: int) -> np.ndarray:
    return (prefix + pd.Series(numbers).astype(str).str.zfill(width)).to_numpy()


def _timestamps(rng: np.random.Generator, start: date, seconds: np.ndarray) -> np.ndarray:
    """ISO 8601 instants, mostly UTC with Z; 2% carry the same instant written with a +02:00 offset."""
    instant = np.datetime64(start, "s") + seconds
    local = rng.random(len(seconds)) < 0.02
    out = np.char.add(np.datetime_as_string(instant, unit="s"), "Z")
    out[local] = np.char.add(np.datetime_as_string(instant[local] + np.timedelta64(7200, "s"), unit="s"), "+02:00")
    return out


# --- writing and planting ------------------------------------------------------------------------------


@dataclass
class _CsvFile:
    """Good rows rendered once as CSV bytes; planted lines are spliced in between them on write."""

    path: Path
    body: bytes
    starts: np.ndarray  # byte offset of each good row, plus len(body)
    plants: list[tuple[int, bytes, Reason]] = field(default_factory=list)  # (before good row i, line, why)

    @classmethod
    def render(cls, path: Path, frame: pd.DataFrame) -> _CsvFile:
        body = frame.to_csv(header=False, index=False, lineterminator="\n", float_format="%.2f").encode()
        if b'"' in body:
            raise ValueError(f"{path.name}: good rows must not need CSV quoting, or lines stop being rows")
        newlines = np.flatnonzero(np.frombuffer(body, dtype=np.uint8) == ord("\n"))
        return cls(path, body, np.r_[0, newlines + 1])

    @property
    def n_rows(self) -> int:
        return len(self.starts) - 1

    def fields(self, row: int) -> list[str]:
        return self.body[self.starts[row] : self.starts[row + 1] - 1].decode().split(",")

    def write(self, header: bytes) -> list[tuple[int, Reason]]:
        """Write header, good rows and planted lines; return (physical line, reason) of each plant."""
        chunks, lines, done = [header], [], 0
        for j, (before, line, reason) in enumerate(sorted(self.plants, key=lambda p: p[0])):
            chunks += [self.body[self.starts[done] : self.starts[before]], line]
            lines.append((before + j + 2, reason))
            done = before
        chunks.append(self.body[self.starts[done] :])
        self.path.write_bytes(b"".join(chunks))
        return lines


def _split(folder: Path, name: str, frame: pd.DataFrame, quarter: np.ndarray) -> list[_CsvFile]:
    """One file per calendar quarter, named so that sorting by name is chronological."""
    return [
        _CsvFile.render(folder / f"{name}_{q}.csv", frame[quarter == q].reset_index(drop=True))
        for q in np.unique(quarter)
    ]


def _plant(files: list[_CsvFile], corrupt: _Corruptor, per_reason: int, rng: np.random.Generator) -> None:
    """Splice per_reason bad lines of each reason into files, spread by file size.

    A bad line is built from a random good row of its file; a duplicate repeats a good row's key later on,
    in the same file or a later one.
    """
    sizes = np.array([f.n_rows for f in files], dtype=float)
    for reason in corrupt.reasons:
        for _ in range(per_reason):
            src = rng.choice(len(files), p=sizes / sizes.sum())
            row = rng.integers(files[src].n_rows)
            line = corrupt(reason, files[src].fields(row))
            dst, lowest = src, 0
            if reason is Reason.DUPLICATE_ID:
                dst = src if rng.random() < 0.5 else rng.integers(src, len(files))
                lowest = row + 1 if dst == src else 0
            files[dst].plants.append((int(rng.integers(lowest, files[dst].n_rows + 1)), line, reason))


class _Corruptor:
    """Turns a good row's fields into one bad line with exactly one reason; other keys get fresh ids."""

    source: Source
    reasons: tuple[Reason, ...]
    id_format: str
    garbled_field: int  # where invalid_encoding puts its latin-1 text

    def __init__(self, rng: np.random.Generator, first_free_id: int) -> None:
        self.rng = rng
        self.next_id = first_free_id

    def __call__(self, reason: Reason, fields: list[str]) -> bytes:
        if reason is not Reason.DUPLICATE_ID:
            fields[0] = self.id_format.format(self.next_id)
            self.next_id += 1
        encoding = "utf-8"
        if reason is Reason.MALFORMED_ROW:
            fields = fields[:-1] if self.rng.random() < 0.5 else [*fields, "1"]
        elif reason is Reason.INVALID_ENCODING:
            encoding = "latin-1"  # the rest of the row is ASCII or latin-1 text, so these bytes never decode
            fields[self.garbled_field] += " Gr\u00f6\u00dfe \u00e9"
        elif reason is Reason.MISSING_REQUIRED_FIELD:
            fields[self.source.columns.index(self.pick(self.source.required))] = ""
        else:
            self.corrupt(reason, fields)
        return (",".join(fields) + "\n").encode(encoding)

    def pick(self, options: tuple[str, ...]) -> str:
        return options[self.rng.integers(len(options))]

    def corrupt(self, reason: Reason, fields: list[str]) -> None:
        """Apply a type, reference or duplicate problem specific to this source."""
        raise NotImplementedError


BAD_PRICES = ("abc", "-5", "-12.99", "free")
UNKNOWN_PRODUCTS = ("P99999", "P99998", "P90210")


class _ProductCorruptor(_Corruptor):
    reasons = (
        Reason.MALFORMED_ROW,
        Reason.INVALID_ENCODING,
        Reason.MISSING_REQUIRED_FIELD,
        Reason.INVALID_PRICE,
        Reason.INVALID_STOCK,
        Reason.DUPLICATE_ID,
    )
    source = PRODUCTS
    id_format = "P{:05d}"
    garbled_field = 1

    def corrupt(self, reason: Reason, fields: list[str]) -> None:
        if reason is Reason.INVALID_PRICE:
            fields[4] = self.pick(BAD_PRICES)
        elif reason is Reason.INVALID_STOCK:
            fields[5] = self.pick(("many", "2.5", "ten"))
        elif reason is Reason.DUPLICATE_ID:
            fields[4] = f"{float(fields[4]) + 5:.2f}"  # re-listed at another price: same key, second loses


class _SalesCorruptor(_Corruptor):
    reasons = (
        Reason.MALFORMED_ROW,
        Reason.INVALID_ENCODING,
        Reason.MISSING_REQUIRED_FIELD,
        Reason.INVALID_DATE,
        Reason.INVALID_QUANTITY,
        Reason.NON_POSITIVE_QUANTITY,
        Reason.INVALID_PRICE,
        Reason.UNKNOWN_PRODUCT_ID,
        Reason.DUPLICATE_ID,
    )
    source = SALES
    id_format = "O{:07d}"
    garbled_field = 5

    def corrupt(self, reason: Reason, fields: list[str]) -> None:
        if reason is Reason.INVALID_DATE:
            fields[1] = self.pick(("2023-13-45", "yesterday", "2023-02-30"))
        elif reason is Reason.INVALID_QUANTITY:
            fields[3] = self.pick(("two", "1.5", "3x"))
        elif reason is Reason.NON_POSITIVE_QUANTITY:
            fields[3] = self.pick(("0", "-3", "-1"))
        elif reason is Reason.INVALID_PRICE:
            fields[4] = self.pick(BAD_PRICES)
        elif reason is Reason.UNKNOWN_PRODUCT_ID:
            fields[2] = self.pick(UNKNOWN_PRODUCTS)


class _InteractionCorruptor(_Corruptor):
    reasons = (
        Reason.MALFORMED_ROW,
        Reason.INVALID_ENCODING,
        Reason.MISSING_REQUIRED_FIELD,
        Reason.INVALID_TIMESTAMP,
        Reason.INVALID_INTERACTION_TYPE,
        Reason.INVALID_RATING,
        Reason.UNKNOWN_PRODUCT_ID,
        Reason.DUPLICATE_ID,
    )
    source = INTERACTIONS
    id_format = "E{:08d}"
    garbled_field = 6

    def corrupt(self, reason: Reason, fields: list[str]) -> None:
        if reason is Reason.INVALID_TIMESTAMP:
            fields[5] = self.pick(("2023-02-30T10:00:00Z", "not a timestamp", "2023-04-01T25:61:00Z"))
        elif reason is Reason.INVALID_INTERACTION_TYPE:
            fields[3] = self.pick(("click", "VIEWED", "View", "Purchase"))
        elif reason is Reason.INVALID_RATING:
            fields[3], fields[4] = self.pick(("like", "purchase")), self.pick(("7", "bad", "0", "-1"))
        elif reason is Reason.UNKNOWN_PRODUCT_ID:
            fields[2] = self.pick(UNKNOWN_PRODUCTS)
