"""The demo `make run` loads: "Bank vs ledger (demo)" with two realistic sources, a saved
rule set and a finished job, so the README's walk-through shows real results.

The data is generated from a fixed seed: a bank statement (debit/credit columns,
day-first dates, a preamble line) and a ledger export (signed amounts, ISO dates),
with exact matches, cent differences, payments booked a few days apart, breaks,
a batched card payout booked as single sales, and items on one side only.
"""

from __future__ import annotations

import csv
import io
import random
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from recon.audit.service import SYSTEM
from recon.db_types import SessionLike
from recon.jobs.models import Job
from recon.jobs.rulesets import save_ruleset
from recon.jobs.service import create_job
from recon.projects.models import Membership, Project, ProjectRole
from recon.sources.service import Upload, create_source
from recon.storage import Storage

PROJECT = "Bank vs ledger (demo)"
RULES = {
    "passes": [
        {
            "name": "exact",
            "match_on": ["key"],
            "amount_tolerance": {"absolute": "0"},
            "date_window_days": 0,
        },
        {
            "name": "tolerant",
            "match_on": ["key"],
            "amount_tolerance": {"absolute": "0.05", "relative": "0.001"},
            "date_window_days": 3,
        },
        {
            "name": "batched",
            "match_on": ["key"],
            "cardinality": "one_to_many",
            "amount_tolerance": {"absolute": "0.01"},
            "date_window_days": 3,
        },
        {
            "name": "amount_date",
            "match_on": ["amount"],
            "date_window_days": 2,
            "description_min_similarity": 60,
            "action": "suggest",
        },
    ],
    "break_on": ["key"],
}
CUSTOMERS = [
    "Acme GmbH",
    "Borsig AG",
    "Carl Zeiss",
    "Delta Freight",
    "Eberle & Co",
    "Fischer Logistik",
    "Gruber Bau",
    "Hansa Foods",
    "Iris Optics",
    "Jaeger Textil",
]


@dataclass
class Entry:
    key: str
    amount: Decimal
    day: date
    text: str


def _money(rng: random.Random) -> Decimal:
    return Decimal(rng.randrange(1_000, 2_500_000)) / 100


def generate(rows: int = 3000, seed: int = 7) -> tuple[str, str]:
    """Return (bank CSV, ledger CSV) with a known mix of cases."""
    rng = random.Random(seed)  # noqa: S311 - demo data, reproducible on purpose
    start = date(2024, 3, 1)
    bank: list[Entry] = []
    ledger: list[Entry] = []
    for i in range(rows):
        key = f"INV-{10000 + i}"
        who = rng.choice(CUSTOMERS)
        amount = _money(rng) * (1 if rng.random() < 0.8 else -1)
        day = start + timedelta(days=rng.randrange(0, 28))
        roll = rng.random()
        bank_text, ledger_text = f"SEPA {who} {key}", f"{who} invoice {key[4:]}"
        if roll < 0.80:  # the same on both sides
            bank.append(Entry(key, amount, day, bank_text))
            ledger.append(Entry(key, amount, day, ledger_text))
        elif roll < 0.87:  # a cent off, booked a day or two later
            bank.append(Entry(key, amount, day, bank_text))
            ledger.append(
                Entry(
                    key,
                    amount + Decimal("0.01") * rng.choice((-1, 1)),
                    day + timedelta(days=rng.randrange(1, 3)),
                    ledger_text,
                )
            )
        elif roll < 0.91:  # a break: same reference, the amount is wrong
            bank.append(Entry(key, amount, day, bank_text))
            ledger.append(
                Entry(key, amount + Decimal(rng.randrange(100, 9000)) / 100, day, ledger_text)
            )
        elif roll < 0.95:  # the bank dropped the reference: only amount and date agree
            bank.append(Entry(f"TRF{rng.randrange(10**8):08d}", amount, day, f"{who} payment"))
            ledger.append(Entry(key, amount, day + timedelta(days=1), f"{who} payment {key}"))
        elif roll < 0.98:
            bank.append(Entry(key, amount, day, bank_text + " (not booked)"))
        else:
            ledger.append(Entry(key, amount, day, ledger_text + " (not yet paid)"))
    for week in range(4):  # card payouts: one bank credit, many ledger sales
        key = f"PAYOUT-2024-03-W{week + 1}"
        day = start + timedelta(days=7 * week + 6)
        sales = [Decimal(rng.randrange(500, 40000)) / 100 for _ in range(rng.randrange(5, 12))]
        bank.append(Entry(key, sum(sales, Decimal(0)), day, f"CARD PAYOUT {key}"))
        ledger.extend(
            Entry(key, s, day - timedelta(days=rng.randrange(0, 3)), "Card sale") for s in sales
        )
    rng.shuffle(ledger)
    return _bank_csv(bank), _ledger_csv(ledger)


def _bank_csv(entries: list[Entry]) -> str:
    out = io.StringIO()
    out.write("Statement ACME Bank, account DE00 1234 5678 9000, March 2024\n")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["Booking Date", "Reference", "Narrative", "Debit", "Credit", "Currency"])
    for e in sorted(entries, key=lambda e: (e.day, e.key)):
        debit = f"{-e.amount:,.2f}" if e.amount < 0 else ""
        credit = f"{e.amount:,.2f}" if e.amount >= 0 else ""
        writer.writerow([e.day.strftime("%d/%m/%Y"), e.key, e.text, debit, credit, "EUR"])
    return out.getvalue()


def _ledger_csv(entries: list[Entry]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["Doc No", "Posting Date", "Amount", "Currency", "Memo", "Account"])
    for e in entries:
        writer.writerow([e.key, e.day.isoformat(), f"{e.amount:.2f}", "EUR", e.text, "1200"])
    return out.getvalue()


def load_demo(*, session: SessionLike, storage: Storage, owner_id: int, enqueue) -> Job | None:  # noqa: ANN001
    """Create the demo project, sources, rule set and a finished job; None if it exists."""
    if session.scalar(select(Project.id).where(Project.name == PROJECT)) is not None:
        return None
    project = Project(
        name=PROJECT,
        description="Demo: March bank statement against the ledger",
        created_by_id=owner_id,
    )
    project.members.append(Membership(user_id=owner_id, role=ProjectRole.owner))
    session.add(project)
    session.commit()
    bank, ledger = generate()

    def upload(text: str, filename: str, name: str, mapping: dict, options: dict | None) -> Any:
        return create_source(
            session=session,
            storage=storage,
            project=project,
            max_bytes=64 * 2**20,
            actor=SYSTEM,
            upload=Upload(
                stream=io.BytesIO(text.encode()),
                filename=filename,
                name=name,
                mapping=mapping,
                options=options,
            ),
        )

    left = upload(
        bank,
        "bank-2024-03.csv",
        "Bank statement March 2024",
        {"date": "Booking Date"},
        {
            "skip_rows": 1,
            "date_format": "%d/%m/%Y",
            "debit_column": "Debit",
            "credit_column": "Credit",
        },
    )
    right = upload(
        ledger,
        "ledger-2024-03.csv",
        "Ledger March 2024",
        {"key": "Doc No", "date": "Posting Date"},
        None,
    )
    ruleset = save_ruleset(
        session=session,
        project=project,
        name="Monthly bank reconciliation",
        rules=RULES,
        description="exact, then tolerant, then card payouts",
    )
    return create_job(
        session=session,
        project=project,
        left_source_id=left.id,
        right_source_id=right.id,
        ruleset_id=ruleset.id,
        enqueue=enqueue,
    )
