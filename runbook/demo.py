"""`make demo`: the main job on the built-in lab.

Starts the lab, runs ``runbook diagnose`` against every target as that target's client
(its home, keys and network namespace), prints the verdicts next to the cause the lab
injected, leaves one incident report per target under ``reports/demo/`` (with its
index.html) and stops the lab.
"""

from __future__ import annotations

import json
import shutil
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
    argv = [
        sys.executable,
        "-m",
        "runbook",
        "diagnose",
        target.alias,
        "--json",
        "--timeout",
        str(timeout),
        "--out",
        str(out.resolve()),
    ]
    if target.password_env:
        argv += ["--password-env", target.password_env]
    proc = running.run_client(name, argv, timeout=timeout * 6 + 30)
    try:
        result = json.loads(proc.stdout)
    except json.JSONDecodeError:
        said = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return (name, expected or "(ok)", "error", said[:60], "")
    found = (result["root_cause"] or {}).get("id", "")
    match = "yes" if (found or None) == expected else "NO"
    return (name, expected or "(ok)", result["verdict"], found or "-", match)


def run_demo(
    lab_dir: Path | None = None,
    out: Path = Path("reports/demo"),
    timeout: float = 3,
    concurrency: int = 4,
) -> None:
    """Run the demo; the lab is stopped afterwards whatever happens."""
    running = lab_mod.up(None, lab_dir)
    try:
        # The demo's own folder: last run's incidents would mix into this run's index.
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True, exist_ok=True)
        with ThreadPoolExecutor(concurrency) as pool:
            rows = list(pool.map(lambda n: _diagnose(running, n, out, timeout), running.targets))
        click.echo(table(("target", "expected cause", "verdict", "cause found", "match"), rows))
        right = sum(r[4] == "yes" for r in rows)
        click.echo(
            f"\n{right}/{len(rows)} targets diagnosed as expected; "
            f"incident reports and index.html in {out}/"
        )
    finally:
        lab_mod.down(running.dir)
