"""A 200-target fleet against `xargs -P 64 ssh` and against its slowest single target.

Targets (issue 7): the batch finishes within 1.5x of
`xargs -P 64 ssh -o BatchMode=yes -o ConnectTimeout=T host true` over the same list (which
only says yes or no, where we give causes), and within 1.3x of the slowest single target.
Also the peak memory of a 1000-target fleet (target: under 1 GiB). The fleet lives in the
lab's network namespace: healthy (sshd on 127.0.0.2:2222), refused (127.0.0.2:22) and
black-holed (203.0.113.22) targets, mixed. Times are medians of three runs.

The lab's servers share this machine's cores with the client under test, where a real
fleet's run on the targets: they run at the lowest CPU priority (runbook.lab.procs), the
same for the batch, the single target and xargs. Without that, here (2 cores) the 67
logins' sshd work came before the client's and the batch took 1.45x the single target.
"""

from __future__ import annotations

import os
import secrets
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench.results import figure
from runbook import lab as lab_mod

TIMEOUT = 3
TARGETS = 200
RUNS = 3


def _inventory(path: Path, count: int, key: Path, known: Path) -> list[tuple[str, int]]:
    """A fleet of ``count`` distinct targets (a target listed twice runs once), a third of
    each kind: healthy ones by a Host alias of their own in a generated ssh_config (all
    the lab's sshd on 127.0.0.2:2222), refused ones at distinct loopback addresses, black
    holes at distinct ports of the dropped address. Returns each one's (address, port)."""
    config = path.with_suffix(".ssh_config")
    rows: list[tuple[str, int]] = []
    lines, hosts = [], []
    for i in range(count):
        if i % 3 == 0:
            alias = f"healthy-{i}"
            hosts.append(f"Host {alias}\n  HostName 127.0.0.2\n  Port 2222\n")
            lines.append(f"{alias},,alice,{key},{known},{config}\n")
            rows.append(("127.0.0.2", 2222))
        elif i % 3 == 1:
            address = f"127.0.{1 + i // 250}.{1 + i % 250}"
            lines.append(f"{address},22,alice,{key},{known},\n")
            rows.append((address, 22))
        else:
            lines.append(f"203.0.113.22,{1000 + i},alice,{key},{known},\n")
            rows.append(("203.0.113.22", 1000 + i))
    config.write_text("".join(hosts))
    path.write_text("target,port,user,identity_file,known_hosts,ssh_config\n" + "".join(lines))
    return rows


def _known_hosts(lab: lab_mod.Lab, path: Path) -> None:
    keys = sorted((Path(lab.dir) / "hostkeys").glob("*.pub"))
    path.write_text(
        "".join(
            f"[127.0.0.2]:2222 {k.read_text().split()[0]} {k.read_text().split()[1]}\n"
            for k in keys
        )
    )


def _timed(argv: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, env=env, capture_output=True, timeout=900, check=False)
    return time.perf_counter() - started


def _median(argv: Callable[[int], list[str]], env: dict[str, str]) -> float:
    """The median time of RUNS runs (``argv(run)`` may name a fresh output per run)."""
    return statistics.median(_timed(argv(run), env) for run in range(RUNS))


def run() -> list[dict]:
    if os.geteuid() != 0:
        print("  skipped: the lab needs root")
        return []
    lab = lab_mod.up(
        ["sshd-moved", "timeout"], f"/var/tmp/ssh-runbook-bench-{secrets.token_hex(3)}"
    )
    try:
        return _measure(lab)
    finally:
        lab_mod.down(lab.dir)


def _measure(lab: lab_mod.Lab) -> list[dict]:
    inside = ["ip", "netns", "exec", str(lab.netns)]
    env = {k: v for k, v in os.environ.items() if k != "SSH_AUTH_SOCK"}
    key = Path(lab.dir) / "keys" / "authorized"
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        known = work / "known_hosts"
        _known_hosts(lab, known)
        rows = _inventory(work / "fleet.csv", TARGETS, key, known)
        runbook = [sys.executable, "-m", "runbook"]
        single = _median(
            lambda _: [
                *inside,
                *runbook,
                "diagnose",
                "alice@203.0.113.22",
                "-i",
                str(key),
                "--known-hosts",
                str(known),
                "--timeout",
                str(TIMEOUT),
                "--no-report",
            ],
            env,
        )
        batch = _median(
            lambda run: [
                *inside,
                *runbook,
                "batch",
                str(work / "fleet.csv"),
                "--out",
                str(work / f"out{run}"),
                "--timeout",
                str(TIMEOUT),
                "--concurrency",
                "200",
                "--reports",
                "none",
            ],
            env,
        )
        (work / "list").write_text("".join(f"-p {p} alice@{h}\n" for h, p in rows))
        # `|| exit 1`: GNU xargs aborts the whole run when a command exits with 255, which
        # is ssh's status for every connection failure: without it the baseline would stop
        # at the first refused target and look fast.
        ssh = (
            f"ssh -o BatchMode=yes -o ConnectTimeout={TIMEOUT} -i {shlex.quote(str(key))} "
            f'-o UserKnownHostsFile={shlex.quote(str(known))} "$@" true || exit 1'
        )
        xargs = _median(
            lambda _: [*inside, "sh", "-c", f"xargs -P 64 -L1 sh -c '{ssh}' _ < {work / 'list'}"],
            env,
        )
        _inventory(work / "big.csv", 1000, key, known)
        # GNU time reports the batch process's own peak (this process's children inherit
        # its memory at fork, so their peak says nothing about the batch).
        big = subprocess.run(
            [
                *inside,
                "/usr/bin/time",
                "-f",
                "%M",
                *runbook,
                "batch",
                str(work / "big.csv"),
                "--out",
                str(work / "big"),
                "--timeout",
                "1",
                "--concurrency",
                "64",
                "--reports",
                "none",
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        peak = int(big.stderr.strip().splitlines()[-1]) / 1024
    print(
        f"  {TARGETS} targets: batch {batch:.1f}s, xargs -P 64 ssh {xargs:.1f}s, slowest "
        f"single target {single:.1f}s; 1000-target fleet peak {peak:.0f} MiB"
    )
    print(
        f"  (xargs itself takes {xargs / single:.1f}x the slowest single target: 64 at a time, "
        f"black holes come in two waves; the 200 ssh processes' start-up alone is "
        f"~1.2 s of CPU on {os.cpu_count()} cores)"
    )
    return [
        figure(
            f"batch: {TARGETS} targets vs xargs -P 64 ssh",
            batch,
            xargs,
            "s",
            "<= 1.5x xargs",
            batch <= 1.5 * xargs,
        ),
        figure(
            f"batch: {TARGETS} targets vs the slowest single",
            batch,
            single,
            "s",
            "<= 1.3x the slowest target",
            batch <= 1.3 * single,
        ),
        figure("batch: peak memory, 1000 targets", peak, 1024, "MiB", "< 1024 MiB", peak < 1024),
    ]
