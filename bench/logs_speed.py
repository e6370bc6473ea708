"""sshd logs to a DataFrame: one million lines, time and memory, against grep and fail2ban.

Targets (issues 5 and 9): one million lines (and one million journal records) in at most
10 s on this 2-core machine, at least 20x faster than fail2ban-regex on the same file (its
sshd filter: the tool admins already run over these logs), the ratio to `grep -c` shown;
peak memory under 1 GiB.

The file is fail2ban's own annotated sshd sample (../shared/corpora), every format in
it, repeated to a million lines. Our time is the median of three runs, each in a fresh
process (imports included). Memory is the proportional set size (PSS, shared pages split
fairly) of that process and any children it starts, sampled every 50 ms in a
fourth run: the memory the read really takes from the machine.

fail2ban-regex comes from PATH, or from Debian's fail2ban package unpacked (not
installed: no service, no change to the machine) into bench/.cache with `apt-get
download` and `dpkg -x`; where neither works, that figure says "not measured".
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench.results import figure

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpora" / "fail2ban" / "sshd"
CACHE = Path(__file__).with_name(".cache")
LINES = 1_000_000
RUNS = 3
READ = (
    "import sys\n"
    "from runbook import logs\n"
    "frame = logs.read_sshd_log([sys.argv[1]])\n"
    "print(len(frame), frame.memory_usage(deep=True).sum())\n"
)


def _sample() -> list[str]:
    if CORPUS.is_file():
        text = CORPUS.read_text(errors="replace").splitlines()
        return [line for line in text if line and not line.startswith("#")]
    return [
        f"Nov 28 10:00:00 h sshd[{i}]: Failed password for root from 192.0.2.{i % 250} "
        f"port {1000 + i} ssh2"
        for i in range(100)
    ]


def _journal(path: Path, sample: list[str]) -> None:
    """The sample as ``journalctl -o json`` records (one a millisecond, five sshd pids)."""
    messages = [line.split("]: ", 1)[1] for line in sample if "sshd[" in line and "]: " in line]
    with path.open("w") as handle:
        for i in range(LINES):
            record = {
                "__REALTIME_TIMESTAMP": str(1_764_324_000_000_000 + i * 1000),
                "_HOSTNAME": "web1",
                "SYSLOG_IDENTIFIER": "sshd",
                "_PID": str(1000 + i % 5),
                "MESSAGE": messages[i % len(messages)],
            }
            handle.write(json.dumps(record) + "\n")
        _settle(handle)


def _settle(handle) -> None:
    """The file on disk before any timing: its writeback would otherwise take the disk
    and a core during the first reads (fail2ban-regex, timed last, never met it)."""
    handle.flush()
    os.fsync(handle.fileno())


def _pss_kib(pid: int) -> int:
    """PSS of a process and all its descendants (0 for those already gone)."""
    total, stack = 0, [pid]
    while stack:
        current = stack.pop()
        try:
            with open(f"/proc/{current}/smaps_rollup") as handle:
                total += next(int(ln.split()[1]) for ln in handle if ln.startswith("Pss:"))
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children") as handle:
                    stack += [int(child) for child in handle.read().split()]
        except (OSError, StopIteration, ValueError):
            continue
    return total


def _timed_read(path: Path, *, sample: bool = False) -> tuple[float, float, int, float]:
    """(seconds, peak PSS MiB of the process tree, events, frame MiB) of one fresh read.

    Sampling PSS walks the page tables and costs CPU: the timed runs do not sample.
    """
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-c", READ, str(path)], stdout=subprocess.PIPE, text=True
    )
    peak = 0
    done = threading.Event()

    def watch() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _pss_kib(proc.pid))
            done.wait(0.05)

    sampler = threading.Thread(target=watch, daemon=True)
    if sample:
        sampler.start()
    out, _ = proc.communicate(timeout=600)
    took = time.perf_counter() - started
    done.set()
    if sample:
        sampler.join()
    if proc.returncode != 0:
        raise RuntimeError(f"read_sshd_log failed with exit code {proc.returncode}")
    events, kept = out.split()
    return took, peak / 1024, int(events), int(kept) / 2**20


def _fail2ban_regex() -> tuple[list[str], dict[str, str], Path] | None:
    """argv, environment and sshd filter of fail2ban-regex, or None if unobtainable."""
    installed = shutil.which("fail2ban-regex")
    if installed and Path("/etc/fail2ban/filter.d/sshd.conf").is_file():
        return [installed], {}, Path("/etc/fail2ban/filter.d/sshd.conf")
    root = CACHE / "fail2ban"
    if not (root / "usr" / "bin" / "fail2ban-regex").is_file():
        if not (shutil.which("apt-get") and shutil.which("dpkg")):
            return None
        CACHE.mkdir(exist_ok=True)
        with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
            got = subprocess.run(
                ["apt-get", "download", "fail2ban"], cwd=tmp, capture_output=True, timeout=300
            )
            debs = list(Path(tmp).glob("fail2ban_*.deb"))
            if got.returncode != 0 or not debs:
                return None
            subprocess.run(["dpkg", "-x", str(debs[0]), str(root)], check=True, timeout=300)
    python = shutil.which("python3") or sys.executable
    env = {"PYTHONPATH": str(root / "usr" / "lib" / "python3" / "dist-packages")}
    argv = [python, str(root / "usr" / "bin" / "fail2ban-regex")]
    return argv, env, root / "etc" / "fail2ban" / "filter.d" / "sshd.conf"


def run() -> list[dict]:
    sample = _sample()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "auth.log"
        with path.open("w") as handle:
            for i in range(LINES):
                handle.write(sample[i % len(sample)] + "\n")
            _settle(handle)
        size = path.stat().st_size / 2**20
        started = time.perf_counter()
        subprocess.run(["grep", "-c", "sshd", str(path)], capture_output=True, check=False)
        grep = time.perf_counter() - started
        runs = [_timed_read(path) for _ in range(RUNS)]
        took = statistics.median(r[0] for r in runs)
        _, peak, events, kept = _timed_read(path, sample=True)
        journal = Path(tmp) / "journal.json"
        _journal(journal, sample)
        started = time.perf_counter()
        subprocess.run(["grep", "-c", "sshd", str(journal)], capture_output=True, check=False)
        journal_grep = time.perf_counter() - started
        journal_took = statistics.median(_timed_read(journal)[0] for _ in range(RUNS))
        f2b = _fail2ban_regex()
        f2b_took = None
        if f2b:
            argv, env, conf = f2b
            started = time.perf_counter()
            done = subprocess.run(
                [*argv, str(path), str(conf)],
                capture_output=True,
                env={**os.environ, **env},
                timeout=1800,
            )
            if done.returncode == 0:
                f2b_took = time.perf_counter() - started
    print(
        f"  {LINES} lines ({size:.0f} MB) -> {events} events in {took:.1f}s (median of "
        f"{RUNS}: {', '.join(f'{r[0]:.1f}' for r in runs)}); grep -c {grep:.2f}s; "
        + (f"fail2ban-regex {f2b_took:.1f}s" if f2b_took else "fail2ban-regex not available")
    )
    print(
        f"  memory: peak PSS {peak:.0f} MiB (the reading process) for a DataFrame of {kept:.0f} MiB"
    )
    print(f"  the same as {LINES} journalctl -o json records: {journal_took:.1f}s")
    results = [
        figure(
            "logs: 1M lines to a DataFrame (vs grep -c)",
            took,
            grep,
            "s",
            "<= 10 s",
            took <= 10,
        ),
        figure(
            "logs: 1M journal records to a DataFrame (vs grep -c)",
            journal_took,
            journal_grep,
            "s",
            "<= 10 s",
            journal_took <= 10,
        ),
        figure(
            "logs: peak memory of the 1M-line parse (PSS)",
            peak,
            kept,
            "MiB",
            "< 1024 MiB",
            peak < 1024,
        ),
    ]
    if f2b_took:
        results.append(
            figure(
                "logs: 1M lines, fail2ban-regex / ours",
                took,
                f2b_took,
                "s",
                ">= 20x faster",
                f2b_took / took >= 20,
                ratio=f2b_took / took,
            )
        )
    else:
        results.append(
            figure(
                "logs: fail2ban-regex (not available here: not measured)",
                took,
                0,
                "s",
                ">= 20x faster",
                False,
            )
        )
    return results
