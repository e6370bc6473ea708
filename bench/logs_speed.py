"""sshd logs to a DataFrame: one million lines, time and memory, against a bare scan.

Target (issue 5): one million lines in at most 10 s on this 2-core machine, with memory
that follows the events kept (the parser's own working set stays flat). Baseline: reading
the same file and splitting each line at ": " once, the least any log reader does.
"""

from __future__ import annotations

import resource
import subprocess
import tempfile
import time
from pathlib import Path

from bench.results import figure
from runbook import logs

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpora" / "fail2ban" / "sshd"
LINES = 1_000_000


def _sample() -> list[str]:
    if CORPUS.is_file():
        text = CORPUS.read_text(errors="replace").splitlines()
        return [line for line in text if line and not line.startswith("#")]
    return [
        f"Nov 28 10:00:00 h sshd[{i}]: Failed password for root from 192.0.2.{i % 250} "
        f"port {1000 + i} ssh2"
        for i in range(100)
    ]


def _baseline(path: Path) -> int:
    count = 0
    with path.open(encoding="utf-8", errors="replace") as handle:
        for line in handle:
            count += len(line.split(": ", 1))
    return count


def run() -> list[dict]:
    sample = _sample()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "auth.log"
        with path.open("w") as handle:
            for i in range(LINES):
                handle.write(sample[i % len(sample)] + "\n")
        started = time.perf_counter()
        _baseline(path)
        base = time.perf_counter() - started
        started = time.perf_counter()
        subprocess.run(["grep", "-c", "sshd", str(path)], capture_output=True, check=False)
        grep = time.perf_counter() - started
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        started = time.perf_counter()
        frame = logs.read_sshd_log([path])
        took = time.perf_counter() - started
        peak = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
        size = path.stat().st_size / 2**20
    kept = frame.memory_usage(deep=True).sum() / 2**20
    print(
        f"  {LINES} lines ({size:.0f} MB) -> {len(frame)} events in {took:.1f}s; "
        f"bare scan {base:.2f}s; ratio {took / base:.1f}x"
    )
    print(
        f"  memory: peak growth {peak:.0f} MB for a DataFrame of {kept:.0f} MB "
        f"({peak / kept:.1f}x the events kept)"
    )
    total = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return [
        figure(
            "logs: 1M lines to a DataFrame",
            took,
            grep,
            "s",
            "<= 10 s (baseline: grep -c)",
            took <= 10,
        ),
        figure(
            "logs: peak memory of the 1M-line parse", total, kept, "MiB", "< 1024 MiB", total < 1024
        ),
    ]
