"""A job's engine run as spans: one for the run, one child per engine step, with row counts.

The runner wraps the engine call in ``engine_spans`` and passes
``run.progress`` as the engine's progress callback (its own callback is
called on from there). The engine reports each step once, as it starts, in a
fixed order: loading both sides, each pass in the rules' order, the breaks,
writing the results, then ``1.0`` when it is done. So the steps are told apart
by their order, given the rules' number of passes, never by their names (a
pass may be called anything). The engine's summary, once it returns, gives
each step its counts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from instrumentation import StepSpans, record_engine_duration, step_spans
from recon.engine import EngineCancelled

Progress = Callable[[float, str], None]

ENGINE_SPAN = "recon.engine"
LOAD_SPAN = "recon.engine.load"
PASS_SPAN = "recon.engine.pass"  # noqa: S105 - a span name, not a password
BREAKS_SPAN = "recon.engine.breaks"
WRITE_SPAN = "recon.engine.write"


class EngineRun:
    """Follows the engine's progress calls and turns them into step spans."""

    def __init__(self, steps: StepSpans, passes: int, forward: Progress | None) -> None:
        self.steps = steps
        self.passes = passes
        self.forward = forward
        self.calls = 0

    def progress(self, fraction: float, name: str) -> None:
        """The engine's progress callback: start the next step's span, then report on."""
        self._follow(name)
        if self.forward is not None:
            self.forward(fraction, name)

    def _follow(self, name: str) -> None:
        index, self.calls = self.calls, self.calls + 1
        if index == 0:
            self.steps.begin(LOAD_SPAN)
        elif index <= self.passes:
            self.steps.begin(PASS_SPAN, {"recon.pass.name": name, "recon.pass.index": index - 1})
        elif index == self.passes + 1:
            self.steps.begin(BREAKS_SPAN)
        elif index == self.passes + 2:
            self.steps.begin(WRITE_SPAN)
        else:
            self.steps.end_current()

    def finished(self, summary: Mapping[str, Any]) -> None:
        """Record the engine's time and give each step the counts of ``summary``."""
        record_engine_duration(float(summary["duration_seconds"]))
        left = int(summary["left"]["rows"])
        right = int(summary["right"]["rows"])
        sides = {"recon.left_rows": left, "recon.right_rows": right}
        self.steps.annotate_call({**sides, "recon.match_rate": float(summary["match_rate"])})
        self.steps.annotate(0, sides)
        passes: Sequence[Mapping[str, Any]] = summary.get("passes", [])
        for i, result in enumerate(passes):
            self.steps.annotate(
                1 + i,
                {
                    "recon.pass.matches": int(result["matches"]),
                    "recon.pass.candidates": int(result["candidates"]),
                    "recon.left_rows": int(result["left_rows"]),
                    "recon.right_rows": int(result["right_rows"]),
                    "recon.pass.action": str(result["action"]),
                    "recon.pass.cardinality": str(result["cardinality"]),
                },
            )
        self.steps.annotate(1 + len(passes), {"recon.breaks": int(summary["breaks"])})
        self.steps.annotate(2 + len(passes), {"recon.result_rows": left + right})


@contextmanager
def engine_spans(*, rules: Mapping[str, Any], progress: Progress | None) -> Iterator[EngineRun]:
    """A span around the engine call with one child per step; yields the progress to pass on."""
    with step_spans(ENGINE_SPAN, expected=(EngineCancelled,)) as steps:
        yield EngineRun(steps, len(rules.get("passes") or ()), progress)
