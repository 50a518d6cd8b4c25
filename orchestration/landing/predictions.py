"""Load the service's prediction log (closed JSON-lines spool files) into raw.prediction_log.

One row per returned item (rank 1..n) with the answer's request fields repeated, so outcomes join on
(item_id, caller) in SQL the same way on DuckDB and PostgreSQL. Files are identified by their SHA-256 as
landing files are; a request id already loaded is quarantined as a duplicate, a line that is not a
complete log entry with its reason.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from orchestration.landing.contract import Reason
from orchestration.landing.load import LoadReport, _landing_files, _now, _record_load  # one load log, one listing rule
from orchestration.landing.raw_tables import ensure_raw_schema, next_load_id, qualified, quarantine_table
from orchestration.landing.validate import file_sha256
from orchestration.warehouse import Warehouse
from serving.spool import close_orphans

SOURCE = "prediction_log"
REQUEST_FIELDS = (
    "request_id",
    "requested_at",
    "endpoint",
    "caller_id",
    "variant",
    "model_name",
    "model_version",
    "mlflow_run_id",
    "dagster_run_id",
    "data_as_of",
)


def _entry_rows(entry: dict) -> list[dict]:
    """The rows of one log entry; raises ValueError (the quarantine detail) for an incomplete entry."""
    missing = [
        name
        for name in ("request_id", "requested_at", "endpoint", "model_name", "model_version")
        if not entry.get(name)
    ]
    if missing:
        raise ValueError(f"missing {', '.join(missing)}")
    items = entry.get("items")
    if not isinstance(items, list) or not all(isinstance(i, list) and len(i) == 2 for i in items):
        raise ValueError("items must be a list of [item_id, score] pairs")
    request = {name: entry.get(name) for name in REQUEST_FIELDS}
    request["requested_at"] = pd.Timestamp(entry["requested_at"])  # ValueError when it is not a timestamp
    return [
        request | {"rank": rank, "item_id": str(item), "score": score}
        for rank, (item, score) in enumerate(items, start=1)
    ]


def parse_log(name: str, data: bytes, known_requests: set[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(rows, quarantined) of one closed log file; `known_requests` gains the file's request ids."""
    rows, bad = [], []
    for line_number, line in enumerate(data.decode("utf-8", "replace").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
            if not isinstance(entry, dict):
                raise ValueError("a log entry is a JSON object")
            entry_rows = _entry_rows(entry)
        except ValueError as exc:
            bad.append((line_number, Reason.MALFORMED_ROW.value, str(exc)[:300], line[:2000]))
            continue
        if entry["request_id"] in known_requests:
            bad.append((line_number, Reason.DUPLICATE_ID.value, "request_id already loaded", line[:2000]))
            continue
        known_requests.add(entry["request_id"])
        rows += [row | {"_source_line": line_number} for row in entry_rows]
    frame = pd.DataFrame(rows, columns=[*REQUEST_FIELDS, "rank", "item_id", "score", "_source_line"])
    frame = frame.astype({"rank": "int64", "score": "float64", "_source_line": "int64"})
    frame["requested_at"] = pd.to_datetime(frame["requested_at"])
    quarantined = pd.DataFrame(bad, columns=["source_line", "reason", "detail", "raw_record"])
    return frame, quarantined.astype({"source_line": "int64"})


def load_prediction_log(warehouse: Warehouse, landing_dir: Path) -> LoadReport:
    """Load every closed prediction-log file not loaded before (closing ones a dead service left open)."""
    report = LoadReport(SOURCE)
    folder = Path(landing_dir) / SOURCE
    with warehouse.transaction() as conn:
        ensure_raw_schema(conn)
        loaded = set(
            conn.query(f"SELECT content_sha256 FROM {qualified('load_log')} WHERE source = ?", (SOURCE,))[
                "content_sha256"
            ]
        )
    if not folder.is_dir():
        report.folder_found = False
        return report
    close_orphans(folder)
    for path in _landing_files(folder):
        report.files_seen += 1
        data = path.read_bytes()
        sha = file_sha256(data)
        if sha in loaded:
            report.files_skipped.append(path.name)
            continue
        with warehouse.transaction() as conn:
            conn.lock(f"load.{SOURCE}")
            sql = f"SELECT count(*) FROM {qualified('load_log')} WHERE source = ? AND content_sha256 = ?"
            if int(conn.scalar(sql, (SOURCE, sha))):  # an overlapping run took it meanwhile
                report.files_skipped.append(path.name)
                continue
            known = set(conn.query(f"SELECT DISTINCT request_id FROM {qualified(SOURCE)}")["request_id"])
            rows, quarantined = parse_log(path.name, data, known)
            load_id, loaded_at = next_load_id(conn), _now()
            conn.append(qualified(SOURCE), rows.assign(_source_file=path.name, _load_id=load_id, _loaded_at=loaded_at))
            conn.append(
                quarantine_table(SOURCE),
                quarantined.assign(source_file=path.name, _load_id=load_id, _loaded_at=loaded_at),
            )
            _record_load(conn, load_id, SOURCE, path.name, sha, len(rows), len(quarantined))
        loaded.add(sha)
        report.files_loaded.append(path.name)
        report.rows_loaded += len(rows)
        report.rows_quarantined += len(quarantined)
        report.quarantined_by_reason.update(quarantined["reason"].tolist())
    return report
