"""Chart geometry for the analytics page: plain SVG drawn by the templates, no script.

Each function turns the analytics service's figures into coordinates inside a fixed
view box; the page shows the same figures as a table beside each chart. Amounts
stay exact text for display and become floats only for bar lengths.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

WIDTH, HEIGHT = 640, 240
LEFT, RIGHT, TOP, BOTTOM = 56, 16, 20, 40  # margins for the axis labels


def _plot_box() -> tuple[float, float]:
    return WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM


def match_rates(jobs: list[dict[str, Any]]) -> dict[str, Any]:
    """Return a line of the match rate of each succeeded job (dry runs left out), in time order."""
    runs = [
        j
        for j in jobs
        if j["status"] == "succeeded" and not j["dry_run"] and j["match_rate"] is not None
    ]
    width, height = _plot_box()
    step = width / max(len(runs) - 1, 1)
    points = []
    for i, job in enumerate(runs):
        rate = float(job["match_rate"])
        points.append(
            {
                "x": round(LEFT + (i * step if len(runs) > 1 else width / 2), 1),
                "y": round(TOP + height * (1 - rate), 1),
                "label": f"job {job['id']}",
                "when": (job["finished_at"] or "")[:10],
                "value": f"{rate:.1%}",
            }
        )
    ticks = [
        {"y": round(TOP + height * (1 - t / 100), 1), "label": f"{t}%"}
        for t in (0, 25, 50, 75, 100)
    ]
    return {
        "width": WIDTH,
        "height": HEIGHT,
        "points": points,
        "line": " ".join(f"{p['x']},{p['y']}" for p in points),
        "ticks": ticks,
        "left": LEFT,
        "right": WIDTH - RIGHT,
        "base": TOP + height,
    }


def bars(counts: dict[str, int], *, unit: str) -> dict[str, Any]:
    """Return one vertical bar per label, scaled to the largest count."""
    width, height = _plot_box()
    top = max(list(counts.values()) + [1])
    slot = width / max(len(counts), 1)
    items = []
    for i, (label, count) in enumerate(counts.items()):
        h = height * count / top
        items.append(
            {
                "x": round(LEFT + i * slot + slot * 0.15, 1),
                "y": round(TOP + height - h, 1),
                "w": round(slot * 0.7, 1),
                "h": round(h, 1),
                "cx": round(LEFT + i * slot + slot / 2, 1),
                "label": label,
                "value": count,
            }
        )
    return {
        "width": WIDTH,
        "height": HEIGHT,
        "bars": items,
        "unit": unit,
        "base": TOP + height,
        "top": top,
    }


def amounts(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Return one horizontal bar per currency and side, scaled to the largest amount by size."""
    row_height = 32
    sizes = [abs(Decimal(r[side])) for r in rows for side in ("left", "right")]
    top = max(sizes + [Decimal(1)])
    label_width, value_width = 130, 150
    span = WIDTH - label_width - value_width
    items = []
    y = 8
    for r in rows:
        for side in ("left", "right"):
            value = Decimal(r[side])
            items.append(
                {
                    "y": y,
                    "w": round(float(abs(value) / top) * span, 1),
                    "label": f"{r['currency'] or 'no currency'} {side}",
                    "side": side,
                    "value": r[side],
                }
            )
            y += row_height
        y += 8
    return {
        "width": WIDTH,
        "height": max(y, 40),
        "bars": items,
        "x0": label_width,
        "value_x": WIDTH - value_width + 8,
        "bar_height": row_height - 8,
    }
