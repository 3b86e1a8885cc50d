"""Seeded MT940 and CAMT.053 files for the bank-format benchmark, with their exact totals.

``mt940(path, records, seed)`` and ``camt053(path, records, seed)`` write
``records`` transactions in statements of ``PER_STATEMENT`` and return the sum
of the signed amounts in cents; each statement's closing balance is its
opening plus its records, so every statement balances.
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from pathlib import Path

PER_STATEMENT = 1_000
START = date(2024, 1, 1)


def _amounts(records: int, seed: int) -> list[int]:
    rng = random.Random(seed)  # noqa: S311 - benchmark data, not secrets
    return [rng.choice((-1, 1)) * rng.randint(1, 250_000_00) for _ in range(records)]


def _mark(cents: int) -> str:
    return "C" if cents >= 0 else "D"


def _swift(cents: int) -> str:
    return f"{abs(cents) // 100},{abs(cents) % 100:02d}"


def mt940(path: Path, records: int, seed: int) -> int:
    """Write an MT940 file of ``records`` transactions; return their sum in cents."""
    amounts = _amounts(records, seed)
    balance = 1_000_000_00
    with path.open("w", encoding="latin-1", newline="\r\n") as out:
        for number, start in enumerate(range(0, records, PER_STATEMENT), start=1):
            day = START + timedelta(days=number)
            chunk = amounts[start : start + PER_STATEMENT]
            out.write(f":20:STMT{number:06d}\n:25:NL91ABNA0417164300\n:28C:{number}/1\n")
            out.write(f":60F:{_mark(balance)}{day:%y%m%d}EUR{_swift(balance)}\n")
            for i, cents in enumerate(chunk):
                ref = f"REF{start + i:09d}"
                line = f"{day:%y%m%d}{day:%m%d}{_mark(cents)}{_swift(cents)}NTRF{ref}"
                out.write(
                    f":61:{line}//B{start + i:012d}\n"
                    f":86:Payment {ref} invoice {start + i} customer {seed}\n"
                )
                balance += cents
            out.write(f":62F:{_mark(balance)}{day:%y%m%d}EUR{_swift(balance)}\n-\n")
    return sum(amounts)


def camt053(path: Path, records: int, seed: int) -> int:
    """Write a CAMT.053.001.02 file of ``records`` entries; return their sum in cents."""
    amounts = _amounts(records, seed)
    balance = 1_000_000_00

    def bal(code: str, cents: int, day: date) -> str:
        indicator = "CRDT" if cents >= 0 else "DBIT"
        return (
            f"<Bal><Tp><CdOrPrtry><Cd>{code}</Cd></CdOrPrtry></Tp>"
            f'<Amt Ccy="EUR">{abs(cents) / 100:.2f}</Amt><CdtDbtInd>{indicator}</CdtDbtInd>'
            f"<Dt><Dt>{day.isoformat()}</Dt></Dt></Bal>\n"
        )

    with path.open("w", encoding="utf-8") as out:
        out.write(
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            '<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"><BkToCstmrStmt>\n'
            "<GrpHdr><MsgId>BENCH</MsgId><CreDtTm>2024-01-01T00:00:00</CreDtTm></GrpHdr>\n"
        )
        for number, start in enumerate(range(0, records, PER_STATEMENT), start=1):
            day = START + timedelta(days=number)
            chunk = amounts[start : start + PER_STATEMENT]
            out.write(
                f"<Stmt><Id>STMT{number:06d}</Id><Acct><Id><IBAN>NL91ABNA0417164300</IBAN></Id>"
                "<Ccy>EUR</Ccy></Acct>\n"
            )
            out.write(bal("OPBD", balance, day))
            closing = balance + sum(chunk)
            out.write(bal("CLBD", closing, day))
            for i, cents in enumerate(chunk):
                indicator = "CRDT" if cents >= 0 else "DBIT"
                out.write(
                    f'<Ntry><Amt Ccy="EUR">{abs(cents) / 100:.2f}</Amt><CdtDbtInd>{indicator}'
                    f"</CdtDbtInd><Sts>BOOK</Sts><BookgDt><Dt>{day.isoformat()}</Dt></BookgDt>"
                    f"<ValDt><Dt>{day.isoformat()}</Dt></ValDt>"
                    f"<AcctSvcrRef>B{start + i:012d}</AcctSvcrRef><NtryDtls><TxDtls><Refs>"
                    f"<EndToEndId>REF{start + i:09d}</EndToEndId></Refs><RmtInf><Ustrd>Invoice "
                    f"{start + i} customer {seed}</Ustrd></RmtInf></TxDtls></NtryDtls></Ntry>\n"
                )
            balance = closing
            out.write("</Stmt>\n")
        out.write("</BkToCstmrStmt></Document>\n")
    return sum(amounts)
