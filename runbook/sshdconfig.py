"""sshd_config read the way sshd reads it, for a server that cannot be asked (offline).

``sshd -T -C`` is the truth when sshd can run; this module is for ``--server-root``: a
server's root filesystem mounted elsewhere (a rescue disk, a snapshot). It follows
OpenSSH's rules: keywords are case-insensitive, the first value obtained wins, Include
pulls in files (relative names under /etc/ssh, globs sorted) at that point, Match blocks
apply when every criterion matches (User, Group, Host, Address, LocalAddress, LocalPort,
All; patterns with ``*``/``?``, lists, ``!`` negation), and a few keywords accumulate
(AllowUsers, DenyUsers, AllowGroups, DenyGroups, HostKey).
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


def _lines(root: Path, path: str, depth: int = 0) -> list[tuple[str, list[str], str]]:
    """(keyword, args, origin) in file order, Includes expanded in place."""
    if depth > 16:
        return []
    real = root / path.lstrip("/")
    try:
        text = real.read_text(errors="replace")
    except OSError:
        return []
    out: list[tuple[str, list[str], str]] = []
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
        if keyword == "include":
            for pattern in args:
                full = pattern if pattern.startswith("/") else f"/etc/ssh/{pattern}"
                for found in sorted(glob.glob(str(root / full.lstrip("/")))):
                    out += _lines(root, "/" + str(Path(found).relative_to(root)), depth + 1)
            continue
        out.append((keyword, args, f"{path}:{number}"))
    return out


def effective(
    root: str | Path, ctx: MatchContext, config: str = "/etc/ssh/sshd_config"
) -> tuple[dict[str, list[str]], dict[str, str]]:
    """The settings that apply to ``ctx`` (lower-case keyword -> values) and where each
    came from (``file:line``), as ``sshd -T -C`` would print them."""
    settings: dict[str, list[str]] = {}
    origin: dict[str, str] = {}
    active = True
    for keyword, args, where in _lines(Path(root), config):
        if keyword == "match":
            active = _matches(args, ctx)
            continue
        if not active:
            continue
        value = " ".join(args)
        if keyword in ACCUMULATE:
            settings.setdefault(keyword, []).append(value)
            origin.setdefault(keyword, where)
        elif keyword not in settings:
            settings[keyword] = [value]
            origin[keyword] = where
    for keyword, value in DEFAULTS.items():
        settings.setdefault(keyword, value)
    return settings, origin
