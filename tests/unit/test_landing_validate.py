"""Row validation: every kind of bad row gets its reason, good rows come out typed."""

from __future__ import annotations

import pandas as pd
import pytest

from orchestration.landing.contract import INTERACTIONS, PRODUCTS, SALES, Reason
from orchestration.landing.validate import (
    parse_landing_file,
    reason_counts,
    row_keys,
    validate_rows,
    value_fingerprints,
)

SALES_HEADER = b"order_id,order_date,product_id,quantity,unit_price,customer_id\n"
INTERACTIONS_HEADER = b"event_id,user_id,product_id,interaction_type,rating,timestamp,session_id\n"
KNOWN = pd.Index(["P1", "P2"])
NOTHING = pd.Series(dtype="str")


def _validate(body: bytes, source=SALES, header=SALES_HEADER, loaded=NOTHING):
    parsed = parse_landing_file("file.csv", header + body, source)
    return validate_rows(parsed, source, KNOWN, loaded)


def _loaded(body: bytes, source=SALES, header=SALES_HEADER) -> pd.Series:
    """What the warehouse would hold after loading these rows: key -> value fingerprint."""
    good = _validate(body, source, header).good
    return pd.Series(value_fingerprints(good, source).to_numpy(), index=row_keys(good, source).to_numpy())


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        (b"O1,2023-02-30,P1,1,9.5,", Reason.INVALID_DATE),
        (b"O1,yesterday,P1,1,9.5,", Reason.INVALID_DATE),
        (b"O1,2023-02-01,P1,two,9.5,", Reason.INVALID_QUANTITY),
        (b"O1,2023-02-01,P1,1.5,9.5,", Reason.INVALID_QUANTITY),
        (b"O1,2023-02-01,P1,-3,9.5,", Reason.NON_POSITIVE_QUANTITY),
        (b"O1,2023-02-01,P1,0,9.5,", Reason.NON_POSITIVE_QUANTITY),
        (b"O1,2023-02-01,P1,1,abc,", Reason.INVALID_PRICE),
        (b"O1,2023-02-01,P1,1,-5,", Reason.INVALID_PRICE),
        (b"O1,2023-02-01,P99999,1,5,", Reason.UNKNOWN_PRODUCT_ID),
        (b",2023-02-01,P1,1,5,", Reason.MISSING_REQUIRED_FIELD),
        (b"O1,2023-02-01,P1,1,5", Reason.MALFORMED_ROW),
        (b"O1,2023-02-01,P1,1,5,Caf\xe9", Reason.INVALID_ENCODING),
    ],
)
def test_bad_sales_row_gets_its_reason(row, reason):
    result = _validate(b"O0,2023-01-01,P2,1,1.0,C1\n" + row + b"\n")
    assert result.good["order_id"].tolist() == ["O0"]
    assert result.quarantined["reason"].tolist() == [reason.value]
    assert result.quarantined["source_line"].tolist() == [3]
    assert result.quarantined["detail"].iloc[0]


def test_good_sales_rows_are_typed_and_keep_their_line():
    result = _validate(b"O1,1987-03-04,P1,2,9.5,C1\nO2,2023-01-01,P2,1,10,\n")
    good = result.good
    assert good["order_date"].dt.year.tolist() == [1987, 2023]  # decades-old history loads
    assert good["quantity"].tolist() == [2, 1]
    assert good["unit_price"].tolist() == [9.5, 10.0]
    assert good["customer_id"].isna().tolist() == [False, True]
    assert good["_source_line"].tolist() == [2, 3]
    assert result.quarantined.empty


def test_duplicates_keep_the_first_occurrence_and_see_earlier_loads():
    body = b"O1,2023-01-01,P1,1,1,\nO1,2023-01-01,P1,1,1,\nO1,2023-01-01,P2,1,1,\nO2,2023-01-01,P1,1,1,\n"
    result = _validate(body, loaded=_loaded(b"O2,2023-01-01,P1,1,1.0,\n"))
    assert result.good[["order_id", "product_id"]].values.tolist() == [["O1", "P1"], ["O1", "P2"]]
    assert result.quarantined["source_line"].tolist() == [3, 5]
    assert set(result.quarantined["reason"]) == {Reason.DUPLICATE_ID.value}


def test_a_bad_row_does_not_claim_a_key():
    """The first *valid* row with a key is loaded even when an invalid row used the key before it."""
    result = _validate(b"O1,2023-13-01,P1,1,1,\nO1,2023-01-01,P1,1,1,\n")
    assert result.good["_source_line"].tolist() == [3]
    assert result.quarantined["reason"].tolist() == [Reason.INVALID_DATE.value]


def test_interactions_normalize_timestamps_to_utc_and_check_type_and_rating():
    body = (
        b"E1,U1,P1,view,,2023-01-01T10:00:00+02:00,S1\n"
        b"E2,U1,P1,like,5,2023-01-01T10:00:00Z,\n"
        b"E3,U1,P1,click,,2023-01-01T10:00:00Z,\n"
        b"E4,U1,P1,VIEWED,,2023-01-01T10:00:00Z,\n"
        b"E5,U1,P1,like,7,2023-01-01T10:00:00Z,\n"
        b"E6,U1,P1,like,,2023-01-01 25:00,\n"
    )
    result = _validate(body, INTERACTIONS, INTERACTIONS_HEADER)
    assert result.good["event_at"].astype(str).tolist() == ["2023-01-01 08:00:00", "2023-01-01 10:00:00"]
    assert result.good["rating"].isna().tolist() == [True, False]
    assert reason_counts(result.quarantined) == {
        "invalid_interaction_type": 2,
        "invalid_rating": 1,
        "invalid_timestamp": 1,
    }


def test_products_repeat_in_file_is_a_duplicate_but_earlier_loads_are_versions():
    header = b"product_id,name,category,brand,price,stock_on_hand\n"
    body = b"P1,Pad,brakes,ACME,10,5\nP1,Pad,brakes,ACME,11,5\nP3,Oil,oil,,12,x\n"
    result = _validate(body, PRODUCTS, header, loaded=_loaded(b"P1,Pad,brakes,ACME,10,5\n", PRODUCTS, header))
    assert result.good["product_id"].tolist() == ["P1"]
    assert result.quarantined["reason"].tolist() == [Reason.DUPLICATE_ID.value, Reason.INVALID_STOCK.value]


def test_a_file_without_the_contract_columns_is_kept_aside_row_by_row():
    result = _validate(b"O1,2023-01-01\n", header=b"order_id,order_date\n")
    assert result.good.empty
    assert result.quarantined["reason"].tolist() == [Reason.MISSING_COLUMNS.value]
    assert "product_id" in result.quarantined["detail"].iloc[0]


def test_columns_are_matched_by_name_and_extras_ignored():
    header = b"customer_id,unit_price,quantity,product_id,order_date,order_id,note\n"
    result = _validate(b"C9,2.5,3,P1,2023-05-06,O7,hello\n", header=header)
    assert result.good[["order_id", "quantity", "customer_id"]].values.tolist() == [["O7", 3, "C9"]]


def test_empty_file_and_header_only_file_give_no_rows():
    assert _validate(b"").good.empty
    parsed = parse_landing_file("empty.csv", b"", SALES)
    assert parsed.rows.empty and parsed.rejected.empty
    assert validate_rows(parsed, SALES, KNOWN, NOTHING).quarantined["reason"].tolist() == []
