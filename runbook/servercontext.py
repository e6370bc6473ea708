"""What every server check shares: the attempt's :class:`Context` and the helpers reading it.

The checks fill the context as they go, in the order runbook.servercheck runs them: the
listener gives sshd's pid, the configuration its settings for this user, the account its
passwd entry; a later check reads what an earlier one learnt. Helpers that several check
modules need (a setting's value, the authorized_keys paths, the client's name as sshd sees
it) live here, so that no check module imports the entry point or one another in a circle.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from runbook.findings import Finding
from runbook.hosts import Host

__all__ = [
    "Context",
    "authorized_keys_paths",
    "chroot_dir",
    "finding",
    "keys_command",
    "passwords_asked",
    "remote_host",
    "setting",
    "skip",
    "sshd_program",
    "uses_pam",
]

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


def finding(
    check: str,
    status: str,
    summary: str,
    cause: str | None = None,
    evidence: Sequence[str] = (),
    **data: str | int,
) -> Finding:
    """A finding of the server step."""
    return Finding(
        STEP,
        check,
        status,
        summary,
        cause_id=cause,  # type: ignore[arg-type]
        evidence=list(evidence),
        data=dict(data),
    )


def skip(check: str, why: str) -> Finding:
    """A check whose precondition failed, named (the report lists several in a row)."""
    return finding(check, "skip", f"{check.replace('_', ' ')} not checked: {why}")


def setting(ctx: Context, key: str, default: str = "") -> str:
    """The first value of a setting (sshd -T or the offline reader), else the default."""
    return (ctx.settings.get(key) or [default])[0]


def remote_host(host: Host, ctx: Context) -> str | None:
    """The client's name as sshd sees it: with UseDNS yes its reverse-resolved name (the
    address when that fails), else its address (auth_get_canonical_hostname)."""
    if ctx.remote_host is None and ctx.client_ip:
        ctx.remote_host = ctx.client_ip
        if setting(ctx, "usedns", "no").lower() == "yes":
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


def sshd_program(host: Host) -> str | None:
    """How to run sshd here: ``sshd`` from PATH, else /usr/sbin/sshd; None when absent."""
    return next((p for p in ("sshd", "/usr/sbin/sshd") if host.exists(p)), None)


def uses_pam(ctx: Context) -> bool:
    """Whether sshd runs PAM (UsePAM yes): PAM then judges the account and passwords."""
    return setting(ctx, "usepam", "no").lower() == "yes"


def passwords_asked(ctx: Context) -> bool:
    """Whether the client's password reaches a password check: it has one, and sshd takes
    passwords (PasswordAuthentication, or keyboard-interactive through PAM)."""
    kbd = setting(ctx, "kbdinteractiveauthentication", "yes").lower() == "yes"
    return ctx.password and (
        setting(ctx, "passwordauthentication", "yes").lower() == "yes" or (kbd and uses_pam(ctx))
    )


def authorized_keys_paths(ctx: Context) -> list[str]:
    """The authorized_keys files sshd reads for the user, AuthorizedKeysFile expanded."""
    home = ctx.passwd[5] if ctx.passwd and len(ctx.passwd) > 5 else f"/home/{ctx.user}"
    paths = []
    for item in " ".join(ctx.settings.get("authorizedkeysfile", [".ssh/authorized_keys"])).split():
        if item.lower() == "none":
            continue
        item = item.replace("%h", home).replace("%u", ctx.user).replace("%%", "%")
        paths.append(item if item.startswith("/") else f"{home}/{item}")
    return paths


def chroot_dir(ctx: Context) -> str | None:
    """ChrootDirectory for this user, expanded as session.c does (~, %h, %u, %U)."""
    raw = setting(ctx, "chrootdirectory", "none")
    if not raw or raw.lower() == "none" or ctx.passwd is None:
        return None
    home, uid = ctx.passwd[5], ctx.passwd[2]
    if raw == "~" or raw.startswith("~/"):
        raw = home + raw[1:]
    return re.sub(
        r"%([%hUu])", lambda m: {"%": "%", "h": home, "u": ctx.user, "U": uid}[m.group(1)], raw
    )


def keys_command(ctx: Context) -> str | None:
    """AuthorizedKeysCommand, None when unset: with one, a program gives sshd the keys."""
    command = setting(ctx, "authorizedkeyscommand", "none")
    return None if command == "none" else command
