"""Shared by the pipeline fault tests: reading JSON log lines and metrics, polling a job."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

FINISHED = {"succeeded", "failed", "cancelled"}


def json_lines(text: str) -> list[dict[str, Any]]:
    """The JSON log lines of a process's output (other lines are skipped)."""
    found = []
    for line in text.splitlines():
        start = line.find("{")
        if start < 0:
            continue
        try:
            entry = json.loads(line[start:])
        except ValueError:
            continue
        if isinstance(entry, dict):
            found.append(entry)
    return found


def failure_lines(entries: Iterable[dict[str, Any]], job_id: int, step: str) -> list[dict]:
    """The runner's log lines for a failure of ``job_id`` at ``step``."""
    return [e for e in entries if e.get("job_id") == job_id and e.get("step") == step]


def metric(client: Any, name: str, **labels: str) -> float:
    """The value of one sample of /api/metrics (0 when absent)."""
    text = client.get("/api/metrics").get_data(as_text=True)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return 0.0


def wait_for(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def assert_sentence(error: str | None, job_id: int) -> None:
    """A job's error is a sentence for a person: no SQL, no traceback, no exception name."""
    assert error, "the failed job has no error"
    assert f"job {job_id}" in error and error.endswith(".")
    for internal in ("Traceback", "SELECT", "INSERT", "UPDATE", "Error:", "Fault", "\n"):
        assert internal not in error, f"{internal!r} in the job's error: {error}"
