"""`make bench`: every benchmark, one table, and bench/results.json.

Each figure is ours against a baseline measured in the same run (these machines are noisy:
the benchmarks quote medians of several runs where a run is short).
"""

from __future__ import annotations

import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path

from bench import batch_speed, diagnose_speed, logs_speed, report_speed, transcript_speed
from runbook.tables import table


def _memory_gib() -> float:
    with open("/proc/meminfo") as handle:
        kib = int(next(ln for ln in handle if ln.startswith("MemTotal")).split()[1])
    return round(kib / 2**20, 1)


def main() -> int:
    results = []
    for bench in (transcript_speed, logs_speed, diagnose_speed, report_speed, batch_speed):
        print(f"== {bench.__name__.removeprefix('bench.')}: {bench.__doc__.splitlines()[0]}")
        results += bench.run()
    rows = [
        (
            r["figure"],
            f"{r['ours']} {r['unit']}",
            f"{r['baseline']} {r['unit']}",
            f"{r['ratio']}x",
            r["target"],
            "yes" if r["met"] else "NO",
        )
        for r in results
    ]
    print()
    print(table(("figure", "ours", "baseline", "ratio", "target", "met?"), rows))
    document = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cores": os.cpu_count(), "memory_gib": _memory_gib()},
        "results": results,
    }
    Path(__file__).with_name("results.json").write_text(json.dumps(document, indent=2) + "\n")
    return 0 if all(r["met"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
