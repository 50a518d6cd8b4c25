"""Idempotent loading of landing files (and scraped leads) into the warehouse's raw schema.

A file is identified by the SHA-256 of its bytes: a file already in raw.load_log is skipped, so a re-run
adds nothing, whatever the file is called. Each file loads in one transaction (good rows, quarantined
rows and its load-log entry together), so a crash never leaves half a file behind.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from orchestration.landing.contract import LEAD_FIELDS, PRODUCTS, Source
from orchestration.landing.raw_tables import ensure_raw_schema, next_load_id, qualified, quarantine_table
from orchestration.landing.validate import file_sha256, parse_landing_file, row_keys, validate_rows
from orchestration.warehouse import Connection, Warehouse


@dataclass
class LoadReport:
    """What one load did, for asset metadata and the CLI."""

    source: str
    folder_found: bool = True
    files_seen: int = 0
    files_loaded: list[str] = field(default_factory=list)
    files_skipped: list[str] = field(default_factory=list)  # content already loaded
    rows_loaded: int = 0
    rows_quarantined: int = 0
    quarantined_by_reason: Counter = field(default_factory=Counter)
    unit: str = "files"  # what files_seen counts: landing files, or scraped pages for leads

    @property
    def summary(self) -> str:
        if not self.folder_found:
            return f"{self.source}: no landing folder, skipped"
        return (
            f"{self.source}: {self.files_seen} {self.unit} seen, {len(self.files_loaded)} loaded, "
            f"{len(self.files_skipped)} already loaded; {self.rows_loaded} rows loaded, "
            f"{self.rows_quarantined} quarantined"
        )


def _now() -> datetime:
    """Audit time of a load (bookkeeping only; no business logic depends on it)."""
    return datetime.now(UTC).replace(tzinfo=None)


def _landing_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))


def _with_load_columns(frame: pd.DataFrame, file_name: str, load_id: int, loaded_at: datetime) -> pd.DataFrame:
    out = frame.copy()
    if "_source_line" in out:
        out["_source_file"] = file_name
    else:
        out["source_file"] = file_name
    out["_load_id"] = load_id
    out["_loaded_at"] = loaded_at
    return out


def _record_load(conn: Connection, load_id: int, source: str, file_name: str, sha: str, good: int, bad: int):
    log = pd.DataFrame(
        [
            {
                "load_id": load_id,
                "source": source,
                "source_file": file_name,
                "content_sha256": sha,
                "rows_loaded": good,
                "rows_quarantined": bad,
                "loaded_at": _now(),
            }
        ]
    )
    conn.append(qualified("load_log"), log)


def load_source(warehouse: Warehouse, landing_dir: Path, source: Source) -> LoadReport:
    """Load every new file of one landing folder; products must be loaded before sales and interactions."""
    report = LoadReport(source.name)
    folder = Path(landing_dir) / source.name
    with warehouse.transaction() as conn:
        ensure_raw_schema(conn)
        loaded_hashes = set(
            conn.query(f"SELECT content_sha256 FROM {qualified('load_log')} WHERE source = ?", (source.name,))[  # noqa: S608 -- table names from the landing contract, values bound
                "content_sha256"
            ]
        )
        known_products = pd.Index(conn.query(f"SELECT DISTINCT product_id FROM {qualified('products')}")["product_id"])  # noqa: S608 -- columns and tables from the landing contract
        existing = conn.query(f"SELECT {', '.join(source.key)} FROM {qualified(source.raw_table)}")  # noqa: S608 -- table from the landing contract
    existing_keys = pd.Index(row_keys(existing, source)) if source is not PRODUCTS else pd.Index([])

    if not folder.is_dir():
        report.folder_found = False
        return report
    for path in _landing_files(folder):
        report.files_seen += 1
        data = path.read_bytes()
        sha = file_sha256(data)
        if sha in loaded_hashes:
            report.files_skipped.append(path.name)
            continue
        parsed = parse_landing_file(path.name, data, source)
        result = validate_rows(parsed, source, known_products, existing_keys)
        with warehouse.transaction() as conn:
            load_id = next_load_id(conn)
            loaded_at = _now()
            conn.append(qualified(source.raw_table), _with_load_columns(result.good, path.name, load_id, loaded_at))
            conn.append(quarantine_table(source), _with_load_columns(result.quarantined, path.name, load_id, loaded_at))
            _record_load(conn, load_id, source.name, path.name, sha, len(result.good), len(result.quarantined))
        loaded_hashes.add(sha)
        if source is not PRODUCTS:
            existing_keys = existing_keys.append(pd.Index(row_keys(result.good, source)))
        report.files_loaded.append(path.name)
        report.rows_loaded += len(result.good)
        report.rows_quarantined += len(result.quarantined)
        report.quarantined_by_reason.update(result.quarantined["reason"].tolist())
    return report


def _lead_hash(lead: dict) -> str:
    content = {k: lead[k] for k in LEAD_FIELDS if k != "scraped_at"}
    return hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()


_BAD_PAGE_KEY = ["source_file", "reason", "detail"]  # a bad page already quarantined is not added again


def load_leads(warehouse: Warehouse, leads: list[dict], quarantined: list[dict]) -> LoadReport:
    """Append scraped leads (and bad pages) not seen before; a re-scrape of an unchanged site adds nothing."""
    report = LoadReport("leads", files_seen=len(leads) + len(quarantined), unit="pages")
    frame = pd.DataFrame(leads, columns=list(LEAD_FIELDS))
    frame["scraped_at"] = pd.to_datetime(frame["scraped_at"], utc=True).dt.tz_localize(None)
    frame["review_count"] = frame["review_count"].astype("Int64")
    frame["rating"] = frame["rating"].astype("float64")
    frame["_content_hash"] = [_lead_hash(lead) for lead in leads]
    bad = pd.DataFrame(
        {
            "source_file": [q["source_url"] for q in quarantined],
            "source_line": pd.Series([None] * len(quarantined), dtype="Int64"),
            "reason": [str(q["reason"]) for q in quarantined],
            "detail": [q["detail"] for q in quarantined],
            "raw_record": [q.get("raw_snippet", "") for q in quarantined],
        },
        columns=["source_file", "source_line", "reason", "detail", "raw_record"],
    ).astype({column: "str" for column in _BAD_PAGE_KEY + ["raw_record"]})
    with warehouse.transaction() as conn:
        ensure_raw_schema(conn)
        seen = pd.Index(conn.query(f"SELECT DISTINCT _content_hash FROM {qualified('leads')}")["_content_hash"])  # noqa: S608 -- table from the landing contract
        new = frame[~frame["_content_hash"].isin(seen)].drop_duplicates("_content_hash")
        known_bad = conn.query(f"SELECT {', '.join(_BAD_PAGE_KEY)} FROM {quarantine_table('leads')}").astype("str")  # noqa: S608 -- columns and table from the code
        bad = bad.merge(known_bad, how="left", indicator=True).query("_merge == 'left_only'").drop(columns="_merge")
        if len(new) or len(bad):
            load_id = next_load_id(conn)
            loaded_at = _now()
            conn.append(qualified("leads"), new.assign(_load_id=load_id, _loaded_at=loaded_at))
            conn.append(quarantine_table("leads"), bad.assign(_load_id=load_id, _loaded_at=loaded_at))
            _record_load(conn, load_id, "leads", "scrape", "", len(new), len(bad))
    report.rows_loaded = len(new)
    report.files_loaded = new["source_url"].tolist()
    report.files_skipped = frame.loc[~frame.index.isin(new.index), "source_url"].tolist()
    report.rows_quarantined = len(bad)
    report.quarantined_by_reason.update(bad["reason"].tolist())
    return report
