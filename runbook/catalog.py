"""The cause catalog: what each cause id means and how to fix it, in English and Japanese.

The text lives in ``causes.toml`` (data, not code); this module loads it once, orders the
causes by the phase of the connection they belong to (the verdict's "earliest failing
phase wins" rule), and renders a cause for one target: ``{hostname}`` and friends become
the diagnosis' facts, file paths in fixes are shell-quoted, and a fact nobody supplied shows
as ``<name>`` so the reader sees what to fill in, unless the text says what stands in for it
(``{address|hostname}``, ``{fingerprint|'its fingerprint'}``), or it is the user or port of
an ssh command, which ssh's own defaults then give. Facts can pick a variant of the fix
(``fix_windows``: a Windows client's commands; ``fix_jump``: run on the jump host; what
the server showed: ``fix_revoked``, ``fix_faillock``...), and of the title and explanation
(``explanation_NAME``).
"""

from __future__ import annotations

import re
import shlex
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
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
        "private_key",
        "converted_key",
    }
)
# {name}, or {name|other|'text'}: the first fact known, else the text.
_PLACEHOLDER = re.compile(r"\{([a-z_]+(?:\|(?:[a-z_]+|'[^'{}]*'))*)\}")
_CHOICE = re.compile(r"'([^']*)'|([a-z_]+)")
# The target's own facts: a "?" option naming them still shows, with placeholders.
_TARGET_FACTS = frozenset({"hostname", "port", "user", "alias", "ssh_config"})
# In a command, ssh's own default stands in for an unknown user or port: the text naming
# it is left out (the failing command did without it too).
_DEFAULTED = {"user": "{user}@", "port": "-p {port} "}
# With a jump host, a command that logs in to the target goes through it (a fix line that
# names the jump host itself runs there, and stays as it is).
_THROUGH_JUMP = {
    "ssh ": "ssh -J {via_jump} ",
    "ssh-copy-id ": "ssh-copy-id -o ProxyJump={via_jump} ",
}
# Variants of a cause's fix (fix_NAME in causes.toml) and the fact (and value; None: any)
# that selects each, the first that applies winning.
_VARIANTS: tuple[tuple[str, str, str | None], ...] = (
    ("jump", "seen_from", "jump"),  # the jump host met the failure: look from there
    ("mistyped", "meant_host", None),  # host:port or [v6] typed as the host name
    ("public_key", "private_key", None),  # -i named the .pub: the private key is beside it
    ("ppk", "converted_key", None),  # a PuTTY key: converted into a new file
    # What the server showed (servercheck, serverlog): the fix for that very fault.
    ("revoked", "revoked_key", None),  # RevokedKeys lists the key
    ("revoked_host", "host_key_revoked", None),  # known_hosts marks the host key @revoked
    ("wrong_signature", "wrong_signature", None),  # an old agent signed with SHA-1
    ("fido", "fido_requirement", None),  # a security key's signature lacked touch or PIN
    ("no_home", "missing_home", None),  # the home directory does not exist
    ("faillock", "faillock_reset", None),  # pam_faillock locked the user
    ("shell_refused", "shell_refused", None),  # sshd refused the shell before auth
    ("method_off", "config_line", None),  # the sshd_config line that turns a method off
    ("login_as", "login_as", None),  # the server said whom to log in as (cloud-init)
    ("password_change", "password_change", None),  # the password, not the account, expired
    ("hostkeys", "hostkeys_missing", None),  # a connection's sshd found no host key
    ("kex_stall", "kex_stall", None),  # the key exchange reply never came (an MTU black hole)
    ("cut", "cut_after_connect", None),  # TCP connected, then the banner never came
    ("local_block", "local_block", None),  # this machine refused to send (EPERM, EACCES)
    ("sshd_error", "sshd_error", None),  # a connection's sshd could not start: its error
    ("windows", "client_os", "windows"),  # Win32-OpenSSH: ACLs and cmd.exe, not chmod
)
# Where ssh keeps its files, per client platform.
_HOME_FILES = {
    "windows": {
        "ssh_config": "%USERPROFILE%\\.ssh\\config",
        "known_hosts": "%USERPROFILE%\\.ssh\\known_hosts",
    },
    "": {"ssh_config": "~/.ssh/config", "known_hosts": "~/.ssh/known_hosts"},
}
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


# A fix entry: a line, or alternatives (the first whose facts are known is shown).
FixEntry = str | tuple[str, ...]


@dataclass(frozen=True)
class Text:
    title: str
    explanation: str
    fix: tuple[FixEntry, ...]
    variants: dict[str, tuple[FixEntry, ...]] = field(default_factory=dict)
    # explanation_NAME: the explanation where the variant NAME applies (title_NAME alike)
    explanations: dict[str, str] = field(default_factory=dict)
    titles: dict[str, str] = field(default_factory=dict)


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
            text = {lang: _text(entry[lang]) for lang in LANGS}
            causes[cause_id] = Cause(
                cause_id, entry["phase"], text, tuple(entry.get("refines", ()))
            )
    order = list(causes)
    return dict(
        sorted(causes.items(), key=lambda kv: (PHASES.index(kv[1].phase), order.index(kv[0])))
    )


def _text(raw: dict[str, Any]) -> Text:
    def entries(lines: list[str | list[str]]) -> tuple[FixEntry, ...]:
        return tuple(line if isinstance(line, str) else tuple(line) for line in lines)

    variants = {k[4:]: entries(v) for k, v in raw.items() if k.startswith("fix_")}
    explanations = {k[12:]: v for k, v in raw.items() if k.startswith("explanation_")}
    titles = {k[6:]: v for k, v in raw.items() if k.startswith("title_")}
    return Text(
        raw["title"], raw["explanation"], entries(raw["fix"]), variants, explanations, titles
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


def _quote_windows(value: str) -> str:
    """A path for cmd.exe and PowerShell: backslashes, double quotes when it needs any."""
    value = value.replace("/", "\\")
    return f'"{value}"' if re.search(r"[\s&()^;,'`]", value) else value


def _defaulted(template: str, facts: dict[str, str]) -> str:
    """The command without the ``user@`` and ``-p PORT`` of an unknown user and port."""
    for name, text in _DEFAULTED.items():
        if name not in facts:
            template = template.replace(text, "")
    return template


def _fill(
    template: str, facts: dict[str, str], *, shell: bool, quote: Callable[[str], str] = _quote_path
) -> str:
    if shell:
        template = _defaulted(template, facts)

    def one(match: re.Match[str]) -> str:
        for literal, name in _CHOICE.findall(match.group(1)):
            if not name:
                return literal
            if name in facts:
                value = facts[name]
                return quote(value) if shell and name in PATH_FACTS else value
        return f"<{match.group(1).split('|')[0]}>"

    return _PLACEHOLDER.sub(one, template)


def _missing(template: str, facts: dict[str, str], exempt: frozenset[str]) -> set[str]:
    """The facts a template needs and does not have (a placeholder with a text of its own
    never misses), but the ``exempt`` ones."""
    missing = set()
    for match in _PLACEHOLDER.finditer(template):
        choices = _CHOICE.findall(match.group(1))
        if not any(literal or name in facts or name in exempt for literal, name in choices):
            missing.add(choices[0][1])
    return missing


def _line(entry: FixEntry, facts: dict[str, str]) -> str | None:
    """The line a fix entry shows, or None. A "?" line needs every fact it names but the
    target's own. Of alternatives, the first that needs no fact it lacks is shown (a user
    and port ssh defaults do not count), else the last, as a line of its own."""
    choices = (entry,) if isinstance(entry, str) else entry
    for n, choice in enumerate(choices, 1):
        optional = choice.startswith("?")
        line = choice[1:] if optional else choice
        if n == len(choices):
            return None if optional and _missing(line, facts, _TARGET_FACTS) else line or None
        if not _missing(_defaulted(line, facts), facts, frozenset()):
            return line or None
    return None


def _through_jump(line: str, facts: dict[str, str]) -> str:
    if "via_jump" not in facts or "{hostname}" not in line or "{jump" in line:
        return line
    for start, through in _THROUGH_JUMP.items():
        if line.startswith(start):
            return through + line[len(start) :]
    return line


def _facts(raw: dict[str, Any]) -> dict[str, str]:
    facts = {k: str(v) for k, v in raw.items() if v is not None and v != ""}
    for name, path in _HOME_FILES.get(facts.get("client_os", ""), _HOME_FILES[""]).items():
        facts.setdefault(name, path)
    if "hostname" in facts:
        facts.setdefault("alias", facts["hostname"])
        port = facts.get("port", "22")
        host_spec = facts["hostname"] if port == "22" else f"[{facts['hostname']}]:{port}"
        facts.setdefault("host_spec", host_spec)
        address = facts.get("address", facts["hostname"])
        ip_spec = address if port == "22" else f"[{address}]:{port}"
        if address != facts["hostname"] and ip_spec != facts["host_spec"]:
            # CheckHostIP keeps a second known_hosts entry under the address.
            facts.setdefault("ip_spec", ip_spec)
    jump = facts.get("jump", "")
    if re.fullmatch(r"[^\s'\"]+", jump):  # a host, not a ProxyCommand
        facts.setdefault("via_jump", jump)
        # ssh takes a port in a URI, not after the host name
        login = f"ssh://{jump}" if re.search(r":\d+$", jump) else jump
        facts.setdefault("jump_login", login)
    return facts


def _variant(text: Text, facts: dict[str, str]) -> tuple[str, tuple[FixEntry, ...]]:
    """The variant that applies (its name, its fix): the first of :data:`_VARIANTS` the
    cause has a fix, title or explanation for; "" and the plain fix when none does."""
    names = text.variants.keys() | text.explanations.keys() | text.titles.keys()
    for name, fact, value in _VARIANTS:
        if name in names and fact in facts and value in (None, facts[fact]):
            return name, text.variants.get(name, text.fix)
    return "", text.fix


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
    as everywhere; it is left out when one is unknown. A fix entry that is a list holds
    alternatives: the first whose facts are known is shown, else the last.
    """
    if lang not in LANGS:
        raise BadInput(f"unknown language {lang!r}", hint="use en or ja")
    text = get(cause_id).text[lang]
    known = _facts(facts)
    for name, words in _WORDS.get(lang, {}).items():
        if name in known:
            known[name] = words.get(known[name], known[name])
    variant, entries = _variant(text, known)
    quote = _quote_windows if known.get("client_os") == "windows" else _quote_path
    fix = []
    for entry in entries:
        line = _line(entry, known)
        if line is not None:
            line = line if variant == "jump" else _through_jump(line, known)
            fix.append(_fill(line, known, shell=True, quote=quote))
    return RootCause(
        id=cause_id,
        title=_fill(text.titles.get(variant, text.title), known, shell=False),
        explanation=" ".join(
            _fill(text.explanations.get(variant, text.explanation), known, shell=False).split()
        ),
        fix=fix,
        confidence=confidence,
        variant=variant,
    )
