"""SQLAlchemy cursor events feeding ``reconciliation_db_query_duration_seconds``.

Every statement is timed from ``before_cursor_execute`` to
``after_cursor_execute`` or ``handle_error`` (failed statements count too).
``operation`` and ``table`` come from allow-lists so a hand-written query can
not create new series: the table is the first allow-listed table the statement
names after FROM/INTO/UPDATE/JOIN, else ``other``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable
from functools import lru_cache
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

from instrumentation.metrics import Metrics
from instrumentation.recorders import current_route, in_timed_call

_START_ATTR = "_recon_query_start"
_LISTENING_ATTR = "_recon_instrumented_by"
_VERBS = {"select": "select", "insert": "insert", "update": "update", "delete": "delete"}
_TABLE_RE = re.compile(
    r"""\b(?:from|into|update|join)\s+(?:["`\[]?\w+["`\]]?\.)?["`\[]?(\w+)""",
    re.IGNORECASE,
)


def statement_classifier(tables: Iterable[str]) -> Callable[[str], tuple[str, str]]:
    """Return a cached ``statement -> (operation, table)`` function for these tables."""
    allowed = frozenset(name.lower() for name in tables)

    # Statements repeat (they come from the same compiled queries), so parsing
    # each distinct text once keeps the per-query cost at a dict lookup.
    @lru_cache(maxsize=4096)
    def classify(statement: str) -> tuple[str, str]:
        head = statement.lstrip(" \t\r\n(").split(None, 1)
        verb = head[0].lower() if head else ""
        operation = _VERBS.get(verb, "other")
        if verb == "with":
            # CTE: the verb of the outer statement decides.
            outer = re.search(r"\)\s*(select|insert|update|delete)\b", statement, re.IGNORECASE)
            operation = outer.group(1).lower() if outer else "select"
        table = "other"
        for match in _TABLE_RE.finditer(statement):
            name = match.group(1).lower()
            if name in allowed:
                table = name
                break
        return operation, table

    return classify


def instrument_engine(engine: Engine, metrics: Metrics, tables: Iterable[str]) -> bool:
    """Listen to ``engine``'s cursor events; return False if it was already done."""
    if getattr(engine, _LISTENING_ATTR, None) is metrics:
        return False
    classify = statement_classifier(tables)

    def before(
        conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
    ) -> None:
        # Inside db_query_timer the whole call is one observation: no clock, no state.
        if context is not None and not in_timed_call():
            setattr(context, _START_ATTR, time.perf_counter())

    def finish(context: Any, statement: str | None) -> None:
        start = getattr(context, _START_ATTR, None) if context is not None else None
        if start is None:
            return
        setattr(context, _START_ATTR, None)
        operation, table = classify(statement or "")
        metrics.record_query(current_route(), operation, table, time.perf_counter() - start)

    def after(
        conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
    ) -> None:
        finish(context, statement)

    def on_error(exception_context: Any) -> None:
        finish(exception_context.execution_context, exception_context.statement)

    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
    event.listen(engine, "handle_error", on_error)
    setattr(engine, _LISTENING_ATTR, metrics)
    metrics.observe_engine(engine)
    return True
