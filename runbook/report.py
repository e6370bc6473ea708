"""Incident folders: ``DIR/<YYYYmmdd-HHMMSS>-<target>/`` with findings.json, ssh-vvv.txt,
report.ipynb and report.html (the ssh_triage notebook run by papermill), and DIR/index.html.

Written atomically (temporary file, then rename), so an interrupted run never leaves a
half-written findings.json behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
import threading
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from runbook.errors import BadInput
from runbook.findings import Diagnosis

__all__ = [
    "atomic_write",
    "incident_dir",
    "render_report",
    "run_notebook",
    "to_html",
    "write_findings",
    "write_index",
]


def incident_dir(result: Diagnosis, out: Path) -> Path:
    """The incident folder name for this diagnosis (time of the run, then the target)."""
    stamp = datetime.fromisoformat(result.started_at).astimezone().strftime("%Y%m%d-%H%M%S")
    name = re.sub(r"[^A-Za-z0-9_.@-]+", "_", f"{result.target.user}@{result.target.alias}")
    return out / f"{stamp}-{name}"


def atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


def write_findings(result: Diagnosis, out: Path) -> Path:
    """Write findings.json (and the real ssh's transcript) into a new incident folder."""
    folder = incident_dir(result, out)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for finding in result.findings:
            if finding.step == "ssh" and finding.data.get("transcript"):
                atomic_write(folder / "ssh-vvv.txt", finding.data["transcript"])
        atomic_write(
            folder / "findings.json", json.dumps(result.to_dict(), indent=2, ensure_ascii=False)
        )
    except OSError as err:
        raise BadInput(
            f"cannot write the report to {folder}: {err.strerror or err}",
            hint="give --out a writable directory, or use --no-report",
        ) from err
    return folder


# -- the notebook report ------------------------------------------------------------------

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
KERNEL = "ssh-runbook"


def notebook_path(name: str) -> Path:
    """A runbook notebook shipped beside the package (notebooks/ of the checkout)."""
    path = NOTEBOOKS / name
    if not path.is_file():
        raise BadInput(
            f"the notebook {name} is not in {NOTEBOOKS}",
            hint="install ssh-runbook from its repository (pip install -e .)",
        )
    return path


def _kernel() -> str:
    from jupyter_client.kernelspec import KernelSpecManager

    return KERNEL if KERNEL in KernelSpecManager().find_kernel_specs() else "python3"


def run_notebook(
    name: str,
    output: Path,
    parameters: dict[str, Any],
    *,
    cell_timeout: float = 120,
    start_timeout: float = 60,
) -> str | None:
    """Execute a notebook with papermill into ``output``; the error text if a cell failed.

    Kernel start is bounded and retried once (parallel papermill runs are known to fail
    there); every cell has a time limit, so a hung step cannot hang the report.
    """
    import papermill
    from papermill.exceptions import PapermillExecutionError

    for attempt in (1, 2):
        try:
            with _quiet_kernel():
                papermill.execute_notebook(
                    str(notebook_path(name)),
                    str(output),
                    parameters=parameters,
                    kernel_name=_kernel(),
                    progress_bar=False,
                    log_output=False,
                    request_save_on_cell_execute=False,
                    start_timeout=start_timeout,
                    execution_timeout=cell_timeout,
                )
            return None
        except PapermillExecutionError as err:
            return f"{err.ename}: {err.evalue}"
        except (RuntimeError, TimeoutError) as err:  # the kernel did not start
            if attempt == 2:
                return f"the notebook kernel did not start: {err}"
    return None


@contextlib.contextmanager
def _quiet_kernel() -> Iterator[None]:
    """The kernel inherits stderr: keep its start-up chatter (and an IPython dir it may not
    write in a read-only home) out of the user's terminal."""
    saved_fd = os.dup(2)
    saved_env = os.environ.get("IPYTHONDIR")
    with tempfile.TemporaryDirectory(prefix="ssh-runbook-ipython-") as ipython_dir:
        os.environ["IPYTHONDIR"] = ipython_dir
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            try:
                yield
            finally:
                os.dup2(saved_fd, 2)
                os.close(saved_fd)
                if saved_env is None:
                    os.environ.pop("IPYTHONDIR", None)
                else:
                    os.environ["IPYTHONDIR"] = saved_env


_exporters = threading.local()


def _exporter():  # -> nbconvert.HTMLExporter
    """One exporter per thread (an exporter keeps state while it converts): loading and
    compiling its templates is most of its cost, so a batch pays it once per thread."""
    from nbconvert import HTMLExporter

    if not hasattr(_exporters, "html"):
        _exporters.html = HTMLExporter(
            exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True
        )
    return _exporters.html


def to_html(notebook: Path) -> Path:
    """A self-contained HTML page of an executed notebook, without its code cells."""
    import nbformat

    body, _ = _exporter().from_notebook_node(nbformat.read(notebook, as_version=4))
    page = notebook.with_suffix(".html")
    atomic_write(page, body)
    return page


def render_report(
    folder: Path, result: Diagnosis, *, lang: str, incident_id: str = "", index: bool = True
) -> str | None:
    """report.ipynb and report.html of this diagnosis (rendered from its findings.json, so the
    server is not probed again), then findings.json updated with their paths."""
    notebook = folder / "report.ipynb"
    error = run_notebook(
        "ssh_triage.ipynb",
        notebook,
        {
            "target": result.target.alias,
            "findings": str(folder / "findings.json"),
            "lang": lang,
            "incident_id": incident_id,
        },
    )
    if notebook.is_file():
        page = to_html(notebook)
        result.report = {"notebook": str(notebook), "html": str(page)}
        atomic_write(
            folder / "findings.json", json.dumps(result.to_dict(), indent=2, ensure_ascii=False)
        )
    if index:
        write_index(folder.parent)
    return error


def write_index(out: Path) -> Path:
    """DIR/index.html: every incident in DIR, newest first, with its verdict and cause."""
    import html

    rows = []
    for findings in sorted(out.glob("*/findings.json"), reverse=True):
        try:
            data = json.loads(findings.read_text())
        except (OSError, ValueError):
            continue
        target = data.get("target", {})
        root = data.get("root_cause") or {}
        link = "report.html" if (findings.parent / "report.html").is_file() else "findings.json"
        colour = "#1a7f37" if data.get("verdict") == "ok" else "#cf222e"
        rows.append(
            f"<tr><td>{html.escape(data.get('started_at', ''))}</td>"
            f"<td>{html.escape(str(target.get('user')))}@{html.escape(str(target.get('alias')))}"
            f"</td><td style='color:{colour}'>{html.escape(data.get('verdict', '?'))}</td>"
            f"<td>{html.escape(root.get('id', ''))}</td><td>{html.escape(root.get('title', ''))}"
            f"</td><td><a href='{html.escape(findings.parent.name)}/{link}'>report</a></td></tr>"
        )
    page = out / "index.html"
    atomic_write(
        page,
        (
            "<!doctype html><meta charset='utf-8'><title>ssh-runbook incidents</title>"
            "<style>body{font-family:sans-serif}td,th{padding:4px 10px;text-align:left}</style>"
            "<h1>ssh-runbook incidents</h1><table><tr><th>time</th><th>target</th><th>verdict</th>"
            "<th>cause</th><th>title</th><th></th></tr>" + "".join(rows) + "</table>"
        ),
    )
    return page
