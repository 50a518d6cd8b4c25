"""Daily mart rows -> regular per-product period series, and the period calendar the models share.

Everything is relative to the data's own dates, never the wall clock: the last complete period of the
data decides where history ends and where the forecast horizon starts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from ml.dates import stray_tail

Freq = Literal["D", "W", "M"]
# How to read the sales dates: "auto" decides from the data; "aggregated" trusts every period to be complete
# (an export with one row per product and period); "order_lines" drops partial leading/trailing periods.
CalendarRule = Literal["auto", "aggregated", "order_lines"]
CALENDAR_RULES: tuple[str, ...] = ("auto", "aggregated", "order_lines")

# pandas frequency of consecutive period starts: days, weeks starting Monday, month starts.
PERIOD_FREQ = {"D": "D", "W": "W-MON", "M": "MS"}
# The seasonal cycle a series of this grain repeats on: a week of days, a year of weeks or months.
SEASON_LENGTH = {"D": 7, "W": 52, "M": 12}
PERIOD_NAME = {"D": "day", "W": "week", "M": "month"}

DATETIME = "datetime64[ns]"  # one resolution everywhere, so merges on period_start never mix units


def check_freq(freq: str) -> None:
    """Fail early and clearly instead of deep inside pandas on a typo such as "w" or "MS"."""
    if freq not in PERIOD_FREQ:
        raise ValueError(f"freq must be one of {sorted(PERIOD_FREQ)}, got {freq!r}")


def period_start(dates: pd.Series, freq: Freq) -> pd.Series:
    """Start of the period each date falls in (Monday for weeks, the 1st for months)."""
    check_freq(freq)
    dates = pd.to_datetime(dates).dt.normalize()
    if freq == "D":
        return dates.astype(DATETIME)
    period = "W-SUN" if freq == "W" else "M"  # a week ending Sunday starts on Monday
    return dates.dt.to_period(period).dt.start_time.astype(DATETIME)


def next_periods(after: pd.Timestamp, horizon: int, freq: Freq) -> pd.DatetimeIndex:
    """The `horizon` period starts that follow the period starting at `after`."""
    return pd.date_range(after, periods=horizon + 1, freq=PERIOD_FREQ[freq])[1:].astype(DATETIME)


def complete_period_bounds(first_date: pd.Timestamp, last_date: pd.Timestamp, freq: Freq) -> tuple:
    """First and last period starts whose every day lies inside [first_date, last_date].

    A period the data only partly covers would look like a demand drop: a trailing week cut on Wednesday
    holds three days of sales, and a leading one that begins mid-week misses the days before the data.
    """
    first_date, last_date = pd.Timestamp(first_date).normalize(), pd.Timestamp(last_date).normalize()
    first_start = period_start(pd.Series([first_date]), freq).iloc[0]
    if first_start < first_date:
        first_start = next_periods(first_start, 1, freq)[0]
    last_start = period_start(pd.Series([last_date]), freq).iloc[0]
    if next_periods(last_start, 1, freq)[0] - pd.Timedelta(days=1) > last_date:
        last_start = pd.date_range(end=last_start, periods=2, freq=PERIOD_FREQ[freq])[0]
    return first_start, last_start


@dataclass(frozen=True)
class CalendarDecision:
    """Which periods the history spans and why: shown in the forecaster's metadata, used by every step.

    rule: "aggregated" (every period kept) or "order_lines" (partial leading/trailing periods dropped);
    forced: the rule came from the caller, not from the data; dropped: one line per period left out, with
    the reason; note: a warning about the data's own grain (e.g. monthly stamps forecast weekly), or "".
    """

    rule: str
    reason: str
    forced: bool
    first_period: pd.Timestamp
    last_period: pd.Timestamp
    dropped: tuple[str, ...]
    note: str = ""

    def as_metadata(self) -> dict[str, str]:
        return {
            "calendar_rule": self.rule + (" (forced)" if self.forced else " (detected)"),
            "calendar_reason": self.reason,
            "first_period": str(self.first_period.date()),
            "last_period": str(self.last_period.date()),
            "dropped_periods": "; ".join(self.dropped) or "none",
            **({"calendar_note": self.note} if self.note else {}),
        }


def _bulk_end(dates: pd.Series, sold: np.ndarray, freq: Freq) -> tuple[pd.Timestamp, str]:
    """The last sale date of the bulk of the data (ml/dates.py), and why later dates were left out ("" if
    none were): one stray sale months after the data would otherwise end the history there."""
    sold_dates = dates[sold]
    if sold_dates.empty:
        return dates.max(), ""
    starts = period_start(sold_dates, freq)
    periods = pd.date_range(starts.min(), starts.max(), freq=PERIOD_FREQ[freq])
    kept, stray = stray_tail(starts, periods, PERIOD_NAME[freq])
    if not stray:
        return dates.max(), ""
    return sold_dates[starts <= periods[kept]].max(), f"{stray}; the data runs to {dates.max().date()}"


def _stamped_on_period_starts(dates: pd.Series, freq: Freq) -> bool:
    return bool((period_start(dates, freq) == pd.to_datetime(dates).dt.normalize()).all())


def decide_calendar(daily: pd.DataFrame, freq: Freq = "W", rule: CalendarRule = "auto") -> CalendarDecision:
    """First and last period of the history, keeping or dropping the edge periods by `rule`.

    "auto" reads the input as already aggregated when every date with a sale is a period start (Monday,
    the 1st, or any day for "D"), on at least two dates: an export with one row per product and period
    (the mart holds one row per product and day, so one stamp per period means one row per period). Order
    lines all landing on period starts by chance is (1/7)^dates for weeks, so two dates suffice in practice.
    Such an export's last period is complete although the data "ends" on its first day; order lines keep
    today's rule: a period the data only partly covers is dropped (it would look like a demand drop).
    Under either rule, a stray trailing date (ml/dates.py) ends nothing: the
    history ends with the bulk of the data, and the decision lists what was left out.
    """
    check_freq(freq)
    if rule not in CALENDAR_RULES:
        raise ValueError(f"calendar rule must be one of {CALENDAR_RULES}, got {rule!r}")
    dates = pd.to_datetime(daily["sales_date"]).dt.normalize()
    quantity = daily["quantity"].to_numpy(dtype=float)
    bulk_end, stray = _bulk_end(dates, quantity > 0, freq)
    sold = pd.Series(dates[(quantity > 0) & (dates <= bulk_end)].unique())
    stamped = len(sold) >= 2 and _stamped_on_period_starts(sold, freq)
    note = ""
    if freq != "M" and len(sold) >= 2 and not stamped and _stamped_on_period_starts(sold, "M"):
        note = (
            f"every sale is stamped on a month's first day: the data is monthly, and forecasting it by "
            f"{PERIOD_NAME[freq]} puts each month into one {PERIOD_NAME[freq]}; set OPTIMUM_FORECAST_FREQ=M"
        )
    if rule == "auto":
        rule = "aggregated" if stamped else "order_lines"
        if stamped:
            reason = f"every sale date ({len(sold)} distinct) is a {PERIOD_NAME[freq]} start: an aggregated export"
        else:
            reason = f"sale dates fall inside {PERIOD_NAME[freq]}s: order lines, partial edge periods dropped"
        forced = False
    else:
        reason, forced = f"forced by the calendar setting ({rule})", True
    first_date, last_date = dates.min(), bulk_end
    strays = (stray,) if stray else ()
    if rule == "aggregated":
        first = period_start(pd.Series([first_date]), freq).iloc[0]
        last = period_start(pd.Series([last_date]), freq).iloc[0]
        return CalendarDecision(rule, reason, forced, first, last, strays, note)
    first, last = complete_period_bounds(first_date, last_date, freq)
    dropped = []
    starts = period_start(pd.Series([first_date, last_date]), freq)
    for start, edge, end_day in ((starts.iloc[0], "leading", first_date), (starts.iloc[1], "trailing", last_date)):
        if start < first or start > last:
            in_period = (period_start(dates, freq) == start).to_numpy()
            if edge == "leading":
                covered = (next_periods(start, 1, freq)[0] - first_date).days
            else:
                covered = (end_day - start).days + 1
            length = (next_periods(start, 1, freq)[0] - start).days
            dropped.append(
                f"{edge} {PERIOD_NAME[freq]} {start.date()}: the data covers {covered} of its {length} days "
                f"({quantity[in_period].sum():g} units left out)"
            )
    return CalendarDecision(rule, reason, forced, first, last, tuple(dict.fromkeys(dropped)) + strays, note)


def aggregate_sales(daily: pd.DataFrame, freq: Freq = "W", calendar: CalendarDecision | None = None) -> pd.DataFrame:
    """Sum fct_sales_daily rows to (product_id, period_start, quantity, avg_price) at the given grain.

    The periods kept are `calendar`'s (default: decide_calendar(daily, freq)): for order lines only complete
    periods, so a trailing period the data does not reach the end of is dropped and the horizon starts
    right after the last complete period (likewise a leading period the data starts inside); for an
    aggregated export every period. Each product runs zero-filled from the period of its first sale (at
    the earliest the first period kept) to the last period kept. avg_price is revenue / quantity, NaN when
    nothing sold. Products whose only sales fall in a dropped trailing period have no row here yet
    (forecast_demand gives them a run rate).
    """
    check_freq(freq)
    calendar = calendar or decide_calendar(daily, freq)
    dates = pd.to_datetime(daily["sales_date"])
    first, last = calendar.first_period, calendar.last_period
    frame = pd.DataFrame(
        {
            "product_id": daily["product_id"].to_numpy(),
            "period_start": period_start(dates, freq).to_numpy(),
            "quantity": daily["quantity"].to_numpy(dtype=float),
            "revenue": daily["revenue"].astype(float).to_numpy(),  # the mart's exact decimals -> float
        }
    )
    sold = frame[frame["quantity"] > 0]
    first_sale = sold.groupby("product_id")["period_start"].min().clip(lower=first)
    first_sale = first_sale[first_sale <= last]
    sold = sold[(sold["period_start"] >= first) & (sold["period_start"] <= last)]
    sums = sold.groupby(["product_id", "period_start"], sort=False)[["quantity", "revenue"]].sum()

    # Zero-fill a regular grid from each product's first period with a sale (or the first complete period,
    # for products already selling when the data starts) to the last complete period.
    periods = pd.date_range(first, last, freq=PERIOD_FREQ[freq]).astype(DATETIME)
    first_index = periods.get_indexer(first_sale.to_numpy())
    counts = len(periods) - first_index
    position = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts - first_index, counts)
    grid = pd.MultiIndex.from_arrays(
        [np.repeat(first_sale.index.to_numpy(), counts), periods[position]], names=["product_id", "period_start"]
    )
    out = sums.reindex(grid, fill_value=0.0).reset_index()
    out["avg_price"] = (out["revenue"] / out["quantity"]).where(out["quantity"] > 0)
    out["period_start"] = out["period_start"].astype(DATETIME)
    return out.drop(columns="revenue").sort_values(["product_id", "period_start"], ignore_index=True)


def to_wide(history: pd.DataFrame, column: str = "quantity") -> tuple[pd.Index, pd.DatetimeIndex, np.ndarray]:
    """(product ids, period starts, matrix [product, period]) with NaN where a product has no row.

    The local models and LightGBM's feature builder work on this matrix so that every series shares one
    calendar; histories from aggregate_sales are right-aligned (all end on the last complete period).
    """
    ids = pd.Index(np.sort(history["product_id"].unique()))
    periods = pd.DatetimeIndex(np.sort(history["period_start"].unique())).astype(DATETIME)
    wide = np.full((len(ids), len(periods)), np.nan)
    wide[ids.get_indexer(history["product_id"]), periods.get_indexer(history["period_start"])] = history[
        column
    ].to_numpy(dtype=float)
    return ids, periods, wide


def quantity_matrix(history: pd.DataFrame) -> tuple[pd.Index, pd.DatetimeIndex, np.ndarray]:
    """to_wide of quantity where a missing row after a product's first period counts as no sale (0)."""
    ids, periods, wide = to_wide(history, "quantity")
    started = np.cumsum(~np.isnan(wide), axis=1) > 0
    return ids, periods, np.where(started & np.isnan(wide), 0.0, wide)
