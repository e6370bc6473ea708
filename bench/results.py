"""One row of the benchmark table: a figure, ours against its baseline, and the target."""

from __future__ import annotations

from typing import Any


def figure(
    name: str,
    ours: float,
    baseline: float,
    unit: str,
    target: str,
    met: bool,
    ratio: float | None = None,
) -> dict[str, Any]:
    """A result in bench/results.json's shape (ratio = ours / baseline unless given)."""
    return {
        "figure": name,
        "ours": round(ours, 3),
        "baseline": round(baseline, 3),
        "unit": unit,
        "ratio": round(ratio if ratio is not None else (ours / baseline if baseline else 0), 2),
        "target": target,
        "met": bool(met),
    }
