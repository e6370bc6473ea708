"""The triage chain, in the order of the troubleshooting flow, ending in one verdict.

target (``ssh -G``) -> quick checks (DNS, ping, TCP, other ports, jump host) -> protocol
(banner, KEX) -> host key -> client files -> authentication and session -> the real
``ssh -vvv``. A step whose precondition failed is reported as skipped, not as passed, and
the whole run stays within a time budget derived from ``timeout``.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

import paramiko

from runbook import (
    authcheck,
    catalog,
    clientcheck,
    envsecret,
    hostkeycheck,
    hosts,
    logs,
    netcheck,
    servercheck,
    serverlog,
    sshconfig,
    verdict,
)
from runbook.errors import BadInput
from runbook.findings import Diagnosis, Finding, Target
from runbook.sshrun import SshRun

__all__ = ["diagnose"]


def _skip(step: str, why: str) -> Finding:
    return Finding(step=step, check=step, status="skip", summary=f"not checked: {why}")


def diagnose(
    target: str,
    *,
    port: int | None = None,
    user: str | None = None,
    identities: Sequence[str] = (),
    ssh_config: str | None = None,
    jump: str | None = None,
    known_hosts: str | None = None,
    password_env: str | None = None,
    auth_logs: Sequence[str] = (),
    server: str | None = None,
    server_root: str | None = None,
    timeout: float = 10.0,
    lang: str = "en",
    run_real_ssh: bool = True,
    quick_ok: bool = False,
    started: Callable[[], None] | None = None,
) -> Diagnosis:
    """Find why ``ssh target`` fails (or prove it works), changing nothing anywhere.

    ``password_env`` names an environment variable holding the password; the password
    itself is never a parameter and never reaches any output. The real ``ssh -vvv`` runs
    alongside the probes, and the verdict weighs both. ``auth_logs``: the server's sshd
    log, whose lines of this very attempt refine the client's view (runbook.serverlog).
    ``quick_ok`` (for fleets): the real ssh runs first, alone, as ``ssh host true`` would;
    when it logs in, or fails before the server speaks SSH (name, route, refused, time-out:
    the probes would only repeat that connect), its transcript is the verdict. The probes
    run only for the failures they can explain further. Without a password that ssh starts
    before ``ssh -G`` answers, on the settings the configuration gives hosts it does not
    single out, and is kept only when the target's own make the very same command.
    ``started``: called once that ssh runs (before the CPU work of the rest); a fleet
    holds its first wave there until all of it runs (runbook.batch).
    ``server``: ``local``, ``nsenter:PID`` or ``USER@HOST[:PORT]``, where read-only checks
    run on the server itself (runbook.servercheck); ``server_root``: a server's root
    filesystem mounted here, for the file-based checks when nobody can log in.
    """
    if timeout <= 0:
        raise BadInput(f"timeout {timeout} is not positive", hint="give --timeout seconds > 0")
    if lang not in ("en", "ja"):
        raise BadInput(f"unknown language {lang!r}", hint="use --lang en or --lang ja")
    password = None
    if password_env:
        password = envsecret.from_env(
            password_env, hint=f"export {password_env} with the password, or drop --password-env"
        )
    if server and server_root:
        raise BadInput("--server and --server-root both given", hint="choose one of them")
    server_host = hosts.host_for(server, timeout=timeout) if server else None
    if server_root:
        if not os.path.isdir(os.path.join(server_root, "etc")):
            raise BadInput(
                f"{server_root} does not look like a root filesystem (no etc/)",
                hint="give the directory where the server's disk is mounted",
            )
        server_host = hosts.RootedHost(f"root:{server_root}", timeout, root=Path(server_root))
    for log in auth_logs:
        if not os.path.exists(log):
            raise BadInput(
                f"auth log {log} does not exist",
                hint="copy the server's /var/log/auth.log (or secure) here, or drop --auth-log",
            )
        if not os.access(log, os.R_OK):
            raise BadInput(
                f"auth log {log} is not readable",
                hint="run as root or a member of adm, or copy it somewhere readable",
            )
        if os.path.isfile(log) and os.path.getsize(log) and not logs.holds_log_lines(log):
            raise BadInput(
                f"auth log {log} is not a log (no line with a syslog, ISO or journal stamp)",
                hint="copy the server's /var/log/auth.log (or secure, or `journalctl -o json`)",
            )
    for identity in identities:
        if os.path.exists(identity) and not os.access(identity, os.R_OK):
            raise BadInput(
                f"identity file {identity} is not readable",
                hint="run as the user who owns it, or fix its permissions",
            )
    # Without an OpenSSH client the probes still run (paramiko); the real ssh is skipped.
    no_client = run_real_ssh and shutil.which("ssh") is None
    run_real_ssh = run_real_ssh and not no_client
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    t0 = time.monotonic()
    # The user's own flags; known_hosts goes through sshrun's private copies.
    flags = sshconfig.ssh_flags(port, user, identities, ssh_config, jump, None)
    # A fleet's logins offer the cheapest key exchange first (see SshRun); not with a
    # password, which then keeps the post-quantum exchange the user's ssh would use.
    cheap = quick_ok and not password_env
    fleet = cheap and run_real_ssh
    early = _early_ssh(target, flags, ssh_config, known_hosts, timeout) if fleet else None
    try:
        if started is not None:
            started()
        settings = sshconfig.resolve(
            target,
            port=port,
            user=user,
            identities=identities,
            ssh_config=ssh_config,
            jump=jump,
            known_hosts=known_hosts,
            timeout=timeout,
        )
    except BaseException:
        if early is not None:
            early.cancel()
        raise
    real = None
    if early is not None and early.adopt(settings):
        real = early
    elif run_real_ssh:
        if early is not None:  # this target's own settings differ: its own command
            early.cancel()
        real = SshRun(settings, flags, target, timeout, password_env, cheap_kex=cheap)
    try:
        quick = real.finish() if real is not None and quick_ok else None
        if quick is not None and _decided(quick):
            findings, identities_seen = [_target_finding(settings)], []
        else:
            findings, identities_seen = _run_chain(settings, password, timeout)
    except BaseException:
        if real is not None:
            real.cancel()
        raise
    if real is not None:
        findings.append(quick or real.finish())
    elif no_client:
        findings.append(_skip("ssh", "no ssh client on this machine (install openssh-client)"))
    if auth_logs:
        findings += serverlog.check_auth_log(
            auth_logs,
            user=settings.user,
            client=_client_address(findings, settings),
            since=datetime.fromisoformat(started_at),
            until=datetime.now(UTC),
        )
    if server_host is not None:
        context = servercheck.Context(
            user=settings.user,
            port=settings.port,
            client_ip=_client_address(findings, settings),
            server_address=next(
                (f.data["address"] for f in findings if f.step == "tcp" and "address" in f.data),
                None,
            ),
            client_keys=[i.fingerprint for i in identities_seen if i.fingerprint],
            unoffered_keys=clientcheck.unoffered_keys(identities_seen),
            client_algorithms=_signature_algorithms(identities_seen, settings),
            password=password is not None,
        )
        findings += servercheck.check_server(server_host, context)
        findings += _sshd_answers(findings)
    outcome, root = verdict.decide(findings, lang=lang, facts=_facts(settings))
    parameters = {
        "target": target,
        "port": port,
        "user": user,
        "identities": list(identities),
        "ssh_config": ssh_config,
        "jump": jump,
        "known_hosts": known_hosts,
        "auth_logs": list(auth_logs),
        "server": server,
        "server_root": server_root,
        "password_env": password_env,
        "timeout": timeout,
        "lang": lang,
    }
    return Diagnosis(
        parameters=parameters,
        target=Target(settings.alias, settings.hostname, settings.port, settings.user),
        verdict=outcome,
        root_cause=root,
        findings=findings,
        started_at=started_at,
        duration_s=time.monotonic() - t0,
    )


def _sshd_answers(findings: list[Finding]) -> list[Finding]:
    """The server shows sshd itself listening on the port and running: a connection that
    brought no SSH identification (silence, or a close) was sshd refusing it before its
    banner, not another program (proto.closed_early, which refines proto.not_ssh). A text
    that is no identification stays proto.not_ssh: sshd does not send one."""
    listening = next(
        (f for f in findings if (f.step, f.check, f.status) == ("server", "listening", "pass")),
        None,
    )
    banner = next(
        (f for f in findings if f.step == "banner" and f.cause_id == "proto.not_ssh"), None
    )
    if listening is None or banner is None:
        return []
    if any(line.startswith("server says:") for line in banner.evidence):
        return []
    return [
        Finding(
            "server",
            "sshd answers",
            "fail",
            f"{listening.summary} and runs, so the connection that brought no SSH "
            "identification was sshd's: it refuses the connection before its banner (TCP "
            "wrappers: /etc/hosts.allow and /etc/hosts.deny; MaxStartups; PerSourcePenalties), "
            "and its log says which ('refused connect from', 'drop connection')",
            cause_id="proto.closed_early",
            evidence=[f"{banner.step}: {banner.summary}", *listening.evidence],
        )
    ]


def _early_ssh(
    target: str, flags: list[str], ssh_config: str | None, known_hosts: str | None, timeout: float
) -> SshRun | None:
    """A fleet target's real ssh, started on the settings its configuration presumably
    gives it, before ``ssh -G`` says (two process starts per target on a fleet's shared
    cores put the last black hole's connect seconds late). diagnose keeps it only when
    the target's own settings make the same command (SshRun.adopt)."""
    sshconfig.parse_target(target)  # a malformed one is bad input, never an ssh argument
    try:
        presumed = sshconfig.presume(ssh_config, known_hosts, timeout)
    except BadInput:  # resolve says what is wrong, for this target
        return None
    return SshRun(presumed, flags, target, timeout, cheap_kex=True)


def _decided(ssh: Finding) -> bool:
    """Whether the real ssh's outcome leaves nothing for the probes (see ``quick_ok``)."""
    if ssh.status == "pass":
        return True
    before_ssh = catalog.PHASES.index("network")  # name, route, port: no SSH spoken yet
    return ssh.cause_id is not None and catalog.phase_rank(ssh.cause_id) <= before_ssh


def _signature_algorithms(
    identities: list[clientcheck.Identity], settings: sshconfig.Settings
) -> dict[str, list[str]]:
    """Per key type the client holds, the signature algorithms it is willing to use."""
    allowed = set(settings.pubkey_accepted_algorithms)
    kinds = {i.key.get_name() for i in identities if i.key is not None}
    return {
        kind: [a for a in servercheck.SIGNATURES.get(kind, (kind,)) if not allowed or a in allowed]
        for kind in kinds
    }


def _client_address(findings: list[Finding], settings: sshconfig.Settings) -> str | None:
    """The address sshd sees this client come from (None through a jump host: unknown)."""
    if settings.proxy_jump or settings.proxy_command:
        return None
    reached = next(
        (f.data["address"] for f in findings if f.step == "tcp" and "address" in f.data), None
    )
    return serverlog.source_address(reached, settings.port) if reached else None


def _facts(settings: sshconfig.Settings) -> dict[str, str | int]:
    """What the fix templates may name, from the effective settings."""
    facts: dict[str, str | int] = {
        "hostname": settings.hostname,
        "port": settings.port,
        "user": settings.user,
        "alias": settings.alias,
    }
    if settings.identity_files:
        facts["identity_file"] = settings.identity_files[0]
    if settings.user_known_hosts_files:
        facts["known_hosts"] = settings.user_known_hosts_files[0]
    if settings.ssh_config:
        facts["ssh_config"] = settings.ssh_config
    if settings.proxy_jump:
        facts["jump"] = settings.proxy_jump.split(",")[0]  # the first hop is tried first
    return facts


def _run_chain(
    settings: sshconfig.Settings, password: str | None, timeout: float
) -> tuple[list[Finding], list[clientcheck.Identity]]:
    """The probe chain's findings, and the client's identities (the server checks look
    for their fingerprints in authorized_keys)."""
    client, identities = clientcheck.check_client_files(settings)
    return _probe(settings, password, timeout, client, identities), identities


def _target_finding(settings: sshconfig.Settings) -> Finding:
    return Finding(
        step="target",
        check="ssh -G",
        status="info",
        summary=f"{settings.user}@{settings.hostname} port {settings.port}"
        + (f" via {settings.proxy_jump}" if settings.proxy_jump else ""),
        evidence=[f"identityfile {p}" for p in settings.identity_files]
        + [f"userknownhostsfile {p}" for p in settings.user_known_hosts_files],
    )


def _probe(
    settings: sshconfig.Settings,
    password: str | None,
    timeout: float,
    client: list[Finding],
    identities: list[clientcheck.Identity],
) -> list[Finding]:
    findings = [_target_finding(settings)]
    findings += client
    if settings.proxy_jump or settings.proxy_command:
        proxy = netcheck.check_proxy(settings, timeout)
        if proxy is not None:
            findings.append(proxy)
        # Through a jump host the target is reached from the hop: direct probes would test
        # a path the real ssh does not use, so the real ssh speaks for the rest.
        return [*findings, _skip("tcp", "the target is reached through the jump host")]
    dns, addresses = netcheck.check_dns(settings.hostname, timeout, settings)
    findings.append(dns)
    if not addresses:
        return [*findings, _skip("tcp", "the name does not resolve")]
    # Ping runs alongside the connect: it only matters when the connect fails, and then
    # waiting for it afterwards would add its time-out to the verdict's.
    ping = netcheck.Background(netcheck.check_ping, addresses[0], min(timeout, 2))
    tcp, address = netcheck.check_tcp(addresses, settings.port, timeout)
    findings.append(tcp)
    if address is None:
        if tcp.cause_id in ("net.no_route", "net.timeout"):
            findings.append(
                ping.result(min(timeout, 2) + 1)
                or Finding("ping", "ping", "info", f"{addresses[0]} does not answer ping")
            )
        if tcp.cause_id == "port.refused":
            other = netcheck.scan_other_ports(addresses[0], min(timeout, 2), skip=settings.port)
            if other is not None:
                findings.append(other)
        return [*findings, _skip("banner", "no TCP connection")]
    offer = netcheck.read_offer(address, settings.port, timeout)
    banner = netcheck.check_banner(offer, settings.port)
    findings.append(banner)
    if banner.status == "fail" or banner.cause_id is not None:
        return [*findings, _skip("kex", "no SSH-2 identification")]
    kex = netcheck.check_kex(offer, settings)
    findings.append(kex)
    if kex.status == "fail":
        return [*findings, _skip("hostkey", "no common algorithms")]
    entries = hostkeycheck.known_entries(settings)
    algorithm = hostkeycheck.negotiated_host_key_algorithm(
        settings, entries, netcheck.real_algorithms(offer.lists.get("hostkey", []))
    )

    def reconnect() -> authcheck.Connection:
        return authcheck.connect(address, settings.port, settings, algorithm, timeout)

    try:
        conn = reconnect()
    except (paramiko.SSHException, EOFError, OSError) as err:
        return [
            *findings,
            Finding(
                "kex", "paramiko", "warn", f"the probe could not complete the key exchange: {err}"
            ),
            _skip("auth", "no probe connection"),
        ]
    hostkey = hostkeycheck.check_host_key(settings, conn.transport.get_remote_server_key(), entries)
    findings.append(hostkey)
    if hostkey.status == "fail":
        conn.close()
        # ssh stops here too: authenticating to an unverified host could hand it a password.
        return [*findings, _skip("auth", "the host key is not trusted")]
    keys = authcheck.candidates(settings, identities)
    findings += authcheck.check_auth(
        conn,
        reconnect,
        settings,
        keys,
        password=password,
        timeout=timeout,
        # With a changed key and StrictHostKeyChecking=no, ssh disables passwords itself.
        allow_password=hostkey.cause_id != "hostkey.changed",
    )
    return findings
