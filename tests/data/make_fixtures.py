"""Write the corpus files that are not plain UTF-8 text (encodings, binaries, XLSX).

Run ``.venv/bin/python tests/data/make_fixtures.py`` from the repository root to
recreate them; the committed copies are what the tests read.
"""

from __future__ import annotations

import io
import random
import zipfile
from datetime import date, datetime
from pathlib import Path

from openpyxl import Workbook

HERE = Path(__file__).parent


def text(name: str, content: str, encoding: str) -> None:
    (HERE / name).write_bytes(content.encode(encoding))


def xlsx_basic() -> None:
    wb = Workbook()
    ws = wb.active
    ws.title = "Statement"
    ws.append(["Account statement ACME Bank"])
    ws.append([])
    ws.append(["Reference", "Booking Date", "Amount", "Currency", "Narrative", "Notes"])
    ws.append(["X-1", datetime(2024, 3, 1), 1234.56, "EUR", "Wire in", None])
    ws.append(["X-2", datetime(2024, 3, 2, 14, 30), -0.1, "EUR", "Card", 42])
    ws.append([None, None, None, None, None, None])
    ws.append(["X-3", date(2024, 3, 31), "1,234.50", "EUR", "Typed as text", "n"])
    ws.append([1004, datetime(2024, 4, 1), 1e6, "usd", None, None])
    wb.save(HERE / "statement.xlsx")


def xlsx_serial_second_sheet() -> None:
    wb = Workbook()
    wb.active.title = "Summary"
    wb.active.append(["Totals are on the next sheet"])
    ws = wb.create_sheet("Data")
    ws.append(["Id", "Date", "Value", "Details"])
    ws.append(["S1", 45292, 10, "serial 45292 = 2024-01-01"])
    ws.append(["S2", 45351, 0.3, "serial 45351 = 2024-02-29"])
    ws.append(["S3", 45657, -5.25, "serial 45657 = 2024-12-31"])
    wb.save(HERE / "serial_dates.xlsx")


def binaries() -> None:
    rng = random.Random(7)  # noqa: S311 - seeded fixture bytes, not secrets
    (HERE / "random.bin").write_bytes(bytes(rng.randrange(256) for _ in range(2048)))
    (HERE / "fake.pdf").write_bytes(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n")
    (HERE / "legacy.xls").write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("statement.csv", "Reference,Amount,Date\nA,1,2024-01-01\n")
    (HERE / "statement_csv.zip").write_bytes(buffer.getvalue())


def main() -> None:
    text(
        "tab_latin1.tsv",
        "Ref\tAmount\tDate\tDescription\n"
        "L1\tEUR 12\t13/01/2024\tCafé crème\n"
        "L2\t12,50 GBP\t01/02/2024\tÜberweisung\n"
        "L3\t(3.000,00) EUR\t28/02/2024\tRückbuchung\n",
        "latin-1",
    )
    text(
        "cp1252_preamble.csv",
        "Kontoauszug Nr. 7\n"
        "Konto;DE02 1203 0000 0000 2020 51\n"
        "\n"
        "Datum;Referenz;Betrag;Beschreibung\n"
        "02.01.2024;K-1;1.000,00;Einzahlung \u20ac bar\n"
        "03.01.2024;K-2;-250,25;Lastschrift \u201eStrom\u201c\n",
        "cp1252",
    )
    text(
        "bad_utf8.csv",
        "Reference,Amount,Date,Description\nB1,1.00,2024-01-01,Caf\u00e9\n",
        "latin-1",
    )
    xlsx_basic()
    xlsx_serial_second_sheet()
    binaries()


if __name__ == "__main__":
    main()
