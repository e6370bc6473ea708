"""Owners, modes and labels sshd insists on: StrictModes, ChrootDirectory, SELinux.

With StrictModes sshd ignores authorized_keys when it or a directory above it, up to the
home, belongs to another user or is writable by others (Debian's sshd allows a
group-writable one whose group holds its owner alone), and it reads the file as the user.
A ChrootDirectory must be root's and writable by no one else all the way down, or the
session ends right after the login. Where SELinux enforces, ~/.ssh needs ssh_home_t.
"""

from __future__ import annotations

import re

from runbook.findings import Finding
from runbook.hosts import Host
from runbook.servercontext import (
    Context,
    authorized_keys_paths,
    chroot_dir,
    finding,
    keys_command,
    passwords_asked,
    setting,
    skip,
    sshd_program,
)

__all__ = ["check_chroot", "check_modes", "check_selinux"]

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
        program = sshd_program(host) or "sshd"
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
        return [skip("modes", "the account does not exist")]
    if keys_command(ctx):
        return [skip("modes", "keys come from AuthorizedKeysCommand")]
    home = ctx.passwd[5]
    uid = ctx.passwd[2]
    strict = setting(ctx, "strictmodes", "yes") == "yes"
    notes: list[str] = []
    for keys in authorized_keys_paths(ctx):
        chain = [keys]
        parent = keys
        while parent not in ("/", ""):
            parent = parent.rsplit("/", 1)[0] or "/"
            chain.append(parent)
            if parent == home:
                break
        stats = host.stat(chain)
        if keys.startswith(home + "/") and not any(name == home for _, _, name in stats):
            # A password still logs in (sshd: "Could not chdir to home directory", then /).
            asked = passwords_asked(ctx)
            return [
                finding(
                    "StrictModes",
                    "warn" if asked else "fail",
                    f"the home directory {home} of {ctx.user} does not exist: sshd finds no "
                    "authorized_keys in it"
                    + ("; a password login still works, in /" if asked else ""),
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
                    finding(
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
                    finding(
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
                finding(
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
                finding(
                    "StrictModes",
                    "pass",
                    f"{keys} and the directories above it have safe owners and modes",
                    evidence=[f"{n}: owner uid {o}, mode {m}" for o, m, n in stats] + notes,
                )
            ]
    return [
        finding(
            "StrictModes",
            "warn",
            "authorized_keys is missing or unreadable",
            evidence=authorized_keys_paths(ctx),
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


def check_chroot(host: Host, ctx: Context) -> list[Finding]:
    """ChrootDirectory: every component of the path from / down must be a directory owned
    by root and writable by no one else (session.c's safely_chroot), or the session ends
    right after a successful login; and a login shell needs the shell inside it."""
    path = chroot_dir(ctx)
    if path is None:
        return []
    if not path.startswith("/"):
        return [
            finding(
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
                finding(
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
                finding(
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
    forced = setting(ctx, "forcecommand", "none")
    shell = (ctx.passwd[6] if ctx.passwd and len(ctx.passwd) > 6 else "") or "/bin/sh"
    if forced.lower() != "internal-sftp" and not host.executable(path.rstrip("/") + shell):
        return [
            finding(
                "ChrootDirectory",
                "fail",
                f"ChrootDirectory {path} has no {shell} inside it: the login shell cannot "
                "run there (only ForceCommand internal-sftp needs nothing inside)",
                "account.nologin",
                [*evidence, f"{path}{shell}: missing or not executable"],
            )
        ]
    return [
        finding(
            "ChrootDirectory",
            "pass",
            f"ChrootDirectory {path} and every directory above it are root's and not "
            "writable by others",
            evidence=evidence,
        )
    ]


def check_selinux(host: Host, ctx: Context) -> list[Finding]:
    """Where SELinux enforces, ~/.ssh must carry the ssh_home_t label."""
    if host.offline or not host.exists("getenforce"):
        return []
    mode = host.run("getenforce").stdout.strip()
    if mode != "Enforcing" or ctx.passwd is None:
        return []
    labels = host.run("ls -Zd --", f"{ctx.passwd[5]}/.ssh", *authorized_keys_paths(ctx))
    if labels.ok and "ssh_home_t" not in labels.stdout:
        return [
            finding(
                "SELinux",
                "fail",
                f"~/.ssh of {ctx.user} lacks the ssh_home_t label: "
                f"restorecon -R -v {ctx.passwd[5]}/.ssh",
                "server.bad_modes",
                labels.stdout.strip().splitlines(),
                bad_path=f"{ctx.passwd[5]}/.ssh",
            )
        ]
    return [finding("SELinux", "pass", "~/.ssh carries ssh_home_t")]
