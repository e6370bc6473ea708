"""The target as OpenSSH itself resolves it: ``ssh -G`` is the truth.

``ssh -G`` applies the same Host/Match blocks, defaults and command-line flags as a real
login, so we ask it rather than re-implement ssh_config. Where no ssh binary exists,
paramiko's :class:`~paramiko.config.SSHConfig` gives a best-effort reading.
"""

from __future__ import annotations

import ipaddress
import os
import pwd
import re
import shutil
import subprocess
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from runbook import bounded
from runbook.errors import BadInput

__all__ = ["Settings", "home", "is_address", "parse_target", "presume", "resolve", "ssh_flags"]

_HOST_RE = re.compile(r"^[A-Za-z0-9_.%+-]+$|^\[?[0-9A-Fa-f:.]+\]?$")
_USER_RE = re.compile(r"^[A-Za-z0-9_.][A-Za-z0-9_.@-]*\$?$")
# ssh://[user@]host[:port][/] (RFC 3986's authority as OpenSSH's parse_uri reads it).
_URI = re.compile(
    r"^ssh://(?:(?P<user>[^@/]*)@)?(?P<host>\[[0-9A-Fa-f:.]+\]|[^:/@\[\]]+)(?::(?P<port>\d+))?/?$",
    re.IGNORECASE,
)
# host:port or [address]:port, which ssh takes for a host name.
_HOST_PORT = re.compile(r"^(?P<name>[^:\[\]]+|\[[0-9A-Fa-f:.]+\]):(?P<port>\d+)$")
_BAD_PERMS = re.compile(r"Bad owner or permissions on (\S+)")


def is_address(text: str) -> bool:
    """Whether a host as typed is an IP address (v4 or v6), not a name to resolve."""
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class Settings:
    """The effective client settings for one target (keys as ``ssh -G`` prints them)."""

    alias: str
    hostname: str
    port: int
    user: str
    identity_files: tuple[str, ...] = ()
    identities_only: bool = False
    proxy_jump: str | None = None
    proxy_command: str | None = None
    strict_host_key_checking: str = "ask"
    user_known_hosts_files: tuple[str, ...] = ()
    global_known_hosts_files: tuple[str, ...] = ()
    check_host_ip: bool = False
    batch_mode: bool = False
    connect_timeout: int | None = None
    kex_algorithms: tuple[str, ...] = ()
    host_key_algorithms: tuple[str, ...] = ()
    ciphers: tuple[str, ...] = ()
    macs: tuple[str, ...] = ()
    pubkey_accepted_algorithms: tuple[str, ...] = ()
    password_authentication: bool = True
    pubkey_authentication: bool = True
    ssh_config: str | None = None  # the -F file, when one was given
    # ~/.ssh/config (or an Include) that ssh refuses to read: "Bad owner or permissions".
    config_error: str | None = None
    options: dict[str, list[str]] = field(default_factory=dict, repr=False)

    @property
    def known_hosts_files(self) -> tuple[str, ...]:
        """Every known_hosts file ssh consults, user files first."""
        return self.user_known_hosts_files + self.global_known_hosts_files


def parse_target(target: str) -> tuple[str | None, str, int | None]:
    """Split ``[user@]host`` or ``ssh://[user@]host[:port]`` (OpenSSH reads both) into
    (user, host, port), and reject what ssh would misread (``host:port``, spaces...)."""
    text = target.strip()
    if not text or any(c.isspace() for c in text):
        raise BadInput(f"malformed target {target!r}", hint="write it as [user@]host")
    uri = _URI.match(text)
    if text.lower().startswith("ssh://") and not uri:
        raise BadInput(f"malformed URI {target!r}", hint="write it as ssh://[user@]host[:port]")
    if uri:
        user, host, port_text = uri.group("user", "host", "port")
    else:
        user, _, host = text.rpartition("@")
        port_text = None
        inline = _HOST_PORT.match(host)
        if inline:
            name, port = inline.group("name", "port")
            shown = f"{(user + '@') if user else ''}{name.strip('[]')}"
            hint = (
                f"ssh wants the port apart: {shown} -p {port}"
                if 1 <= int(port) <= 65535
                else "write it as [user@]host and give the port (1-65535) with -p"
            )
            raise BadInput(f"target {target!r} puts the port in the host name", hint=hint)
    if not host or not _HOST_RE.match(host):
        raise BadInput(f"malformed host in target {target!r}", hint="write it as [user@]host")
    if "@" in text and not _USER_RE.match(user or ""):
        raise BadInput(f"malformed user in target {target!r}", hint="write it as [user@]host")
    port = int(port_text) if port_text else None
    if port is not None and not 1 <= port <= 65535:
        raise BadInput(
            f"port {port} of {target!r} is out of range", hint="give a port from 1 to 65535"
        )
    return (user or None), host.strip("[]"), port


def home() -> str:
    # ssh expands ~ from the password database, not from $HOME.
    return pwd.getpwuid(os.getuid()).pw_dir


def _expand(path: str) -> str:
    return home() + path[1:] if path.startswith("~") else path


def ssh_flags(
    port: int | None,
    user: str | None,
    identities: Sequence[str],
    ssh_config: str | None,
    jump: str | None,
    known_hosts: str | None,
) -> list[str]:
    """The ssh command-line flags for these options (what ``runbook diagnose`` was given)."""
    argv: list[str] = []
    if ssh_config:
        argv += ["-F", ssh_config]
    if port is not None:
        argv += ["-p", str(port)]
    if user:
        argv += ["-l", user]
    for identity in identities:
        argv += ["-i", identity]
    if jump:
        argv += ["-J", jump]
    if known_hosts:
        argv += ["-o", f"UserKnownHostsFile={known_hosts}"]
    return argv


def _ssh_g(flags: list[str], target: str, timeout: float) -> subprocess.CompletedProcess[str]:
    """``ssh -G``, bounded: a ``Match exec`` in the config runs its command, which may hang
    (it and whatever it started are stopped with it)."""
    done = bounded.run(["ssh", "-G", *flags, target], timeout)
    if done is None:
        raise BadInput(
            f"ssh -G {target} did not answer within {timeout:g}s",
            hint="a Match exec in the ssh config (or its Include) hangs: try it by hand",
        )
    return done


# A host no Host or Match block names, for what a configuration gives every host.
_ANY_HOST = "runbook-presumed.invalid"
_presumed: dict[tuple[str | None, str | None], Settings] = {}
_presuming = threading.Lock()


def presume(
    ssh_config: str | None = None, known_hosts: str | None = None, timeout: float = 10
) -> Settings:
    """The settings this configuration gives a host it does not single out, asked of
    ``ssh -G`` once per configuration and remembered.

    A fleet starts each target's real ssh on these before its own ``ssh -G`` answers
    (SshRun.adopt then checks them against the target's own). Call it once before
    starting the fleet's threads: they then only read the answer.
    """
    key = (ssh_config, known_hosts)
    found = _presumed.get(key)
    if found is None:
        with _presuming:
            found = _presumed.get(key)
            if found is None:
                found = _presumed[key] = resolve(
                    _ANY_HOST, ssh_config=ssh_config, known_hosts=known_hosts, timeout=timeout
                )
    return found


def resolve(
    target: str,
    *,
    port: int | None = None,
    user: str | None = None,
    identities: Sequence[str] = (),
    ssh_config: str | None = None,
    jump: str | None = None,
    known_hosts: str | None = None,
    timeout: float = 10,
) -> Settings:
    """Resolve ``target`` with the same flags a user would give ``ssh``.

    A ~/.ssh/config that ssh refuses for its permissions is not an input error but a
    finding: the settings are then read with ``-F`` and ``config_error`` says why.
    """
    _, host, _ = parse_target(target)
    if port is not None and not 1 <= port <= 65535:
        raise BadInput(f"port {port} is out of range", hint="give -p a number from 1 to 65535")
    if ssh_config and not Path(ssh_config).is_file():
        raise BadInput(f"ssh_config {ssh_config} does not exist", hint="give -F an existing file")
    if known_hosts and not Path(known_hosts).exists():
        raise BadInput(
            f"known_hosts file {known_hosts} does not exist",
            hint="give --known-hosts an existing file",
        )
    if shutil.which("ssh") is None:
        return _resolve_paramiko(target, port, user, identities, ssh_config, jump, known_hosts)
    flags = ssh_flags(port, user, identities, ssh_config, jump, known_hosts)
    proc = _ssh_g(flags, target, timeout)
    config_error = None
    if proc.returncode != 0 and (bad := _BAD_PERMS.search(proc.stderr)):
        config_error = bad.group(0)
        proc = _ssh_g(["-F", bad.group(1), *flags], target, timeout)
    if proc.returncode != 0:
        message = next((ln for ln in proc.stderr.splitlines() if ln.strip()), "ssh -G failed")
        if message.startswith("usage:"):  # this ssh cannot parse the destination at all
            raise BadInput(
                f"this ssh does not accept the destination {target!r}",
                hint="write it as [user@]host (an IPv6 address without brackets) and the "
                "port with -p",
            )
        raise BadInput(
            f"ssh cannot read the settings for {target!r}: {message.strip()}",
            hint="fix the ssh_config line it names",
        )
    options: dict[str, list[str]] = {}
    for line in proc.stdout.splitlines():
        key, _, value = line.partition(" ")
        options.setdefault(key.lower(), []).append(value)
    return _settings(host, options, ssh_config, config_error)


def _settings(
    alias: str, o: dict[str, list[str]], ssh_config: str | None, config_error: str | None
) -> Settings:
    def one(key: str, default: str = "") -> str:
        return o.get(key, [default])[0]

    def words(key: str) -> tuple[str, ...]:
        return tuple(w for v in o.get(key, []) for w in v.split())

    def algos(key: str) -> tuple[str, ...]:
        return tuple(a for a in one(key).split(",") if a)

    timeout = one("connecttimeout", "none")
    jump = one("proxyjump", "none")
    command = one("proxycommand", "none")
    return Settings(
        alias=alias,
        hostname=one("hostname"),
        port=int(one("port", "22")),
        user=one("user"),
        identity_files=tuple(_expand(p) for p in o.get("identityfile", [])),
        identities_only=one("identitiesonly") == "yes",
        proxy_jump=None if jump == "none" else jump,
        proxy_command=None if command == "none" else command,
        strict_host_key_checking=one("stricthostkeychecking", "ask"),
        user_known_hosts_files=tuple(_expand(p) for p in words("userknownhostsfile")),
        global_known_hosts_files=tuple(_expand(p) for p in words("globalknownhostsfile")),
        check_host_ip=one("checkhostip") == "yes",
        batch_mode=one("batchmode") == "yes",
        connect_timeout=None if timeout == "none" else int(timeout),
        kex_algorithms=algos("kexalgorithms"),
        host_key_algorithms=algos("hostkeyalgorithms"),
        ciphers=algos("ciphers"),
        macs=algos("macs"),
        pubkey_accepted_algorithms=algos("pubkeyacceptedalgorithms"),
        password_authentication=one("passwordauthentication", "yes") == "yes",
        # ssh -G prints "true" (9.x), "yes", "unbound" or "host-bound" for enabled.
        pubkey_authentication=one("pubkeyauthentication", "yes") != "no",
        ssh_config=ssh_config,
        config_error=config_error,
        options=o,
    )


def _resolve_paramiko(
    target: str,
    port: int | None,
    user: str | None,
    identities: Sequence[str],
    ssh_config: str | None,
    jump: str | None,
    known_hosts: str | None,
) -> Settings:
    """No ssh binary: read ssh_config with paramiko and fill OpenSSH's defaults."""
    import paramiko  # here only: the reports and fixes that import this module need no SSH

    target_user, host, target_port = parse_target(target)
    path = ssh_config or os.path.join(home(), ".ssh", "config")
    config = paramiko.SSHConfig.from_path(path) if os.path.exists(path) else paramiko.SSHConfig()
    found = config.lookup(host)
    defaults = [f"~/.ssh/id_{k}" for k in ("rsa", "ecdsa", "ecdsa_sk", "ed25519", "ed25519_sk")]
    options = {
        "hostname": [found.get("hostname", host)],
        "port": [str(port or target_port or found.get("port", 22))],
        "user": [user or target_user or found.get("user") or pwd.getpwuid(os.getuid()).pw_name],
        "identityfile": list(identities) + list(found.get("identityfile", [])) or defaults,
        "identitiesonly": [found.get("identitiesonly", "no")],
        "proxyjump": [jump or found.get("proxyjump", "none")],
        "proxycommand": [found.get("proxycommand", "none")],
        "stricthostkeychecking": [found.get("stricthostkeychecking", "ask")],
        "userknownhostsfile": [
            known_hosts or found.get("userknownhostsfile", "~/.ssh/known_hosts ~/.ssh/known_hosts2")
        ],
        "globalknownhostsfile": ["/etc/ssh/ssh_known_hosts /etc/ssh/ssh_known_hosts2"],
    }
    return _settings(host, options, ssh_config, None)
