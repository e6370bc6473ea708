"""`make demo`: the main job on the built-in lab.

Starts the lab, runs the real ``ssh -vvv -o BatchMode=yes`` against every target as that
target's client, prints what each one shows next to the cause the lab injected, writes
the transcripts under ``reports/demo/`` and stops the lab.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import click

from runbook import lab as lab_mod

__all__ = ["run_demo", "symptom_line"]

_NOISE = re.compile(r"^(debug\d|OpenSSH_|Transferred:|Bytes per second|Pseudo-terminal)")


def symptom_line(output: str) -> str:
    """The last thing ssh said that was not debug chatter: what the user sees."""
    lines = [ln.strip() for ln in output.splitlines() if ln.strip() and not _NOISE.match(ln)]
    return lines[-1] if lines else "(no message)"


def run_demo(lab_dir: Path | None = None, out: Path = Path("reports/demo")) -> None:
    """Run the demo; the lab is stopped afterwards whatever happens."""
    running = lab_mod.up(None, lab_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
        rows = []
        for name, target in running.targets.items():
            if target.state != "up":
                rows.append((name, target.expected or "(ok)", target.state, ""))
                continue
            argv, extra = running.ssh_symptom_argv(name)
            proc = running.run_client(name, argv, env={**os.environ, **extra}, timeout=30)
            (out / f"{name}.ssh-vvv.txt").write_text(proc.stderr)
            verdict = "ok" if proc.returncode == 0 else f"failed ({proc.returncode})"
            rows.append(
                (
                    name,
                    target.expected or "(ok)",
                    verdict,
                    symptom_line(proc.stdout + proc.stderr)[:90],
                )
            )
        widths = [max(len(r[i]) for r in rows) for i in range(3)]
        click.echo(
            "target".ljust(widths[0])
            + "  "
            + "expected cause".ljust(widths[1])
            + "  "
            + "verdict".ljust(widths[2])
            + "  what ssh says"
        )
        for row in rows:
            click.echo(
                "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)) + "  " + row[3]
            )
        click.echo(f"\ntranscripts written to {out}/")
    finally:
        lab_mod.down(running.dir)
