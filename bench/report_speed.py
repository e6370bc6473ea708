"""The cost of an incident report against an empty notebook's papermill run.

Target (issue 6): rendering the report (papermill on ssh_triage.ipynb from a findings.json,
then nbconvert to HTML) costs at most 1.5x an empty notebook's papermill run. The
diagnosis itself is not part of either: the report renders a finished run.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_notebook

from bench.results import figure
from runbook import report
from runbook.findings import Diagnosis, Finding, Target

ROUNDS = 5


def _diagnosis() -> Diagnosis:
    findings = [
        Finding("target", "ssh -G", "info", "alice@web1 port 22"),
        Finding("tcp", "connect", "pass", "192.0.2.10 port 22 accepts TCP"),
        Finding("ssh", "ssh -vvv", "pass", "ssh logged in and ran `true` in 0.2s"),
    ]
    return Diagnosis(
        Target("web1", "192.0.2.10", 22, "alice"),
        "ok",
        None,
        findings,
        "2026-11-28T10:00:00+00:00",
        0.3,
    )


def _empty(path: Path) -> float:
    nb = new_notebook(cells=[new_code_cell("x = 1")])
    nb.metadata["kernelspec"] = {
        "name": report._kernel(),
        "display_name": "k",
        "language": "python",
    }
    source = path / "empty.ipynb"
    nbformat.write(nb, source)
    import papermill

    started = time.perf_counter()
    with report._quiet_kernel():
        papermill.execute_notebook(
            str(source),
            str(path / "empty-out.ipynb"),
            kernel_name=report._kernel(),
            progress_bar=False,
        )
    return time.perf_counter() - started


def _report(path: Path, index: int) -> float:
    folder = path / f"incident-{index}"
    folder.mkdir()
    result = _diagnosis()
    (folder / "findings.json").write_text(json.dumps(result.to_dict()))
    started = time.perf_counter()
    error = report.render_report(folder, result, lang="en")
    took = time.perf_counter() - started
    assert error is None, error
    return took


def run() -> list[dict]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp)
        empty = statistics.median(_empty(path) for _ in range(ROUNDS))
        full = statistics.median(_report(path, i) for i in range(ROUNDS))
    ratio = full / empty
    print(
        f"  report (papermill + HTML + index): {full:.2f}s; empty notebook {empty:.2f}s; "
        f"ratio {ratio:.2f} (target <= 1.5)"
    )
    return [
        figure(
            "report: papermill + HTML", full, empty, "s", "<= 1.5x an empty notebook", ratio <= 1.5
        )
    ]
