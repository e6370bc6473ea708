"""`runbook explain`: a pasted ``ssh -v`` transcript in, the cause and its fix out.

The transcript module reads and classifies; this module only adds what a reader of the
verdict needs from the catalog (title, explanation, fix in the chosen language) and reads
the input safely (a missing file or binary garbage is a one-line error, not a traceback).
"""

from __future__ import annotations

import codecs
import html
import re
import sys
from pathlib import Path
from typing import Any

from runbook import catalog, transcript
from runbook.errors import BadInput

__all__ = ["MAX_BYTES", "explain_text", "highlight_html", "read_source"]

MAX_BYTES = 64 * 1024 * 1024


def read_source(source: str) -> str:
    """The transcript from a file or ``-`` (stdin), decoded leniently."""
    if source == "-":
        data = sys.stdin.buffer.read(MAX_BYTES + 1)
    else:
        path = Path(source)
        if not path.exists() or path.is_dir():  # a file or a pipe: <(ssh -vvv host 2>&1)
            raise BadInput(
                f"transcript {source} " + ("is a directory" if path.is_dir() else "does not exist"),
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
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        # Windows PowerShell 5 saves `ssh -vvv host 2> file` as UTF-16 with a BOM.
        return data.decode("utf-16", errors="replace")
    if b"\0" in data[:4096]:
        raise BadInput(
            "the input is binary, not an ssh transcript",
            hint="save the output of `ssh -vvv user@host 2>&1` as text",
        )
    return data.decode("utf-8-sig", errors="replace")


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


def highlight_html(text: str, result: dict[str, Any], *, context: int = 3) -> str:
    """The transcript as HTML for a notebook: the decisive lines marked, with ``context``
    lines around each and the rest folded, so the cause is seen without scrolling."""
    lines = text.splitlines()
    evidence = (result.get("root_cause") or {}).get("evidence", [])
    marked = {int(m.group(1)) for e in evidence if (m := re.match(r"line (\d+): ", e))}
    keep = {n for m in marked for n in range(m - context, m + context + 1)} or set(
        range(1, min(len(lines), 40) + 1)
    )
    out, skipped = [], 0
    for number, line in enumerate(lines, 1):
        if number not in keep:
            skipped += 1
            continue
        if skipped:
            out.append(f'<span style="color:#888">… {skipped} lines …</span>')
            skipped = 0
        body = f"{number:>5}  {html.escape(line)}"
        out.append(f'<mark style="background:#ffe08a">{body}</mark>' if number in marked else body)
    if skipped:
        out.append(f'<span style="color:#888">… {skipped} lines …</span>')
    return '<pre style="font-size:12px;line-height:1.35">' + "\n".join(out) + "</pre>"
