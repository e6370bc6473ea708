"""The lab's files: keys, private account databases, server homes, sshd and client configs.

Everything is written under the lab's own directory. The machine's /etc/passwd, shadow
and group are only *read* here (copied, then extended with the lab accounts); sshd sees
the copies in an overlay over /etc in its private mount namespace (:func:`etc_layer`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from runbook.errors import LabError
from runbook.lab.scenarios import ACCOUNTS, Scenario

__all__ = [
    "CLIENT_KEYS",
    "LAB_PASSWORD",
    "WRONG_PASSWORD",
    "accounts",
    "client_home",
    "dev_overlay",
    "host_keys",
    "keygen",
    "known_hosts_spec",
    "sshd_config",
]

LAB_PASSWORD = "lab-password"  # every lab account's password (lab only, not a secret)
WRONG_PASSWORD = "not-the-password"
# name -> ssh-keygen arguments. "authorized*" keys are in every lab account's authorized_keys.
CLIENT_KEYS = {
    "authorized": ["-t", "ed25519"],
    "authorized-rsa": ["-t", "rsa", "-b", "2048"],
    "stranger": ["-t", "ed25519"],
    "spare1": ["-t", "ed25519"],
    "spare2": ["-t", "ed25519"],
    "spare3": ["-t", "ed25519"],
    "spare4": ["-t", "ed25519"],
    "impostor-host": ["-t", "ed25519"],
}
HOST_KEY_TYPES = {"ed25519": ["-t", "ed25519"], "ecdsa": ["-t", "ecdsa"], "rsa": ["-t", "rsa"]}
_DEV_NODES = ("null", "zero", "full", "random", "urandom", "tty", "ptmx")


def _run(argv: list[str], *, stdin: str | None = None) -> str:
    proc = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        raise LabError(f"`{' '.join(argv)}` failed: {proc.stderr.strip()}")
    return proc.stdout


def keygen(path: Path, args: list[str], comment: str) -> None:
    """A new unencrypted key pair at ``path`` (real ssh-keygen)."""
    _run(["ssh-keygen", "-q", *args, "-N", "", "-C", comment, "-f", str(path)])


def host_keys(keydir: Path) -> list[Path]:
    """The lab's sshd host keys (one per type), generated once per lab."""
    keydir.mkdir(mode=0o755, exist_ok=True)
    paths = []
    for kind, args in HOST_KEY_TYPES.items():
        path = keydir / f"ssh_host_{kind}_key"
        keygen(path, args, f"ssh-runbook-lab host key {kind}")
        paths.append(path)
    return paths


def _pubkey(path: Path) -> str:
    return path.with_name(path.name + ".pub").read_text().strip()


def accounts(srv: Path, keydir: Path) -> Path:
    """Private passwd/shadow/group (machine's lines plus the lab accounts) and their homes."""
    etc = srv / "etc"
    etc.mkdir(parents=True, mode=0o755)
    homes = srv / "homes"
    homes.mkdir(mode=0o755)
    hashed = _run(["openssl", "passwd", "-6", "-stdin"], stdin=LAB_PASSWORD).strip()
    passwd = Path("/etc/passwd").read_text().rstrip("\n").split("\n")
    shadow = Path("/etc/shadow").read_text().rstrip("\n").split("\n")
    group = Path("/etc/group").read_text().rstrip("\n").split("\n")
    keys = [_pubkey(keydir / "authorized"), _pubkey(keydir / "authorized-rsa")]
    for acct in ACCOUNTS.values():
        home = homes / acct.name
        passwd.append(f"{acct.name}:x:{acct.uid}:{acct.uid}:lab user:{home}:{acct.shell}")
        shadow.append(f"{acct.name}:{acct.lock}{hashed}:{acct.changed}:0:99999:7::{acct.expire}:")
        group.append(f"{acct.name}:x:{acct.uid}:")
        ssh_dir = home / ".ssh"
        ssh_dir.mkdir(parents=True)
        auth = ssh_dir / "authorized_keys"
        auth.write_text("\n".join(keys) + "\n")
        for path, mode in (
            (auth, acct.authorized_keys_mode),
            (ssh_dir, acct.ssh_dir_mode),
            (home, acct.home_mode),
        ):
            owner = acct.uid
            if path == auth and acct.authorized_keys_owner is not None:
                owner = acct.authorized_keys_owner
            os.chown(path, owner, owner)
            os.chmod(path, mode)
    for name, lines, mode in (
        ("passwd", passwd, 0o644),
        ("shadow", shadow, 0o640),
        ("group", group, 0o644),
    ):
        path = etc / name
        path.write_text("\n".join(lines) + "\n")
        os.chmod(path, mode)
    # root's key for the root-denied scenario, served by AuthorizedKeysCommand.
    (srv / "root_keys").write_text(keys[0] + "\n")
    os.chmod(srv / "root_keys", 0o644)
    return etc


def etc_layer(sdir: Path, etc: Path) -> Path:
    """The top layer of the /etc one sshd sees: an overlay over the machine's /etc whose
    upper directory holds the lab's passwd, shadow and group.

    An overlay, not bind-mounted files: usermod, chage and passwd write a new shadow and
    rename it over the old, which a bind-mounted file refuses, and ``runbook fix`` must be
    able to unlock a lab account as on a real server. Whatever they write lands in this
    scenario's layer; the machine's /etc is the read-only lower layer.
    """
    layer = sdir / "etc"
    (layer / "upper").mkdir(parents=True, mode=0o755)
    (layer / "work").mkdir(mode=0o700)
    for name in ("passwd", "shadow", "group"):
        shutil.copy2(etc / name, layer / "upper" / name)
    return layer


def dev_overlay(sdir: Path) -> Path:
    """Mount points for the /dev this sshd sees: real nodes plus the lab's syslog socket."""
    dev = sdir / "dev"
    dev.mkdir(mode=0o755)
    for node in _DEV_NODES:
        (dev / node).touch()
    (dev / "pts").mkdir()
    for link, to in (
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ):
        (dev / link).symlink_to(to)
    return dev


def keys_file(srv: Path, scenario: Scenario) -> Path:
    """The keys AuthorizedKeysCommand serves: the scenario's own copy when its key carries
    options, else root's (sshd reads no file as root here: the lab's homes are the users')."""
    return srv / f"keys-{scenario.name}" if scenario.key_options else srv / "root_keys"


def scenario_keys(srv: Path, keydir: Path, scenario: Scenario) -> Path:
    """The scenario's copy of the client keys, each line with its options."""
    path = keys_file(srv, scenario)
    path.write_text(f"{scenario.key_options} {_pubkey(keydir / 'authorized')}\n")
    os.chmod(path, 0o644)
    return path


def user_keys(srv: Path, keydir: Path) -> Path:
    """authorized_keys for an unprivileged lab, whose sshd logs in only its own user."""
    srv.mkdir(parents=True, mode=0o755, exist_ok=True)
    path = srv / "authorized_keys"
    keys = [_pubkey(keydir / "authorized"), _pubkey(keydir / "authorized-rsa")]
    path.write_text("\n".join(keys) + "\n")
    os.chmod(path, 0o600)
    return path


def sshd_config(
    scenario: Scenario, *, port: int, keys: list[Path], srv: Path, as_user: bool = False
) -> str:
    """The scenario's sshd_config: lab defaults (keys only, no PAM) plus its own options.

    ``as_user``: sshd runs unprivileged, so the keys live in the lab (never in the user's
    real ~/.ssh), and StrictModes is off because the lab sits under sticky /var/tmp.
    """
    options = {
        "Port": str(port),
        "ListenAddress": "127.0.0.1",
        "PidFile": "none",
        "LogLevel": "VERBOSE",
        "SyslogFacility": "AUTH",
        "UsePAM": "no",
        "PubkeyAuthentication": "yes",
        "PasswordAuthentication": "no",
        "KbdInteractiveAuthentication": "no",
        "StrictModes": "yes",
        "AuthorizedKeysFile": ".ssh/authorized_keys",
        "PrintMotd": "no",
        # One lab sshd stands in for many hosts (the demo's and the benchmarks' fleets
        # point dozens of targets at it at once): each real host would see one connection.
        "MaxStartups": "500:30:1000",
    }
    if scenario.user == "root" or scenario.key_options:
        options["AuthorizedKeysCommand"] = f"/bin/cat {keys_file(srv, scenario)}"
        options["AuthorizedKeysCommandUser"] = "nobody"
    if scenario.key_options:  # only the copy with the options: no plain key beside it
        options["AuthorizedKeysFile"] = "none"
    if as_user:
        options["AuthorizedKeysFile"] = str(srv / "authorized_keys")
        options["StrictModes"] = "no"
    options.update(scenario.sshd_options)
    lines = [f"# ssh-runbook lab: {scenario.name}: {scenario.summary}"]
    lines += [f"HostKey {key}" for key in keys]
    lines += [f"{key} {value}" for key, value in options.items()]
    return "\n".join(lines) + "\n"


def known_hosts_spec(host: str, port: int) -> str:
    """How known_hosts names a host: ``host`` on port 22, ``[host]:port`` elsewhere."""
    return host if port == 22 else f"[{host}]:{port}"


def client_home(
    scenario: Scenario,
    home: Path,
    *,
    host: str,
    port: int,
    keydir: Path,
    host_key_files: list[Path],
    jump: str | None,
    user: str,
) -> dict[str, object]:
    """The client's home for one scenario; returns the material a user needs to connect."""
    ssh_dir = home / ".ssh"
    ssh_dir.mkdir(parents=True, mode=0o700)
    os.chmod(home, 0o755)
    if os.geteuid() == 0:
        # Opaque in the client's home overlay: the caller's own ~/.ssh never shows through.
        os.setxattr(ssh_dir, "trusted.overlay.opaque", b"y")
    identities = []
    for key in scenario.client_keys:
        dest = ssh_dir / f"id_{key.replace('-', '_')}"
        shutil.copyfile(keydir / key, dest)
        shutil.copyfile(keydir / f"{key}.pub", dest.with_name(dest.name + ".pub"))
        os.chmod(dest, scenario.key_mode)
        identities.append(dest)
    if scenario.identity_missing:
        identities.append(ssh_dir / "id_lab_missing")
    if scenario.key_invalid:
        broken = ssh_dir / "id_putty.ppk"
        broken.write_text(
            "PuTTY-User-Key-File-3: ssh-ed25519\nEncryption: none\nComment: lab\n"
            "Public-Lines: 2\nAAAAC3NzaC1lZDI1NTE5AAAAIJ7x\nbWFsZm9ybWVk\n"
        )
        os.chmod(broken, 0o600)
        identities.append(broken)
    known = ssh_dir / "known_hosts"
    spec = known_hosts_spec(host, port)
    if scenario.known_hosts == "good" and scenario.server == "sshd":
        known.write_text("".join(f"{spec} {_pubkey(k)}\n" for k in host_key_files))
    elif scenario.known_hosts == "ed25519-only":
        known.write_text(
            "".join(f"{spec} {_pubkey(k)}\n" for k in host_key_files if "ed25519" in k.name)
        )
    elif scenario.known_hosts == "changed":
        known.write_text(f"{spec} {_pubkey(keydir / 'impostor-host')}\n")
    else:
        known.write_text("")
    if known.read_text():
        _run(["ssh-keygen", "-q", "-H", "-f", str(known)])  # Debian's HashKnownHosts yes
        known.with_name("known_hosts.old").unlink(missing_ok=True)
    os.chmod(known, 0o644)
    lines = [
        f"# ssh-runbook lab: {scenario.name}: {scenario.summary}",
        f"Host {scenario.name}",
        f"    HostName {host}",
        f"    Port {port}",
        f"    User {user}",
        f"    UserKnownHostsFile {known}",
    ]
    if identities:
        lines.append("    IdentitiesOnly yes")
        lines += [f"    IdentityFile {path}" for path in identities]
    if jump:
        lines.append(f"    ProxyJump {jump}")
    config = ssh_dir / "config"
    config.write_text("\n".join(lines) + "\n")
    os.chmod(config, scenario.config_mode)
    return {
        "home": str(home),
        "ssh_config": str(config),
        "known_hosts": str(known),
        "identity_files": [str(p) for p in identities],
    }
