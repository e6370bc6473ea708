"""`make bench`: run every benchmark and print its ratios against its baselines."""

from __future__ import annotations

import sys

from bench import diagnose_speed, logs_speed, report_speed, transcript_speed


def main() -> int:
    failed = 0
    for bench in (transcript_speed, logs_speed, diagnose_speed, report_speed):
        print(f"== {bench.__name__.removeprefix('bench.')}: {bench.__doc__.splitlines()[0]}")
        failed += not bench.run()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
