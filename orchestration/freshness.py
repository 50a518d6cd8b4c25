"""Freshness policies: how stale a raw source or mart may get before Dagster flags it (the daily ingest and
the landing sensor normally refresh both within hours)."""

from datetime import timedelta

import dagster as dg

DAILY = dg.FreshnessPolicy.time_window(fail_window=timedelta(hours=48), warn_window=timedelta(hours=26))
