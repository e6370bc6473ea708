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


# -- what the server showed picks the fix (servercheck's and serverlog's facts) ------------


def _fix(cause_id: str, **facts) -> dict[str, list[str]]:
    facts = {"user": "u1", "hostname": "h", "port": 22, **facts}
    return {lang: catalog.render(cause_id, lang, **facts).fix for lang in catalog.LANGS}


def _decide(findings, **facts):
    """The root cause in both languages for a real ssh that failed and these findings."""
    from runbook.findings import Finding
    from runbook.verdict import decide

    client = Finding("ssh", "ssh", "fail", "Permission denied", cause_id=facts.pop("client"))
    facts = {"user": "u1", "hostname": "h", "port": 22, **facts}
    roots = {}
    for lang in catalog.LANGS:
        verdict, root = decide([client, *findings], lang=lang, facts=facts)
        assert verdict == "failed" and root is not None
        roots[lang] = root
    return roots


def test_a_faillock_lock_gets_its_own_reset_command() -> None:
    reset = "faillock --dir /var/run/faillock --user u1 --reset"
    fix = _fix("account.locked", faillock_reset=reset)
    assert fix["en"][0] == f"sudo {reset}   # pam_faillock has locked u1: this clears its failures"
    assert fix["ja"][0].startswith(f"sudo {reset}   # pam_faillock が u1 をロック")
    for lines in fix.values():
        assert "sudo usermod -U u1" not in [line.split("#")[0].strip() for line in lines]
    plain = _fix("account.locked")
    assert "sudo usermod -U u1" in plain["en"] and "sudo usermod -U u1" in plain["ja"]


def test_faillock_found_on_the_server_reaches_the_fix(tmp_path) -> None:
    from test_servercheck import _faillock_server, _tally

    server = _faillock_server(tmp_path)
    _tally(server, "/var/run/faillock", 30, 20, 10)
    roots = _decide(server.check(password=True), client="auth.password_rejected")
    reset = "sudo faillock --dir /var/run/faillock --user u1 --reset"
    for lang, root in roots.items():
        assert root.id == "account.locked", (lang, root)
        assert root.fix[0].startswith(reset + "   # "), (lang, root.fix)
