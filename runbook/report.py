"""Incident folders: ``DIR/<YYYYmmdd-HHMMSS>-<target>/`` with findings.json and ssh-vvv.txt.

Written atomically (temporary file, then rename), so an interrupted run never leaves a
half-written findings.json behind.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path

from runbook.errors import BadInput
from runbook.findings import Diagnosis

__all__ = ["incident_dir", "write_findings"]


def incident_dir(result: Diagnosis, out: Path) -> Path:
    """The incident folder name for this diagnosis (time of the run, then the target)."""
    stamp = datetime.fromisoformat(result.started_at).astimezone().strftime("%Y%m%d-%H%M%S")
    name = re.sub(r"[^A-Za-z0-9_.@-]+", "_", f"{result.target.user}@{result.target.alias}")
    return out / f"{stamp}-{name}"


def _atomic_write(path: Path, text: str) -> None:
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
                _atomic_write(folder / "ssh-vvv.txt", finding.data["transcript"])
        _atomic_write(
            folder / "findings.json", json.dumps(result.to_dict(), indent=2, ensure_ascii=False)
        )
    except OSError as err:
        raise BadInput(
            f"cannot write the report to {folder}: {err.strerror or err}",
            hint="give --out a writable directory, or use --no-report",
        ) from err
    return folder
