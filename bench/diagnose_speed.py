"""Diagnosis time: a healthy host against `ssh -o BatchMode=yes host true`, a black hole.

Targets (issue 3): a healthy host's verdict within 1.5x the time of the plain ssh login to
the same host; a black-holed host's verdict within the time-out plus one second. Both run
as the lab's client, in its namespaces, against the lab's real sshd; needs root.
"""

from __future__ import annotations

import json
import os
import secrets
import statistics
import sys
import time

from runbook import lab as lab_mod

ROUNDS = 7
TIMEOUT = 2
# Runs inside the scenario's client namespace: times ssh and diagnose() side by side.
_PROBE = """
import json, subprocess, sys, time
from runbook.diagnose import diagnose
alias, rounds, timeout = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
ssh, api = [], []
for _ in range(rounds):
    t = time.perf_counter()
    subprocess.run(["ssh", "-o", "BatchMode=yes", alias, "true"], check=True)
    ssh.append(time.perf_counter() - t)
    t = time.perf_counter()
    assert diagnose(alias, timeout=timeout).verdict == "ok"
    api.append(time.perf_counter() - t)
print(json.dumps({"ssh": ssh, "api": api}))
"""


def _timed(lab, name: str, argv: list[str]) -> float:
    started = time.perf_counter()
    lab.run_client(name, argv, timeout=120)
    return time.perf_counter() - started


def run() -> bool:
    if os.geteuid() != 0:
        print("  skipped: the lab needs root")
        return True
    # Lab users must traverse the lab's directory: /var/tmp, not a private mkdtemp.
    lab = lab_mod.up(["healthy", "timeout"], f"/var/tmp/ssh-runbook-bench-{secrets.token_hex(3)}")
    try:
        return _measure(lab)
    finally:
        lab_mod.down(lab.dir)


def _measure(lab) -> bool:
    alias = lab.targets["healthy"].alias
    proc = lab.run_client(
        "healthy", [sys.executable, "-c", _PROBE, alias, str(ROUNDS), str(TIMEOUT)]
    )
    times = json.loads(proc.stdout)
    ssh, api = statistics.median(times["ssh"]), statistics.median(times["api"])
    cli_argv = [
        sys.executable,
        "-m",
        "runbook",
        "diagnose",
        alias,
        "--no-report",
        "--timeout",
        str(TIMEOUT),
    ]
    ssh_argv = ["ssh", "-o", "BatchMode=yes", alias, "true"]
    cli = statistics.median(_timed(lab, "healthy", cli_argv) for _ in range(ROUNDS))
    ssh_cli = statistics.median(_timed(lab, "healthy", ssh_argv) for _ in range(ROUNDS))
    hole = lab.targets["timeout"].alias
    black = _timed(lab, "timeout", [*cli_argv[:4], hole, *cli_argv[5:]])
    print(
        f"  healthy, runbook.diagnose(): {api:.3f}s vs ssh true {ssh:.3f}s: "
        f"ratio {api / ssh:.2f} (target <= 1.5)"
    )
    print(
        f"  healthy, `runbook diagnose` process: {cli:.3f}s vs ssh process {ssh_cli:.3f}s: "
        f"ratio {cli / ssh_cli:.2f} (includes Python start-up and importing paramiko)"
    )
    print(f"  black hole, --timeout {TIMEOUT}: verdict in {black:.2f}s (target <= {TIMEOUT + 1}s)")
    ok = api / ssh <= 1.5 and black <= TIMEOUT + 1
    print(f"  targets: {'met' if ok else 'MISSED'}")
    return ok
