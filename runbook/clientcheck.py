"""The client's own files, by OpenSSH's rules: ssh_config, ~/.ssh and each identity file.

The rules are ssh's, not folklore: ssh refuses an ssh_config another user can write
(``ssh -G`` already told us, see :mod:`runbook.sshconfig`); it ignores a private key that
its owner has left readable by group or others (``mode & 077``); it skips an identity
file it cannot load. A missing default key (``~/.ssh/id_rsa`` ...) is normal; a missing key
the user named with ``-i`` or ``IdentityFile`` is a finding.
"""

from __future__ import annotations

import os
import re
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

import paramiko

from runbook.findings import Finding
from runbook.sshconfig import Settings, home

__all__ = ["DEFAULT_IDENTITIES", "Identity", "check_client_files", "load_key"]

DEFAULT_IDENTITIES = tuple(
    f"~/.ssh/id_{kind}"
    for kind in ("rsa", "ecdsa", "ecdsa_sk", "ed25519", "ed25519_sk", "xmss", "dsa")
)

_PUBLIC_PREFIXES = {
    b"ssh-ed25519",
    b"ssh-rsa",
    b"ssh-dss",
    b"ecdsa-sha2-nistp256",
    b"ecdsa-sha2-nistp384",
    b"ecdsa-sha2-nistp521",
    b"sk-ssh-ed25519@openssh.com",
    b"sk-ecdsa-sha2-nistp256@openssh.com",
}


@dataclass
class Identity:
    """One identity file and whether ssh (and the probe) can use it."""

    path: str
    explicit: bool
    key: paramiko.PKey | None = None
    usable: bool = False
    problem: str | None = None  # "missing", "perms", "invalid", "passphrase", "unsupported"
    fingerprint: str | None = None


def _mode(path: str) -> str:
    return f"{stat.S_IMODE(os.stat(path).st_mode):04o}"


def load_key(path: str) -> tuple[paramiko.PKey | None, str | None, str]:
    """Load a private key without a passphrase: (key, problem, detail).

    paramiko does not read every format OpenSSH does (FIDO keys, some PEM); there
    ``ssh-keygen -y`` decides, reading the key through a pipe so its file mode
    does not interfere.
    """
    try:
        return paramiko.PKey.from_path(path), None, ""
    except paramiko.PasswordRequiredException:
        return None, "passphrase", "the key is protected by a passphrase"
    except (paramiko.SSHException, ValueError, UnicodeDecodeError) as err:
        reason = str(err) or type(err).__name__
    except OSError as err:
        return None, "unreadable", err.strerror or str(err)
    try:
        data = Path(path).read_bytes()
        if data.startswith(b"PuTTY-User-Key-File"):
            return None, "invalid", "a PuTTY .ppk key, which OpenSSH cannot read (convert it)"
        if data.split(b" ", 1)[0] in _PUBLIC_PREFIXES:
            return None, "invalid", "a public key; IdentityFile must name the private key"
        proc = subprocess.run(
            ["ssh-keygen", "-y", "-P", "", "-f", "/dev/stdin"],
            input=data,
            capture_output=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None, "invalid", reason
    if proc.returncode == 0:
        return None, "unsupported", f"ssh can use it, the probe cannot ({reason})"
    said = proc.stderr.decode(errors="replace").strip().splitlines()
    last = said[-1] if said else reason
    if "passphrase" in last:
        return None, "passphrase", "the key is protected by a passphrase"
    return None, "invalid", re.sub(r'^Load key "[^"]*": ', "", last)


def _explicit(settings: Settings) -> bool:
    defaults = {p.replace("~", home(), 1) for p in DEFAULT_IDENTITIES}
    return not set(settings.identity_files) <= defaults


def _check_identity(path: str, explicit: bool) -> tuple[Identity, Finding | None]:
    ident = Identity(path, explicit)
    if not os.path.exists(path):
        ident.problem = "missing"
        if not explicit:
            return ident, None
        return ident, Finding(
            "client",
            "identity file",
            "fail",
            f"no such identity: {path}: No such file or directory",
            cause_id="client.identity_missing",
            evidence=[f"IdentityFile {path} does not exist"],
            data={"identity_file": path},
        )
    st = os.stat(path)
    mode = _mode(path)
    if st.st_uid == os.getuid() and st.st_mode & 0o077:
        ident.problem = "perms"
        return ident, Finding(
            "client",
            "identity file",
            "fail",
            f"UNPROTECTED PRIVATE KEY FILE: permissions {mode} for '{path}' are too open; "
            "ssh ignores this key",
            cause_id="client.key_perms",
            evidence=[
                f"{path}: mode {mode}, owner uid {st.st_uid}",
                "ssh requires that a private key is not accessible by others (mode 600)",
            ],
            data={"identity_file": path, "mode": mode},
        )
    key, problem, detail = load_key(path)
    ident.key, ident.problem = key, problem
    if key is not None:
        ident.usable = True
        ident.fingerprint = key.fingerprint
        return ident, Finding(
            "client",
            "identity file",
            "pass",
            f"{path}: {key.get_name()} {key.fingerprint}, mode {mode}",
            data={"identity_file": path},
        )
    if problem == "invalid":
        return ident, Finding(
            "client",
            "identity file",
            "fail",
            f'Load key "{path}": {detail}',
            cause_id="client.key_invalid",
            evidence=[f'Load key "{path}": {detail}'],
            data={"identity_file": path},
        )
    if problem == "unsupported":
        ident.usable = True
    return ident, Finding(
        "client",
        "identity file",
        "info" if problem == "unsupported" else "warn",
        f"{path}: {detail}",
        data={"identity_file": path},
    )


def check_client_files(settings: Settings) -> tuple[list[Finding], list[Identity]]:
    """Findings on ssh_config, ~/.ssh and identity files, and the identities ssh would use."""
    findings = []
    config = settings.ssh_config or os.path.join(home(), ".ssh", "config")
    if settings.config_error:
        bad = settings.config_error.rsplit(" ", 1)[-1]
        findings.append(
            Finding(
                "client",
                "ssh_config",
                "fail",
                f"{settings.config_error}: ssh refuses to run at all",
                cause_id="client.config_perms",
                evidence=[settings.config_error, f"{bad}: mode {_mode(bad)}"]
                if os.path.exists(bad)
                else [settings.config_error],
                data={"ssh_config": bad, "bad_path": bad},
            )
        )
    elif os.path.isfile(config):
        findings.append(
            Finding("client", "ssh_config", "pass", f"{config}: mode {_mode(config)}, ssh reads it")
        )
    ssh_dir = os.path.join(home(), ".ssh")
    if os.path.isdir(ssh_dir) and os.stat(ssh_dir).st_mode & 0o022:
        findings.append(
            Finding(
                "client",
                "~/.ssh",
                "warn",
                f"{ssh_dir} is writable by others (mode {_mode(ssh_dir)}); 700 is the safe mode",
                data={"bad_path": ssh_dir},
            )
        )
    explicit = _explicit(settings)
    identities = []
    for path in settings.identity_files:
        ident, finding = _check_identity(path, explicit)
        identities.append(ident)
        if finding is not None:
            findings.append(finding)
    if not any(i.usable for i in identities) and not explicit:
        findings.append(
            Finding(
                "client",
                "identity file",
                "info",
                "no default key (~/.ssh/id_*) exists on this client",
            )
        )
    return findings, identities
