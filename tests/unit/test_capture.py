"""The spool (rotation, group commit, orphans) and the event validation behind POST /interactions."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import threading
from datetime import datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestration.landing.contract import INTERACTION_TYPES, INTERACTIONS
from serving.capture import (
    COLUMNS,
    MAX_ID_LENGTH,
    OPTIONAL_ID,
    REQUIRED_ID,
    TIMESTAMP,
    InteractionCapture,
    validate_event,
)
from serving.capture import INTERACTION_TYPES as SERVED_TYPES
from serving.spool import OPEN_PREFIX, Spool, close_orphans

RECEIVED = datetime(2024, 5, 1, 12, 0, 0)


def test_capture_speaks_the_landing_contract():
    assert INTERACTIONS.columns == COLUMNS
    assert SERVED_TYPES == INTERACTION_TYPES


def test_concurrent_appends_rotate_into_closed_files_with_every_record(tmp_path):
    spool = Spool(tmp_path, "csv", header=b"n\n", max_bytes=2_000, max_seconds=3600)
    threads = [
        threading.Thread(target=lambda t=t: [spool.append(f"{t}-{i}\n".encode()) for i in range(200)]) for t in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert list(tmp_path.glob(f"{OPEN_PREFIX}*")), "the last file stays open until closed"
    spool.close()
    files = sorted(tmp_path.iterdir())
    assert len(files) >= 4 and not any(f.name.startswith(".") for f in files)
    rows = [line for f in files for line in f.read_text().splitlines()[1:]]
    assert sorted(rows) == sorted(f"{t}-{i}" for t in range(8) for i in range(200))
    assert all(f.read_text().startswith("n\n") for f in files)


def test_orphans_of_dead_writers_are_closed_and_live_ones_left_alone(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    (tmp_path / f"{OPEN_PREFIX}20240101T000000-{dead_pid}-000001.csv.open").write_text("h\n1\n")
    (tmp_path / f"{OPEN_PREFIX}20240101T000000-{dead_pid}-000002.csv.open").write_text("h\n")  # header only
    live = tmp_path / f"{OPEN_PREFIX}20240101T000000-{os.getpid()}-000003.csv.open"
    live.write_text("h\n2\n")
    closed = close_orphans(tmp_path)
    assert [p.name for p in closed] == [f"spool-20240101T000000-{dead_pid}-000001.csv"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([closed[0].name, live.name])


def test_event_validation_gives_every_reason():
    row, reasons = validate_event(
        {"user_id": "u1", "product_id": "P1", "interaction_type": "cart", "timestamp": "2024-05-01T10:00:00+02:00"},
        RECEIVED,
    )
    assert reasons == [] and row["timestamp"] == "2024-05-01T08:00:00" and len(row["event_id"]) == 32
    row, _ = validate_event({"user_id": "u1", "product_id": "P1", "interaction_type": "view"}, RECEIVED)
    assert row["timestamp"] == "2024-05-01T12:00:00"  # absent: the time of receipt
    _, reasons = validate_event(
        {
            "user_id": 5,
            "product_id": " ",
            "interaction_type": "stare",
            "rating": True,
            "timestamp": "yesterday",
            "colour": "red",
        },
        RECEIVED,
    )
    assert len(reasons) == 6
    assert validate_event(["not", "an", "object"], RECEIVED)[1] == ["an event must be a JSON object, got list"]
    assert validate_event(
        {"user_id": "u", "product_id": "p", "interaction_type": "view", "timestamp": "0001-01-01T00:00:00"}, RECEIVED
    )[1]


def test_batches_are_rejected_whole_and_repeats_accepted_once(tmp_path):
    capture = InteractionCapture(tmp_path, max_batch=3, max_bytes=1 << 20, max_seconds=3600)
    event = {"event_id": "e1", "user_id": "u", "product_id": "p", "interaction_type": "view"}
    rows, errors = capture.parse({"events": [event, event | {"interaction_type": "?"}]}, RECEIVED)
    assert [e["index"] for e in errors] == [1]
    _, errors = capture.parse({"events": [event] * 4}, RECEIVED)
    assert "at most 3" in errors[0]["reasons"][0]
    rows, _ = capture.parse({"events": [event, event, event | {"event_id": "e2"}]}, RECEIVED)
    fresh = capture.new_rows(rows)
    assert [r["event_id"] for r in fresh] == ["e1", "e2"]
    capture.remember(fresh)
    assert capture.new_rows(rows) == []
    capture.spool.append(b"x\n")
    capture.spool.close()
    (closed,) = tmp_path.joinpath("interactions").iterdir()
    assert next(csv.reader(closed.open())) == list(COLUMNS)


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    user=st.from_regex(REQUIRED_ID).filter(lambda s: len(s) <= MAX_ID_LENGTH),
    session=st.from_regex(OPTIONAL_ID).filter(lambda s: len(s) <= MAX_ID_LENGTH),
    stamp=st.from_regex(TIMESTAMP),
)
def test_whatever_the_published_patterns_allow_is_accepted(user, session, stamp):
    """The spec (request_schema) states these patterns; the validation must accept all they allow."""
    event = {"user_id": user, "product_id": "p", "interaction_type": "like", "session_id": session, "timestamp": stamp}
    row, reasons = validate_event(event, RECEIVED)
    assert reasons == [], (event, reasons)
    assert row["user_id"] == user.strip() and 1970 <= int(row["timestamp"][:4]) <= 3000


def test_what_the_patterns_forbid_is_refused_with_a_reason():
    base = {"user_id": "u", "product_id": "p", "interaction_type": "view"}
    for field, value in [
        ("user_id", "a\tb"),
        ("user_id", " \n "),
        ("session_id", "x\x00"),
        ("timestamp", "2023-02-29T10:00:00"),  # not a leap year
        ("timestamp", "1969-12-31T23:59:59Z"),
        ("timestamp", "2024-06-01T24:00:00"),
    ]:
        assert validate_event(base | {field: value}, RECEIVED)[1], (field, value)
    assert validate_event(base | {"timestamp": "2024-02-29 23:59:59.5-01:00"}, RECEIVED)[0]["timestamp"] == (
        "2024-03-01T00:59:59.500000"
    )
