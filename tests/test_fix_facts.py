"""The fix a transcript gets names what the transcript shows: the host, port and user
ssh printed, the host key entry to remove, the algorithm to allow, the jump host. Where a
value is truly absent the text says it in general words, never as a ``<placeholder>``."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from runbook import catalog
from runbook.explain import explain_text

CASES = Path(__file__).parent / "data" / "fixes"
HEADER_KEYS = {"case", "expected", "fix", "no-fix", "says"}
PLACEHOLDER = re.compile(r"<[a-z_]+>")


def _case(path: Path) -> tuple[dict[str, list[str]], str]:
    header: dict[str, list[str]] = {}
    body: list[str] = []
    for line in path.read_text().splitlines(keepends=True):
        key, sep, value = line[2:].partition(": ")
        if not body and line.startswith("# ") and sep and key in HEADER_KEYS:
            header.setdefault(key, []).append(value.strip())
        else:
            body.append(line)
    return header, "".join(body)


def _cases() -> list[Path]:
    return sorted(CASES.glob("*.txt"))


def test_cases_are_documented() -> None:
    for path in _cases():
        header, body = _case(path)
        assert {"case", "expected"} <= set(header), path.name
        assert header.get("fix") or header.get("says"), path.name
        assert body.strip(), path.name


@pytest.mark.parametrize("path", _cases(), ids=lambda p: p.stem)
def test_the_fix_names_what_the_transcript_shows(path: Path) -> None:
    header, body = _case(path)
    for lang in catalog.LANGS:
        root = explain_text(body, lang=lang)["root_cause"]
        assert root and root["id"] == header["expected"][0], (lang, root)
        shown = "\n".join([root["title"], root["explanation"], *root["fix"]])
        assert not PLACEHOLDER.search(shown), f"{lang}:\n{shown}"
        for wanted in header.get("fix", []):
            assert any(wanted in line for line in root["fix"]), f"{lang} {wanted!r}:\n{shown}"
        for unwanted in header.get("no-fix", []):
            assert not any(unwanted in line for line in root["fix"]), f"{lang} {unwanted!r}"
        if lang == "en":
            for said in header.get("says", []):
                assert said in root["title"] + " " + root["explanation"], f"{said!r}:\n{shown}"
