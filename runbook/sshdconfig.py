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

:func:`problems` is the offline ``sshd -t``: the lines that stop sshd from starting (an
unknown keyword, a value sshd does not take, a global keyword inside a Match block), each
with its file and line and sshd's own words. Another test compares it with ``sshd -t``.
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

__all__ = [
    "DEFAULTS",
    "MatchContext",
    "Problem",
    "addr_match_list",
    "effective",
    "match_host_and_ip",
    "match_pattern",
    "match_pattern_list",
    "match_user",
    "problems",
]

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


# -- OpenSSH's pattern matching (match.c, addrmatch.c) ------------------------------------


def match_pattern(string: str, pattern: str) -> bool:
    """match.c's match_pattern: ``*`` and ``?`` wildcards only, case-sensitive."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, string, re.S) is not None


def match_pattern_list(string: str, patterns: str, lower: bool = False) -> int:
    """match.c's match_pattern_list: 1 for a match, -1 for a negated match (which wins),
    0 for none. ``lower``: the patterns are lower-cased first (host names)."""
    positive = 0
    for sub in patterns.split(","):
        negated = sub.startswith("!")
        sub = sub[1:] if negated else sub
        if match_pattern(string, sub.lower() if lower else sub):
            if negated:
                return -1
            positive = 1
    return positive


def _cidr(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | int | None:
    """addr_pton_cidr: a network, None when it is no address at all (then a wildcard
    pattern), -2 when it is an address with an inconsistent mask (sshd's error)."""
    address, slash, bits = text.partition("/")
    if slash and not (bits[:1].isdigit() and bits.isdigit() and int(bits) <= 128):
        return None
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return None
    length = int(bits) if slash else ip.max_prefixlen
    if length > ip.max_prefixlen:
        return -2
    try:
        return ipaddress.ip_network(f"{ip}/{length}", strict=True)
    except ValueError:  # host bits set: "inconsistent mask length"
        return -2


def addr_match_list(address: str | None, patterns: str) -> int:
    """addrmatch.c's addr_match_list: 1 match, 0 none, -1 negated match, -2 a bad entry.
    Entries are CIDR (``10.0.0.0/8``), plain addresses, or wildcard patterns."""
    try:
        ip = ipaddress.ip_address(address) if address is not None else None
    except ValueError:
        return 0
    result = 0
    for entry in patterns.split(","):
        negated = entry.startswith("!")
        entry = entry[1:] if negated else entry
        if not entry:
            return -2
        network = _cidr(entry)
        if network == -2:
            return -2
        if isinstance(network, ipaddress.IPv4Network | ipaddress.IPv6Network):
            found = ip is not None and ip.version == network.version and ip in network
        else:
            found = address is not None and match_pattern(address, entry)
        if found:
            if negated:
                return -1
            result = 1
    return result


def match_host_and_ip(host: str | None, address: str | None, patterns: str) -> int:
    """match.c's match_host_and_ip (from= in authorized_keys, user@host in AllowUsers):
    1 allowed, 0 not, -1 a bad pattern (which refuses too)."""
    by_address = addr_match_list(address, patterns)
    if by_address == -2:
        return -1
    if host is None or address is None or by_address == -1:
        return 0
    by_name = match_pattern_list(host.lower(), patterns, lower=True)
    if by_name == -1 or (by_name == 0 and by_address == 0):
        return 0
    return 1


def match_user(user: str, host: str | None, address: str | None, pattern: str) -> int:
    """match.c's match_user: one AllowUsers/DenyUsers word, ``user`` or ``user@host``
    (the last ``@`` splits; the host part may be a CIDR list or name patterns)."""
    name, at, where = pattern.rpartition("@")
    if not at:
        return int(match_pattern(user, pattern))
    if not match_pattern(user, name):
        return 0
    return match_host_and_ip(host, address, where)


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
    text = _config_text(root, path, depth)
    if text is None:
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


# -- the offline sshd -t ------------------------------------------------------------------


def _words(text: str) -> list[str]:
    return text.split()


# Every keyword OpenSSH 9.x-10.x sshd knows (servconf.c), deprecated and unsupported ones
# included (sshd logs and skips those), and the ones Debian's and Red Hat's patches add.
KEYWORDS = frozenset(
    _words("""acceptenv addressfamily afstokenpassing allowagentforwarding allowgroups
    allowstreamlocalforwarding allowtcpforwarding allowusers authenticationmethods
    authorizedkeyscommand authorizedkeyscommanduser authorizedkeysfile authorizedkeysfile2
    authorizedprincipalscommand authorizedprincipalscommanduser authorizedprincipalsfile banner
    casignaturealgorithms challengeresponseauthentication channeltimeout checkmail
    chrootdirectory ciphers clientalivecountmax clientaliveinterval compression denygroups
    denyusers disableforwarding dsaauthentication exposeauthinfo fingerprinthash forcecommand
    gatewayports gssapiauthentication gssapicleanupcredentials gssapistrictacceptorcheck
    gssapidelegatecredentials hostbasedacceptedalgorithms hostbasedacceptedkeytypes
    hostbasedauthentication hostbasedusesnamefrompacketonly hostcertificate hostdsakey hostkey
    hostkeyagent hostkeyalgorithms ignorerhosts ignoreuserknownhosts include ipqos
    kbdinteractiveauthentication keepalive kerberosauthentication kerberosgetafstoken
    kerberosorlocalpasswd kerberostgtpassing kerberosticketcleanup kexalgorithms
    keyregenerationinterval listenaddress logingracetime loglevel logverbose macs match
    maxauthtries maxsessions maxstartups modulifile pamauthenticationviakbdint pamservicename
    passwordauthentication permitemptypasswords permitlisten permitopen permitrootlogin
    permittty permittunnel permituserenvironment permituserrc persourcemaxstartups
    persourcenetblocksize persourcepenalties persourcepenaltyexemptlist pidfile port
    printlastlog printmotd protocol pubkeyacceptedalgorithms pubkeyacceptedkeytypes
    pubkeyauthentication pubkeyauthoptions rdomain refuseconnection rekeylimit requiredrsasize
    reversemappingcheck revokedkeys rhostsauthentication rhostsrsaauthentication
    rsaauthentication securitykeyprovider serverkeybits setenv skeyauthentication
    sshdauthpath sshdsessionpath streamlocalbindmask streamlocalbindunlink strictmodes
    subsystem syslogfacility tcpkeepalive trustedusercakeys unusedconnectiontimeout usedns
    uselogin usepam useprivilegeseparation verifyreversemapping versionaddendum
    x11displayoffset x11forwarding x11uselocalhost xauthlocation
    debianbanner gssapikeyexchange gssapistorecredentialsonrekey gssapikexalgorithms
    gssapienablek5users kerberosusekuserok""")
)
# Keywords sshd refuses inside a Match block (SSHCFG_GLOBAL in servconf.c; Subsystem is
# allowed there since 9.5, so it is left out).
GLOBAL_ONLY = frozenset(
    _words("""addressfamily afstokenpassing checkmail ciphers compression dsaauthentication
    fingerprinthash gssapicleanupcredentials gssapistrictacceptorcheck gssapidelegatecredentials
    hostcertificate hostdsakey hostkey hostkeyagent hostkeyalgorithms ignoreuserknownhosts
    keepalive kerberosgetafstoken kerberosorlocalpasswd kerberostgtpassing
    kerberosticketcleanup kexalgorithms keyregenerationinterval listenaddress logingracetime
    macs maxstartups modulifile pamauthenticationviakbdint permituserenvironment
    persourcemaxstartups persourcenetblocksize persourcepenalties persourcepenaltyexemptlist
    pidfile port printlastlog printmotd protocol reversemappingcheck rhostsauthentication
    securitykeyprovider serverkeybits sshdauthpath sshdsessionpath strictmodes syslogfacility
    tcpkeepalive usedns uselogin usepam useprivilegeseparation verifyreversemapping
    versionaddendum xauthlocation""")
)
# The values sshd takes for its yes/no and multi-state keywords (case-insensitive).
_YES_NO = ("yes", "no")
CHOICES: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(
        _words("""usepam hostbasedauthentication hostbasedusesnamefrompacketonly
        pubkeyauthentication dsaauthentication passwordauthentication kbdinteractiveauthentication
        challengeresponseauthentication skeyauthentication printmotd printlastlog
        x11forwarding x11uselocalhost permittty permituserrc strictmodes tcpkeepalive keepalive
        permitemptypasswords usedns allowagentforwarding disableforwarding
        streamlocalbindunlink exposeauthinfo ignoreuserknownhosts"""
        ),
        _YES_NO,
    ),
    "permitrootlogin": (
        "without-password", "prohibit-password", "forced-commands-only", "yes", "no",
    ),
    "ignorerhosts": ("yes", "no", "shosts-only"),
    "addressfamily": ("inet", "inet6", "any"),
    "compression": ("yes", "delayed", "no"),
    "gatewayports": ("clientspecified", "yes", "no"),
    "allowtcpforwarding": ("yes", "all", "no", "remote", "local"),
    "allowstreamlocalforwarding": ("yes", "all", "no", "remote", "local"),
    "loglevel": (
        "quiet", "fatal", "error", "info", "verbose", "debug", "debug1", "debug2", "debug3",
    ),
    "syslogfacility": (
        "daemon", "user", "auth", "authpriv",
        *(f"local{n}" for n in range(8)),
    ),
}  # fmt: skip
INTEGERS = frozenset(
    {"maxauthtries", "maxsessions", "clientalivecountmax", "requiredrsasize", "x11displayoffset"}
)
TIMES = frozenset({"logingracetime", "clientaliveinterval"})
# Keywords that take exactly one value: more is "extra arguments at end of line".
_SINGLE = frozenset({*CHOICES, *INTEGERS, *TIMES, "port"})
MATCH_CRITERIA = frozenset(
    {"all", "user", "group", "host", "address", "localaddress", "localport", "rdomain",
     "invalid-user", "version"}
)  # fmt: skip
_INT_MAX = 2**31 - 1
_TIME = re.compile(r"(?:\d+[smhdwSMHDW]?)+")


@dataclass(frozen=True)
class Problem:
    """A line sshd will not start with, in sshd's words."""

    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file} line {self.line}: {self.message}"


def _value_problem(keyword: str, name: str, args: list[str]) -> str | None:
    """What sshd says about a keyword's value, or None when it takes it."""
    value = args[0] if args else ""
    if keyword in CHOICES:
        if value.lower() not in CHOICES[keyword]:
            if keyword == "loglevel":
                return f"unsupported log level '{value}'"
            if keyword == "syslogfacility":
                return f"unsupported log facility '{value}'"
            return f'unsupported option "{value}".'
    elif keyword in INTEGERS:
        if not value.isdigit() or int(value) > _INT_MAX:
            return f"{name} integer value {'too large' if value.isdigit() else 'invalid'}."
    elif keyword in TIMES and not _TIME.fullmatch(value):
        return "invalid time value."
    elif keyword == "port" and not (value.isdigit() and 0 < int(value) <= 65535):
        return "Badly formatted port number."
    if keyword in _SINGLE and len(args) > 1:
        return f"keyword {name} extra arguments at end of line"
    return None


def _match_problem(args: list[str]) -> str | None:
    words = iter(args)
    seen = 0
    for word in words:
        kind = word.lower()
        if kind not in MATCH_CRITERIA:
            return f"Unsupported Match attribute {word}"
        seen += 1
        if kind == "all":
            continue
        if next(words, None) is None:
            return f"Missing Match criteria for {word}"
    if not seen:
        return "One or more attributes required for Match"
    if "all" in (a.lower() for a in args) and len(args) > 1:
        return "'all' cannot be combined with other Match attributes"
    return None


def _config_text(root: Path, path: str, depth: int) -> str | None:
    """A config file under ``root`` (None when missing, or Includes nest past sshd's 16)."""
    if depth > 16:
        return None
    try:
        return (root / path.lstrip("/")).read_text(errors="replace")
    except OSError:
        return None


def _check_file(
    root: Path, path: str, in_match: bool, found: list[Problem], depth: int = 0
) -> None:
    text = _config_text(root, path, depth)
    if text is None:
        return
    for number, raw in enumerate(text.split("\n"), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _KEYWORD.match(line)
        if not match or not match.group(2).strip():
            found.append(Problem(path, number, f'no argument after keyword "{line.split()[0]}"'))
            continue
        name, rest = match.group(1), match.group(2)
        try:
            args = shlex.split(rest, comments=True)
        except ValueError:
            found.append(Problem(path, number, "invalid quotes"))
            continue
        keyword = name.lower()
        if keyword not in KEYWORDS:
            found.append(Problem(path, number, f"Bad configuration option: {name}"))
        elif keyword == "match":
            # "Match all" applies at once, so it may hold global keywords; other blocks
            # are inactive while sshd loads the file (no connection to match yet).
            in_match = [a.lower() for a in args] != ["all"]
            if why := _match_problem(args):
                found.append(Problem(path, number, f"{why} (Bad Match condition)"))
        elif in_match and keyword in GLOBAL_ONLY:
            found.append(
                Problem(path, number, f"Directive '{name}' is not allowed within a Match block")
            )
        elif keyword == "include":
            for pattern in args:
                full = pattern if pattern.startswith("/") else f"/etc/ssh/{pattern}"
                for each in sorted(glob.glob(str(root / full.lstrip("/")))):
                    included = "/" + str(Path(each).relative_to(root))
                    _check_file(root, included, in_match, found, depth + 1)
        elif why := _value_problem(keyword, name, args):
            found.append(Problem(path, number, why))


def problems(root: str | Path, config: str = "/etc/ssh/sshd_config") -> list[Problem]:
    """The lines that keep sshd from starting (what ``sshd -t`` would complain of), in the
    order sshd reads them, Include files in place. A missing file is no problem here."""
    found: list[Problem] = []
    _check_file(Path(root), config, False, found)
    return found
