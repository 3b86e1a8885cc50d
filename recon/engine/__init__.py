"""recon's matching engine: a pure library (no Flask, no database).

``validate_rules(rules)`` returns the normalised rules or raises
``RulesError`` listing every problem. ``run_reconciliation(left, right,
rules, out_path, ...)`` reads two canonical source Parquet files (columns
``row, key, amount, date, currency, description, ...``), runs the passes in
order, pairs the leftovers into breaks, writes the results Parquet and
returns the summary. The semantics, written for users, are docs/rules.md; the
choices they leave to the implementation are written down here.

Results Parquet, one row per input record and side, sorted by side then row,
byte-identical for the same inputs and rules whatever their physical order:

- ``side`` 'left' | 'right'; ``row`` the source's row number
- ``status`` matched | suggested | break | unmatched
- ``pass`` the pass name, 'break' for breaks, NULL when unmatched
- ``match_id`` the lowest left row of the match or break, shared by its records
- ``confidence`` 0-100 (2 decimals) for matched and suggested, else NULL
- ``amount_diff`` exact decimal, left minus right (a group's sum for group passes)
- ``date_diff_days`` left date minus right date (for the "one" record of a
  group, the member's difference with the largest magnitude)
- ``duplicate_key`` the normalised key repeats within the record's side
- ``diff_fields`` for breaks, the canonical fields that differ, comma separated
  in the order key,amount,date,currency,description ('' when none); else NULL

Choices: an empty key is no key (never equal, never a duplicate); a NULL
value never equals anything (so NULL dates fail a date window); a missing
description scores 0 similarity; currencies are only compared when both
records have one; group passes (one_to_many / many_to_one) require the
group's members to share one currency; breaks are paired without the
currency guard (a currency difference shows in ``diff_fields``);
``break_on`` defaults to ``["key"]``. Ties in every ordering end with the left
row, then the right row.

Summary (JSON-serialisable; amounts are strings at the side's own scale,
``duration_seconds`` is the only field that changes between runs)::

    {"left": {"rows": N, "by_status": {status: {"rows": n, "amount": {ccy or "": "123.45"}}}},
     "right": {...},
     "match_rate": 0.93,          # matched records of both sides / all records
     "passes": [{"name", "action", "cardinality", "estimate", "candidates",
                 "matches", "left_rows", "right_rows", "match_rate"}],
     "breaks": n, "duplicate_keys": {"left": n, "right": n},
     "amount_scale": 2, "duration_seconds": 1.23}

``matches`` counts matches (a group is one), ``left_rows``/``right_rows`` the
records the pass matched, ``match_rate`` their share of all records.
"""

from recon.engine.errors import EngineCancelled, EngineError, RulesError
from recon.engine.rules import validate_rules
from recon.engine.run import run_reconciliation

__all__ = [
    "EngineCancelled",
    "EngineError",
    "RulesError",
    "run_reconciliation",
    "validate_rules",
]
