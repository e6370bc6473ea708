"""sshd_config read the way sshd reads it, for a server that cannot be asked (offline).

``sshd -T -C`` is the truth when sshd can run; this module is for ``--server-root``: a
server's root filesystem mounted elsewhere (a rescue disk, a snapshot). It follows
OpenSSH's rules: keywords are case-insensitive, the first value obtained wins, Include
pulls in files (relative names under /etc/ssh, globs sorted) at that point and in that
line's context (a Match inside an included file ends with the file), Match blocks apply
when every criterion matches (User, Group, Host, Address, LocalAddress, LocalPort, All;
patterns with ``*``/``?``, lists, ``!`` negation) and their values override the main
section's, and a few keywords accumulate (AllowUsers, DenyUsers, AllowGroups, DenyGroups,
HostKey). A test compares it with the real ``sshd -T -C`` on generated configurations.
"""

from __future__ import annotations

import glob
import ipaddress
import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path

__all__ = ["DEFAULTS", "MatchContext", "effective"]

_KEYWORD = re.compile(r"(\S+?)(?:\s*=\s*|\s+)(.*)$")
# Keywords whose lines add up instead of the first one winning.
ACCUMULATE = frozenset({"allowusers", "denyusers", "allowgroups", "denygroups", "hostkey"})
# OpenSSH's defaults for what the checks read (a distribution's file usually sets more).
DEFAULTS: dict[str, list[str]] = {
    "port": ["22"],
    "permitrootlogin": ["prohibit-password"],
    "strictmodes": ["yes"],
    "usepam": ["no"],
    "pubkeyauthentication": ["yes"],
    "passwordauthentication": ["yes"],
    "maxauthtries": ["6"],
    "authorizedkeysfile": [".ssh/authorized_keys .ssh/authorized_keys2"],
    "authorizedkeyscommand": ["none"],
}


@dataclass(frozen=True)
class MatchContext:
    """What Match blocks are tested against."""

    user: str
    groups: Sequence[str] = ()
    host: str = ""
    address: str = ""
    local_address: str = ""
    local_port: int = 22


def _pattern_list(patterns: str, value: str) -> bool:
    """OpenSSH's match_pattern_list: any positive match and no negated one."""
    matched = False
    for pattern in patterns.split(","):
        negate = pattern.startswith("!")
        pattern = pattern[1:] if negate else pattern
        if _one(pattern, value):
            if negate:
                return False
            matched = True
    return matched


def _one(pattern: str, value: str) -> bool:
    if "/" in pattern:  # an address with a prefix length
        try:
            return ipaddress.ip_address(value) in ipaddress.ip_network(pattern, strict=False)
        except ValueError:
            return False
    return fnmatchcase(value, pattern)


def _matches(args: list[str], ctx: MatchContext) -> bool:
    words = iter(args)
    for word in words:
        kind = word.lower()
        if kind == "all":
            continue
        value = next(words, "")
        if kind == "user":
            ok = _pattern_list(value, ctx.user)
        elif kind == "group":
            ok = any(_pattern_list(value, g) for g in ctx.groups)
        elif kind == "host":
            ok = _pattern_list(value, ctx.host)
        elif kind == "address":
            ok = _pattern_list(value, ctx.address)
        elif kind == "localaddress":
            ok = _pattern_list(value, ctx.local_address)
        elif kind == "localport":
            ok = _pattern_list(value, str(ctx.local_port))
        else:
            ok = False  # a criterion this reader does not know: sshd would not guess either
        if not ok:
            return False
    return True


@dataclass
class _Found:
    """Values found so far: the global section's, and those of the matching Match blocks
    (which override them, as sshd applies Match blocks after the main section)."""

    settings: dict[str, list[str]]
    origin: dict[str, str]

    def add(self, keyword: str, value: str, where: str) -> None:
        if keyword in ACCUMULATE:
            self.settings.setdefault(keyword, []).append(value)
            self.origin.setdefault(keyword, where)
        elif keyword not in self.settings:  # the first value obtained wins
            self.settings[keyword] = [value]
            self.origin[keyword] = where


def _read(
    root: Path,
    path: str,
    ctx: MatchContext,
    found: tuple[_Found, _Found],
    in_match: bool = False,
    active: bool = True,
    depth: int = 0,
) -> None:
    """Apply one file's lines. An Include reads its files in the context of the Include
    line (a Match inside them ends with that file); the context is restored afterwards."""
    if depth > 16:
        return
    try:
        text = (root / path.lstrip("/")).read_text(errors="replace")
    except OSError:
        return
    outer = active  # what an included file's own Match blocks can at most be
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _KEYWORD.match(line)
        key, rest = (match.group(1), match.group(2)) if match else (line, "")
        try:
            args = shlex.split(rest, comments=True)
        except ValueError:
            args = rest.split()
        keyword = key.strip().lower()
        if keyword == "match":
            in_match, active = True, outer and _matches(args, ctx)
        elif keyword == "include":
            for pattern in args:
                full = pattern if pattern.startswith("/") else f"/etc/ssh/{pattern}"
                for name in sorted(glob.glob(str(root / full.lstrip("/")))):
                    included = "/" + str(Path(name).relative_to(root))
                    _read(root, included, ctx, found, in_match, active, depth + 1)
        elif active:
            found[in_match].add(keyword, " ".join(args), f"{path}:{number}")


def effective(
    root: str | Path, ctx: MatchContext, config: str = "/etc/ssh/sshd_config"
) -> tuple[dict[str, list[str]], dict[str, str]]:
    """The settings that apply to ``ctx`` (lower-case keyword -> values) and where each
    came from (``file:line``), as ``sshd -T -C`` would print them."""
    main, matched = _Found({}, {}), _Found({}, {})
    _read(Path(root), config, ctx, (main, matched))
    settings = {**main.settings, **matched.settings}
    origin = {**main.origin, **matched.origin}
    for keyword, value in DEFAULTS.items():
        settings.setdefault(keyword, value)
    return settings, origin
