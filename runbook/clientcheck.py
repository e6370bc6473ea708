"""The client's own files, by OpenSSH's rules: ssh_config, ~/.ssh and each identity file.

The rules are ssh's, not folklore: ssh refuses an ssh_config another user can write
(``ssh -G`` already told us, see :mod:`runbook.sshconfig`); it ignores a private key that
its owner has left readable by group or others (``mode & 077``); it skips an identity
file it cannot load. A missing default key (``~/.ssh/id_rsa`` ...) is normal; a missing key
the user named with ``-i`` or ``IdentityFile`` is a finding.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import shutil
import stat
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import paramiko

from runbook.findings import Finding
from runbook.sshconfig import Settings, home

__all__ = ["DEFAULT_IDENTITIES", "Identity", "agent_keys", "check_client_files", "load_key"]

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

    OpenSSH decides whether the key is usable (``ssh-keygen -y``): paramiko reads some
    keys ssh refuses (Windows line endings) and misses some ssh reads (PKCS#8 PEM, FIDO
    keys). paramiko's key object is what the probe then authenticates with.
    """
    if not_private := _not_a_private_key(path):
        return None, "invalid", not_private
    try:
        data = Path(path).read_bytes()
    except OSError as err:
        return None, "unreadable", err.strerror or str(err)
    if _sealed(data):
        return None, "passphrase", "the key is protected by a passphrase"
    if data.startswith(b"PuTTY-User-Key-File"):
        return None, "invalid", "a PuTTY .ppk key, which OpenSSH cannot read (convert it)"
    refused = _openssh_refuses(data)
    if refused and "passphrase" in refused:
        return None, "passphrase", "the key is protected by a passphrase"
    if refused:
        if b"\r\n" in data:
            refused += " (Windows line endings: sed -i 's/\\r$//' the key file)"
        return None, "invalid", refused
    try:
        return paramiko.PKey.from_path(path), None, ""
    except paramiko.PasswordRequiredException:
        return None, "passphrase", "the key is protected by a passphrase"
    except (paramiko.SSHException, ValueError, TypeError, UnicodeDecodeError) as err:
        reason = str(err) or type(err).__name__
    if refused is None:  # no ssh-keygen here: paramiko's word is all there is
        return None, "invalid", reason
    if key := _pkcs8(data):
        return key, None, ""
    return None, "unsupported", f"ssh can use it, the probe cannot ({reason})"


def _pkcs8(data: bytes) -> paramiko.PKey | None:
    """A PKCS#8 PEM key ("BEGIN PRIVATE KEY", what openssl writes), which OpenSSH reads
    and paramiko's loader does not: RSA and ECDSA keys, through cryptography."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    if b"-----BEGIN PRIVATE KEY-----" not in data:
        return None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        return None
    if isinstance(key, rsa.RSAPrivateKey):
        return paramiko.RSAKey(key=key)
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return paramiko.ECDSAKey(vals=(key, key.public_key()))
    return None


def _openssh_refuses(data: bytes) -> str | None:
    """Why OpenSSH cannot load this private key ("" when it can, None when ssh-keygen is
    not here). The key goes to ``ssh-keygen -y`` as an in-memory file of mode 0600: its
    real file's mode is another check's business, and no copy of it touches a disk (a
    pipe would do, but OpenSSH cannot read PEM keys from one)."""
    if shutil.which("ssh-keygen") is None:
        return None
    fd = os.memfd_create("runbook-key", os.MFD_CLOEXEC)
    try:
        os.write(fd, data)
        os.fchmod(fd, 0o600)
        proc = subprocess.run(
            ["ssh-keygen", "-y", "-P", "", "-f", f"/dev/fd/{fd}"],
            pass_fds=(fd,),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    finally:
        os.close(fd)
    if proc.returncode == 0:
        return ""
    said = proc.stderr.decode(errors="replace").strip().splitlines()
    return re.sub(r'^Load key "[^"]*": ', "", said[-1]) if said else "ssh-keygen cannot load it"


def _not_a_private_key(path: str) -> str | None:
    """Why ``path`` cannot be a private key at all (a directory, a public key), or None."""
    if os.path.isdir(path):
        return "a directory, not a key file"
    try:
        with open(path, "rb") as handle:
            head = handle.read(64)
    except OSError:
        return None  # unreadable: load_key says so
    if head.split(b" ", 1)[0] in _PUBLIC_PREFIXES or head.startswith(b"---- BEGIN SSH2 PUBLIC"):
        private = path[: -len(".pub")] if path.endswith(".pub") else None
        if private and os.path.isfile(private):
            return f"a public key; IdentityFile must name the private key: {private}"
        return "a public key; IdentityFile must name the private key"
    return None


_OPENSSH_KEY = re.compile(
    rb"-----BEGIN OPENSSH PRIVATE KEY-----(.*?)-----END OPENSSH PRIVATE KEY-----", re.S
)
_MAGIC = b"openssh-key-v1\0"


def _openssh_fields(data: bytes, count: int) -> list[bytes]:
    """The first ``count`` length-prefixed fields of an OpenSSH-format private key (its
    cipher, KDF, KDF options, the number of keys as a field of its own, the first public
    key), which the format keeps unencrypted; [] for another format."""
    body = _OPENSSH_KEY.search(data)
    if body is None:
        return []
    try:
        raw = base64.b64decode(b"".join(body.group(1).split()))
    except ValueError:
        return []
    if not raw.startswith(_MAGIC):
        return []
    fields, at = [], len(_MAGIC)
    while len(fields) < count and at + 4 <= len(raw):
        if len(fields) == 3:  # the number of keys: a bare uint32
            fields.append(raw[at : at + 4])
            at += 4
            continue
        size = int.from_bytes(raw[at : at + 4], "big")
        fields.append(raw[at + 4 : at + 4 + size])
        at += 4 + size
    return fields


def _sealed(data: bytes) -> bool:
    """Whether a private key file is protected by a passphrase (OpenSSH's format, or PEM's
    "Proc-Type: 4,ENCRYPTED" and PKCS#8's "ENCRYPTED PRIVATE KEY")."""
    fields = _openssh_fields(data, 1)
    if fields:
        return fields[0] != b"none"
    return b"ENCRYPTED" in data[:256]


def _public_fingerprint(path: str) -> str | None:
    """The SHA256 fingerprint of a private key's public half without its passphrase: from
    the file itself (OpenSSH's format keeps it in clear) or from KEY.pub beside it."""
    try:
        fields = _openssh_fields(Path(path).read_bytes(), 5)
        blob = fields[4] if len(fields) == 5 else None
        if blob is None and os.path.isfile(path + ".pub"):
            blob = base64.b64decode(Path(path + ".pub").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    if not blob:
        return None
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def unoffered_keys(identities: Sequence[Identity]) -> dict[str, str]:
    """Private keys in ~/.ssh that ssh does not offer (IdentitiesOnly, IdentityFile naming
    others), by fingerprint: the server may hold one of them, the classic wrong key."""
    offered = {i.fingerprint for i in identities if i.fingerprint}
    found: dict[str, str] = {}
    ssh_dir = Path(home()) / ".ssh"
    for public in sorted(ssh_dir.glob("*.pub")) if ssh_dir.is_dir() else []:
        private = public.with_suffix("")
        fingerprint = _public_fingerprint(str(private)) if private.is_file() else None
        if fingerprint and fingerprint not in offered:
            found.setdefault(fingerprint, str(private))
    return found


def agent_keys() -> list[paramiko.AgentKey]:
    """The keys of the user's ssh-agent (none without one): read-only, nothing is signed."""
    if not os.environ.get("SSH_AUTH_SOCK"):
        return []
    try:
        return list(paramiko.Agent().get_keys())
    except paramiko.SSHException:
        return []


def _explicit(settings: Settings) -> bool:
    defaults = {p.replace("~", home(), 1) for p in DEFAULT_IDENTITIES}
    return not set(settings.identity_files) <= defaults


def _unusable(path: str, summary: str, cause: str, evidence: list[str], **data: str) -> Finding:
    """An identity file ssh cannot use, and why."""
    return Finding(
        "client",
        "identity file",
        "fail",
        summary,
        cause_id=cause,
        evidence=evidence,
        data={"identity_file": path, **data},
    )


def _check_identity(path: str, explicit: bool) -> tuple[Identity, Finding | None]:
    ident = Identity(path, explicit)
    if not os.path.exists(path):
        ident.problem = "missing"
        if not explicit:
            return ident, None
        return ident, _unusable(
            path,
            f"no such identity: {path}: No such file or directory",
            "client.identity_missing",
            [f"IdentityFile {path} does not exist"],
        )
    not_private = _not_a_private_key(path)
    if not_private:  # before the modes: ssh's own "too open" would send the user astray
        ident.problem = "invalid"
        return ident, _unusable(
            path,
            f'Load key "{path}": {not_private}',
            "client.key_invalid",
            [f"{path}: {not_private}"],
        )
    st = os.stat(path)
    mode = _mode(path)
    if st.st_uid == os.getuid() and st.st_mode & 0o077:
        ident.problem = "perms"
        return ident, _unusable(
            path,
            f"UNPROTECTED PRIVATE KEY FILE: permissions {mode} for '{path}' are too open; "
            "ssh ignores this key",
            "client.key_perms",
            [
                f"{path}: mode {mode}, owner uid {st.st_uid}",
                "ssh requires that a private key is not accessible by others (mode 600)",
            ],
            mode=mode,
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
        return ident, _unusable(
            path,
            f'Load key "{path}": {detail}',
            "client.key_invalid",
            [f'Load key "{path}": {detail}'],
        )
    if problem == "unsupported":
        ident.usable = True
    if problem == "passphrase":
        ident.fingerprint = _public_fingerprint(path)
    return ident, Finding(
        "client",
        "identity file",
        "info" if problem == "unsupported" else "warn",
        f"{path}: {detail}",
        data={"identity_file": path},
    )


def _sealed_outcome(finding: Finding, identities: list[Identity]) -> Finding:
    """A key with a passphrase is no finding while another key can log in or ssh-agent
    holds it; else it is why ssh fails: it cannot ask for the passphrase here."""
    ident = next((i for i in identities if i.path == finding.data.get("identity_file")), None)
    if ident is None or ident.problem != "passphrase" or any(i.usable for i in identities):
        return finding
    if ident.fingerprint and ident.fingerprint in {k.fingerprint for k in agent_keys()}:
        ident.usable = True
        return replace(finding, status="pass", summary=f"{ident.path}: held by ssh-agent")
    return replace(
        finding,
        status="fail",
        cause_id="client.key_invalid",
        summary=f"{ident.path} is protected by a passphrase: ssh cannot ask for it here "
        "(BatchMode, no terminal) and no ssh-agent holds the key",
        evidence=[f"{ident.path}: an encrypted private key"],
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
    findings = [_sealed_outcome(f, identities) for f in findings]
    if all(i.problem == "missing" for i in identities) and not explicit:
        findings.append(
            Finding(
                "client",
                "identity file",
                "info",
                "no default key (~/.ssh/id_*) exists on this client",
            )
        )
    return findings, identities
