"""The server's host key against every known_hosts file the client would consult.

``ssh-keygen -F`` is the lookup OpenSSH itself uses (hashed names, ``[host]:port``,
``@revoked`` and ``@cert-authority`` markers); paramiko's :class:`~paramiko.HostKeys` is the
fallback where no ssh-keygen exists. Nothing here writes a known_hosts file: an unknown
key is recorded in the finding, never accepted.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import paramiko

from runbook.findings import Finding
from runbook.sshconfig import Settings

__all__ = [
    "KnownEntry",
    "check_host_key",
    "fingerprint",
    "host_spec",
    "key_type_of",
    "known_entries",
    "negotiated_host_key_algorithm",
]

_FOUND = re.compile(r"^# Host (\S+) found: line (\d+)\s*(\S*)")
_MARKERS = {"REVOKED": "@revoked", "CA": "@cert-authority"}


@dataclass(frozen=True)
class KnownEntry:
    """One known_hosts line that names the host."""

    file: str
    line: int
    marker: str | None  # "@revoked", "@cert-authority" or None
    key_type: str
    blob: str  # base64 public key

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.blob)


def fingerprint(blob_b64: str) -> str:
    """OpenSSH's SHA256 fingerprint of a base64 public key blob."""
    digest = hashlib.sha256(base64.b64decode(blob_b64)).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def key_type_of(algorithm: str) -> str:
    """The key type a host key algorithm uses (rsa-sha2-512 -> ssh-rsa, certs -> plain)."""
    algorithm = algorithm.replace("-cert-v01@openssh.com", "")
    return "ssh-rsa" if algorithm.startswith("rsa-sha2-") else algorithm


def host_spec(settings: Settings) -> str:
    """The name known_hosts stores: HostKeyAlias or HostName, ``[name]:port`` off port 22."""
    name = settings.options.get("hostkeyalias", [settings.hostname])[0] or settings.hostname
    return name if settings.port == 22 else f"[{name}]:{settings.port}"


def known_entries(settings: Settings) -> list[KnownEntry]:
    """Every known_hosts line naming the target, from each file ssh would read."""
    spec = host_spec(settings)
    entries: list[KnownEntry] = []
    for path in settings.known_hosts_files:
        if not Path(path).is_file() or not os.access(path, os.R_OK):
            continue  # ssh cannot read it either (a root-owned one after `sudo ssh`)
        entries += (
            _lookup_ssh_keygen(spec, path)
            if shutil.which("ssh-keygen")
            else _lookup_paramiko(spec, path)
        )
    return entries


def _lookup_ssh_keygen(spec: str, path: str) -> list[KnownEntry]:
    proc = subprocess.run(
        ["ssh-keygen", "-F", spec, "-f", path],
        capture_output=True,
        text=True,
        timeout=30,
        stdin=subprocess.DEVNULL,
    )
    entries = []
    pending: tuple[int, str | None] | None = None
    for line in proc.stdout.splitlines():
        found = _FOUND.match(line)
        if found:
            pending = (int(found.group(2)), _MARKERS.get(found.group(3)))
            continue
        words = line.split()
        if pending and words:
            if words[0].startswith("@"):
                words = words[1:]
            if len(words) >= 3:
                entries.append(KnownEntry(path, pending[0], pending[1], words[1], words[2]))
            pending = None
    return entries


def _lookup_paramiko(spec: str, path: str) -> list[KnownEntry]:
    keys = paramiko.HostKeys(path).lookup(spec) or {}
    return [KnownEntry(path, 0, None, kind, key.get_base64()) for kind, key in keys.items()]


def negotiated_host_key_algorithm(
    settings: Settings, entries: Sequence[KnownEntry], server_algorithms: Sequence[str]
) -> str | None:
    """The host key algorithm ssh would agree on: its own list, known key types first (a
    key also listed @revoked does not count as known: ssh then prefers another type)."""
    client = list(settings.host_key_algorithms) or list(server_algorithms)
    revoked = {e.blob for e in entries if e.marker == "@revoked"}
    known = {e.key_type for e in entries if e.marker is None and e.blob not in revoked}
    ordered = [a for a in client if key_type_of(a) in known] + [
        a for a in client if key_type_of(a) not in known
    ]
    return next((a for a in ordered if a in server_algorithms), None)


def check_host_key(
    settings: Settings, key: paramiko.PKey, entries: Sequence[KnownEntry]
) -> Finding:
    """Known and matching, changed, revoked or unknown, with both fingerprints."""
    spec = host_spec(settings)
    kind = key.get_name()
    new_fp = fingerprint(key.get_base64())
    facts: dict[str, str | int] = {"fingerprint": new_fp, "key_type": kind, "host_spec": spec}
    strict = settings.strict_host_key_checking.lower()
    lenient = strict in ("no", "off", "false")
    revoked = [e for e in entries if e.marker == "@revoked" and e.blob == key.get_base64()]
    if revoked:
        e = revoked[0]
        return Finding(
            "hostkey",
            "known_hosts",
            "fail",
            f"the {kind} host key of {spec} is marked @revoked in {e.file}:{e.line}",
            cause_id="hostkey.changed",
            evidence=[f"{e.file}:{e.line}: @revoked {e.key_type} {e.fingerprint}"],
            data={
                **facts,
                "known_hosts": e.file,
                "known_hosts_line": e.line,
                "host_key_revoked": "revoked",
            },
        )
    plain = [e for e in entries if e.marker is None]
    match = next((e for e in plain if e.blob == key.get_base64()), None)
    if match:
        return Finding(
            "hostkey",
            "known_hosts",
            "pass",
            f"{spec} is known and matches the {kind} key ({match.file}:{match.line})",
            evidence=[f"server host key: {kind} {new_fp}", f"found in {match.file}:{match.line}"],
            data=facts,
        )
    # Any other key known for the host makes this one "changed" to ssh (hostfile.c), also
    # of another type: a server that no longer offers the type known for it (host keys
    # regenerated or removed), or someone else answering.
    known = [e for e in plain if e.key_type == kind] or plain
    if known:
        e = known[0]
        facts |= {
            "old_fingerprint": e.fingerprint,
            "known_hosts": e.file,
            "known_hosts_line": e.line,
        }
        other_type = (
            f" (only a {e.key_type} key is known for it, and the server offers no {e.key_type} "
            "host key now)"
            if e.key_type != kind
            else ""
        )
        return Finding(
            "hostkey",
            "known_hosts",
            "warn" if lenient else "fail",
            f"REMOTE HOST IDENTIFICATION HAS CHANGED for {spec}: the server sends {kind} "
            f"{new_fp}, {e.file}:{e.line} holds {e.key_type} {e.fingerprint}"
            + other_type
            + (
                " (StrictHostKeyChecking=no: ssh goes on without password authentication)"
                if lenient
                else ""
            ),
            cause_id="hostkey.changed",
            evidence=[
                f"server host key: {kind} {new_fp}",
                f"Offending {e.key_type} key in {e.file}:{e.line}: {e.fingerprint}",
            ],
            data=facts,
        )
    cas = [e for e in entries if e.marker == "@cert-authority"]
    if cas:
        return Finding(
            "hostkey",
            "known_hosts",
            "warn",
            f"{spec} is trusted through a @cert-authority ({cas[0].file}:"
            f"{cas[0].line}); its certificate is checked by ssh itself",
            evidence=[f"server host key: {kind} {new_fp}"],
            data=facts,
        )
    others = sorted({e.key_type for e in plain})
    known_files = ", ".join(settings.user_known_hosts_files) or "known_hosts"
    evidence = [
        f"server host key: {kind} {new_fp}",
        f"no {kind} entry for {spec} in {', '.join(settings.known_hosts_files)}",
    ]
    if others:
        evidence.append(f"keys of other types are known: {', '.join(others)}")
    if lenient or strict == "accept-new":
        return Finding(
            "hostkey",
            "known_hosts",
            "warn",
            f"{spec} is not in {known_files}; StrictHostKeyChecking={strict} "
            "lets ssh add it without asking",
            cause_id="hostkey.unknown",
            evidence=evidence,
            data=facts,
        )
    how = (
        "refuses it"
        if strict in ("yes", "true") or settings.batch_mode
        else "asks you to confirm it, and fails where it cannot ask (BatchMode, scripts)"
    )
    return Finding(
        "hostkey",
        "known_hosts",
        "fail",
        f"{spec} is not in {known_files}: ssh {how} "
        f"(Host key verification failed); fingerprint {new_fp}",
        cause_id="hostkey.unknown",
        evidence=evidence,
        data={
            **facts,
            "known_hosts": settings.user_known_hosts_files[0]
            if settings.user_known_hosts_files
            else "~/.ssh/known_hosts",
        },
    )
