"""The landing sensor starts the ingest once per new closed file, never for an open spool file."""

from __future__ import annotations

import os
import time

import dagster as dg

from optimum.settings import Settings
from orchestration.automation import LandingCursor, landing_sensor, new_landing_files


def _touch(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("x\n")
    return path


def test_new_files_are_reported_once_and_open_spools_never(tmp_path):
    later = time.time() + 10  # every file has settled
    _touch(tmp_path / "sales" / "sales_2024-01.csv")
    _touch(tmp_path / "interactions" / ".spool-20240101T000000-1-000001.csv.open")
    _touch(tmp_path / "prediction_log" / "spool-20240101T000000-1-000001.jsonl")
    _touch(tmp_path / "unwatched" / "notes.txt")
    files, cursor = new_landing_files(tmp_path, LandingCursor(), now=later)
    assert files == ["prediction_log/spool-20240101T000000-1-000001.jsonl", "sales/sales_2024-01.csv"]
    assert new_landing_files(tmp_path, cursor, now=later) == ([], cursor)

    open_spool = tmp_path / "interactions" / ".spool-20240101T000000-1-000001.csv.open"
    closed = open_spool.rename(tmp_path / "interactions" / "spool-20240101T000000-1-000001.csv")
    os.utime(closed, (0, 0))  # an old mtime: the rename's ctime still makes it new
    files, cursor = new_landing_files(tmp_path, LandingCursor.parse(cursor.serialize()), now=time.time() + 10)
    assert files == ["interactions/spool-20240101T000000-1-000001.csv"]
    assert new_landing_files(tmp_path, cursor, now=time.time() + 10)[0] == []


def test_a_file_still_settling_waits_for_the_next_tick(tmp_path):
    _touch(tmp_path / "products" / "products.csv")
    assert new_landing_files(tmp_path, LandingCursor(), now=time.time())[0] == []
    assert new_landing_files(tmp_path, LandingCursor(), now=time.time() + 10)[0] == ["products/products.csv"]


def test_sensor_requests_one_run_per_batch_of_new_files(tmp_path):
    settings = Settings(home=tmp_path / "home", landing_dir=tmp_path / "landing")
    _touch(tmp_path / "landing" / "sales" / "a.csv")
    time.sleep(1.1)
    context = dg.build_sensor_context(resources={"settings": settings})
    result = landing_sensor(context)
    assert isinstance(result, dg.RunRequest) and "sales/a.csv" in result.tags["optimum/new_files"]
    again = landing_sensor(dg.build_sensor_context(cursor=context.cursor, resources={"settings": settings}))
    assert isinstance(again, dg.SkipReason)
