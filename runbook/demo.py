"""`make demo`: the main job on the built-in lab.

Starts the lab, runs ``runbook diagnose`` against every target as that target's client
(its home, keys and network namespace), prints the verdicts next to the cause the lab
injected, leaves one incident report per target under ``reports/demo/`` (with its
index.html) and stops the lab.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import click

from runbook import lab as lab_mod
from runbook.tables import table

__all__ = ["run_demo"]


def _diagnose(running: lab_mod.Lab, name: str, out: Path, timeout: float) -> tuple[str, ...]:
    target = running.targets[name]
    expected = target.client_sees or target.expected
    if target.state != "up":
        return (name, expected or "(ok)", target.state, "", "")
    argv = running.diagnose_argv(
        name, "--json", "--timeout", str(timeout), "--out", str(out.resolve())
    )
    proc = running.run_client(name, argv, timeout=timeout * 6 + 30)
    try:
        result = json.loads(proc.stdout)
    except json.JSONDecodeError:
        said = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return (name, expected or "(ok)", "error", said[:60], "")
    found = (result["root_cause"] or {}).get("id", "")
    match = "yes" if (found or None) == expected else "NO"
    return (name, expected or "(ok)", result["verdict"], found or "-", match)


def _batch(running: lab_mod.Lab, out: Path, timeout: float) -> dict[str, dict[str, str]]:
    """``runbook batch`` over the lab's inventory.csv: every target one process can reach."""
    env = {k: v for k, v in os.environ.items() if k != "SSH_AUTH_SOCK"}
    argv = [
        sys.executable,
        "-m",
        "runbook",
        "batch",
        str(running.dir / "inventory.csv"),
        "--out",
        str(out),
        "--timeout",
        str(timeout),
        "--concurrency",
        "6",
    ]
    subprocess.run(argv, env=env, capture_output=True, text=True, timeout=1800)
    summary = out / "summary.csv"
    if not summary.is_file():
        return {}
    with summary.open(newline="") as handle:
        return {row["target"]: row for row in csv.DictReader(handle)}


def run_demo(
    lab_dir: Path | None = None,
    out: Path = Path("reports/demo"),
    timeout: float = 3,
    concurrency: int = 4,
) -> None:
    """Run the demo; the lab is stopped afterwards whatever happens.

    ``runbook batch`` triages the lab's inventory (reports in ``out``, dashboard
    ``out/index.html``); the targets that live in the lab's network namespace or need the
    client home overlay run ``runbook diagnose`` as their own client (``out/namespaced``).
    """
    running = lab_mod.up(None, lab_dir)
    try:
        # The demo's own folder: last run's incidents would mix into this run's index.
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True, exist_ok=True)
        batched = _batch(running, out, timeout)
        single = [n for n in running.targets if n not in batched]
        with ThreadPoolExecutor(concurrency) as pool:
            alone = dict(
                zip(
                    single,
                    pool.map(lambda n: _diagnose(running, n, out / "namespaced", timeout), single),
                    strict=True,
                )
            )
        rows = []
        for name, target in running.targets.items():
            if name in alone:
                rows.append((*alone[name], "diagnose"))
                continue
            expected = target.client_sees or target.expected
            # With the server's log (the inventory's auth_log), server-side causes show.
            if target.auth_log and target.spec.server_log:
                expected = target.expected
            row = batched[name]
            found = row["cause_id"] or None
            match = "yes" if found == expected else "NO"
            rows.append((name, expected or "(ok)", row["verdict"], found or "-", match, "batch"))
        click.echo(
            table(("target", "expected cause", "verdict", "cause found", "match", "run by"), rows)
        )
        right = sum(r[4] == "yes" for r in rows)
        click.echo(
            f"\n{right}/{len(rows)} targets diagnosed as expected; dashboard {out}/index.html, "
            f"reports in {out}/ and {out}/namespaced/"
        )
    finally:
        lab_mod.down(running.dir)
