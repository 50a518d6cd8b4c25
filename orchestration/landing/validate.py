"""Parse a landing CSV and split its rows into typed good rows and quarantined rows with a reason.

Pure functions over bytes and DataFrames, so they are unit-tested without a warehouse. Checks run in a
fixed order and a row gets the reason of the first check it fails: field count, encoding, required
fields, types, unknown product, duplicate key (the first occurrence of a key wins).
"""

from __future__ import annotations

import csv
import hashlib
import io
from dataclasses import dataclass

import pandas as pd

from orchestration.landing.contract import (
    INTERACTION_TYPES,
    INTERACTIONS,
    LEAD_STATUS,
    LEAD_STATUSES,
    PRODUCTS,
    SALES,
    Reason,
    Source,
)

QUARANTINE_FIELDS = ["source_line", "reason", "detail", "raw_record"]
_INTEGER = r"[+-]?\d+"
_KEY_SEPARATOR = "\x1f"


@dataclass
class ParsedFile:
    """A landing file read as text: rows with the contract's columns as strings, plus what failed parsing."""

    name: str
    sha256: str
    rows: pd.DataFrame  # contract columns as str, plus source_line and raw_record
    rejected: pd.DataFrame  # QUARANTINE_FIELDS


@dataclass
class ValidatedRows:
    good: pd.DataFrame  # typed contract columns plus _source_line
    quarantined: pd.DataFrame  # QUARANTINE_FIELDS


def file_sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _printable(text: str) -> str:
    """Undecodable bytes kept by surrogateescape, shown as \\xNN so the record can be stored as text."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _has_bad_bytes(text: str) -> bool:
    return any("\udc80" <= ch <= "\udcff" for ch in text)


def _quarantine_frame(records: list[tuple[int, str, str, str]]) -> pd.DataFrame:
    return pd.DataFrame.from_records(records, columns=QUARANTINE_FIELDS).astype(
        {"source_line": "int64", "reason": "str", "detail": "str", "raw_record": "str"}
    )


def parse_landing_file(name: str, data: bytes, source: Source) -> ParsedFile:
    """Read CSV bytes against the contract: columns are matched by header name, extra columns ignored."""
    text = data.decode("utf-8", "surrogateescape").lstrip("\ufeff")
    lines = text.splitlines()
    reader = csv.reader(io.StringIO(text))
    header = [column.strip() for column in next(reader, [])]
    missing = [column for column in source.columns if column not in header]
    rejected: list[tuple[int, str, str, str]] = []
    if missing:
        detail = f"header lacks {', '.join(missing)}; expected {', '.join(source.columns)}"
        rejected = [(n, Reason.MISSING_COLUMNS, detail, _printable(line)) for n, line in enumerate(lines[1:], 2)]
        return ParsedFile(name, file_sha256(data), _empty_rows(source), _quarantine_frame(rejected))

    positions = [header.index(column) for column in source.columns]
    good_rows: list[list[str]] = []
    line_numbers: list[int] = []
    for fields in reader:
        line_number = reader.line_num
        raw = lines[line_number - 1] if line_number - 1 < len(lines) else ",".join(fields)
        if not fields or (len(fields) == 1 and not fields[0].strip()):
            continue  # blank line
        if len(fields) != len(header):
            detail = f"{len(fields)} fields, header has {len(header)}"
            rejected.append((line_number, Reason.MALFORMED_ROW, detail, _printable(raw)))
        elif _has_bad_bytes(raw):
            rejected.append((line_number, Reason.INVALID_ENCODING, "bytes that are not UTF-8", _printable(raw)))
        else:
            good_rows.append([fields[i].strip() for i in positions])
            line_numbers.append(line_number)
    rows = pd.DataFrame(good_rows, columns=list(source.columns), dtype="str")
    rows["source_line"] = pd.Series(line_numbers, dtype="int64")
    rows["raw_record"] = [lines[n - 1] for n in line_numbers]
    return ParsedFile(name, file_sha256(data), rows, _quarantine_frame(rejected))


def _empty_rows(source: Source) -> pd.DataFrame:
    rows = pd.DataFrame({column: pd.Series(dtype="str") for column in source.columns})
    rows["source_line"] = pd.Series(dtype="int64")
    rows["raw_record"] = pd.Series(dtype="str")
    return rows


def row_keys(frame: pd.DataFrame, source: Source) -> pd.Series:
    """One string per row identifying it by the source's key columns (used for duplicate detection)."""
    first, *rest = source.key
    keys = frame[first].astype("str")
    for column in rest:
        keys = keys + _KEY_SEPARATOR + frame[column].astype("str")
    return keys


class _Triage:
    """Assigns each row the first reason it fails; later checks only see rows still unassigned."""

    def __init__(self, rows: pd.DataFrame):
        self.rows = rows
        self.reason = pd.Series(None, index=rows.index, dtype="object")
        self.detail = pd.Series(None, index=rows.index, dtype="object")

    def flag(self, failed: pd.Series, reason: Reason, describe) -> None:
        new = failed & self.reason.isna()
        if new.any():
            self.reason[new] = reason.value
            self.detail[new] = describe(self.rows[new])

    @property
    def ok(self) -> pd.Series:
        return self.reason.isna()


def _integer(values: pd.Series) -> pd.Series:
    return pd.to_numeric(values.where(values.str.fullmatch(_INTEGER)), errors="coerce")


def validate_rows(
    parsed: ParsedFile,
    source: Source,
    known_product_ids: pd.Index,
    existing_keys: pd.Index,
) -> ValidatedRows:
    """Type and check the parsed rows of one file.

    known_product_ids: product ids the warehouse knows (needed for sales and interactions).
    existing_keys: `row_keys` of rows already loaded; a repeat is a duplicate (products excepted:
    a re-delivered product file is a new version of the product, so only in-file repeats count).
    """
    rows = parsed.rows
    triage = _Triage(rows)
    for column in source.required:
        triage.flag(rows[column] == "", Reason.MISSING_REQUIRED_FIELD, lambda r, c=column: f"{c} is empty")

    typed = rows[list(source.columns)].copy()
    if source is PRODUCTS:
        typed["price"] = pd.to_numeric(rows["price"], errors="coerce")
        triage.flag(~(typed["price"] >= 0), Reason.INVALID_PRICE, lambda r: "price=" + r["price"] + " is not >= 0")
        typed["stock_on_hand"] = _integer(rows["stock_on_hand"]).astype("Int64")
        bad_stock = (rows["stock_on_hand"] != "") & ~(typed["stock_on_hand"] >= 0).fillna(False)
        triage.flag(bad_stock, Reason.INVALID_STOCK, lambda r: "stock_on_hand=" + r["stock_on_hand"])
        typed["brand"] = rows["brand"].replace("", None)
    elif source is SALES:
        typed["order_date"] = pd.to_datetime(rows["order_date"], format="%Y-%m-%d", errors="coerce")
        triage.flag(typed["order_date"].isna(), Reason.INVALID_DATE, lambda r: "order_date=" + r["order_date"])
        typed["quantity"] = _integer(rows["quantity"])
        triage.flag(typed["quantity"].isna(), Reason.INVALID_QUANTITY, lambda r: "quantity=" + r["quantity"])
        triage.flag(typed["quantity"] <= 0, Reason.NON_POSITIVE_QUANTITY, lambda r: "quantity=" + r["quantity"])
        typed["quantity"] = typed["quantity"].astype("Int64")
        typed["unit_price"] = pd.to_numeric(rows["unit_price"], errors="coerce")
        triage.flag(~(typed["unit_price"] >= 0), Reason.INVALID_PRICE, lambda r: "unit_price=" + r["unit_price"])
        typed["customer_id"] = rows["customer_id"].replace("", None)
    elif source is INTERACTIONS:
        stamps = pd.to_datetime(rows["timestamp"], format="ISO8601", utc=True, errors="coerce")
        typed["event_at"] = stamps.dt.tz_convert("UTC").dt.tz_localize(None)
        triage.flag(stamps.isna(), Reason.INVALID_TIMESTAMP, lambda r: "timestamp=" + r["timestamp"])
        valid_type = rows["interaction_type"].isin(INTERACTION_TYPES)
        expected = "|".join(INTERACTION_TYPES)
        triage.flag(
            ~valid_type,
            Reason.INVALID_INTERACTION_TYPE,
            lambda r: "interaction_type=" + r["interaction_type"] + f" not in {expected}",
        )
        typed["rating"] = pd.to_numeric(rows["rating"], errors="coerce")
        bad_rating = (rows["rating"] != "") & ~typed["rating"].between(1, 5)
        triage.flag(bad_rating, Reason.INVALID_RATING, lambda r: "rating=" + r["rating"] + " not in [1, 5]")
        typed["session_id"] = rows["session_id"].replace("", None)
        typed = typed.drop(columns="timestamp")
    elif source is LEAD_STATUS:
        no_reference = (rows["lead_key"] == "") & (rows["phone"] == "") & (rows["website"] == "")
        triage.flag(no_reference, Reason.UNRESOLVED_LEAD, lambda r: "lead_key, phone and website are all empty")
        stamps = pd.to_datetime(rows["changed_at"], format="ISO8601", utc=True, errors="coerce")
        typed["changed_at"] = stamps.dt.tz_convert("UTC").dt.tz_localize(None)
        triage.flag(stamps.isna(), Reason.INVALID_TIMESTAMP, lambda r: "changed_at=" + r["changed_at"])
        status = rows["status"].str.lower()
        expected = "|".join(LEAD_STATUSES)
        triage.flag(
            ~status.isin(LEAD_STATUSES),
            Reason.INVALID_STATUS,
            lambda r: "status=" + r["status"] + f" not in {expected}",
        )
        typed["status"] = status
        for column in ("lead_key", "phone", "website", "owner", "note"):
            typed[column] = rows[column].replace("", None)

    if source in (SALES, INTERACTIONS):  # rows that name a product
        unknown = ~rows["product_id"].isin(known_product_ids)
        triage.flag(unknown, Reason.UNKNOWN_PRODUCT_ID, lambda r: "product_id=" + r["product_id"] + " not in products")

    keys = row_keys(rows, source)
    repeated_in_file = keys.where(triage.ok).duplicated() & triage.ok
    seen_before = keys.isin(existing_keys) if source is not PRODUCTS else pd.Series(False, index=rows.index)
    key_names = ", ".join(source.key)
    triage.flag(repeated_in_file | seen_before, Reason.DUPLICATE_ID, lambda r: f"({key_names}) already loaded")

    good = typed[triage.ok].copy()
    good["_source_line"] = rows.loc[triage.ok, "source_line"].astype("int64")
    bad = rows[~triage.ok]
    flagged = pd.DataFrame(
        {
            "source_line": bad["source_line"].astype("int64"),
            "reason": triage.reason[~triage.ok].astype("str"),
            "detail": triage.detail[~triage.ok].astype("str"),
            "raw_record": bad["raw_record"].map(_printable).astype("str"),
        }
    )
    quarantined = pd.concat([parsed.rejected, flagged], ignore_index=True) if len(flagged) else parsed.rejected
    return ValidatedRows(good=good.reset_index(drop=True), quarantined=quarantined.sort_values("source_line"))


def reason_counts(quarantined: pd.DataFrame) -> dict[str, int]:
    return {str(k): int(v) for k, v in quarantined["reason"].value_counts().sort_index().items()}


__all__ = ["ParsedFile", "ValidatedRows", "parse_landing_file", "validate_rows", "row_keys", "reason_counts"]
