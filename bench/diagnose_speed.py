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

from bench.results import figure
from runbook import lab as lab_mod

ROUNDS = 7
TIMEOUT = 3
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


def run() -> list[dict]:
    if os.geteuid() != 0:
        print("  skipped: the lab needs root")
        return []
    # Lab users must traverse the lab's directory: /var/tmp, not a private mkdtemp.
    lab = lab_mod.up(["healthy", "timeout"], f"/var/tmp/ssh-runbook-bench-{secrets.token_hex(3)}")
    try:
        return _measure(lab)
    finally:
        lab_mod.down(lab.dir)


def _measure(lab) -> list[dict]:
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
    return [
        figure(
            "diagnose: healthy host, in-process",
            api,
            ssh,
            "s",
            "<= 1.5x ssh -o BatchMode=yes host true",
            api / ssh <= 1.5,
        ),
        figure(
            "diagnose: healthy host, `runbook diagnose` process",
            cli,
            ssh_cli,
            "s",
            "(shown: Python start-up)",
            True,
        ),
        figure(
            f"diagnose: black-holed host, --timeout {TIMEOUT}",
            black,
            TIMEOUT,
            "s",
            f"<= {TIMEOUT + 1} s",
            black <= TIMEOUT + 1,
        ),
    ]
