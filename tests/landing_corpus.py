"""A hostile-input corpus: the files users' exports and mistakes really produce, with what each must give.

Every case is one landing file and the rows it must load and the quarantine reasons it must produce
(rows in = loaded + quarantined). Product ids P00001/P00002 exist in the small demo catalogue; dates sit
inside the demo's first 120 days, so the cases can be dropped among the demo files.
"""

from __future__ import annotations

import gzip
from collections import Counter
from dataclasses import dataclass, field

SALES_HEADER = "order_id,order_date,product_id,quantity,unit_price,customer_id"
INTERACTIONS_HEADER = "event_id,user_id,product_id,interaction_type,rating,timestamp,session_id"
PRODUCTS_HEADER = "product_id,name,category,brand,price,stock_on_hand"
LATE_PRODUCT = "PLATE1"


@dataclass(frozen=True)
class Case:
    source: str
    file: str
    data: bytes
    loaded: int
    reasons: Counter = field(default_factory=Counter)
    what: str = ""

    @property
    def quarantined(self) -> int:
        return sum(self.reasons.values())


def _csv(header: str, *rows: str, newline: str = "\n") -> str:
    return newline.join([header, *rows]) + newline


def _sales(prefix: str, n: int, day: str = "2023-03-01") -> list[str]:
    return [f"{prefix}-{i},{day},P0000{1 + i % 2},{i + 1},2.50,C{i}" for i in range(n)]


def first_delivery() -> list[Case]:
    huge = "x" * 200_000
    return [
        Case(
            "sales",
            "h01_bare_cr.csv",
            _csv(SALES_HEADER, *_sales("H01", 2), newline="\r").encode(),
            2,
            what="bare CR line endings (classic Mac / some exporters)",
        ),
        Case(
            "sales",
            "h02_excel_bom_crlf.csv",
            b"\xef\xbb\xbf"
            + _csv(
                SALES_HEADER,
                '"H02-0","2023-03-01","P00001","1","2.50",""',
                '"H02-1","2023-03-01","P00002","2","2.50","C, Jr."',
                newline="\r\n",
            ).encode(),
            2,
            what="Excel: UTF-8 BOM, CRLF, every field quoted",
        ),
        Case(
            "sales",
            "h03_compressed.csv.gz",
            gzip.compress(_csv(SALES_HEADER, *_sales("H03", 2)).encode()),
            2,
            what="gzip-compressed CSV (.csv.gz)",
        ),
        Case(
            "sales",
            "h04_truncated.csv.gz",
            b"\x1f\x8b\x08\x00" + b"\x00garbage" * 20,
            0,
            Counter(unreadable_file=1),
            "gzip that does not decompress",
        ),
        Case(
            "sales",
            "h05_photo.png",
            b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40,
            0,
            Counter(unreadable_file=1),
            "a binary file dropped among the CSVs",
        ),
        Case(
            "sales",
            "h06_utf16_bom.csv",
            _csv(SALES_HEADER, *_sales("H06", 2)).encode("utf-16"),
            2,
            what="UTF-16 with BOM (Excel 'Unicode text')",
        ),
        Case(
            "sales",
            "h07_utf16_no_bom.csv",
            _csv(SALES_HEADER, *_sales("H07", 2)).encode("utf-16-le"),
            0,
            Counter(unreadable_file=1),
            "UTF-16 without BOM",
        ),
        Case(
            "sales",
            "h08_latin1.csv",
            _csv(SALES_HEADER, *_sales("H08", 1), "H08-9,2023-03-01,P00001,1,2.5,Café").encode("latin-1"),
            1,
            Counter(invalid_encoding=1),
            "one Latin-1 row in a UTF-8 file",
        ),
        Case(
            "sales",
            "h09_nul.csv",
            _csv(SALES_HEADER, *_sales("H09", 1), "H09-9,2023-03-01,P00001,1,2.5,C\x001").encode(),
            1,
            Counter(invalid_encoding=1),
            "NUL byte inside a field",
        ),
        Case(
            "sales",
            "h10_unterminated_quote.csv",
            _csv(SALES_HEADER, 'H10-0,2023-03-01,P00001,"3,2.5,C1', *_sales("H10", 3)[1:]).encode(),
            2,
            Counter(malformed_row=1),
            "unterminated quote followed by good rows",
        ),
        Case(
            "sales",
            "h11_multiline.csv",
            _csv(
                SALES_HEADER,
                'H11-0,2023-03-01,P00001,x,2.5,"two',
                'lines"',
                'H11-1,2023-03-01,P00001,1,2.5,"C',
                '1"',
                *_sales("H11", 3)[2:],
            ).encode(),
            2,
            Counter(invalid_quantity=1),
            "quoted fields spanning lines (one bad record, one good)",
        ),
        Case(
            "sales",
            "h12_separators.csv",
            _csv(
                SALES_HEADER, "H12-0,2023-03-01,P00001,1,2.5,C\u2028x\x0cy\x1cz", "H12-1,2023-03-01,P00001,1,abc,C"
            ).encode(),
            1,
            Counter(invalid_price=1),
            "U+2028, form feed and FS inside a field",
        ),
        Case(
            "sales",
            "h13_absurd_numbers.csv",
            _csv(
                SALES_HEADER,
                *_sales("H13", 1),
                "H13-a,2023-03-01,P00001,1,inf,",
                "H13-b,2023-03-01,P00001,1,Infinity,",
                "H13-c,2023-03-01,P00001,1,1e400,",
                "H13-d,2023-03-01,P00001,99999999999999999999,1,",
                "H13-e,2023-03-01,P00001,1000000000,5000,",
                "H13-f,2023-03-01,P00001,1,-inf,",
                "H13-g,2023-03-01,P00001,1,NaN,",
            ).encode(),
            1,
            Counter(out_of_range_number=5, invalid_price=2),
            "inf, 1e400, beyond int64 and line_revenue, NaN",
        ),
        Case(
            "sales",
            "h14_stray_dates.csv",
            _csv(
                SALES_HEADER,
                *_sales("H14", 10),
                "H14-a,1900-01-01,P00001,1,2.5,",
                "H14-b,2100-01-01,P00001,1,2.5,",
                "H14-c,9999-12-31,P00001,1,2.5,",
            ).encode(),
            10,
            Counter(out_of_range_date=3),
            "sales in 1900, 2100 and 9999 among normal ones",
        ),
        Case(
            "sales",
            "h15_null_spellings.csv",
            _csv(
                SALES_HEADER,
                "H15-0,2023-03-01,P00001,1,2.5,\\N",
                "H15-1,2023-03-01,P00001,1,2.5,NULL",
                "H15-2,2023-03-01,P00001,1,2.5,",
            ).encode(),
            3,
            what="\\N, NULL and empty customer ids",
        ),
        Case("sales", "h16_empty.csv", b"", 0, what="empty file"),
        Case("sales", "h17_header_only.csv", _csv(SALES_HEADER).encode(), 0, what="header only"),
        Case(
            "sales",
            "h18_semicolons.csv",
            _csv(SALES_HEADER.replace(",", ";"), "H18-0;2023-03-01;P00001;1;2,5;").encode(),
            0,
            Counter(missing_columns=1),
            "European export: ; separated, decimal comma",
        ),
        Case(
            "sales",
            "h19_late_product.csv",
            _csv(SALES_HEADER, f"H19-0,2023-03-01,{LATE_PRODUCT},2,2.5,").encode(),
            0,
            Counter(unknown_product_id=1),
            "sale of a product the catalogue delivers later",
        ),
        Case(
            "sales",
            "h20_huge_field.csv",
            _csv(SALES_HEADER, f'H20-0,2023-03-01,P00001,1,2.5,"{huge}"', *_sales("H20", 2)[1:]).encode(),
            1,
            Counter(malformed_row=1),
            "a 200 kB field",
        ),
        Case(
            "sales",
            "h21_reordered.csv",
            b"note,customer_id,unit_price,quantity,product_id,order_date,order_id\nhi,C1,2.5,1,P00001,2023-03-01,H21-0\n",
            1,
            what="columns reordered, an extra column",
        ),
        Case(
            "sales",
            "h22_blank_lines.csv",
            _csv(
                SALES_HEADER, "", " H22-0 , 2023-03-01 ,P00001, 1 ,2.5,", "   ", "H22-1,2023-03-01,P00002,1,2.5,", ""
            ).encode(),
            2,
            what="blank lines and padded fields",
        ),
        Case(
            "interactions",
            "h30_utf16.csv",
            _csv(INTERACTIONS_HEADER, "H30-0,U1,P00001,view,,2023-03-01T10:00:00Z,S1").encode("utf-16"),
            1,
            what="UTF-16 clickstream export",
        ),
        Case(
            "interactions",
            "h31_absurd.csv",
            _csv(
                INTERACTIONS_HEADER,
                *[f"H31-{i},U1,P00001,view,,2023-03-01T10:0{i}:00Z," for i in range(3)],
                "H31-a,U1,P00001,view,,2100-01-01T00:00:00Z,",
                "H31-b,U1,P00001,like,inf,2023-03-01T10:00:00Z,",
            ).encode(),
            3,
            Counter(out_of_range_date=1, invalid_rating=1),
            "a 2100 event, an infinite rating",
        ),
        Case(
            "products",
            "h40_absurd.csv",
            _csv(
                PRODUCTS_HEADER,
                "PH-0,Pad,brakes,,1e400,1",
                "PH-1,Pad,brakes,,12.5,100000000000000000000000000000",
                "PH-2,Pad,brakes,,12.5,3",
            ).encode(),
            1,
            Counter(out_of_range_number=2),
            "infinite price, huge stock",
        ),
    ]


def second_delivery() -> list[Case]:
    """After the first: a correction, a re-delivery, the late product, and plain good data."""
    return [
        Case(
            "sales",
            "h50_correction.csv",
            _csv(SALES_HEADER, "H01-0,2023-03-01,P00001,7,2.50,C0").encode(),
            1,
            what="a corrected order line (quantity 1 -> 7)",
        ),
        Case(
            "sales",
            "h51_redelivered.csv",
            _csv(SALES_HEADER, *_sales("H03", 2), newline="\r\n").encode(),
            0,
            Counter(duplicate_id=2),
            "the same rows again under another name",
        ),
        Case(
            "products",
            "h52_late_product.csv",
            _csv(PRODUCTS_HEADER, f"{LATE_PRODUCT},Late pad,brakes,,9.5,4").encode(),
            1,
            what="the product the earlier sale was waiting for",
        ),
        Case(
            "sales",
            "h53_good.csv",
            _csv(SALES_HEADER, *_sales("H53", 5, "2023-04-20")).encode(),
            5,
            what="a plain good delivery",
        ),
        Case(
            "sales",
            "h54_lone_2100.csv",
            _csv(SALES_HEADER, "H54-0,2100-01-01,P00001,1,2.5,").encode(),
            0,
            Counter(out_of_range_date=1),
            "a one-row delivery dated 2100 (it cannot vouch for its own date)",
        ),
        Case(
            "sales",
            "h55_lone_1900.csv",
            _csv(SALES_HEADER, "H55-0,1900-01-01,P00002,1,2.5,").encode(),
            0,
            Counter(out_of_range_date=1),
            "a one-row delivery dated 1900",
        ),
        Case(
            "sales",
            "h57_order_months_ahead.csv",
            _csv(SALES_HEADER, "H57-0,2023-09-04,P00002,1,2.5,").encode(),
            1,
            what="one order dated four months after the data (inside the landing window): loads, stays one row",
        ),
        Case(
            "interactions",
            "h56_lone_event_2100.csv",
            _csv(INTERACTIONS_HEADER, "H56-0,U1,P00001,view,,2100-01-01T00:00:00Z,").encode(),
            0,
            Counter(out_of_range_date=1),
            "a one-event delivery dated 2100",
        ),
    ]
