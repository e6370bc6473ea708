"""Read-only checks on the server itself (``--server local|nsenter:PID|USER@HOST``).

In dependency order, each a small function returning findings (step ``server``): the sshd
that listens on the port, its configuration (``sshd -t``, then the effective settings
for this very user with ``sshd -T -C``), the account (exists, locked, expired, shell),
StrictModes on the authorized_keys path and every directory above it, whether
authorized_keys holds the client's key, and firewalls and fail2ban in front of the port.
A check whose precondition failed says "not checked"; every command run is listed in the
findings' evidence. Nothing is written.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import itertools
import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from runbook import sshdconfig
from runbook.findings import Finding
from runbook.hosts import Host

__all__ = ["ROOT_KEYS_ONLY", "Context", "check_server"]

STEP = "server"


@dataclass
class Context:
    """What the checks know about the attempt."""

    user: str
    port: int
    client_ip: str | None
    server_address: str | None = None  # the address the client connects to
    client_host: str = "client"
    client_keys: Sequence[str] = ()  # SHA256 fingerprints of the keys the client offers
    # Keys in the client's ~/.ssh that ssh does not offer: fingerprint -> private key path.
    unoffered_keys: dict[str, str] = field(default_factory=dict)
    # Per key type, the signature algorithms the client would use (its PubkeyAccepted...).
    client_algorithms: dict[str, list[str]] = field(default_factory=dict)
    password: bool = False  # whether the client tries a password (--password-env)
    sshd_pid: int | None = None
    config: str = "/etc/ssh/sshd_config"
    settings: dict[str, list[str]] = field(default_factory=dict)
    passwd: list[str] | None = None
    remote_host: str | None = None  # the client as sshd names it (UseDNS)
    debian: bool | None = None  # sshd with Debian's patches (group-writable private groups)
    sshd_serves: bool = False  # an sshd listens on the port and is not stuck


def _finding(
    check: str,
    status: str,
    summary: str,
    cause: str | None = None,
    evidence: Sequence[str] = (),
    **data: str | int,
) -> Finding:
    return Finding(
        STEP,
        check,
        status,
        summary,
        cause_id=cause,  # type: ignore[arg-type]
        evidence=list(evidence),
        data=dict(data),
    )


def _skip(check: str, why: str) -> Finding:
    """A check whose precondition failed, named (the report lists several in a row)."""
    return _finding(check, "skip", f"{check.replace('_', ' ')} not checked: {why}")


# -- sshd: listening, process, configuration ------------------------------------------------

_LISTEN = re.compile(r"^\S+\s+\d+\s+\d+\s+(?P<addr>\S+):(?P<port>\d+)\s+\S+\s*(?P<users>.*)$")


def _listener_pid(users: str) -> int | None:
    """The first pid in ss's ``users:(("sshd",pid=812,fd=3))`` column."""
    match = re.search(r"pid=(\d+)", users)
    return int(match.group(1)) if match else None


# Process states in which a listening sshd accepts nothing (proc(5)).
_STUCK_STATES = {"T": "stopped (SIGSTOP)", "t": "stopped by a debugger", "Z": "a zombie"}


def _stuck(host: Host, pid: int) -> str | None:
    """How the process is stuck, from /proc/PID/stat, or None when it runs or sleeps."""
    stat = host.read(f"/proc/{pid}/stat")
    if not stat or ")" not in stat:
        return None
    state = stat.rsplit(")", 1)[1].split()[0]
    return _STUCK_STATES.get(state)


def check_listening(host: Host, ctx: Context) -> list[Finding]:
    """Which process listens on the port (``ss -Htlnp``), and sshd anywhere else."""
    result = host.run("ss -Htlnp")
    if not result.ok:
        return [
            _finding(
                "listening",
                "warn",
                f"cannot list sockets: {result.stderr.strip()}",
                evidence=[result.command],
            )
        ]
    listeners = [m for line in result.stdout.splitlines() if (m := _LISTEN.match(line.strip()))]
    wildcard = ("0.0.0.0", "*", "[::]", "::")
    on_port = [
        m
        for m in listeners
        if int(m.group("port")) == ctx.port
        and (
            ctx.server_address is None
            or m.group("addr").strip("[]") in (*wildcard, ctx.server_address)
        )
    ]
    sshd_elsewhere = [m for m in listeners if "sshd" in m.group("users") and m not in on_port]
    if on_port:
        users = on_port[0].group("users")
        pid = _listener_pid(users)
        if "sshd" in users and pid:
            ctx.sshd_pid = ctx.sshd_pid or pid
            if stuck := _stuck(host, pid):
                return [
                    _finding(
                        "listening",
                        "fail",
                        f"sshd (pid {pid}) listens on {on_port[0].group('addr')}:{ctx.port} but "
                        f"is {stuck}: the kernel completes each TCP handshake and nobody answers",
                        "server.sshd_down",
                        [result.command, f"/proc/{pid}/stat: state {stuck}"],
                    )
                ]
            ctx.sshd_serves = True
            return [
                _finding(
                    "listening",
                    "pass",
                    f"sshd (pid {pid}) listens on {on_port[0].group('addr')}:{ctx.port}",
                    evidence=[result.command],
                )
            ]
        return [
            _finding(
                "listening",
                "fail",
                f"port {ctx.port} belongs to another program: {users or '?'}",
                "proto.not_ssh",
                [result.command],
            )
        ]
    if sshd_elsewhere:
        where = ", ".join(f"{m.group('addr')}:{m.group('port')}" for m in sshd_elsewhere)
        # The one on the port asked for (at another address) is the one meant.
        meant = next((m for m in sshd_elsewhere if int(m.group("port")) == ctx.port), None)
        meant = meant or sshd_elsewhere[0]
        ctx.sshd_pid = ctx.sshd_pid or _listener_pid(meant.group("users"))
        address = meant.group("addr").strip("[]").split("%")[0]
        return [
            _finding(
                "listening",
                "fail",
                f"sshd listens on {where}, not on {ctx.server_address or 'port'}:{ctx.port}",
                "port.refused",
                [result.command],
                other_port=int(meant.group("port")),
                **({} if address in wildcard else {"other_address": address}),
            )
        ]
    running = host.run("pgrep -a -x sshd")
    active = host.run("systemctl is-active ssh sshd")
    evidence = [result.command, running.command, active.command]
    if running.ok:
        return [
            _finding(
                "listening",
                "fail",
                f"sshd runs but listens on no TCP port: {running.stdout.strip()[:120]}",
                "server.sshd_down",
                evidence,
            )
        ]
    return [
        _finding(
            "listening",
            "fail",
            "sshd is not running (no process, nothing listens on "
            f"port {ctx.port}; systemctl: {' '.join(active.stdout.split()) or 'no answer'})",
            "server.sshd_down",
            evidence,
        )
    ]


def find_config(host: Host, ctx: Context) -> list[Finding]:
    """The config file the running sshd was started with (its ``-f``), or the default."""
    if ctx.sshd_pid:
        cmdline = host.read(f"/proc/{ctx.sshd_pid}/cmdline")
        if cmdline:
            argv = cmdline.split("\0")
            if (
                len(argv) <= 2
            ):  # sshd rewrote its title: "sshd: /usr/sbin/sshd -D -f ... [listener]"
                argv = cmdline.replace("\0", " ").split()
            for flag, value in itertools.pairwise(argv):
                if flag == "-f":
                    ctx.config = value
    return [_finding("config", "info", f"sshd reads {ctx.config}")]


def _sshd_program(host: Host) -> str | None:
    """How to run sshd here: ``sshd`` from PATH, else /usr/sbin/sshd; None when absent."""
    return next((p for p in ("sshd", "/usr/sbin/sshd") if host.exists(p)), None)


def check_config(host: Host, ctx: Context) -> list[Finding]:
    """``sshd -t``: does the configuration load (the file and line when it does not)?"""
    result = host.run(f"{_sshd_program(host) or '/usr/sbin/sshd'} -t -f", ctx.config)
    if result.ok:
        return [_finding("sshd -t", "pass", f"{ctx.config} is valid", evidence=[result.command])]
    message = (result.stderr or result.stdout).strip().splitlines()
    said = message[0] if message else result.rc
    if ctx.sshd_serves:
        # sshd runs with what it loaded at its start: only its next restart or reload fails.
        return [
            _finding(
                "sshd -t",
                "warn",
                f"{ctx.config} does not load ({said}): the running sshd still serves, but "
                "its next restart or reload will fail",
                evidence=[result.command, *message[:5]],
            )
        ]
    return [
        _finding(
            "sshd -t",
            "fail",
            f"the configuration does not load: {said}",
            "server.sshd_down",
            [result.command, *message[:5]],
        )
    ]


def effective_settings(host: Host, ctx: Context) -> list[Finding]:
    """``sshd -T -C user=,host=,addr=``: what applies to this user from this address."""
    spec = f"user={ctx.user},host={ctx.client_host},addr={ctx.client_ip or '127.0.0.1'}"
    result = host.run("/usr/sbin/sshd -T -f", ctx.config, "-C", spec)
    if not result.ok:
        return [
            _finding(
                "sshd -T",
                "warn",
                f"cannot read the effective settings: {result.stderr.strip()[:150]}",
                evidence=[result.command],
            )
        ]
    for line in result.stdout.splitlines():
        key, _, value = line.partition(" ")
        ctx.settings.setdefault(key.lower(), []).append(value.strip())
    wanted = (
        "port",
        "listenaddress",
        "passwordauthentication",
        "pubkeyauthentication",
        "authenticationmethods",
        "permitrootlogin",
        "allowusers",
        "denyusers",
        "allowgroups",
        "denygroups",
        "maxauthtries",
        "strictmodes",
        "usepam",
        "authorizedkeysfile",
    )
    shown = [f"{k} {' '.join(ctx.settings[k])}" for k in wanted if k in ctx.settings]
    return [
        _finding(
            "sshd -T",
            "info",
            f"effective settings for {ctx.user} from {ctx.client_ip or '?'}",
            evidence=[result.command, *shown],
        )
    ]


def offline_settings(host: Host, ctx: Context) -> list[Finding]:
    """sshd_config and its Include and Match blocks as sshd would apply them (offline)."""
    match = sshdconfig.MatchContext(
        user=ctx.user,
        groups=host.groups(ctx.user),
        host=ctx.client_host,
        address=ctx.client_ip or "",
        local_address=ctx.server_address or "",
        local_port=ctx.port,
    )
    if host.read(ctx.config) is None:
        return [_finding("sshd_config", "warn", f"{ctx.config} is missing under the root")]
    ctx.settings, origin = sshdconfig.effective(host.root, match, ctx.config)  # type: ignore[attr-defined]
    shown = [
        f"{k} {' '.join(v)}  ({origin.get(k, 'default')})"
        for k, v in ctx.settings.items()
        if k
        in (
            "port",
            "listenaddress",
            "passwordauthentication",
            "pubkeyauthentication",
            "permitrootlogin",
            "allowusers",
            "denyusers",
            "allowgroups",
            "denygroups",
            "strictmodes",
            "usepam",
            "authorizedkeysfile",
            "pubkeyacceptedalgorithms",
        )
    ]
    off = _method_off(host, ctx, origin)
    return [
        _finding(
            "sshd_config",
            "info",
            f"settings for {ctx.user} read from {ctx.config} (offline)",
            evidence=shown,
            **({"config_line": off} if off else {}),
        )
    ]


def _method_off(host: Host, ctx: Context, origin: dict[str, str]) -> str | None:
    """The line that turns off the method the client tries (a key, a password), with the
    Match block it sits in: "pubkeyauthentication no (FILE:N, in Match User u at FILE:M)"."""
    tried = [
        ("pubkeyauthentication", bool(ctx.client_keys)),
        ("passwordauthentication", ctx.password),
    ]
    for key, used in tried:
        where = origin.get(key)
        if not used or not where or _one(ctx, key, "yes").lower() != "no":
            continue
        path, _, number = where.rpartition(":")
        lines = (host.read(path) or "").splitlines()[: int(number) - 1 if number.isdigit() else 0]
        block = next(
            (
                f", in {line.strip()} at {path}:{n}"
                for n, line in reversed(list(enumerate(lines, 1)))
                if line.strip().lower().startswith("match ")
            ),
            "",
        )
        return f"{key} no ({where}{block})"
    return None


def offline_syntax(host: Host, ctx: Context) -> list[Finding]:
    """The offline ``sshd -t``: lines of sshd_config (and its Include files) that keep
    sshd from starting, each with its file and line (runbook.sshdconfig.problems)."""
    if host.read(ctx.config) is None:
        return []
    found = sshdconfig.problems(host.root, ctx.config)  # type: ignore[attr-defined]
    if not found:
        return [
            _finding(
                "sshd -t",
                "pass",
                f"{ctx.config}: every line is one sshd takes (offline check)",
            )
        ]
    return [
        _finding(
            "sshd -t",
            "fail",
            f"the configuration does not load: {found[0]} (offline check); sshd will not "
            "start with it",
            "server.sshd_down",
            [str(p) for p in found[:8]],
            config_line=str(found[0]),
        )
    ]


def _one(ctx: Context, key: str, default: str = "") -> str:
    return (ctx.settings.get(key) or [default])[0]


# PermitRootLogin values that refuse root's password ("without-password" is the old name
# of OpenSSH's default prohibit-password, and what sshd -T prints for it).
ROOT_KEYS_ONLY = ("prohibit-password", "without-password", "forced-commands-only")


def _remote_host(host: Host, ctx: Context) -> str | None:
    """The client's name as sshd sees it: with UseDNS yes its reverse-resolved name (the
    address when that fails), else its address (auth_get_canonical_hostname)."""
    if ctx.remote_host is None and ctx.client_ip:
        ctx.remote_host = ctx.client_ip
        if _one(ctx, "usedns", "no").lower() == "yes":
            ctx.remote_host = _resolve(host, ctx.client_ip) or ctx.client_ip
    return ctx.remote_host


def _resolve(host: Host, address: str) -> str | None:
    """The server's name for an address: getent (live) or its /etc/hosts (offline)."""
    if host.offline:
        for line in (host.read("/etc/hosts") or "").splitlines():
            words = line.split("#", 1)[0].split()
            if len(words) > 1 and words[0] == address:
                return words[1].lower()
        return None
    result = host.run("getent hosts --", address)
    words = result.stdout.split()
    return words[1].lower() if result.ok and len(words) > 1 else None


def _uid(host: Host, ctx: Context) -> str | None:
    entry = ctx.passwd or host.passwd(ctx.user)
    return entry[2] if entry and len(entry) > 2 else None


def check_access_rules(host: Host, ctx: Context) -> list[Finding]:
    """PermitRootLogin and Allow/Deny Users/Groups, as sshd itself applies them: root is
    uid 0 whatever its name, and ``user@host`` entries match the client's address (CIDR,
    wildcards) or, with UseDNS yes, its name (auth.c's allowed_user, match.c)."""
    findings = []
    permit = _one(ctx, "permitrootlogin")
    uid = _uid(host, ctx)
    root = uid == "0" if uid is not None else ctx.user == "root"
    who = "root" if ctx.user == "root" else f"{ctx.user} (uid 0, so sshd treats it as root)"
    if root and permit == "no":
        findings.append(
            _finding(
                "PermitRootLogin",
                "fail",
                f"PermitRootLogin no refuses {who}",
                "account.root_denied",
                [f"permitrootlogin {permit}", f"{ctx.user}: uid {uid or '0'}"],
            )
        )
    elif root and permit in ROOT_KEYS_ONLY:
        keys = "keys with a command= option" if permit == "forced-commands-only" else "a key"
        findings.append(
            _finding(
                "PermitRootLogin",
                "fail" if ctx.password else "info",
                f"PermitRootLogin {permit}: {who} logs in with {keys} only, and every password "
                "is refused, the right one too",
                "account.root_denied" if ctx.password else None,
                [f"permitrootlogin {permit}"],
            )
        )
    if uid is None:
        return findings or [_skip("access rules", "the account does not exist")]
    rules = {key: " ".join(ctx.settings.get(key, [])).split() for key in _ACCESS_KEYS}
    if not any(rules.values()):
        return findings or [
            _finding("access rules", "pass", f"no Allow/Deny rule refuses {ctx.user}")
        ]
    name = _remote_host(host, ctx)
    address = ctx.client_ip
    groups = host.groups(ctx.user)
    unsure = address is None and any("@" in p for p in rules["allowusers"] + rules["denyusers"])

    def user_matches(pattern: str) -> int:
        return sshdconfig.match_user(ctx.user, name, address, pattern)

    def group_matches(patterns: list[str]) -> str | None:
        return next(
            (f"{g} ~ {p}" for p in patterns for g in groups if sshdconfig.match_pattern(g, p)),
            None,
        )

    refusal = None
    if hit := next((p for p in rules["denyusers"] if user_matches(p)), None):
        refusal = ("denyusers", f"listed in DenyUsers ({hit})")
    elif rules["allowusers"] and not any(user_matches(p) == 1 for p in rules["allowusers"]):
        refusal = ("allowusers", "not listed in AllowUsers")
    elif (rules["denygroups"] or rules["allowgroups"]) and not groups:
        refusal = ("allowgroups" if rules["allowgroups"] else "denygroups", "not in any group")
    elif hit := group_matches(rules["denygroups"]):
        refusal = ("denygroups", f"a group is listed in DenyGroups ({hit})")
    elif rules["allowgroups"] and not group_matches(rules["allowgroups"]):
        refusal = ("allowgroups", "none of its groups is listed in AllowGroups")
    if refusal is None:
        return findings or [
            _finding(
                "access rules",
                "pass",
                f"no Allow/Deny rule refuses {ctx.user} from {name or address or '?'}",
                evidence=[f"{k} {' '.join(v)}" for k, v in rules.items() if v],
            )
        ]
    key, why = refusal
    client = name if name == address or not name else f"{name} ({address})"
    findings.append(
        _finding(
            key,
            "warn" if unsure else "fail",
            f"sshd refuses {ctx.user} from {client or 'this client'}: {why}"
            + (
                "; the client's address is not known, user@host entries not checked"
                if unsure
                else ""
            ),
            "account.not_allowed",
            [f"{k} {' '.join(v)}" for k, v in rules.items() if v]
            + [f"groups of {ctx.user}: {' '.join(groups) or 'none'}"]
            + ([f"UseDNS yes: the client is {name}"] if name and name != address else []),
        )
    )
    return findings


_ACCESS_KEYS = ("denyusers", "allowusers", "denygroups", "allowgroups")


def check_signature_algorithms(host: Host, ctx: Context) -> list[Finding]:
    """Can the server accept a signature the client would make with each of its keys?"""
    accepted = set(",".join(ctx.settings.get("pubkeyacceptedalgorithms", [])).split(",")) - {""}
    if not accepted or not ctx.client_algorithms:
        return []
    usable = {
        kind: [a for a in algs if a in accepted] for kind, algs in ctx.client_algorithms.items()
    }
    if any(usable.values()):
        return [
            _finding(
                "PubkeyAcceptedAlgorithms",
                "pass",
                "the server accepts " + ", ".join(f"{k}: {v[0]}" for k, v in usable.items() if v),
            )
        ]
    kinds = ", ".join(f"{k} ({'/'.join(v) or 'none'})" for k, v in ctx.client_algorithms.items())
    # One the server accepts and a key of the client could sign with, had the client not
    # turned it off (ssh-rsa since 8.8): the client can allow it. Else the server must.
    allowable = [
        a for kind in ctx.client_algorithms for a in SIGNATURES.get(kind, (kind,)) if a in accepted
    ]
    fact = (
        {"algorithm": allowable[0]}
        if allowable
        else {"refused_algorithm": ",".join(sorted(ctx.client_algorithms))}
    )
    return [
        _finding(
            "PubkeyAcceptedAlgorithms",
            "fail",
            f"no mutual signature algorithm: the client signs {kinds}; the server "
            f"accepts {','.join(sorted(accepted))}",
            "auth.sig_alg",
            [f"pubkeyacceptedalgorithms {','.join(sorted(accepted))}"],
            **fact,
        )
    ]


# -- the account ----------------------------------------------------------------------------


def check_account(host: Host, ctx: Context) -> list[Finding]:
    """The account exists, is not locked or expired, and has a login shell."""
    ctx.passwd = host.passwd(ctx.user)
    if ctx.passwd is None:
        return [
            _finding(
                "account",
                "fail",
                f"there is no user {ctx.user} on the server",
                "account.invalid_user",
                [f"getent passwd {ctx.user}: no entry"],
            )
        ]
    entry_text = ":".join(ctx.passwd)
    findings = []
    shell = ctx.passwd[6] if len(ctx.passwd) > 6 else ""
    if shell.endswith(("/nologin", "/false")):
        findings.append(
            _finding(
                "shell",
                "fail",
                f"{ctx.user}'s shell is {shell}",
                "account.nologin",
                [entry_text],
            )
        )
    elif shell and not _chroot_dir(ctx) and not host.executable(shell):
        # With a ChrootDirectory the shell is looked for inside it (check_chroot).
        findings.append(
            _finding(
                "shell",
                "fail",
                f"{ctx.user}'s shell {shell} does not exist",
                "account.nologin",
                [entry_text],
                # sshd refuses such a user before authentication (auth.c's allowed_user)
                shell_refused=f"shell {shell} does not exist or is not executable",
            )
        )
    findings += _nologin_files(host, ctx)
    fields = host.shadow(ctx.user)
    if fields:
        findings += _shadow(host, ctx, fields)
    else:
        findings.append(_finding("shadow", "skip", "not checked: shadow is not readable here"))
    findings += _faillock(host, ctx)
    return findings or [
        _finding(
            "account",
            "pass",
            f"{ctx.user} exists, not locked or expired, shell {shell}",
            **({"login_shell": shell} if shell else {}),
        )
    ]


def _pam(ctx: Context) -> bool:
    return _one(ctx, "usepam", "no").lower() == "yes"


def _passwords_asked(ctx: Context) -> bool:
    """Whether the client's password reaches a password check: it has one, and sshd takes
    passwords (PasswordAuthentication, or keyboard-interactive through PAM)."""
    kbd = _one(ctx, "kbdinteractiveauthentication", "yes").lower() == "yes"
    return ctx.password and (
        _one(ctx, "passwordauthentication", "yes").lower() == "yes" or (kbd and _pam(ctx))
    )


def _shadow(host: Host, ctx: Context, fields: list[str]) -> list[Finding]:
    """The password field and the account's expiry day, as sshd (UsePAM no: auth.c,
    platform.c, auth-shadow.c) or PAM's pam_unix (UsePAM yes) judge them."""
    findings = []
    password, expire = fields[1], fields[7] if len(fields) > 7 else ""
    pam = _pam(ctx)
    if not pam and password.startswith(("!", "*LK*")):
        findings.append(
            _finding(
                "shadow",
                "fail",
                f"{ctx.user}'s password is locked ('!' in shadow): sshd without PAM refuses "
                "the account, keys included",
                "account.locked",
                ["getent shadow: password field starts with '!'", "usepam no"],
            )
        )
    elif password.startswith(("!", "*")):
        # Such a hash matches no password, the right one included (crypt never yields it).
        what = (
            "locked ('!' in shadow)"
            if password.startswith("!") and password != "!!"
            else f"not set ('{password[:2]}' in shadow)"
        )
        asked = _passwords_asked(ctx)
        if asked or password.startswith("!"):
            findings.append(
                _finding(
                    "shadow",
                    "fail" if asked else "warn",
                    f"{ctx.user}'s password is {what}: "
                    + (
                        "every password is refused, the right one too"
                        if asked
                        else "password logins fail; with UsePAM yes keys still work"
                    ),
                    "account.locked",
                    [
                        f"getent shadow: password field starts with '{password[:2]}'",
                        f"usepam {'yes' if pam else 'no'}",
                    ],
                )
            )
    if expire.lstrip("-").isdigit() and int(expire) >= 0:
        findings += _expiry(host, ctx, int(expire))
    return findings


def _expiry(host: Host, ctx: Context, expire: int) -> list[Finding]:
    """The shadow expiry day (days since 1970-01-01, UTC). sshd itself (UsePAM no) refuses
    once the day has passed (auth-shadow.c: expire - today < 0); pam_unix already on the
    day itself (passverify.c: today >= expire)."""
    today = int(host.now() // 86400)
    pam = _pam(ctx)
    day = datetime.fromtimestamp(expire * 86400, UTC).date().isoformat()
    evidence = [f"shadow expire day {expire} ({day}), today {today}"]
    if pam:
        stack = _pam_stack(host, ctx, "account")
        unix = stack is None or any(m.module == "pam_unix" for m in stack)
        expired = today >= expire
        judge = "pam_unix (UsePAM yes) refuses from that day on"
        if expired and not unix:
            return [
                _finding(
                    "shadow",
                    "warn",
                    f"{ctx.user}'s account expired on {day}, but sshd's PAM account stack has "
                    "no pam_unix to enforce it",
                    evidence=evidence,
                )
            ]
    else:
        expired = today > expire
        judge = "sshd without PAM refuses the day after"
    if expired:
        ago = today - expire
        when = "today" if ago == 0 else f"{ago} day(s) ago"
        return [
            _finding(
                "shadow",
                "fail",
                f"{ctx.user}'s account expired {when} ({day}): {judge}",
                "account.expired",
                [*evidence, judge],
            )
        ]
    if expire - today <= 7:
        left = "still valid today" if expire == today else f"expires on {day}"
        return [
            _finding(
                "shadow",
                "info",
                f"{ctx.user}'s account {left} ({judge})",
                evidence=evidence,
            )
        ]
    return []


def _nologin_files(host: Host, ctx: Context) -> list[Finding]:
    """A nologin file shuts every user but root out after authentication: sshd itself
    reads /etc/nologin, pam_nologin also /run/nologin (systemd's, while the system boots
    and before a scheduled shutdown)."""
    if ctx.passwd is None or ctx.passwd[2] == "0":
        return []
    paths = ["/etc/nologin"]
    if _one(ctx, "usepam", "no") == "yes":
        paths += ["/run/nologin", "/var/run/nologin"]
    found = host.stat(paths)
    if not found:
        return []
    path = found[0][2]
    text = host.read(path)
    said = [f"{path}: {line}" for line in (text or "").strip().splitlines()[:2]]
    return [
        _finding(
            "nologin",
            "fail",
            f"{path} exists: sshd lets no user but root log in",
            "account.nologin",
            said or [f"{path} exists ({'empty' if text is not None else 'not readable here'})"],
            nologin_file=path,
        )
    ]


# -- PAM (UsePAM yes) -----------------------------------------------------------------------


@dataclass(frozen=True)
class PamLine:
    """One module line of a PAM stack, with where it was read."""

    control: str
    module: str  # without directory and ".so": "pam_access"
    args: tuple[str, ...]
    where: str  # "/etc/pam.d/sshd:3"

    @property
    def decisive(self) -> bool:
        """Whether a failure of this module fails the stack (required, requisite, or a
        bracket whose failure action is not ignore/reset/a jump)."""
        if self.control in ("required", "requisite"):
            return True
        if not self.control.startswith("["):
            return False  # sufficient, optional, include...
        actions = dict(
            pair.split("=", 1) for pair in self.control.strip("[]").split() if "=" in pair
        )
        action = actions.get("perm_denied", actions.get("auth_err", actions.get("default", "")))
        return action not in ("", "ignore", "reset") and not action.isdigit()

    def arg(self, name: str) -> str | None:
        return next((a.split("=", 1)[1] for a in self.args if a.startswith(f"{name}=")), None)


def _pam_tokens(line: str) -> list[str]:
    """A PAM config line's words; a ``[...]`` control is one word."""
    words, rest = [], line.strip()
    while rest:
        if rest.startswith("["):
            end = rest.find("]")
            end = len(rest) if end < 0 else end + 1
        else:
            end = next((i for i, c in enumerate(rest) if c.isspace()), len(rest))
        words.append(rest[:end])
        rest = rest[end:].lstrip()
    return words


def _pam_stack(host: Host, ctx: Context, kind: str) -> list[PamLine] | None:
    """The ``kind`` (auth, account...) modules of sshd's PAM service in order, includes
    (@include, include, substack) followed; None when /etc/pam.d/sshd cannot be read."""
    service = _one(ctx, "pamservicename", "sshd") or "sshd"
    return _pam_file(host, f"/etc/pam.d/{service}", kind, 0)


def _pam_file(host: Host, path: str, kind: str, depth: int) -> list[PamLine] | None:
    text = host.read(path)
    if text is None or depth > 8:
        return None
    lines: list[PamLine] = []
    for number, raw in enumerate(text.replace("\\\n", " ").splitlines(), 1):
        words = _pam_tokens(raw.split("#", 1)[0])
        if not words:
            continue
        if words[0] == "@include" and len(words) > 1:
            lines += _pam_file(host, _pam_path(words[1]), kind, depth + 1) or []
            continue
        if len(words) < 3 or words[0].lstrip("-") != kind:
            continue
        control, module = words[1], words[2]
        if control in ("include", "substack"):
            lines += _pam_file(host, _pam_path(module), kind, depth + 1) or []
            continue
        name = module.rsplit("/", 1)[-1].removesuffix(".so")
        lines.append(PamLine(control, name, tuple(words[3:]), f"{path}:{number}"))
    return lines


def _pam_path(name: str) -> str:
    return name if name.startswith("/") else f"/etc/pam.d/{name}"


_FAILLOCK_DIR = "/var/run/faillock"
_TALLY = struct.Struct("<52sHHQ")  # faillock.h: source, reserved, status, time (64 bytes)


def _faillock_options(host: Host, line: PamLine) -> dict[str, str]:
    """pam_faillock's settings for one stack line: faillock.conf (or conf=), then the
    line's own arguments, which win (pam_faillock.c's args_parse)."""
    options = {"dir": _FAILLOCK_DIR, "deny": "3", "fail_interval": "900", "unlock_time": "600"}
    conf = line.arg("conf") or "/etc/security/faillock.conf"
    for raw in (host.read(conf) or "").splitlines():
        name, _, value = raw.split("#", 1)[0].strip().partition("=")
        words = name.split(None, 1)
        if len(words) == 2 and not value:  # "deny 3": whitespace instead of "="
            name, value = words
        if name.strip():
            options[name.strip()] = value.strip() or "yes"
    for arg in line.args:
        name, _, value = arg.partition("=")
        if name not in ("preauth", "authfail", "authsucc", "conf"):
            options[name] = value or "yes"
    if "root_unlock_time" not in options:
        options["root_unlock_time"] = options["unlock_time"]
    return options


def _seconds(value: str, default: int) -> int:
    if value == "never":
        return 0
    return int(value) if value.isdigit() else default


def _faillock(host: Host, ctx: Context) -> list[Finding]:
    """Has pam_faillock locked the user? Its tally (dir/USER, 64-byte records) against
    deny within fail_interval, until unlock_time has passed (pam_faillock.c's
    check_tally). It guards PAM's auth stack: passwords, not keys."""
    if not _pam(ctx) or ctx.passwd is None:
        return []
    stack = _pam_stack(host, ctx, "auth") or []
    line = next((m for m in stack if m.module == "pam_faillock"), None)
    if line is None:
        return []
    options = _faillock_options(host, line)
    tally = f"{options['dir'].rstrip('/')}/{ctx.user}"
    data = host.read_bytes(tally)
    if not data:
        return []
    records = [_TALLY.unpack_from(data, at) for at in range(0, len(data) // 64 * 64, 64)]
    valid = sorted(when for _, _, status, when in records if status & 0x1)
    if not valid:
        return []
    latest = valid[-1]
    interval = _seconds(options["fail_interval"], 900)
    failures = [t for t in valid if latest - t < interval]
    deny = int(options["deny"]) if options["deny"].isdigit() else 3
    admin = ctx.passwd[2] == "0"
    unlock = _seconds(options["root_unlock_time" if admin else "unlock_time"], 600)
    now = host.now()
    stamp = datetime.fromtimestamp(latest, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    evidence = [
        f"{line.where}: {line.control} pam_faillock.so {' '.join(line.args)}".rstrip(),
        f"{tally}: {len(failures)} valid failure(s), the last at {stamp}",
        f"deny = {deny}, unlock_time = {unlock or 'never'}, fail_interval = {interval}",
    ]
    reset = f"faillock --dir {options['dir']} --user {ctx.user} --reset"
    if admin and "even_deny_root" not in options:
        return []
    if not deny or len(failures) < deny:
        return [
            _finding(
                "faillock",
                "info",
                f"pam_faillock counts {len(failures)} failure(s) for {ctx.user}; "
                f"it locks at {deny}",
                evidence=evidence,
            )
        ]
    if unlock and latest + unlock < now:
        return [
            _finding(
                "faillock",
                "info",
                f"pam_faillock locked {ctx.user} until {unlock}s after {stamp}; that has passed",
                evidence=evidence,
            )
        ]
    until = (
        "for good (unlock_time = 0: only an admin's reset unlocks it)"
        if not unlock
        else "until "
        + datetime.fromtimestamp(latest + unlock, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    )
    asked = _passwords_asked(ctx)
    return [
        _finding(
            "faillock",
            "fail" if asked else "warn",
            f"pam_faillock has locked {ctx.user} {until}: {len(failures)} failures, "
            f"deny = {deny}; "
            + (
                "every password is refused, the right one too"
                if asked
                else "password logins are refused, keys still work"
            ),
            "account.locked",
            [*evidence, f"to unlock: sudo {reset}"],
            faillock_reset=reset,
        )
    ]


def _access_rules(host: Host, line: PamLine) -> list[tuple[str, str]]:
    """The access.conf files pam_access reads for one stack line: accessfile=, else
    /etc/security/access.conf and then access.d/*.conf (read only if nothing matched)."""
    named = line.arg("accessfile")
    if named:
        return [(named, host.read(named) or "")]
    files = ["/etc/security/access.conf", *host.listdir("/etc/security/access.d", ".conf")]
    return [(f, text) for f in files if (text := host.read(f)) is not None]


def _pam_access_refusal(
    host: Host, ctx: Context, line: PamLine, rhost: str
) -> tuple[str, str] | None:
    """The access.conf rule that refuses the user from ``rhost``, as (file:line, rule), or
    None when pam_access lets them in (pam_access.c's login_access, list_match)."""
    fs = line.arg("fieldsep") or ":"
    sep = line.arg("listsep") or ", \t"
    groups = set(host.groups(ctx.user))
    nodefgroup = "nodefgroup" in line.args
    local = (host.read("/etc/hostname") or "").strip()

    def words(text: str) -> list[str]:
        return [w for w in re.split(f"[{re.escape(sep)}]", text) if w]

    def user_match(token: str) -> int:
        if token.startswith("(") and token.endswith(")") and len(token) > 2:
            return int(token[1:-1] in groups)
        at = token.lstrip("@").find("@")
        if at >= 0:
            at += len(token) - len(token.lstrip("@"))
            return int(
                bool(user_match(token[:at])) and bool(from_match(token[at + 1 :], local, None))
            )
        if token.startswith("@"):
            return 0  # a netgroup: not evaluated here
        if token.upper() == "ALL":
            return 2
        if token.lower() == ctx.user.lower():
            return 1
        return int(not nodefgroup and token in groups)

    def from_match(token: str, origin: str, address: str | None) -> int:
        if token.startswith("@"):
            return 0
        if token.upper() == "ALL":
            return 2
        if token.lower() == origin.lower():
            return 1
        if token.upper() == "LOCAL":
            return 0  # sshd always sets PAM_RHOST: never a local login
        if token.startswith("."):
            return int(len(origin) > len(token) and origin.lower().endswith(token.lower()))
        if token.endswith("."):
            return int(address is not None and f"{address}.".startswith(token))
        net, slash, mask = token.partition("/")
        try:
            ip = ipaddress.ip_address(address or origin)
            if not slash:
                return int(ip == ipaddress.ip_address(net))
            return int(ip in ipaddress.ip_network(f"{net}/{mask}", strict=False))
        except ValueError:
            return 0

    def list_match(items: list[str], match) -> int:
        for at, token in enumerate(items):
            if token.upper() == "EXCEPT":
                return 0
            if found := match(token):
                rest = items[at + 1 :]
                if not any(t.upper() == "EXCEPT" for t in rest):
                    return found
                exceptions = rest[[t.upper() for t in rest].index("EXCEPT") + 1 :]
                return 1 if not list_match(exceptions, match) else 0
        return 0

    for path, text in _access_rules(host, line):
        for number, raw in enumerate(text.splitlines(), 1):
            rule = raw.rstrip()
            if not rule or rule.startswith("#"):
                continue
            fields = re.split(f"[{re.escape(fs)}]+", rule.lstrip(fs), maxsplit=2)
            if len(fields) < 3 or fields[0][:1] not in "+-" or not fields[0]:
                continue
            if list_match(words(fields[1]), user_match) and list_match(
                words(fields[2]), lambda t: from_match(t, rhost, ctx.client_ip)
            ):
                return None if fields[0].startswith("+") else (f"{path}:{number}", rule)
    return None


def check_pam(host: Host, ctx: Context) -> list[Finding]:
    """UsePAM yes: PAM modules that refuse the user whatever the key or password. Here
    pam_access (access.conf) in sshd's account stack, and in its auth stack when a
    password is tried (PAM's auth stack does not run for keys)."""
    if not _pam(ctx) or ctx.passwd is None:
        return []
    stacks = [("account", _pam_stack(host, ctx, "account"))]
    if _passwords_asked(ctx):
        stacks.append(("auth", _pam_stack(host, ctx, "auth")))
    if stacks[0][1] is None:
        return [_skip("PAM", f"/etc/pam.d/{_one(ctx, 'pamservicename', 'sshd')} is not readable")]
    rhost = _remote_host(host, ctx) or ""
    for kind, stack in stacks:
        for line in stack or []:
            if line.module != "pam_access" or not line.decisive or not rhost:
                continue
            if refusal := _pam_access_refusal(host, ctx, line, rhost):
                where, rule = refusal
                return [
                    _finding(
                        "PAM",
                        "fail",
                        f"pam_access ({kind} stage, {line.where}) refuses {ctx.user} from "
                        f"{rhost}: {where} says {rule!r}",
                        "account.not_allowed",
                        [
                            f"{line.where}: {kind} {line.control} pam_access.so "
                            + " ".join(line.args),
                            f"{where}: {rule}",
                            f"pam_access logs: access denied for user `{ctx.user}' from `{rhost}'",
                        ],
                        pam_rule=where,
                    )
                ]
    modules = sorted({m.module for _, stack in stacks for m in stack or []})
    return [
        _finding(
            "PAM",
            "pass",
            f"no PAM account module refuses {ctx.user} from {rhost or '?'}",
            evidence=[f"modules: {', '.join(modules)}"],
        )
    ]


# -- StrictModes and authorized_keys --------------------------------------------------------


def _authorized_keys_paths(ctx: Context) -> list[str]:
    home = ctx.passwd[5] if ctx.passwd and len(ctx.passwd) > 5 else f"/home/{ctx.user}"
    paths = []
    for item in " ".join(ctx.settings.get("authorizedkeysfile", [".ssh/authorized_keys"])).split():
        if item.lower() == "none":
            continue
        item = item.replace("%h", home).replace("%u", ctx.user).replace("%%", "%")
        paths.append(item if item.startswith("/") else f"{home}/{item}")
    return paths


_RELEASE = re.compile(r"OpenSSH_[0-9.]+p[0-9]+(?P<distro> (?:Debian|Ubuntu|Raspbian)\b)?")


def _debian_modes(host: Host, ctx: Context) -> bool | None:
    """Whether sshd carries Debian's user-group-modes patch (Debian, Ubuntu and their
    derivatives): it allows a group-writable file or directory whose group holds its
    owner alone. Known from the release in sshd's usage text or ``ssh -V`` ("OpenSSH_9.2p1
    Debian-2+deb12u10"; ``sshd -V`` prints no distribution), offline from the sshd binary,
    else from os-release; None when nothing tells."""
    if ctx.debian is not None:
        return ctx.debian
    if host.offline:
        binary = host.read_bytes("/usr/sbin/sshd") or b""
        found = re.finditer(_RELEASE.pattern.encode(), binary)
        release = " ".join(m.group(0).decode() for m in found)
    else:
        program = _sshd_program(host) or "sshd"
        said = [host.run(f"{program} '-?'"), host.run("ssh -V")]
        text = " ".join(r.stdout + r.stderr for r in said)
        release = " ".join(m.group(0) for m in _RELEASE.finditer(text))
    if release:
        ctx.debian = bool(re.search(r"\b(Debian|Ubuntu|Raspbian)\b", release))
        return ctx.debian
    text = host.read("/etc/os-release") or host.read("/usr/lib/os-release") or ""
    ids = " ".join(
        v.strip("\"'")
        for k, _, v in (ln.partition("=") for ln in text.splitlines())
        if k in ("ID", "ID_LIKE")
    ).split()
    if ids:
        ctx.debian = bool({"debian", "ubuntu"} & set(ids))
    elif host.read("/etc/debian_version") is not None:
        ctx.debian = True
    return ctx.debian


def _private_group(host: Host, ctx: Context, path: str, owner: str) -> str | None:
    """Debian's secure_permissions() for a group-writable path: its group must have
    exactly one member, the file's owner (as the primary group of users all of that uid,
    or as the sole listed member). Returns the group's name when it passes."""
    gid = host.group_ids([path]).get(path)
    group = host.group_entry(gid) if gid is not None else None
    uid = ctx.passwd[2] if ctx.passwd else None
    if group is None or uid is None:
        return None
    members = 0
    for entry in host.passwd_entries():
        if len(entry) > 3 and entry[3] == gid:
            members += 1
            if entry[2] != uid:
                return None
    listed = [m for m in (group[3] if len(group) > 3 else "").split(",") if m]
    if listed:
        members += 1
        owner_entry = next((e for e in host.passwd_entries() if e[2] == owner), None)
        if owner_entry is None or listed != [owner_entry[0]]:
            return None
    return group[0] if members else None


def check_modes(host: Host, ctx: Context) -> list[Finding]:
    """StrictModes: authorized_keys and every directory up to the home (OpenSSH's rule)."""
    if ctx.passwd is None:
        return [_skip("modes", "the account does not exist")]
    if _keys_command(ctx):
        return [_skip("modes", "keys come from AuthorizedKeysCommand")]
    home = ctx.passwd[5]
    uid = ctx.passwd[2]
    strict = _one(ctx, "strictmodes", "yes") == "yes"
    notes: list[str] = []
    for keys in _authorized_keys_paths(ctx):
        chain = [keys]
        parent = keys
        while parent not in ("/", ""):
            parent = parent.rsplit("/", 1)[0] or "/"
            chain.append(parent)
            if parent == home:
                break
        stats = host.stat(chain)
        if keys.startswith(home + "/") and not any(name == home for _, _, name in stats):
            return [
                _finding(
                    "StrictModes",
                    "fail",
                    f"the home directory {home} of {ctx.user} does not exist: sshd finds no "
                    f"authorized_keys in it",
                    "auth.key_rejected",
                    [f"{home}: no such directory"],
                    missing_home=home,
                )
            ]
        for owner, mode, name in stats:
            line = f"{name}: owner uid {owner}, mode {mode}"
            bad_owner = owner not in ("0", uid)
            writable = int(mode, 8) & 0o022
            group = (
                _private_group(host, ctx, name, owner)
                if writable == 0o020 and not bad_owner
                else None
            )
            debian = _debian_modes(host, ctx) if group else False
            if group and debian:
                notes.append(
                    f"{line}: group-writable, but its group {group} holds {ctx.user} alone "
                    "(Debian's sshd allows that)"
                )
                continue
            if group and debian is None:
                return [
                    _finding(
                        "StrictModes",
                        "warn",
                        f"{name}: mode {mode}, group-writable by its group {group}, which holds "
                        f"{ctx.user} alone: Debian's and Ubuntu's sshd allow that, others refuse "
                        "it; which sshd this is, the disk does not say",
                        "server.bad_modes" if strict else None,
                        [line],
                        bad_path=name,
                    )
                ]
            if bad_owner or writable:
                what = "owned by uid " + owner if bad_owner else f"mode {mode}, writable by others"
                return [
                    _finding(
                        "StrictModes",
                        "fail" if strict else "warn",
                        f"{name}: {what}" + ("" if strict else " (StrictModes is off)"),
                        "server.bad_modes" if strict else None,
                        [line],
                        bad_path=name,
                    )
                ]
        if hidden := _unreadable(stats, keys, uid):
            owner, mode, name = hidden
            verb = "read" if name == keys else "enter"
            return [
                _finding(
                    "StrictModes",
                    "fail",
                    f"{name}: owner uid {owner}, mode {mode}: {ctx.user} cannot {verb} it, and "
                    "sshd reads authorized_keys as the user",
                    "server.bad_modes",
                    [f"{name}: owner uid {owner}, mode {mode}"],
                    bad_path=name,
                    unreadable_path=name,
                )
            ]
        if stats and stats[0][2] == keys:
            return [
                _finding(
                    "StrictModes",
                    "pass",
                    f"{keys} and the directories above it have safe owners and modes",
                    evidence=[f"{n}: owner uid {o}, mode {m}" for o, m, n in stats] + notes,
                )
            ]
    return [
        _finding(
            "StrictModes",
            "warn",
            "authorized_keys is missing or unreadable",
            evidence=_authorized_keys_paths(ctx),
        )
    ]


def _chroot_dir(ctx: Context) -> str | None:
    """ChrootDirectory for this user, expanded as session.c does (~, %h, %u, %U)."""
    raw = _one(ctx, "chrootdirectory", "none")
    if not raw or raw.lower() == "none" or ctx.passwd is None:
        return None
    home, uid = ctx.passwd[5], ctx.passwd[2]
    if raw == "~" or raw.startswith("~/"):
        raw = home + raw[1:]
    return re.sub(
        r"%([%hUu])", lambda m: {"%": "%", "h": home, "u": ctx.user, "U": uid}[m.group(1)], raw
    )


def check_chroot(host: Host, ctx: Context) -> list[Finding]:
    """ChrootDirectory: every component of the path from / down must be a directory owned
    by root and writable by no one else (session.c's safely_chroot), or the session ends
    right after a successful login; and a login shell needs the shell inside it."""
    path = _chroot_dir(ctx)
    if path is None:
        return []
    if not path.startswith("/"):
        return [
            _finding(
                "ChrootDirectory",
                "fail",
                f"ChrootDirectory {path} does not begin at /: sshd refuses every session",
                "account.nologin",
                [f"chrootdirectory {path}"],
            )
        ]
    parts = [p for p in path.split("/") if p]
    chain = ["/", *("/" + "/".join(parts[: i + 1]) for i in range(len(parts)))]
    stats = {name: (owner, mode) for owner, mode, name in host.stat(chain)}
    evidence = [f"chrootdirectory {path}"]
    for component in chain:
        if component not in stats:
            return [
                _finding(
                    "ChrootDirectory",
                    "fail",
                    f"ChrootDirectory {path}: {component} does not exist; sshd ends the "
                    "session right after the login",
                    "account.nologin",
                    [*evidence, f"{component}: no such directory"],
                )
            ]
        owner, mode = stats[component]
        evidence.append(f"{component}: owner uid {owner}, mode {mode}")
        if owner != "0" or int(mode, 8) & 0o022:
            what = f"owned by uid {owner}" if owner != "0" else f"mode {mode}, writable by others"
            return [
                _finding(
                    "ChrootDirectory",
                    "fail",
                    f"ChrootDirectory {path}: {component} is {what}; sshd wants root's, "
                    'writable by no one else ("bad ownership or modes for chroot directory")',
                    "server.bad_modes",
                    evidence,
                    chroot_dir=component,
                    bad_path=component,
                )
            ]
    forced = _one(ctx, "forcecommand", "none")
    shell = (ctx.passwd[6] if ctx.passwd and len(ctx.passwd) > 6 else "") or "/bin/sh"
    if forced.lower() != "internal-sftp" and not host.executable(path.rstrip("/") + shell):
        return [
            _finding(
                "ChrootDirectory",
                "fail",
                f"ChrootDirectory {path} has no {shell} inside it: the login shell cannot "
                "run there (only ForceCommand internal-sftp needs nothing inside)",
                "account.nologin",
                [*evidence, f"{path}{shell}: missing or not executable"],
            )
        ]
    return [
        _finding(
            "ChrootDirectory",
            "pass",
            f"ChrootDirectory {path} and every directory above it are root's and not "
            "writable by others",
            evidence=evidence,
        )
    ]


def _unreadable(
    stats: list[tuple[str, str, str]], keys: str, uid: str
) -> tuple[str, str, str] | None:
    """The first of home, ~/.ssh, authorized_keys (from the top) that the user cannot enter
    or read: StrictModes allows root's files, but sshd opens them as the user. Without
    the user's groups at hand, group bits count as allowing (no false alarm)."""
    if uid == "0":
        return None
    for owner, mode, name in reversed(stats):
        need = 0o4 if name == keys else 0o1
        bits = int(mode, 8)
        allowed = bits & (need << 6) if owner == uid else bits & (need << 3 | need)
        if not allowed:
            return owner, mode, name
    return None


def _fingerprint(line: str) -> str | None:
    for word in line.split():
        if word.startswith("AAAA"):
            try:
                blob = base64.b64decode(word, validate=True)
            except ValueError:
                return None
            digest = base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
            return f"SHA256:{digest}"
    return None


def _broken_lines(text: str) -> list[tuple[int, str]]:
    """authorized_keys lines sshd skips, and why: most often a key pasted over two lines
    (its first half cut short, its second half no key at all)."""
    broken = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        blob = next((w for w in line.split() if w.startswith("AAAA")), None)
        if blob is None:
            broken.append((number, "no key on this line (the rest of a key broken over lines?)"))
            continue
        try:
            data = base64.b64decode(blob, validate=True)
        except ValueError:
            broken.append((number, "the key is cut or mangled (not base64: broken over lines?)"))
            continue
        if not _whole_blob(data):
            broken.append((number, "the key is cut short (broken over lines when pasted?)"))
    return broken


def _whole_blob(data: bytes) -> bool:
    """Whether a public key blob is whole: length-prefixed fields to its very end (the key
    type first), as a key cut off mid-way is not."""
    fields, at = 0, 0
    while at < len(data):
        size = int.from_bytes(data[at : at + 4], "big")
        if at + 4 > len(data) or at + 4 + size > len(data):
            return False
        if fields == 0 and not data[at + 4 : at + 4 + size].isascii():
            return False
        at, fields = at + 4 + size, fields + 1
    return fields >= 2


def _keys_command(ctx: Context) -> str | None:
    command = _one(ctx, "authorizedkeyscommand", "none")
    return None if command == "none" else command


# Key types sshd reads at the start of an authorized_keys line (else options come first).
_KEY_TYPE = re.compile(
    r"(ssh-(rsa|dss|ed25519|ed448)|ecdsa-sha2-nistp\d+|sk-(ssh-ed25519|ecdsa-sha2-nistp256)"
    r"@openssh\.com|[a-z0-9-]+-cert-v01@openssh\.com|rsa-sha2-(256|512))\Z"
)
# Flag options (auth-options.c, in its order); True: "no-" may negate it.
_KEY_FLAGS = (
    ("restrict", False),
    ("cert-authority", False),
    ("port-forwarding", True),
    ("agent-forwarding", True),
    ("x11-forwarding", True),
    ("touch-required", True),
    ("verify-required", True),
    ("pty", True),
    ("user-rc", True),
)
_KEY_VALUES = (
    "command",
    "principals",
    "from",
    "expiry-time",
    "environment",
    "permitopen",
    "permitlisten",
    "tunnel",
)


def _split_key_line(line: str) -> tuple[str | None, str]:
    """(options, the rest from the key type on) as sshd splits a line: options only when
    the first word is no key type, and they end at the first unquoted blank."""
    line = line.strip()
    first = line.split(None, 1)[0] if line else ""
    if _KEY_TYPE.match(first):
        return None, line
    quoted, at = False, 0
    while at < len(line) and (quoted or line[at] not in " \t"):
        if line[at] == "\\" and line[at + 1 : at + 2] == '"':
            at += 1
        elif line[at] == '"':
            quoted = not quoted
        at += 1
    return line[:at], line[at:].strip()


def _key_options(text: str) -> tuple[dict[str, object], str | None]:
    """auth-options.c's sshauthopt_parse: the options, or the reason sshd refuses the
    whole line (it then skips it: "bad key options", logged at debug level only)."""
    options: dict[str, object] = {}
    rest = text
    while rest and rest[0] not in " \t":
        lower = rest.lower()
        for name, negatable in _KEY_FLAGS:
            negated = negatable and lower.startswith("no-")
            word = lower[3:] if negated else lower
            if word.startswith(name):
                options[name] = not negated
                rest = rest[len(name) + (3 if negated else 0) :]
                break
        else:
            name = next((n for n in _KEY_VALUES if lower.startswith(f"{n}=")), None)
            if name is not None:
                rest = rest[len(name) + 1 :]
                if not rest.startswith('"'):
                    return options, f'{name}= needs a quoted value ({name}="...")'
                end = 1
                while end < len(rest) and rest[end] != '"':
                    end += 2 if rest[end] == "\\" and rest[end + 1 : end + 2] == '"' else 1
                if end >= len(rest):
                    return options, f"{name}= has no closing quote"
                value = rest[1:end].replace('\\"', '"')
                rest = rest[end + 1 :]
                if name in ("command", "principals", "from") and name in options:
                    return options, f'multiple "{name}" clauses'
                if name == "expiry-time":
                    when = _expiry_time(value)
                    if when is None:
                        return options, f'invalid expires time "{value}"'
                    options[name] = min(when, options.get(name, when))  # type: ignore[type-var]
                    options["expiry-text"] = value
                else:
                    options.setdefault(name, value)
        if not rest or rest[0] in " \t":
            break
        if rest[0] != ",":
            word = re.split(r'[,\s="]', rest, maxsplit=1)[0] or rest[:20]
            return options, f"unknown key option {word!r}"
        rest = rest[1:]
        if not rest:
            return options, "unexpected end-of-options"
    return options, None


def _expiry_time(value: str) -> float | None:
    """misc.c's parse_absolute_time: YYYYMMDD[HHMM[SS]], local time unless Z or UTC."""
    utc = value.upper().endswith(("Z", "UTC"))
    digits = value[: -1 if value.upper().endswith("Z") else -3] if utc else value
    formats = {8: "%Y%m%d", 12: "%Y%m%d%H%M", 14: "%Y%m%d%H%M%S"}
    if not digits.isdigit() or len(digits) not in formats:
        return None
    try:
        moment = datetime.strptime(digits, formats[len(digits)])
    except ValueError:
        return None
    return (moment.replace(tzinfo=UTC) if utc else moment).timestamp()


def _judge_key_line(
    host: Host, ctx: Context, where: str, options_text: str | None
) -> Finding | None:
    """What sshd makes of a line that holds the client's key: None when it accepts it,
    else the finding that says why not (auth2-pubkeyfile.c's auth_check_authkey_line and
    auth_authorise_keyopts)."""
    options, error = _key_options(options_text) if options_text else ({}, None)
    shown = [f"{where}: {options_text}"] if options_text else []
    if error:
        return _finding(
            "authorized_keys",
            "fail",
            f"{where} holds the client's key, but sshd skips the line: {error} "
            "(sshd logs that only at debug level)",
            "auth.key_rejected",
            shown,
            authorized_keys_line=where,
        )
    if options.get("cert-authority"):
        return _finding(
            "authorized_keys",
            "fail",
            f"{where} marks the client's key cert-authority: sshd takes it only as a CA for "
            "certificates, never as a key",
            "auth.key_rejected",
            shown,
            authorized_keys_line=where,
        )
    expiry = options.get("expiry-time")
    if isinstance(expiry, float) and expiry < host.now():
        stamp = datetime.fromtimestamp(expiry, UTC).strftime("%Y-%m-%d %H:%M UTC")
        return _finding(
            "authorized_keys",
            "fail",
            f'{where}: expiry-time="{options["expiry-text"]}" passed ({stamp}): sshd refuses '
            'the key ("Refused by key options")',
            "auth.key_rejected",
            shown,
            authorized_keys_line=where,
        )
    if "principals" in options:
        return _finding(
            "authorized_keys",
            "fail",
            f"{where}: principals= on a plain key (not cert-authority): sshd refuses it",
            "auth.key_rejected",
            shown,
            authorized_keys_line=where,
        )
    if "from" in options:
        allowed = str(options["from"])
        name = _remote_host(host, ctx)
        verdict = sshdconfig.match_host_and_ip(name, ctx.client_ip, allowed)
        if ctx.client_ip is None:
            return _finding(
                "authorized_keys",
                "warn",
                f'{where}: from="{allowed}" limits where the key may log in from; the '
                "client's address is not known here",
                "account.not_allowed",
                shown,
                authorized_keys_line=where,
            )
        if verdict != 1:
            client = ctx.client_ip if name in (None, ctx.client_ip) else f"{name} ({ctx.client_ip})"
            why = "is no valid pattern list" if verdict < 0 else f"excludes {client}"
            return _finding(
                "authorized_keys",
                "fail",
                f'{where}: from="{allowed}" {why}: sshd refuses the key from here ("correct key '
                'but not from a permitted host")',
                "account.not_allowed",
                shown,
                authorized_keys_line=where,
            )
    return None


def _key_notes(ctx: Context, where: str, options_text: str | None, uid: str) -> list[Finding]:
    """What an accepted line's options do to the login: a forced command, restrict, and
    PermitRootLogin forced-commands-only, which needs a command= on root's key."""
    options, _ = _key_options(options_text) if options_text else ({}, None)
    notes = []
    command = options.get("command")
    if uid == "0" and _one(ctx, "permitrootlogin") == "forced-commands-only" and not command:
        notes.append(
            _finding(
                "PermitRootLogin",
                "fail",
                f"PermitRootLogin forced-commands-only and {where} has no command= option: "
                'sshd refuses root with this key ("ROOT LOGIN REFUSED")',
                "account.root_denied",
                [
                    f"{where}: {options_text or '(no options)'}",
                    "permitrootlogin forced-commands-only",
                ],
            )
        )
    if isinstance(command, str):
        program = command.split()[0] if command.split() else ""
        dead = program.rsplit("/", 1)[-1] in ("false", "nologin")
        notes.append(
            _finding(
                "authorized_keys",
                "fail" if dead else "info",
                f'{where}: command="{command}" runs instead of any shell or command the client '
                "asks for" + (": no login gets further" if dead else ""),
                "account.nologin" if dead else None,
                [f"{where}: {options_text}"],
                forced_command=command,
                forced_command_line=where,
            )
        )
    if options.get("restrict"):
        notes.append(
            _finding(
                "authorized_keys",
                "info",
                f"{where}: restrict: no terminal, forwarding or ~/.ssh/rc for this key "
                "(unless re-allowed: pty, port-forwarding...)",
                evidence=[f"{where}: {options_text}"],
            )
        )
    return notes


def _revoked(host: Host, ctx: Context) -> Finding | None:
    """RevokedKeys: a text list of public keys that lists the client's key, or a file sshd
    cannot read (then it refuses every key)."""
    path = _one(ctx, "revokedkeys", "none")
    if not path or path.lower() == "none":
        return None
    data = host.read(path)
    if data is None:
        return _finding(
            "RevokedKeys",
            "fail",
            f"RevokedKeys {path} is missing or unreadable: sshd refuses every key",
            "auth.key_rejected",
            [f"revokedkeys {path}"],
        )
    if data.startswith("SSHKRL"):
        return None  # a binary KRL: ssh-keygen -Q -f tells, not this reader
    for number, line in enumerate(data.splitlines(), 1):
        if (fingerprint := _fingerprint(line)) in ctx.client_keys:
            return _finding(
                "RevokedKeys",
                "fail",
                f"the client's key {fingerprint} is revoked: {path}:{number} lists it",
                "auth.key_rejected",
                [f"revokedkeys {path}", f"{path}:{number}"],
                revoked_key=fingerprint or "",
                revoked_by=f"{path}:{number}",
            )
    return None


def _other_keys_file(ctx: Context, path: str) -> dict[str, str]:
    """The fact authorized_keys_file when sshd reads another file than the
    ~/.ssh/authorized_keys ssh-copy-id writes (the fix then appends the key there)."""
    default = f"{ctx.passwd[5]}/.ssh/authorized_keys" if ctx.passwd else ""
    return {"authorized_keys_file": path} if path and path != default else {}


def check_authorized_keys(host: Host, ctx: Context) -> list[Finding]:
    """Does an authorized_keys file hold one of the keys the client offers (by
    fingerprint), on a line sshd accepts (its options: from=, expiry-time=, unknown
    options that make sshd skip the line), and is the key not revoked?"""
    if ctx.passwd is None:
        return [_skip("authorized_keys", "the account does not exist")]
    if not ctx.client_keys and not ctx.unoffered_keys:
        return [_skip("authorized_keys", "the client offers no key")]
    if revoked := _revoked(host, ctx):
        return [revoked]
    command = _keys_command(ctx)
    missing_command = None
    if command:
        program = command.split()[0]
        if host.stat([program]):
            return [
                _finding(
                    "authorized_keys",
                    "info",
                    f"keys may also come from AuthorizedKeysCommand {command}",
                )
            ]
        missing_command = f"AuthorizedKeysCommand {program} does not exist (sshd skips it)"
    paths = _authorized_keys_paths(ctx)
    files = [(path, text) for path in paths if (text := host.read(path)) is not None]
    refused: list[Finding] = []
    for path, text in files:
        for number, line in enumerate(text.splitlines(), 1):
            fingerprint = _fingerprint(line)
            if fingerprint not in ctx.client_keys:
                continue
            where = f"{path}:{number}"
            options_text, _ = _split_key_line(line)
            if problem := _judge_key_line(host, ctx, where, options_text):
                refused.append(problem)
                continue
            found = [
                _finding(
                    "authorized_keys",
                    "pass",
                    f"{where} holds the client's key {fingerprint}",
                    evidence=[f"skipped before it: {f.summary}" for f in refused],
                )
            ]
            return found + _key_notes(ctx, where, options_text, ctx.passwd[2])
    if refused:
        return refused[:1] + [
            _finding("authorized_keys", "info", f.summary, evidence=f.evidence)
            for f in refused[1:3]
        ]
    for path, text in files:
        for number, line in enumerate(text.splitlines(), 1):
            if (fingerprint := _fingerprint(line)) in ctx.unoffered_keys:
                key = ctx.unoffered_keys[fingerprint]
                return [
                    _finding(
                        "authorized_keys",
                        "fail",
                        f"{path}:{number} holds {key}, a key this client has but ssh does not "
                        "offer (IdentitiesOnly, or IdentityFile naming other keys): offer that one",
                        "auth.key_rejected",
                        [f"offered: {', '.join(ctx.client_keys)}", f"{path}:{number}: {key}.pub"],
                        unoffered_key=key,
                    )
                ]
    extra = [missing_command] if missing_command else []
    if missing_command and not paths:
        return [
            _finding(
                "authorized_keys",
                "fail",
                f"{missing_command} and AuthorizedKeysFile is none: sshd has no key for "
                f"{ctx.user} at all",
                "auth.key_rejected",
                [f"authorizedkeyscommand {command}", "authorizedkeysfile none"],
            )
        ]
    if files:
        path, text = files[0]
        broken = [(path, n, why) for path, text in files for n, why in _broken_lines(text)]
        names = " and ".join(p for p, _ in files)
        return [
            _finding(
                "authorized_keys",
                "fail",
                f"{names} {'does' if len(files) == 1 else 'do'} not hold any of the client's "
                f"keys ({', '.join(ctx.client_keys)})"
                + (
                    f"; {len(broken)} of {'its' if len(files) == 1 else 'their'} lines are no "
                    "key sshd can read"
                    if broken
                    else ""
                ),
                "auth.key_rejected",
                [f"{p}: {len(t.splitlines())} line(s)" for p, t in files]
                + [f"{p}:{number}: {why}" for p, number, why in broken[:5]]
                + extra,
                **_other_keys_file(ctx, files[0][0]),
            )
        ]
    home = ctx.passwd[5]
    unread = f"{home}/.ssh/authorized_keys"
    elsewhere = (
        [f"{unread} exists, but this sshd does not read it (AuthorizedKeysFile)"]
        if unread not in paths and host.stat([unread])
        else []
    )
    return [
        _finding(
            "authorized_keys",
            "fail",
            f"{ctx.user} has none of the authorized_keys files sshd reads: {', '.join(paths)}"
            if paths
            else f"AuthorizedKeysFile none: sshd reads no authorized_keys file for {ctx.user}",
            "auth.key_rejected",
            [*paths, *elsewhere, *extra],
            **_other_keys_file(ctx, paths[0] if paths else ""),
        )
    ]


def _loose(mode: int) -> bool:
    """A private key others may read (640 for group ssh_keys, as on RHEL, is fine)."""
    return bool(mode & 0o077) and (mode & 0o077) != 0o040


def check_host_keys(host: Host, ctx: Context) -> list[Finding]:
    """Host keys exist and are private: sshd refuses to start with none it can load."""
    keys = ctx.settings.get("hostkey", [])
    if not keys:
        return []
    stats = {path: (owner, mode) for owner, mode, path in host.stat(keys)}
    missing = [k for k in keys if k not in stats]
    loose = [f"{k} (mode {stats[k][1]})" for k in stats if _loose(int(stats[k][1], 8))]
    if len(missing) == len(keys):
        return [
            _finding(
                "host keys",
                "fail",
                f"none of the host keys exists: {', '.join(keys)}",
                "server.sshd_down",
                keys,
            )
        ]
    if missing or loose:
        return [
            _finding(
                "host keys",
                "warn",
                "host keys: " + "; ".join([*(f"{k} missing" for k in missing), *loose]),
                None,
                keys,
            )
        ]
    return [_finding("host keys", "pass", f"{len(keys)} host key(s) present and private")]


def check_privsep(host: Host, ctx: Context) -> list[Finding]:
    """The privilege-separation user, and on Debian-like systems its /run/sshd."""
    if host.passwd("sshd") is None:
        return [
            _finding(
                "privsep",
                "fail",
                "the privilege-separation user sshd does not exist",
                "server.sshd_down",
                ["getent passwd sshd: no entry"],
            )
        ]
    if host.read("/etc/debian_version") is not None and not host.stat(["/run/sshd"]):
        return [
            _finding(
                "privsep",
                "warn",
                "/run/sshd is missing (the ssh unit creates it; "
                "a hand-started sshd exits: Missing privilege separation directory)",
            )
        ]
    return [_finding("privsep", "pass", "the privilege-separation user sshd exists")]


def check_duplicate_keys_files(host: Host, ctx: Context) -> list[Finding]:
    """AuthorizedKeysFile set twice in the files: only the first counts, a classic trap."""
    text = "\n".join(
        filter(None, [host.read(ctx.config)] + [host.read(p) for p in _includes(host, ctx.config)])
    )
    lines = [
        ln.strip() for ln in text.splitlines() if re.match(r"\s*AuthorizedKeysFile\b", ln, re.I)
    ]
    if len(lines) > 1:
        return [
            _finding(
                "AuthorizedKeysFile",
                "warn",
                f"AuthorizedKeysFile is set {len(lines)} times; only the first applies",
                evidence=lines,
            )
        ]
    return []


def _includes(host: Host, config: str) -> list[str]:
    text = host.read(config) or ""
    found = []
    for match in re.finditer(r"(?im)^\s*Include\s+(.+)$", text):
        for pattern in match.group(1).split():
            full = pattern if pattern.startswith("/") else f"/etc/ssh/{pattern}"
            listing = host.run("ls -1d --", full) if not host.offline else None
            if listing is not None and listing.ok:
                found += listing.stdout.split()
    return found


def check_selinux(host: Host, ctx: Context) -> list[Finding]:
    """Where SELinux enforces, ~/.ssh must carry the ssh_home_t label."""
    if host.offline or not host.exists("getenforce"):
        return []
    mode = host.run("getenforce").stdout.strip()
    if mode != "Enforcing" or ctx.passwd is None:
        return []
    labels = host.run("ls -Zd --", f"{ctx.passwd[5]}/.ssh", *_authorized_keys_paths(ctx))
    if labels.ok and "ssh_home_t" not in labels.stdout:
        return [
            _finding(
                "SELinux",
                "fail",
                f"~/.ssh of {ctx.user} lacks the ssh_home_t label: "
                f"restorecon -R -v {ctx.passwd[5]}/.ssh",
                "server.bad_modes",
                labels.stdout.strip().splitlines(),
                bad_path=f"{ctx.passwd[5]}/.ssh",
            )
        ]
    return [_finding("SELinux", "pass", "~/.ssh carries ssh_home_t")]


# -- in front of sshd -----------------------------------------------------------------------


def check_firewall(host: Host, ctx: Context) -> list[Finding]:
    """Rules that drop or reject the port: nftables, iptables, ufw, firewalld."""
    port = str(ctx.port)
    probes = [
        (
            "nft list ruleset",
            re.compile(rf"dport (?:{{[^}}]*\b{port}\b[^}}]*}}|{port})\b.*\b(drop|reject)"),
        ),
        ("iptables -S", re.compile(rf"--dport {port}\b.*-j (DROP|REJECT)")),
        ("ufw status", re.compile(rf"^{port}(?:/tcp)?\s+(DENY|REJECT)", re.M)),
    ]
    seen = []
    for command, rule in probes:
        if not host.exists(command.split()[0]):
            continue
        result = host.run(command)
        if not result.ok:
            continue
        seen.append(command)
        for line in result.stdout.splitlines():
            daddr = re.search(r"\bdaddr (\S+)|-d (\S+?)(?:/32)? ", line)
            target = daddr and (daddr.group(1) or daddr.group(2))
            if target and ctx.server_address and target != ctx.server_address:
                continue  # a rule for another address of this machine
            if rule.search(line):
                return [
                    _finding(
                        "firewall",
                        "fail",
                        f"{command}: {line.strip()}",
                        "server.firewall",
                        [result.command, line.strip()],
                    )
                ]
    if not seen:
        return [_skip("firewall", "no firewall tool answers here")]
    return [
        _finding(
            "firewall", "pass", f"no rule drops or rejects port {ctx.port} ({', '.join(seen)})"
        )
    ]


def check_fail2ban(host: Host, ctx: Context) -> list[Finding]:
    """Is the client's address banned by fail2ban's sshd jail?"""
    if not host.exists("fail2ban-client"):
        return []
    result = host.run("fail2ban-client status sshd")
    if (
        result.ok
        and ctx.client_ip
        and re.search(rf"Banned IP list:.*\b{re.escape(ctx.client_ip)}\b", result.stdout)
    ):
        return [
            _finding(
                "fail2ban",
                "fail",
                f"fail2ban's sshd jail bans {ctx.client_ip}",
                "server.firewall",
                [result.command],
            )
        ]
    return [_finding("fail2ban", "pass", f"fail2ban does not ban {ctx.client_ip or 'the client'}")]


CHECKS = (
    check_listening,
    find_config,
    check_config,
    effective_settings,
    check_host_keys,
    check_privsep,
    check_duplicate_keys_files,
    check_access_rules,
    check_signature_algorithms,
    check_account,
    check_pam,
    check_modes,
    check_authorized_keys,
    check_chroot,
    check_selinux,
    check_firewall,
    check_fail2ban,
)
# Checks that need the sshd program here (running or not: a stopped sshd's configuration
# and host keys are what say why it is down).
_NEEDS_SSHD = {
    "find_config",
    "check_config",
    "effective_settings",
    "check_access_rules",
    "check_signature_algorithms",
    "check_host_keys",
    "check_privsep",
    "check_duplicate_keys_files",
}
# The signature algorithms a key of each type can sign with, newest first.
SIGNATURES = {
    "ssh-rsa": ("rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"),
    "ssh-ed25519": ("ssh-ed25519",),
    "ecdsa-sha2-nistp256": ("ecdsa-sha2-nistp256",),
    "ecdsa-sha2-nistp384": ("ecdsa-sha2-nistp384",),
    "ecdsa-sha2-nistp521": ("ecdsa-sha2-nistp521",),
    "ssh-dss": ("ssh-dss",),
}


# A mounted root: nothing runs there, so the file-based checks only.
OFFLINE_CHECKS = (
    offline_settings,
    offline_syntax,
    check_host_keys,
    check_access_rules,
    check_signature_algorithms,
    check_account,
    check_pam,
    check_modes,
    check_authorized_keys,
    check_chroot,
)


def check_server(host: Host, ctx: Context) -> list[Finding]:
    """Every server check, in dependency order, with the commands run as evidence."""
    findings: list[Finding] = []
    installed = True
    for check in OFFLINE_CHECKS if host.offline else CHECKS:
        if not installed and check.__name__ in _NEEDS_SSHD:
            findings.append(_skip(check.__name__.removeprefix("check_"), "sshd is not installed"))
            continue
        try:
            found = check(host, ctx)
        except Exception as err:  # one broken check must not hide the others
            found = [_finding(check.__name__, "warn", f"the check failed: {err}")]
        findings += found
        if check is check_listening and any(f.cause_id == "server.sshd_down" for f in found):
            # Down: its configuration and host keys say why, if the program is there at all.
            installed = _sshd_program(host) is not None
            if not installed:
                findings.append(
                    _finding(
                        "installed",
                        "fail",
                        "sshd is not installed here (no sshd command, no /usr/sbin/sshd)",
                        "server.sshd_down",
                        ["command -v sshd", "command -v /usr/sbin/sshd"],
                    )
                )
    findings.append(
        _finding(
            "commands",
            "info",
            f"{len(host.history)} read-only command(s) run on {host.name}",
            evidence=host.history[-40:],
        )
    )
    return findings
