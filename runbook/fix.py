"""`runbook fix`: the catalog's fixes carried out, when asked, each with a backup.

A plan is a list of :class:`Step` derived from a diagnosis (its findings.json): what to
change, the exact command or edit, and why. Without ``apply`` nothing changes. Applied,
every step first backs up what it touches (``FILE.runbook-YYYYmmddTHHMMSS.bak``), records
itself in the incident's fixes.json, and a failed step restores its backups; then the
target is diagnosed again and the new verdict reported.

A new host key is never trusted silently: the stale entry is removed as ``ssh-keygen -R``
does, and the key the server now presents is added only when ``accept_hostkey`` names its
fingerprint (checked out of band) and it matches.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from runbook import envsecret, sshconfig
from runbook.errors import BadInput
from runbook.findings import Diagnosis
from runbook.hosts import Host
from runbook.report import atomic_write

__all__ = [
    "Step",
    "add_host_alias",
    "apply",
    "copy_id",
    "findings_file",
    "generate_key",
    "plan",
    "read_diagnosis",
]


@dataclass
class Step:
    """One change: what, the exact command or edit, why, and how to carry it out."""

    cause: str
    what: str
    command: str
    why: str
    side: str = "client"  # or "server"
    action: Callable[[Step], None] | None = field(default=None, repr=False)
    # How to undo the step when its backups are not plain copies of files.
    undo: Callable[[Step], None] | None = field(default=None, repr=False)
    backups: list[str] = field(default_factory=list)
    outcome: str = "planned"

    def to_dict(self) -> dict[str, Any]:
        return {
            "cause": self.cause,
            "what": self.what,
            "command": self.command,
            "why": self.why,
            "side": self.side,
            "backups": self.backups,
            "outcome": self.outcome,
        }


def findings_file(source: str | Path) -> Path:
    """The findings.json a ``--from`` names: the file itself, or the one in that folder."""
    path = Path(source)
    return path / "findings.json" if path.is_dir() else path


def read_diagnosis(source: str | Path) -> Diagnosis:
    """The diagnosis to fix, from its findings.json or the incident folder that holds it
    (one clear line when it is not one)."""
    path = findings_file(source)
    try:
        return Diagnosis.from_dict(json.loads(path.read_text()))
    except OSError as err:
        raise BadInput(
            f"cannot read {path}: {err.strerror}",
            hint="give the findings.json of a runbook diagnose run",
        ) from err
    except (ValueError, KeyError, TypeError) as err:
        why = f"no {err} field" if isinstance(err, KeyError) else str(err)
        raise BadInput(
            f"{path} is not a runbook findings.json: {why}",
            hint="give the findings.json of a runbook diagnose run",
        ) from err


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S")


def _backup(step: Step, path: str) -> None:
    if os.path.exists(path):
        copy = f"{path}.runbook-{_stamp()}.bak"
        number = 1
        while os.path.exists(copy):  # two changes within a second keep both backups
            number += 1
            copy = f"{path}.runbook-{_stamp()}-{number}.bak"
        shutil.copy2(path, copy)
        os.chmod(copy, 0o600)  # a backup of a private key stays private
        step.backups.append(copy)


def _run(argv: list[str]) -> str:
    done = subprocess.run(
        argv, capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL
    )
    if done.returncode != 0:
        raise RuntimeError(f"{shlex.join(argv)}: {(done.stderr or done.stdout).strip()[:200]}")
    return done.stdout


def _settings(diagnosis: Diagnosis) -> sshconfig.Settings:
    p = diagnosis.parameters
    return sshconfig.resolve(
        p.get("target") or diagnosis.target.alias,
        port=p.get("port"),
        user=p.get("user"),
        identities=p.get("identities") or (),
        ssh_config=p.get("ssh_config"),
        jump=p.get("jump"),
        known_hosts=p.get("known_hosts"),
        timeout=10,
    )


def _fingerprint(key_line: str) -> str:
    word = next(w for w in key_line.split() if w.startswith("AAAA"))
    blob = base64.b64decode(word)
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


# -- client-side steps ----------------------------------------------------------------------


def _host_key_steps(
    diagnosis: Diagnosis, settings: sshconfig.Settings, accept: str | None
) -> list[Step]:
    if diagnosis.root_cause and diagnosis.root_cause.variant == "revoked_host":
        return []  # distrusted on purpose: never removed or accepted here (the fix says why)
    spec = settings.hostname if settings.port == 22 else f"[{settings.hostname}]:{settings.port}"
    files = [f for f in settings.user_known_hosts_files if os.path.exists(f)] or list(
        settings.user_known_hosts_files[:1]
    )
    steps = []
    if diagnosis.root_cause and diagnosis.root_cause.id == "hostkey.changed":
        for known in files:

            def remove(step: Step, known: str = known) -> None:
                _backup(step, known)
                _run(["ssh-keygen", "-R", spec, "-f", known])
                Path(known + ".old").unlink(missing_ok=True)  # ours is the backup

            steps.append(
                Step(
                    "hostkey.changed",
                    f"remove the stale entry for {spec} from {known}",
                    f"ssh-keygen -R '{spec}' -f {shlex.quote(known)}",
                    "the recorded key is not the server's key any more",
                    action=remove,
                )
            )

    def scan() -> list[str]:
        out = _run(["ssh-keyscan", "-T", "5", "-p", str(settings.port), settings.hostname])
        return [ln for ln in out.splitlines() if ln and not ln.startswith("#")]

    def add(step: Step) -> None:
        if not accept:
            offered = ", ".join(sorted({_fingerprint(ln) for ln in scan()}))
            step.outcome = f"waiting: verify out of band, then --accept-hostkey one of {offered}"
            return
        matching = [ln for ln in scan() if _fingerprint(ln) == accept]
        if not matching:
            raise RuntimeError(f"the server does not present {accept}: not adding any key")
        known = files[0]
        _backup(step, known)
        Path(known).parent.mkdir(parents=True, exist_ok=True)
        with open(known, "a") as handle:
            handle.write(" ".join([spec, *matching[0].split()[1:3]]) + "\n")
        _run(["ssh-keygen", "-H", "-f", known])  # hashed, as Debian's HashKnownHosts does
        Path(known + ".old").unlink(missing_ok=True)

    if diagnosis.root_cause and diagnosis.root_cause.id in ("hostkey.changed", "hostkey.unknown"):
        steps.append(
            Step(
                diagnosis.root_cause.id,
                f"trust the server's key for {spec}"
                + (f" only if it is {accept}" if accept else " after you verified its fingerprint"),
                f"ssh-keyscan -p {settings.port} {settings.hostname} >> {shlex.quote(files[0])}  "
                "# the line whose fingerprint you verified",
                "a new key is trusted only when --accept-hostkey names the fingerprint you checked",
                action=add,
            )
        )
    return steps


def _mode_step(cause: str, path: str, mode: int, why: str) -> Step:
    def chmod(step: Step) -> None:
        _backup(step, path)
        os.chmod(path, mode)

    return Step(
        cause, f"chmod {mode:o} {path}", f"chmod {mode:o} {shlex.quote(path)}", why, action=chmod
    )


def _client_steps(diagnosis: Diagnosis, settings: sshconfig.Settings) -> list[Step]:
    cause = diagnosis.root_cause.id if diagnosis.root_cause else ""
    steps: list[Step] = []
    if cause == "client.key_perms":
        for path in settings.identity_files:
            if os.path.exists(path) and os.stat(path).st_mode & 0o077:
                steps.append(
                    _mode_step(cause, path, 0o600, "ssh ignores a private key that others can read")
                )
    if cause == "client.config_perms":
        config = settings.ssh_config or os.path.join(sshconfig.home(), ".ssh", "config")
        steps.append(
            _mode_step(cause, config, 0o600, "ssh refuses a config file that others can write")
        )
    if cause == "client.identity_missing":
        steps += _identity_steps(settings)
    if cause == "auth.too_many_failures":
        accepted = next(
            (
                e.split(": ", 1)[1]
                for f in diagnosis.findings
                for e in f.evidence
                if e.startswith("accepted when offered first: ")
            ),
            None,
        )
        config = settings.ssh_config or os.path.join(sshconfig.home(), ".ssh", "config")
        if accepted:
            steps.append(_identities_only(config, settings.alias, accepted))
    return steps


def _identity_steps(settings: sshconfig.Settings) -> list[Step]:
    """Point the missing IdentityFile of the config at a private key that exists."""
    missing = [k for k in settings.identity_files if not os.path.exists(k)]
    ssh_dir = Path(sshconfig.home()) / ".ssh"
    candidates = [k for k in settings.identity_files if os.path.exists(k)] + [
        str(ssh_dir / n) for n in ("id_ed25519", "id_ecdsa", "id_rsa") if (ssh_dir / n).exists()
    ]
    config = settings.ssh_config or str(ssh_dir / "config")
    if not missing or not candidates or not os.path.exists(config):
        return []
    text = Path(config).read_text()
    lines = [
        ln
        for ln in text.splitlines()
        if ln.strip().lower().startswith("identityfile")
        and os.path.expanduser(ln.split(None, 1)[1].strip().strip('"')) in missing
    ]
    if not lines:
        return []
    new = candidates[0]

    def edit(step: Step) -> None:
        _backup(step, config)
        updated = text
        for line in lines:
            indent = line[: len(line) - len(line.lstrip())]
            updated = updated.replace(line, f"{indent}IdentityFile {new}", 1)
        Path(config).write_text(updated)

    return [
        Step(
            "client.identity_missing",
            f"IdentityFile {new} instead of the missing {', '.join(missing)} in {config}",
            f"IdentityFile {new}",
            "ssh was told to use a key file that does not exist",
            action=edit,
        )
    ]


def _identities_only(config: str, alias: str, key: str) -> Step:
    block = f"Host {alias}\n    IdentityFile {key}\n    IdentitiesOnly yes\n"

    def edit(step: Step) -> None:
        _backup(step, config)
        text = Path(config).read_text() if os.path.exists(config) else ""
        # First obtained value wins in ssh_config: the new block goes first.
        Path(config).write_text(block + "\n" + text)
        os.chmod(config, 0o600)

    return Step(
        "auth.too_many_failures",
        f"offer only {key} to {alias} (a Host block first in {config})",
        block.strip().replace("\n", " / "),
        "the right key came after MaxAuthTries refused keys",
        action=edit,
    )


# -- server-side steps (through --server) ----------------------------------------------------


# Variants that say the refused key is not missing from authorized_keys (or cannot go
# there): revoked, a security key without the touch or PIN asked for, no home. ssh-copy-id
# then changes nothing; the catalog's variant says what does.
_KEY_NOT_MISSING = ("revoked", "fido", "no_home")


def _key_not_missing(diagnosis: Diagnosis) -> bool:
    return diagnosis.root_cause is not None and diagnosis.root_cause.variant in _KEY_NOT_MISSING


def _copy(step: Step, host: Host, user: str, key: str) -> None:
    done = copy_id(host, user, Path(key + ".pub").read_text())
    step.outcome = "applied" if done == "installed" else f"applied: {done}"


def _password_copy_id(
    diagnosis: Diagnosis, settings: sshconfig.Settings, client_key: str | None
) -> list[Step]:
    """ssh-copy-id over the user's own password login (``password_env``) when no key works
    yet; only to a host whose key the diagnosis verified."""
    env = diagnosis.parameters.get("password_env")
    cause = diagnosis.root_cause.id if diagnosis.root_cause else ""
    verified = any(f.step == "hostkey" and f.status == "pass" for f in diagnosis.findings)
    if cause not in ("auth.key_rejected", "auth.no_method") or not env or not client_key:
        return []
    if _key_not_missing(diagnosis):
        return []
    if not verified:
        return []

    def run(step: Step) -> None:
        from runbook.hosts import SshHost

        password = envsecret.from_env(env, hint=f"export {env} with the user's password")
        host = SshHost(
            f"{settings.user}@{settings.hostname}",
            10,
            user=settings.user,
            hostname=settings.hostname,
            port=settings.port,
            password=password,
            known_hosts=settings.user_known_hosts_files,
        )
        done = copy_id(host, settings.user, Path(client_key + ".pub").read_text())
        step.outcome = "applied" if done == "installed" else f"applied: {done}"

    return [
        Step(
            cause,
            f"install {client_key}.pub for {settings.user} over a password login",
            f"ssh-copy-id -i {client_key} -p {settings.port} {settings.user}@{settings.hostname}",
            "no key is accepted yet; the password (from ${env}) still logs in",
            side="server",
            action=run,
        )
    ]


def _server_steps(
    diagnosis: Diagnosis, host: Host | None, client_key: str | None = None
) -> list[Step]:
    cause = diagnosis.root_cause.id if diagnosis.root_cause else ""
    user = diagnosis.target.user
    if host is None or not cause:
        return []

    def remote(cause: str, what: str, command: str, why: str, backup: list[str]) -> Step:
        def run(step: Step) -> None:
            for path in backup:
                copy = f"{path}.runbook-{_stamp()}.bak"
                if host.run("cp -p --", path, copy).ok:
                    step.backups.append(copy)  # on the server (the step's side says so)
            result = host.run(command)
            if not result.ok:
                raise RuntimeError(f"{command}: {(result.stderr or result.stdout).strip()[:200]}")

        return Step(cause, what, command, why, side="server", action=run)

    entry = host.passwd(user)
    home = entry[5] if entry else f"~{user}"
    quoted = shlex.quote(user)
    chroot = any(f.data.get("chroot_dir") for f in diagnosis.findings)
    if cause == "server.bad_modes" and not chroot:  # a ChrootDirectory's owner is for a person
        paths = [home, f"{home}/.ssh", f"{home}/.ssh/authorized_keys"]
        qp = " ".join(shlex.quote(p) for p in paths)
        return [
            remote(
                cause,
                f"owner {user} and safe modes on the home, ~/.ssh, authorized_keys",
                f"chown {quoted} {qp} && chmod go-w {shlex.quote(home)} && chmod 700 "
                f"{shlex.quote(home + '/.ssh')} && chmod 600 "
                f"{shlex.quote(home + '/.ssh/authorized_keys')}",
                "StrictModes ignores authorized_keys under a directory others can write",
                [],
            )
        ]
    if cause == "account.locked":
        return [
            remote(
                cause,
                f"unlock {user}",
                f"usermod -U {quoted} && (faillock --user {quoted} --reset 2>/dev/null || true)",
                "a '!' in shadow (or faillock) refuses every login",
                ["/etc/shadow"],
            )
        ]
    if cause == "auth.key_rejected" and client_key and not _key_not_missing(diagnosis):
        return [
            Step(
                cause,
                f"install the client's public key for {user} (ssh-copy-id)",
                f"ssh-copy-id -i {client_key} {user}@{diagnosis.target.hostname}",
                "the server has no authorized_keys line for the key the client offers",
                side="server",
                action=lambda step: _copy(step, host, user, client_key),
            )
        ]
    if cause == "account.root_denied" and _root_keys_only(diagnosis):
        return []  # root tried a password: the fix is a key, never root's password back
    if cause in ("account.not_allowed", "account.root_denied"):
        return _sshd_config_steps(cause, host, diagnosis)
    if cause == "server.firewall":
        return _firewall_steps(host, diagnosis)
    if cause == "account.expired":
        if not _account_expired(host, user):
            return []  # the password's age: its owner sets a new one at a terminal login
        return [
            remote(
                cause,
                f"remove {user}'s expiry date",
                f"chage -E -1 {quoted}",
                "the account's expiry date has passed",
                ["/etc/shadow"],
            )
        ]
    return []


_NFT_RULE = re.compile(
    r"^\s*(?P<rule>.*\bdport (?P<ports>\S+|\{[^}]*\})\s.*\b(?:drop|reject)\b.*?)"
    r"\s*# handle (?P<handle>\d+)$"
)


def _firewall_steps(host: Host, diagnosis: Diagnosis) -> list[Step]:
    """Delete the nftables rule that drops or rejects the port (the ruleset saved first and
    loaded back if the deletion fails), or ``ufw allow`` where ufw manages the firewall."""
    port = str(diagnosis.target.port)
    address = next(
        (
            e.split()[3]
            for f in diagnosis.findings
            if f.step == "tcp"
            for e in f.evidence
            if e.startswith("connect to address")
        ),
        None,
    )
    listing = host.run("nft -a list ruleset")
    table = chain = None
    for line in listing.stdout.splitlines() if listing.ok else []:
        opened = re.match(r"^\s*(table|chain) (\S+(?: \S+)?) \{", line)
        if opened:
            if opened.group(1) == "table":
                table = opened.group(2)
            else:
                chain = opened.group(2)
            continue
        rule = _NFT_RULE.match(line)
        if not rule or not re.search(rf"\b{port}\b", rule.group("ports")):
            continue
        daddr = re.search(r"\bdaddr (\S+)", rule.group("rule"))
        if daddr and address and daddr.group(1) != address.split(":")[0]:
            continue
        command = f"nft delete rule {table} {chain} handle {rule.group('handle')}"

        def run(step: Step, command: str = command) -> None:
            saved = f"/var/tmp/nft-ruleset.runbook-{_stamp()}.bak"
            if not host.run(f"nft list ruleset > {shlex.quote(saved)}").ok:
                raise RuntimeError("cannot save the ruleset")
            step.backups.append(saved)
            result = host.run(command)
            if not result.ok:
                raise RuntimeError(f"{command}: {result.stderr.strip()[:200]}")

        def undo(step: Step) -> None:
            for saved in step.backups:
                host.run(f"nft flush ruleset && nft -f {shlex.quote(saved)}")

        return [
            Step(
                "server.firewall",
                f"remove the nftables rule: {rule.group('rule').strip()}",
                command,
                f"it drops or rejects TCP port {port}",
                side="server",
                action=run,
                undo=undo,
            )
        ]
    if host.exists("ufw"):
        return [
            Step(
                "server.firewall",
                f"allow TCP {port} in ufw",
                f"ufw allow {port}/tcp",
                "ufw denies the port",
                side="server",
                action=lambda step: _checked(host, f"ufw allow {port}/tcp"),
            )
        ]
    return []


def _checked(host: Host, command: str) -> None:
    result = host.run(command)
    if not result.ok:
        raise RuntimeError(f"{command}: {result.stderr.strip()[:200]}")


def _account_expired(host: Host, user: str) -> bool:
    """Whether the account's own expiry day (shadow's 8th field) has come: else it is the
    password that expired, and removing an expiry date would change nothing but policy."""
    fields = host.shadow(user)
    expire = fields[7] if fields and len(fields) > 7 else ""
    return expire.isdigit() and int(expire) <= host.now() // 86400


def _root_keys_only(diagnosis: Diagnosis) -> bool:
    """Whether the server already lets root in with a key (PermitRootLogin
    prohibit-password and its kin): only "no" is for the sshd_config step to change. Read
    from the server check's evidence, which findings.json keeps (its data it does not)."""
    from runbook import servercheck

    return any(
        line.split(maxsplit=1)[-1] in servercheck.ROOT_KEYS_ONLY
        for finding in diagnosis.findings
        for line in finding.evidence
        if line.startswith("permitrootlogin ")
    )


def _sshd_config_steps(cause: str, host: Host, diagnosis: Diagnosis) -> list[Step]:
    """An sshd_config edit: backed up, validated with ``sshd -t`` (restored when it fails),
    then sshd reloaded."""
    from runbook import servercheck

    user = diagnosis.target.user
    ctx = servercheck.Context(user=user, port=diagnosis.target.port, client_ip=None)
    servercheck.check_listening(host, ctx)
    servercheck.find_config(host, ctx)
    config = shlex.quote(ctx.config)
    if cause == "account.not_allowed":
        edit = f"sed -i -E 's/^([[:space:]]*AllowUsers([[:space:]].*)?)$/\\1 {user}/I' {config}"
        what = f"add {user} to AllowUsers in {ctx.config}"
        why = "AllowUsers does not list the user"
    else:
        edit = (
            f"sed -i -E 's/^([[:space:]]*PermitRootLogin)[[:space:]].*$/\\1 "
            f"prohibit-password/I' {config}"
        )
        what = f"PermitRootLogin prohibit-password (keys only) in {ctx.config}"
        why = "PermitRootLogin no refuses root; prohibit-password admits it with a key only"
    reload = (
        f"kill -HUP {ctx.sshd_pid}"
        if ctx.sshd_pid
        else "systemctl reload ssh 2>/dev/null || systemctl reload sshd"
    )

    def run(step: Step) -> None:
        copy = f"{ctx.config}.runbook-{_stamp()}.bak"
        if not host.run("cp -p --", ctx.config, copy).ok:
            raise RuntimeError(f"cannot back up {ctx.config}")
        step.backups.append(copy)
        result = host.run(f"{edit} && /usr/sbin/sshd -t -f {config}")
        if not result.ok:
            raise RuntimeError(f"sshd -t refuses the edit: {result.stderr.strip()[:200]}")
        if not host.run(reload).ok:
            raise RuntimeError("sshd did not reload")

    return [
        Step(
            cause,
            what,
            f"{edit} && sshd -t -f {config} && {reload}",
            why,
            side="server",
            action=run,
        )
    ]


def plan(
    diagnosis: Diagnosis, *, accept_hostkey: str | None = None, server: Host | None = None
) -> list[Step]:
    """The steps that fix this diagnosis' cause (empty when none applies)."""
    if diagnosis.verdict == "ok" or diagnosis.root_cause is None:
        return []
    settings = _settings(diagnosis)
    return (
        _host_key_steps(diagnosis, settings, accept_hostkey)
        + _client_steps(diagnosis, settings)
        + _server_steps(diagnosis, server, _public_key(settings))
        + (_password_copy_id(diagnosis, settings, _public_key(settings)) if server is None else [])
    )


def _public_key(settings: sshconfig.Settings) -> str | None:
    """The first identity ssh would offer that has its .pub beside it."""
    return next((k for k in settings.identity_files if os.path.exists(k + ".pub")), None)


def _restore(step: Step, host: Host | None) -> None:
    if step.undo is not None:
        step.undo(step)
        return
    for copy in reversed(step.backups):
        if step.side == "server" and host is not None:
            host.run("cp -p --", copy, copy.rsplit(".runbook-", 1)[0])
        else:
            original = copy.rsplit(".runbook-", 1)[0]
            mode = os.stat(original).st_mode & 0o7777 if os.path.exists(original) else None
            shutil.copyfile(copy, original)
            if mode is not None:
                os.chmod(original, mode)


def apply(steps: list[Step], folder: Path, host: Host | None = None) -> list[Step]:
    """Carry out the steps in order. A failed step stops the run and every step applied in
    it is rolled back from its backups. fixes.json records each step and its outcome."""
    for index, step in enumerate(steps):
        try:
            if step.action is not None:
                step.action(step)
            if step.outcome == "planned":
                step.outcome = "applied"
        except Exception as err:
            for done in reversed(steps[: index + 1]):
                _restore(done, host)
                if done is not step and done.outcome == "applied":
                    done.outcome = "rolled back"
            step.outcome = f"failed, rolled back: {err}"
            break
    atomic_write(
        folder / "fixes.json",
        json.dumps(
            {
                "at": datetime.now(UTC).isoformat(timespec="seconds"),
                "steps": [s.to_dict() for s in steps],
            },
            indent=2,
        ),
    )
    return steps


# -- the article's tips ----------------------------------------------------------------------


def add_host_alias(
    config: str | Path,
    alias: str,
    *,
    hostname: str,
    user: str | None = None,
    port: int | None = None,
    identity_file: str | None = None,
    proxy_jump: str | None = None,
) -> list[str]:
    """Append a Host block to ``config`` (backed up) and check with ``ssh -G`` that ssh now
    resolves ``alias`` to it; returns the block's lines. An existing alias is left alone."""
    path = Path(config).expanduser()
    text = path.read_text() if path.exists() else ""
    if any(
        ln.split()[1:] and alias in ln.split()[1:]
        for ln in text.splitlines()
        if ln.strip().lower().startswith("host ")
    ):
        raise BadInput(f"{path} already has a Host {alias} block", hint="edit that block instead")
    lines = [f"Host {alias}", f"    HostName {hostname}"]
    lines += [f"    User {user}"] if user else []
    lines += [f"    Port {port}"] if port else []
    lines += (
        [f"    IdentityFile {identity_file}", "    IdentitiesOnly yes"] if identity_file else []
    )
    lines += [f"    ProxyJump {proxy_jump}"] if proxy_jump else []
    step = Step("tip", f"add Host {alias} to {path}", "\n".join(lines), "ssh ALIAS is all you type")
    _backup(step, str(path))
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.write_text(
        text + ("\n" if text and not text.endswith("\n") else "") + "\n".join(lines) + "\n"
    )
    os.chmod(path, 0o600)
    resolved = _run(["ssh", "-G", "-F", str(path), alias]).lower()
    if f"hostname {hostname.lower()}" not in resolved:
        for copy in step.backups:
            shutil.copyfile(copy, path)
        raise RuntimeError(f"ssh -G {alias} does not resolve to {hostname}: block removed")
    return lines


def generate_key(
    path: str | Path, *, passphrase_env: str | None = None, comment: str = "ssh-runbook"
) -> str:
    """A new ed25519 key at ``path`` (never overwriting one), its passphrase read from the
    environment variable ``passphrase_env``; returns the public key's fingerprint."""
    target = Path(path).expanduser()
    if target.exists() or target.with_suffix(target.suffix + ".pub").exists():
        raise BadInput(f"{target} exists", hint="choose another path: a key is never overwritten")
    passphrase = ""
    if passphrase_env:
        passphrase = envsecret.from_env(
            passphrase_env, hint=f"export {passphrase_env}, or drop the passphrase"
        )
    target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", passphrase, "-C", comment, "-f", str(target)])
    return _fingerprint(Path(str(target) + ".pub").read_text())


def copy_id(host: Host, user: str, public_key: str) -> str:
    """ssh-copy-id on the server through ``host``: the key appended once to the user's
    authorized_keys (no duplicate), ~/.ssh 700 and authorized_keys 600, owned by the user."""
    entry = host.passwd(user)
    if entry is None:
        raise BadInput(f"there is no user {user} on {host.name}", hint="check the user name")
    home = entry[5]
    keys = f"{home}/.ssh/authorized_keys"
    line = public_key.strip()
    present = host.read(keys) or ""
    if _fingerprint(line) in {_fingerprint(ln) for ln in present.splitlines() if "AAAA" in ln}:
        return "already installed"
    script = (
        f"umask 077 && mkdir -p {shlex.quote(home + '/.ssh')} && "
        f"printf '%s\\n' {shlex.quote(line)} >> {shlex.quote(keys)} && "
        f"chown {shlex.quote(user)} {shlex.quote(home + '/.ssh')} {shlex.quote(keys)} && "
        f"chmod 700 {shlex.quote(home + '/.ssh')} && chmod 600 {shlex.quote(keys)}"
    )
    result = host.run(script)
    if not result.ok:
        raise RuntimeError(f"installing the key failed: {result.stderr.strip()[:200]}")
    return "installed"
