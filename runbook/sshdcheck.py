"""sshd itself: does it listen and run, does its configuration load, what does it apply here?

The listener on the port gives sshd's pid, its command line the config file (``-f``);
``sshd -t`` says whether that file loads, ``sshd -T -C`` what applies to this user from this
address (offline, runbook.sshdconfig reads the files as sshd would). From those settings:
PermitRootLogin and Allow/Deny Users/Groups as sshd applies them, the signature algorithms
it accepts, and what it needs to start at all (host keys, the privilege-separation user);
an AuthorizedKeysFile set twice is a trap of its own.
"""

from __future__ import annotations

import itertools
import re

from runbook import sshdconfig
from runbook.findings import Finding
from runbook.hosts import Host
from runbook.servercontext import Context, finding, remote_host, setting, skip, sshd_program

__all__ = [
    "ROOT_KEYS_ONLY",
    "SIGNATURES",
    "check_access_rules",
    "check_config",
    "check_duplicate_keys_files",
    "check_host_keys",
    "check_listening",
    "check_privsep",
    "check_signature_algorithms",
    "effective_settings",
    "find_config",
    "offline_settings",
    "offline_syntax",
]

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
            finding(
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
                    finding(
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
                finding(
                    "listening",
                    "pass",
                    f"sshd (pid {pid}) listens on {on_port[0].group('addr')}:{ctx.port}",
                    evidence=[result.command],
                )
            ]
        return [
            finding(
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
            finding(
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
            finding(
                "listening",
                "fail",
                f"sshd runs but listens on no TCP port: {running.stdout.strip()[:120]}",
                "server.sshd_down",
                evidence,
            )
        ]
    return [
        finding(
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
    return [finding("config", "info", f"sshd reads {ctx.config}")]


def check_config(host: Host, ctx: Context) -> list[Finding]:
    """``sshd -t``: does the configuration load (the file and line when it does not)?"""
    result = host.run(f"{sshd_program(host) or '/usr/sbin/sshd'} -t -f", ctx.config)
    if result.ok:
        return [finding("sshd -t", "pass", f"{ctx.config} is valid", evidence=[result.command])]
    message = (result.stderr or result.stdout).strip().splitlines()
    said = message[0] if message else result.rc
    if ctx.sshd_serves and any(_NO_HOST_KEYS in line for line in message):
        return [_no_host_keys(result.command, message)]
    if ctx.sshd_serves:
        # sshd runs with what it loaded at its start: only its next restart or reload fails.
        return [
            finding(
                "sshd -t",
                "warn",
                f"{ctx.config} does not load ({said}): the running sshd still serves, but "
                "its next restart or reload will fail",
                evidence=[result.command, *message[:5]],
            )
        ]
    return [
        finding(
            "sshd -t",
            "fail",
            f"the configuration does not load: {said}",
            "server.sshd_down",
            [result.command, *message[:5]],
        )
    ]


_NO_HOST_KEYS = "no hostkeys available"
# sshd.c's words for each key it could not load: 'Unable to load host key: PATH' (9.2),
# 'Unable to load host key "PATH": REASON' (later releases).
_UNLOADED = re.compile(r'^(?:error: )?Unable to load host key:? "?(?P<path>[^":]+)"?')


def _no_host_keys(command: str, message: list[str]) -> Finding:
    """sshd -t loads no host key while sshd runs: before OpenSSH 9.8 each connection's
    re-executed sshd loads them too, fails alike and hangs up before the banner (9.8+'s
    sshd-session gets them from the listener: there, only a restart fails)."""
    missing = [m["path"] for line in message if (m := _UNLOADED.match(line))]
    return finding(
        "sshd -t",
        "fail",
        f"sshd finds no host key ({', '.join(missing) or message[0]}): before OpenSSH 9.8 "
        "each connection's sshd exits before its banner, and a restart fails alike",
        "proto.closed_early",
        [command, *message[:5]],
        **({"hostkeys_missing": " ".join(missing)} if missing else {}),
    )


def effective_settings(host: Host, ctx: Context) -> list[Finding]:
    """``sshd -T -C user=,host=,addr=``: what applies to this user from this address."""
    spec = f"user={ctx.user},host={ctx.client_host},addr={ctx.client_ip or '127.0.0.1'}"
    result = host.run("/usr/sbin/sshd -T -f", ctx.config, "-C", spec)
    if not result.ok:
        return [
            finding(
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
        finding(
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
        return [finding("sshd_config", "warn", f"{ctx.config} is missing under the root")]
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
        finding(
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
        if not used or not where or setting(ctx, key, "yes").lower() != "no":
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
            finding(
                "sshd -t",
                "pass",
                f"{ctx.config}: every line is one sshd takes (offline check)",
            )
        ]
    return [
        finding(
            "sshd -t",
            "fail",
            f"the configuration does not load: {found[0]} (offline check); sshd will not "
            "start with it",
            "server.sshd_down",
            [str(p) for p in found[:8]],
            config_line=str(found[0]),
        )
    ]


# PermitRootLogin values that refuse root's password ("without-password" is the old name
# of OpenSSH's default prohibit-password, and what sshd -T prints for it).
ROOT_KEYS_ONLY = ("prohibit-password", "without-password", "forced-commands-only")


def _uid(host: Host, ctx: Context) -> str | None:
    entry = ctx.passwd or host.passwd(ctx.user)
    return entry[2] if entry and len(entry) > 2 else None


def check_access_rules(host: Host, ctx: Context) -> list[Finding]:
    """PermitRootLogin and Allow/Deny Users/Groups, as sshd itself applies them: root is
    uid 0 whatever its name, and ``user@host`` entries match the client's address (CIDR,
    wildcards) or, with UseDNS yes, its name (auth.c's allowed_user, match.c)."""
    findings = []
    permit = setting(ctx, "permitrootlogin")
    uid = _uid(host, ctx)
    root = uid == "0" if uid is not None else ctx.user == "root"
    who = "root" if ctx.user == "root" else f"{ctx.user} (uid 0, so sshd treats it as root)"
    if root and permit == "no":
        findings.append(
            finding(
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
            finding(
                "PermitRootLogin",
                "fail" if ctx.password else "info",
                f"PermitRootLogin {permit}: {who} logs in with {keys} only, and every password "
                "is refused, the right one too",
                "account.root_denied" if ctx.password else None,
                [f"permitrootlogin {permit}"],
            )
        )
    if uid is None:
        return findings or [skip("access rules", "the account does not exist")]
    rules = {key: " ".join(ctx.settings.get(key, [])).split() for key in _ACCESS_KEYS}
    if not any(rules.values()):
        return findings or [
            finding("access rules", "pass", f"no Allow/Deny rule refuses {ctx.user}")
        ]
    name = remote_host(host, ctx)
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
            finding(
                "access rules",
                "pass",
                f"no Allow/Deny rule refuses {ctx.user} from {name or address or '?'}",
                evidence=[f"{k} {' '.join(v)}" for k, v in rules.items() if v],
            )
        ]
    key, why = refusal
    client = name if name == address or not name else f"{name} ({address})"
    findings.append(
        finding(
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


# The signature algorithms a key of each type can sign with, newest first.
SIGNATURES = {
    "ssh-rsa": ("rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"),
    "ssh-ed25519": ("ssh-ed25519",),
    "ecdsa-sha2-nistp256": ("ecdsa-sha2-nistp256",),
    "ecdsa-sha2-nistp384": ("ecdsa-sha2-nistp384",),
    "ecdsa-sha2-nistp521": ("ecdsa-sha2-nistp521",),
    "ssh-dss": ("ssh-dss",),
}


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
            finding(
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
        finding(
            "PubkeyAcceptedAlgorithms",
            "fail",
            f"no mutual signature algorithm: the client signs {kinds}; the server "
            f"accepts {','.join(sorted(accepted))}",
            "auth.sig_alg",
            [f"pubkeyacceptedalgorithms {','.join(sorted(accepted))}"],
            **fact,
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
            finding(
                "host keys",
                "fail",
                f"none of the host keys exists: {', '.join(keys)}",
                "server.sshd_down",
                keys,
            )
        ]
    if missing or loose:
        return [
            finding(
                "host keys",
                "warn",
                "host keys: " + "; ".join([*(f"{k} missing" for k in missing), *loose]),
                None,
                keys,
            )
        ]
    return [finding("host keys", "pass", f"{len(keys)} host key(s) present and private")]


def check_privsep(host: Host, ctx: Context) -> list[Finding]:
    """The privilege-separation user, and on Debian-like systems its /run/sshd."""
    if host.passwd("sshd") is None:
        return [
            finding(
                "privsep",
                "fail",
                "the privilege-separation user sshd does not exist",
                "server.sshd_down",
                ["getent passwd sshd: no entry"],
            )
        ]
    if host.read("/etc/debian_version") is not None and not host.stat(["/run/sshd"]):
        return [
            finding(
                "privsep",
                "warn",
                "/run/sshd is missing (the ssh unit creates it; "
                "a hand-started sshd exits: Missing privilege separation directory)",
            )
        ]
    return [finding("privsep", "pass", "the privilege-separation user sshd exists")]


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
            finding(
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
