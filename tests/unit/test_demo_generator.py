"""The demo generator: deterministic, contract-shaped files, planted bad rows exactly where it says, and
demand/interaction structure strong enough to learn from."""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import asdict
from datetime import date, datetime
from pathlib import Path

import pandas as pd
import pytest

from orchestration.demo.generate import SCALES, generate_demo_data
from orchestration.landing.contract import INTERACTION_TYPES, INTERACTIONS, PRODUCTS, SALES, Reason, Source

PLANTED_KINDS = {
    "products": {Reason.DUPLICATE_ID, Reason.INVALID_PRICE, Reason.MISSING_REQUIRED_FIELD},
    "sales": {
        Reason.INVALID_DATE,
        Reason.INVALID_QUANTITY,
        Reason.NON_POSITIVE_QUANTITY,
        Reason.INVALID_PRICE,
        Reason.UNKNOWN_PRODUCT_ID,
        Reason.DUPLICATE_ID,
        Reason.MISSING_REQUIRED_FIELD,
        Reason.INVALID_ENCODING,
        Reason.MALFORMED_ROW,
    },
    "interactions": {
        Reason.INVALID_TIMESTAMP,
        Reason.INVALID_INTERACTION_TYPE,
        Reason.UNKNOWN_PRODUCT_ID,
        Reason.DUPLICATE_ID,
        Reason.INVALID_RATING,
        Reason.INVALID_ENCODING,
        Reason.MISSING_REQUIRED_FIELD,
    },
}
NUMBER = re.compile(r"\d+(\.\d+)?")
INTEGER = re.compile(r"-?\d+")
ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
ISO_INSTANT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(Z|[+-]\d{2}:\d{2})")


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """Two full years at small scale, so yearly seasonality is visible."""
    out = tmp_path_factory.mktemp("demo")
    return generate_demo_data(out, scale="small", seed=11, days=730)


@pytest.fixture(scope="module")
def checked(small):
    """The reference validator's verdict on the small world: bad lines and good rows per source."""
    return _validate(small.out_dir / "landing")


def _type_problem(source: Source, row: dict[str, str]) -> Reason | None:
    """The type check of a row whose field count, encoding and required fields are fine."""
    if source is PRODUCTS:
        if not NUMBER.fullmatch(row["price"]):
            return Reason.INVALID_PRICE
        if row["stock_on_hand"] and not row["stock_on_hand"].isdigit():
            return Reason.INVALID_STOCK
    elif source is SALES:
        try:
            assert ISO_DATE.fullmatch(row["order_date"])
            date.fromisoformat(row["order_date"])
        except (AssertionError, ValueError):
            return Reason.INVALID_DATE
        if not INTEGER.fullmatch(row["quantity"]):
            return Reason.INVALID_QUANTITY
        if int(row["quantity"]) <= 0:
            return Reason.NON_POSITIVE_QUANTITY
        if not NUMBER.fullmatch(row["unit_price"]):
            return Reason.INVALID_PRICE
    else:
        try:
            assert ISO_INSTANT.fullmatch(row["timestamp"])
            datetime.fromisoformat(row["timestamp"])
        except (AssertionError, ValueError):
            return Reason.INVALID_TIMESTAMP
        if row["interaction_type"] not in INTERACTION_TYPES:
            return Reason.INVALID_INTERACTION_TYPE
        if row["rating"] and not (NUMBER.fullmatch(row["rating"]) and 1 <= float(row["rating"]) <= 5):
            return Reason.INVALID_RATING
    return None


def _validate(landing: Path) -> tuple[set[tuple[str, str, int, str]], dict[str, pd.DataFrame]]:
    """Check every line in the documented order: field count, encoding, required, types, product, key."""
    bad: set[tuple[str, str, int, str]] = set()
    good: dict[str, pd.DataFrame] = {}
    product_ids: set[str] = set()
    for source in (PRODUCTS, SALES, INTERACTIONS):
        seen: set[tuple[str, ...]] = set()
        rows = []
        for path in sorted((landing / source.name).glob("*.csv")):
            lines = path.read_bytes().split(b"\n")
            assert lines[0] == ",".join(source.columns).encode() and lines[-1] == b""
            for number, raw in enumerate(lines[1:-1], start=2):
                reason = None
                if raw.count(b",") != len(source.columns) - 1:
                    reason = Reason.MALFORMED_ROW
                else:
                    try:
                        row = dict(zip(source.columns, raw.decode("utf-8").split(","), strict=True))
                    except UnicodeDecodeError:
                        reason = Reason.INVALID_ENCODING
                if reason is None and any(row[c] == "" for c in source.required):
                    reason = Reason.MISSING_REQUIRED_FIELD
                reason = reason or _type_problem(source, row)
                if reason is None and source is not PRODUCTS and row["product_id"] not in product_ids:
                    reason = Reason.UNKNOWN_PRODUCT_ID
                key = tuple(row[c] for c in source.key) if reason is None else None
                if key in seen:
                    reason = Reason.DUPLICATE_ID
                if reason:
                    bad.add((source.name, path.name, number, str(reason)))
                else:
                    seen.add(key)
                    rows.append(row)
        good[source.name] = pd.DataFrame(rows, columns=list(source.columns))
        product_ids = set(good["products"]["product_id"])
    return bad, good


def _planted(result) -> set[tuple[str, str, int, str]]:
    entries = json.loads(result.planted_path.read_text())
    return {(e["source"], e["file"], e["line"], e["reason"]) for e in entries}


def _all_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_gives_identical_bytes_and_another_seed_does_not(tmp_path):
    runs = [
        generate_demo_data(tmp_path / name, scale="small", seed=seed, days=120)
        for name, seed in (("a", 5), ("b", 5), ("c", 6))
    ]
    a, b, c = (_all_bytes(r.out_dir) for r in runs)
    assert a == b
    assert [k for k in a if k.startswith("landing")] == [k for k in c if k.startswith("landing")]
    assert a["landing/sales/sales_2023Q1.csv"] != c["landing/sales/sales_2023Q1.csv"]
    assert a["landing/interactions/interactions_2023Q2.csv"] != c["landing/interactions/interactions_2023Q2.csv"]


def test_layout_is_one_products_file_and_quarterly_sales_and_interactions(small):
    landing = small.out_dir / "landing"
    assert small.products_path == landing / "products" / "products.csv"
    quarters = [f"{y}Q{q}" for y in (2023, 2024) for q in (1, 2, 3, 4)]
    assert [p.name for p in small.sales_paths] == [f"sales_{q}.csv" for q in quarters]
    assert [p.name for p in small.interactions_paths] == [f"interactions_{q}.csv" for q in quarters]
    assert sorted(p.name for p in (landing / "sales").iterdir()) == [p.name for p in small.sales_paths]
    assert json.loads(small.site_manifest_path.read_text()) == asdict(small.site_manifest)


def test_reference_validator_finds_exactly_the_planted_rows(small, checked):
    bad, good = checked
    assert bad == _planted(small)
    assert {name: len(frame) for name, frame in good.items()} == small.good_rows
    counts = Counter((source, reason) for source, _, _, reason in bad)
    assert {s: {r: counts[(s, r)] for r in kinds} for s, kinds in small.planted_rows.items()} == small.planted_rows


def test_small_scale_plants_at_least_three_of_every_kind(small):
    counts = Counter((e[0], e[3]) for e in _planted(small))
    for source, kinds in PLANTED_KINDS.items():
        for reason in kinds:
            assert counts[(source, str(reason))] >= 3, (source, reason)
    planted_sales = sum(n for (source, _), n in counts.items() if source == "sales")
    assert 0.001 < planted_sales / small.good_rows["sales"] < 0.01


def test_planted_lines_look_bad_in_the_claimed_way(small):
    """Spot checks that need no check order: each planted line visibly has the defect it is listed with."""
    sources = {s.name: s for s in (PRODUCTS, SALES, INTERACTIONS)}
    for name, file, line, reason in _planted(small):
        source = sources[name]
        raw = (small.out_dir / "landing" / name / file).read_bytes().split(b"\n")[line - 1]
        if reason == Reason.INVALID_ENCODING:
            with pytest.raises(UnicodeDecodeError):
                raw.decode("utf-8")
            continue
        fields = raw.decode("utf-8").split(",")
        if reason == Reason.MALFORMED_ROW:
            assert len(fields) != len(source.columns)
            continue
        row = dict(zip(source.columns, fields, strict=True))
        if reason == Reason.MISSING_REQUIRED_FIELD:
            assert any(row[c] == "" for c in source.required)
        elif reason == Reason.UNKNOWN_PRODUCT_ID:
            assert row["product_id"].startswith("P9")
        elif reason == Reason.INVALID_INTERACTION_TYPE:
            assert row["interaction_type"] not in INTERACTION_TYPES
        elif reason == Reason.NON_POSITIVE_QUANTITY:
            assert int(row["quantity"]) <= 0


def test_good_rows_use_contract_formats(checked):
    _, good = checked
    sales, web, products = good["sales"], good["interactions"], good["products"]
    assert products["product_id"].str.fullmatch(r"P\d{5}").all()
    assert sales["order_id"].str.fullmatch(r"O\d{7}").all()
    assert web["event_id"].str.fullmatch(r"E\d{8}").all()
    assert sales["customer_id"].str.fullmatch(r"(U\d{5})?").all()
    assert (sales["customer_id"] == "").mean() == pytest.approx(0.4, abs=0.1)
    assert web["rating"][web["interaction_type"].isin(["view", "cart"])].eq("").all()
    assert set(web["rating"]) == {"", "1", "2", "3", "4", "5"}
    offsets = web["timestamp"].str.endswith("+02:00")
    assert 0.005 < offsets.mean() < 0.05 and web["timestamp"][~offsets].str.endswith("Z").all()
    assert (products["stock_on_hand"] == "0").any()


def _daily_units(checked) -> pd.DataFrame:
    _, good = checked
    sales = good["sales"].merge(good["products"], on="product_id")
    sales["date"] = pd.to_datetime(sales["order_date"])
    sales["units"] = sales["quantity"].astype(int)
    return sales


def test_weekly_seasonality_and_holidays(checked):
    sales = _daily_units(checked)
    daily = sales.groupby("date")["units"].sum()
    by_weekday = daily.groupby(daily.index.day_of_week).mean()
    assert by_weekday[5] > 1.5 * by_weekday[6]  # Saturday peak, Sunday dip
    christmas = daily[(daily.index.month == 12) & (daily.index.day == 25)]
    assert (christmas.reindex(pd.to_datetime(["2023-12-25", "2024-12-25"]), fill_value=0) < 0.3 * daily.median()).all()


def test_yearly_seasonality_per_category(checked):
    sales = _daily_units(checked)
    month = sales["date"].dt.month

    def units(category: str, months: list[int]) -> int:
        return sales["units"][(sales["category"] == category) & month.isin(months)].sum()

    assert units("batteries", [12, 1, 2]) > 1.5 * units("batteries", [6, 7, 8])
    assert units("wipers", [9, 10, 11]) > 1.5 * units("wipers", [3, 4, 5])


def test_popularity_is_skewed_and_the_tail_is_intermittent(checked):
    sales = _daily_units(checked)
    units = sales.groupby("product_id")["units"].sum().sort_values(ascending=False)
    assert units.head(len(units) // 10).sum() > 0.35 * units.sum()
    selling_days = sales.groupby("product_id")["date"].nunique()
    assert (selling_days < 0.3 * 730).mean() > 0.4


def test_prices_follow_the_catalogue_with_promotions(checked):
    sales = _daily_units(checked)
    ratio = sales["unit_price"].astype(float) / sales["price"].astype(float)
    assert ratio.between(0.65, 1.0).all()
    assert ratio.median() > 0.95 and (ratio < 0.9).mean() > 0.02


def test_orders_have_one_to_four_distinct_products(checked):
    _, good = checked
    lines = good["sales"].groupby("order_id")["product_id"].agg(["size", "nunique"])
    assert (lines["size"] == lines["nunique"]).all()
    assert set(lines["size"]) == {1, 2, 3, 4}
    assert good["sales"].groupby("order_id")["order_date"].nunique().eq(1).all()


def test_interaction_funnel_narrows(checked):
    _, good = checked
    counts = good["interactions"]["interaction_type"].value_counts()
    assert counts["view"] > 3 * counts["cart"] and counts["cart"] > counts["purchase"] > 0 and counts["like"] > 0
    per_user = good["interactions"].groupby("user_id").size()
    assert per_user.mean() == pytest.approx(SCALES["small"].events_per_user, rel=0.3)


def test_users_mostly_view_parts_for_their_own_car(checked):
    """The recommender signal: a user's make-specific views concentrate on one make, far beyond chance."""
    _, good = checked
    views = good["interactions"].query("interaction_type == 'view'").merge(good["products"], on="product_id")
    views["make"] = views["name"].str.extract(r"for (\w+)$", expand=False)
    views = views.dropna(subset=["make"])
    active = views.groupby("user_id").size() >= 20

    def median_top_make_share(frame: pd.DataFrame) -> float:
        share = frame.groupby("user_id")["make"].agg(lambda m: m.value_counts(normalize=True).iloc[0])
        return share[active].median()

    shuffled = views.assign(make=views["make"].sample(frac=1, random_state=0).to_numpy())
    assert median_top_make_share(views) > median_top_make_share(shuffled) + 0.15
