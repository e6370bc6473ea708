"""The cause catalog: what each cause id means and how to fix it, in English and Japanese.

The text lives in ``causes.toml`` (data, not code); this module loads it once, orders the
causes by the phase of the connection they belong to (the verdict's "earliest failing
phase wins" rule), and renders a cause for one target: ``{hostname}`` and friends become
the diagnosis' facts, file paths in fixes are shell-quoted, and a fact nobody supplied shows
as ``<name>`` so the reader sees what to fill in.
"""

from __future__ import annotations

import re
import shlex
import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any, Literal

from runbook.errors import BadInput
from runbook.findings import RootCause

__all__ = ["CAUSE_IDS", "LANGS", "PHASES", "Cause", "get", "phase_rank", "render"]

# The phases of a login, in the order a connection goes through them.
PHASES: tuple[str, ...] = (
    "config",
    "proxy",
    "dns",
    "network",
    "protocol",
    "kex",
    "hostkey",
    "client",
    "auth",
    "account",
    "session",
)
LANGS = ("en", "ja")
# Facts that are file paths: quoted when they appear in a fix command.
PATH_FACTS = frozenset(
    {
        "identity_file",
        "known_hosts",
        "ssh_config",
        "bad_path",
        "chroot_dir",
        "unreadable_path",
        "nologin_file",
        "unoffered_key",
    }
)
_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")
# The target's own facts: a "?" option naming them still shows, with placeholders.
_TARGET_FACTS = frozenset({"hostname", "port", "user", "alias", "ssh_config"})
# Fact values that are words, not names: shown in the reader's language.
_WORDS = {
    "ja": {
        "category": {
            "key exchange": "鍵交換",
            "host key": "ホスト鍵",
            "cipher": "暗号",
            "compression": "圧縮",
        }
    }
}


@dataclass(frozen=True)
class Text:
    title: str
    explanation: str
    fix: tuple[str, ...]


@dataclass(frozen=True)
class Cause:
    """One catalog entry: its id, phase and text per language."""

    id: str
    phase: str
    text: dict[str, Text]
    refines: tuple[str, ...] = ()


@cache
def _load() -> dict[str, Cause]:
    raw = tomllib.loads(resources.files("runbook").joinpath("causes.toml").read_text("utf-8"))
    causes: dict[str, Cause] = {}
    for group, members in raw.items():
        for name, entry in members.items():
            cause_id = f"{group}.{name}"
            if entry["phase"] not in PHASES:
                raise ValueError(f"causes.toml: {cause_id} has unknown phase {entry['phase']}")
            text = {
                lang: Text(
                    entry[lang]["title"], entry[lang]["explanation"], tuple(entry[lang]["fix"])
                )
                for lang in LANGS
            }
            causes[cause_id] = Cause(
                cause_id, entry["phase"], text, tuple(entry.get("refines", ()))
            )
    order = list(causes)
    return dict(
        sorted(causes.items(), key=lambda kv: (PHASES.index(kv[1].phase), order.index(kv[0])))
    )


CAUSE_IDS: tuple[str, ...] = tuple(_load())


def get(cause_id: str) -> Cause:
    """The catalog entry for ``cause_id`` (BadInput when the id is not in the contract)."""
    try:
        return _load()[cause_id]
    except KeyError:
        raise BadInput(
            f"unknown cause id {cause_id!r}",
            hint="use one of runbook.catalog.CAUSE_IDS (the contract's table)",
        ) from None


def phase_rank(cause_id: str) -> int:
    """Position of the cause's phase in :data:`PHASES`; unknown ids sort last."""
    cause = _load().get(cause_id)
    return PHASES.index(cause.phase) if cause else len(PHASES)


def _quote_path(value: str) -> str:
    """Shell-quote a path but keep a leading ``~/`` outside the quotes so it still expands."""
    if value.startswith("~/"):
        return "~/" + shlex.quote(value[2:])
    return shlex.quote(value)


def _fill(template: str, facts: dict[str, str], *, shell: bool) -> str:
    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in facts:
            return f"<{name}>"
        value = facts[name]
        return _quote_path(value) if shell and name in PATH_FACTS else value

    return _PLACEHOLDER.sub(one, template)


def _facts(raw: dict[str, Any]) -> dict[str, str]:
    facts = {k: str(v) for k, v in raw.items() if v is not None and v != ""}
    facts.setdefault("ssh_config", "~/.ssh/config")
    facts.setdefault("known_hosts", "~/.ssh/known_hosts")
    if "hostname" in facts:
        facts.setdefault("alias", facts["hostname"])
        port = facts.get("port", "22")
        host_spec = facts["hostname"] if port == "22" else f"[{facts['hostname']}]:{port}"
        facts.setdefault("host_spec", host_spec)
        address = facts.get("address")
        if address and address != facts["hostname"]:
            # CheckHostIP keeps a second known_hosts entry under the address.
            facts.setdefault("ip_spec", address if port == "22" else f"[{address}]:{port}")
    return facts


def render(
    cause_id: str,
    lang: str = "en",
    *,
    confidence: Literal["high", "medium", "low"] = "medium",
    **facts: Any,
) -> RootCause:
    """The cause's title, explanation and fix for one target, in ``lang``.

    A fix line that starts with ``?`` is an option that needs every fact it names (e.g.
    "sshd answers on port {other_port}") but the target's own, which show as placeholders
    as everywhere; it is left out when one is unknown.
    """
    if lang not in LANGS:
        raise BadInput(f"unknown language {lang!r}", hint="use en or ja")
    text = get(cause_id).text[lang]
    known = _facts(facts)
    for name, words in _WORDS.get(lang, {}).items():
        if name in known:
            known[name] = words.get(known[name], known[name])
    fix = []
    for line in text.fix:
        if line.startswith("?"):
            line = line[1:]
            needed = set(_PLACEHOLDER.findall(line)) - _TARGET_FACTS
            if any(name not in known for name in needed):
                continue
        fix.append(_fill(line, known, shell=True))
    return RootCause(
        id=cause_id,
        title=_fill(text.title, known, shell=False),
        explanation=" ".join(_fill(text.explanation, known, shell=False).split()),
        fix=fix,
        confidence=confidence,
    )
