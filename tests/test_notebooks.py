"""The runbook notebooks: clean in git, documented parameters, and real reports.

Each report is produced the way users produce it: `runbook diagnose` as a lab scenario's
client (papermill runs notebooks/ssh_triage.ipynb on the findings of that very run), or
papermill by hand; the HTML must say what the diagnosis found, and no secret may reach
any file.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from runbook import notebook
from runbook.lab.build import LAB_PASSWORD, WRONG_PASSWORD

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


@pytest.mark.parametrize(
    "name", ["ssh_triage.ipynb", "auth_log_review.ipynb", "fleet_triage.ipynb"]
)
def test_committed_without_outputs(name: str) -> None:
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    nbformat.validate(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, name
    assert nb.metadata.kernelspec.name == "ssh-runbook"


@pytest.mark.parametrize(
    ("name", "spec"),
    [
        ("ssh_triage.ipynb", notebook.PARAMETERS),
        ("auth_log_review.ipynb", notebook.LOG_PARAMETERS),
        ("fleet_triage.ipynb", notebook.FLEET_PARAMETERS),
    ],
)
def test_parameters_cell_is_documented_for_papermill(name: str, spec: dict) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "papermill", "--help-notebook", str(NOTEBOOKS / name)],
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    documented = {
        line.split(":")[0].strip()
        for line in out.splitlines()
        if line.startswith("  ") and ":" in line and not line.strip().startswith(("-", "("))
    }
    assert set(spec) <= documented, out
    cell = next(
        c
        for c in nbformat.read(NOTEBOOKS / name, as_version=4).cells
        if "parameters" in c.metadata.get("tags", [])
    )
    assert all("#" in line for line in cell.source.splitlines())  # every one explained


def test_misspelt_parameter_names_the_right_one() -> None:
    with pytest.raises(Exception, match="did you mean 'target'"):
        notebook.check_parameters(
            {"targt": "x", **{k: v for k, (_, v) in notebook.PARAMETERS.items()}}
        )
    with pytest.raises(Exception, match="port = 'x' is not"):
        notebook.check_parameters(
            {**{k: v for k, (_, v) in notebook.PARAMETERS.items()}, "port": "x"}
        )


def _diagnose_report(lab, name: str, out: Path, *extra: str) -> tuple[int, dict, Path]:
    argv = lab.diagnose_argv(name, "--json", "--timeout", "4", "--out", str(out), *extra)
    proc = lab.run_client(name, argv, timeout=300)
    assert proc.returncode in (0, 1), proc.stderr[-2000:]
    assert proc.stderr == ""  # the kernel's chatter stays out of the terminal
    result = json.loads(proc.stdout)
    folder = Path(result["report"]["html"]).parent
    return proc.returncode, result, folder


def _text(page: Path) -> str:
    import html
    import re

    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page.read_text())))


@pytest.mark.parametrize(
    ("name", "log", "says"),
    [
        ("healthy", False, "The login works"),
        ("hostkey-changed", False, "REMOTE HOST IDENTIFICATION HAS CHANGED"),
        ("bad-modes", True, "StrictModes: bad ownership or modes on the server"),
    ],
)
def test_diagnose_writes_the_notebook_report(lab, tmp_path, name, log, says) -> None:
    out = tmp_path / "reports"
    extra = ("--auth-log", lab.targets[name].auth_log) if log else ()
    _, result, folder = _diagnose_report(lab, name, out, *extra)
    files = {p.name for p in folder.iterdir()}
    assert {"findings.json", "report.ipynb", "report.html", "ssh-vvv.txt"} <= files
    saved = json.loads((folder / "findings.json").read_text())
    assert saved["report"] == result["report"] and saved["verdict"] == result["verdict"]
    page = _text(folder / "report.html")
    assert says in page
    assert "rb.incident(globals())" not in page  # code cells are left out of the HTML
    for heading in ("Quick checks", "ssh -vvv", "Host key", "Verdict and fix", "Tips"):
        assert heading in page
    if result["root_cause"]:
        assert result["root_cause"]["id"] in page and result["root_cause"]["fix"][0][:30] in page
    executed = nbformat.read(folder / "report.ipynb", as_version=4)
    assert not [
        o
        for c in executed.cells
        if c.cell_type == "code"
        for o in c.outputs
        if o.output_type == "error"
    ]
    index = _text(out / "index.html")
    assert result["target"]["alias"] in index and result["verdict"] in index


def test_no_secret_reaches_any_report_file(lab, tmp_path) -> None:
    _, result, folder = _diagnose_report(lab, "password-rejected", tmp_path / "r")
    assert result["root_cause"]["id"] == "auth.password_rejected"
    for path in [*folder.iterdir(), tmp_path / "r" / "index.html"]:
        data = path.read_bytes()
        assert LAB_PASSWORD.encode() not in data and WRONG_PASSWORD.encode() not in data, path


def _papermill(lab, output: Path, **parameters: str) -> subprocess.CompletedProcess[str]:
    """papermill's own command line on ssh_triage.ipynb, as the healthy scenario's client."""
    argv = [sys.executable, "-m", "papermill", str(NOTEBOOKS / "ssh_triage.ipynb"), str(output)]
    for name, value in parameters.items():
        argv += ["-p", name, value]
    return lab.run_client("healthy", [*argv, "--no-progress-bar"], timeout=300)


def test_papermill_by_hand_probes_and_reports(lab, tmp_path) -> None:
    output = tmp_path / "out.ipynb"
    proc = _papermill(lab, output, target="healthy", timeout="4", lang="ja")
    assert proc.returncode == 0, proc.stderr[-2000:]
    executed = nbformat.read(output, as_version=4)
    shown = json.dumps(
        [c.outputs for c in executed.cells if c.cell_type == "code"], ensure_ascii=False
    )
    assert "ログインできます" in shown  # the verdict, in the notebook's language


def test_papermill_with_a_misspelt_parameter_fails_clearly(lab, tmp_path) -> None:
    output = tmp_path / "bad.ipynb"
    proc = _papermill(lab, output, targt="healthy")
    assert proc.returncode != 0
    assert "did you mean 'target'" in proc.stderr + output.read_text()


def test_auth_log_review_report(lab, tmp_path) -> None:
    from runbook.report import run_notebook, to_html

    log = lab.targets["locked"].auth_log
    lab.run_client("locked", ["ssh", "-o", "BatchMode=yes", "locked", "true"], timeout=60)
    output = tmp_path / "review.ipynb"
    assert run_notebook("auth_log_review.ipynb", output, {"log_paths": [log]}) is None
    page = _text(to_html(output))
    assert "account_locked" in page and "failures" in page
    assert "data:image/png;base64" in (tmp_path / "review.html").read_text()  # the chart


def test_fleet_triage_notebook(lab, tmp_path) -> None:
    from runbook.report import run_notebook, to_html

    inventory = tmp_path / "fleet.csv"
    configs = {n: lab.targets[n].ssh_config for n in ("healthy", "port-refused", "key-rejected")}
    inventory.write_text(
        "target,ssh_config\n"
        + "".join(f"{n},{c}\n" for n, c in configs.items())
        + "bad target:22,\n"
    )
    output = tmp_path / "fleet.ipynb"
    error = run_notebook(
        "fleet_triage.ipynb",
        output,
        {
            "inventory": str(inventory),
            "out": str(tmp_path / "out"),
            "timeout": 4.0,
            "reports": "none",
        },
    )
    assert error is None, error
    page = _text(to_html(output))
    assert "port.refused" in page and "auth.key_rejected" in page and "fleet.csv:5" in page
    assert "data:image/png;base64" in (tmp_path / "fleet.html").read_text()
    assert (tmp_path / "out" / "summary.csv").is_file()
