"""Where the data's own time ends, when a stray date (a typo'd year that passed the landing window, a test
order dated ahead) sits after it.

Both the forecaster's calendar and the recommender's "age from the log's end" measure time from the data's
last date; one stray row months later would end the history there (every product zero-filled up to it, every
event aged by months). Trailing periods holding under STRAY_SHARE of the median period's rows are stray when
an empty period separates them from the bulk (thin periods right after it are the data thinning out, and
stay); so is a last period standing alone after the longest empty gap in the data with fewer rows than the
median period.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

STRAY_SHARE = 0.1  # also dbt's var stray_share: fct_sales_daily's grid ends the same way (sales_grid_end)


def bulk_last_period(counts: pd.Series) -> int:
    """Position of the last period of the bulk in `counts` (rows per consecutive period, zeros included,
    oldest first); len(counts) - 1 when no trailing period is stray."""
    values = counts.to_numpy()
    with_rows = np.flatnonzero(values > 0)
    if not len(with_rows):
        return len(values) - 1
    typical = float(np.median(values[with_rows]))  # over the periods with rows: a long empty gap must not lower it
    kept = int(np.flatnonzero(values >= STRAY_SHARE * typical)[-1])
    if kept < len(values) - 1 and values[kept + 1] > 0:
        kept = len(values) - 1  # thin periods right after the bulk, no gap: the data thinning out, kept
    gaps = np.diff(with_rows) - 1  # empty periods between consecutive periods with rows
    if len(gaps) and gaps[-1] > max(gaps[:-1].max(initial=0), 0) and values[with_rows[-1]] < typical:
        kept = min(kept, int(with_rows[-2]))
    return kept


def stray_tail(period_starts: pd.Series, periods: pd.DatetimeIndex, unit: str = "period") -> tuple[int, str]:
    """For rows bucketed by `period_starts` on the calendar `periods` (consecutive starts covering them):
    the position of the bulk's last period, and a line saying what the stray tail holds ("" if none)."""
    counts = period_starts.value_counts().reindex(periods, fill_value=0)
    kept = bulk_last_period(counts)
    if kept == len(counts) - 1:
        return kept, ""
    tail = counts.iloc[kept + 1 :]
    typical = float(counts[counts > 0].median())
    return kept, (
        f"{len(tail)} trailing {unit}s after {counts.index[kept].date()}: {int(tail.sum())} rows against a median "
        f"of {typical:g} per {unit} (stray dates)"
    )


def log_end(stamps: pd.Series) -> pd.Timestamp:
    """The latest timestamp of the bulk of `stamps`, bucketed by week (Monday starts)."""
    days = pd.to_datetime(stamps).dt.normalize()
    starts = days - pd.to_timedelta(days.dt.day_of_week, unit="D")
    periods = pd.date_range(starts.min(), starts.max(), freq="W-MON")
    kept, _ = stray_tail(starts, periods)
    return pd.to_datetime(stamps)[starts <= periods[kept]].max()
