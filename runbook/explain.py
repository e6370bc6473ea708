"""`runbook explain`: a pasted ``ssh -v`` transcript in, the cause and its fix out.

The transcript module reads and classifies; this module only adds what a reader of the
verdict needs from the catalog (title, explanation, fix in the chosen language) and reads
the input safely (a missing file or binary garbage is a one-line error, not a traceback).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from runbook import catalog, transcript
from runbook.errors import BadInput

__all__ = ["MAX_BYTES", "explain_text", "read_source"]

MAX_BYTES = 64 * 1024 * 1024


def read_source(source: str) -> str:
    """The transcript from a file or ``-`` (stdin), decoded leniently."""
    if source == "-":
        data = sys.stdin.buffer.read(MAX_BYTES + 1)
    else:
        path = Path(source)
        if not path.is_file():
            raise BadInput(
                f"transcript {source} does not exist",
                hint="give a file saved from `ssh -vvv ... 2>&1`, or - for stdin",
            )
        try:
            with path.open("rb") as handle:
                data = handle.read(MAX_BYTES + 1)
        except OSError as err:
            raise BadInput(
                f"cannot read {source}: {err.strerror}", hint="check the path and its permissions"
            ) from err
    if len(data) > MAX_BYTES:
        raise BadInput(
            f"the transcript is larger than {MAX_BYTES // 2**20} MB",
            hint="cut it to the failing connection",
        )
    if b"\0" in data[:4096]:
        raise BadInput(
            "the input is binary, not an ssh transcript",
            hint="save the output of `ssh -vvv user@host 2>&1` as text",
        )
    return data.decode("utf-8", errors="replace")


def explain_text(text: str, *, lang: str = "en") -> dict[str, Any]:
    """The contract's ``explain --json`` object for one transcript."""
    result = transcript.explain(text)
    if not result["phases"] and result["client_version"] is None:
        raise BadInput(
            "no ssh output found in the input",
            hint="give the output of `ssh -vvv user@host 2>&1` (stderr holds the messages)",
        )
    root = result.get("root_cause")
    if root:
        facts = {k: v for k, v in result.get("facts", {}).items() if isinstance(v, str | int)}
        rendered = catalog.render(
            root["id"], lang, confidence=root.get("confidence", "high"), **facts
        )
        rendered.evidence = list(root.get("evidence", []))
        result["root_cause"] = rendered.to_dict()
    return result
