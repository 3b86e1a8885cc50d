"""Spans for the steps of one long call that reports its progress (the engine's passes).

``step_spans(name)`` opens a span around a block, current inside it (SQL spans
of the block nest under it), and hands the block a ``StepSpans`` to report its
steps with. A step's span opens when the step is reported and stays open until
the block ends, so what is known only then (row counts) still lands on it; its
end time is the moment the next step began. Spans are started from the current
app's tracer provider; without an app, or when spans are not recorded, this
costs a few calls per step.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

from flask import current_app, has_app_context
from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode
from opentelemetry.util.types import AttributeValue

from instrumentation.tracing import app_tracer

Attributes = Mapping[str, AttributeValue]


@dataclass
class _Step:
    span: trace.Span
    ended_at: int | None = None


class StepSpans:
    """The child spans of one call's steps, kept open until the call is over."""

    def __init__(self, tracer: trace.Tracer, parent: trace.Span) -> None:
        self._tracer = tracer
        self._parent = parent
        self._context = trace.set_span_in_context(parent)
        self._steps: list[_Step] = []
        self.recording = parent.is_recording()

    def begin(self, name: str, attributes: Attributes | None = None) -> None:
        """Start step ``name``; the step before it ends now."""
        if not self.recording:
            return
        now = time.time_ns()
        self.end_current(now)
        span = self._tracer.start_span(
            name, context=self._context, start_time=now, attributes=attributes
        )
        self._steps.append(_Step(span))

    def end_current(self, now: int | None = None) -> None:
        """End the running step's clock without starting another."""
        if self._steps and self._steps[-1].ended_at is None:
            self._steps[-1].ended_at = now or time.time_ns()

    def annotate(self, index: int, attributes: Attributes) -> None:
        """Add ``attributes`` to step ``index`` (in the order they began)."""
        if 0 <= index < len(self._steps):
            self._steps[index].span.set_attributes(attributes)

    def annotate_call(self, attributes: Attributes) -> None:
        """Add ``attributes`` to the span around the whole call."""
        if self.recording:
            self._parent.set_attributes(attributes)

    def close(self, error: BaseException | None = None) -> None:
        """End every step; the one running when ``error`` was raised carries it."""
        now = time.time_ns()
        for step in self._steps:
            if step.ended_at is None and error is not None:
                step.span.record_exception(error)
                step.span.set_status(Status(StatusCode.ERROR, str(error)))
            step.span.end(end_time=step.ended_at or now)
        self._steps.clear()


@contextmanager
def step_spans(name: str, *, expected: tuple[type[BaseException], ...] = ()) -> Iterator[StepSpans]:
    """A span ``name`` around the block, with the steps it reports as children.

    Exceptions of the ``expected`` types (a cancellation) end the spans
    without an error status, noted as the call's ``recon.outcome``.
    """
    tracer = (
        app_tracer(current_app._get_current_object())  # type: ignore[attr-defined]
        if has_app_context()
        else trace.NoOpTracer()
    )
    with tracer.start_as_current_span(
        name, record_exception=False, set_status_on_exception=False
    ) as parent:
        steps = StepSpans(tracer, parent)
        try:
            yield steps
        except expected as exc:
            steps.close()
            steps.annotate_call({"recon.outcome": type(exc).__name__})
            raise
        except BaseException as exc:
            steps.close(exc)
            parent.record_exception(exc)
            parent.set_status(Status(StatusCode.ERROR, str(exc)))
            raise
        steps.close()
