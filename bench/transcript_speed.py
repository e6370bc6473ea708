"""Reading transcripts: MB/s, linear in size, against the cheapest possible line scan.

Baseline: splitting the text into lines and testing each for one literal, the least any
line reader does. Target: 10 MB in well under a second per MB, and 10x the text takes
about 10x the time (no quadratic corner, also for one 10 MB line).
"""

from __future__ import annotations

import time
from pathlib import Path

from bench.results import figure
from runbook import transcript

SAMPLE = Path(__file__).with_name("sample-vvv.txt")


def _seconds(fn, *args) -> float:
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        fn(*args)
        best = min(best, time.perf_counter() - started)
    return best


def _baseline(text: str) -> int:
    return sum("Permission denied" in line for line in text.splitlines())


def run() -> list[dict]:
    sample = SAMPLE.read_text()
    one_mb = sample * (1_000_000 // len(sample) + 1)
    ten_mb = one_mb * 10
    one = _seconds(transcript.explain, one_mb)
    ten = _seconds(transcript.explain, ten_mb)
    base = _seconds(_baseline, ten_mb)
    line = _seconds(transcript.explain, "debug1: Offering public key: " * 350_000)
    mb = len(ten_mb) / 1e6
    print(
        f"  10 MB -vvv transcript: {ten:.2f}s ({ten / mb:.3f} s/MB); line scan baseline "
        f"{base:.2f}s; ratio {ten / base:.1f}x"
    )
    print(f"  linearity: 10 MB / 1 MB = {ten / one:.1f} (10 is linear)")
    print(f"  one 10 MB line: {line:.2f}s")
    return [
        figure("explain: 10 MB -vvv transcript", ten, base, "s", "<= 0.5 s/MB", ten / mb < 0.5),
        figure(
            "explain: 10 MB vs 10 x 1 MB (linear)",
            ten,
            one * 10,
            "s",
            "ratio <= 1.4",
            ten / (one * 10) <= 1.4,
        ),
        figure("explain: one 10 MB line", line, 2.0, "s", "< 2 s", line < 2),
    ]
