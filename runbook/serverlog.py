"""The server's log of this very attempt: the refusals only sshd can see.

A client sees "Permission denied (publickey)" for a missing key, bad modes under
StrictModes, a locked or expired account, AllowUsers, an unknown user... sshd's log says
which. Given the log (``--auth-log``), this step finds the lines of the diagnosis' own
connections (by the client's address and the time of the run, then every line of the
same sshd processes) and turns the refusals into findings with server-side causes; the
verdict lets them refine the client's view (see ``refines`` in causes.toml).
"""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Sequence
from datetime import datetime, timedelta

from runbook import logs
from runbook.findings import Finding

__all__ = ["SERVER_CAUSES", "check_auth_log", "source_address"]

# sshd's event -> the cause it proves, and the fact its reason names (if any).
SERVER_CAUSES: dict[str, tuple[str, str | None]] = {
    "bad_modes": ("server.bad_modes", "bad_path"),
    "keys_unreadable": ("server.bad_modes", "unreadable_path"),
    "chroot_refused": ("server.bad_modes", "chroot_dir"),
    "invalid_user": ("account.invalid_user", None),
    "account_locked": ("account.locked", None),
    "account_expired": ("account.expired", None),
    "password_expired": ("account.expired", None),
    "pam_account": ("account.not_allowed", None),
    "not_allowed": ("account.not_allowed", None),
    "key_from_refused": ("account.not_allowed", None),
    "key_revoked": ("auth.key_rejected", None),
    "key_refused": ("auth.key_rejected", "fido_requirement"),
    "key_reused": ("auth.key_rejected", None),
    "keys_command_failed": ("auth.key_rejected", None),
    "cert_refused": ("auth.key_rejected", None),
    "root_refused": ("account.root_denied", None),
    "shell_refused": ("account.nologin", "shell_refused"),
    "nologin_refused": ("account.nologin", "nologin_file"),
    "session_refused": ("account.nologin", None),
    "max_auth_tries": ("auth.too_many_failures", None),
    "too_many_failures": ("auth.too_many_failures", None),
    "no_method": ("auth.no_method", None),
    "sig_alg_refused": ("auth.sig_alg", "refused_algorithm"),
    "pam_failure": ("auth.password_rejected", None),
    "maxstartups": ("proto.closed_early", None),
    "tcp_wrappers": ("proto.closed_early", None),
    "kex_failed": ("kex.no_common_alg", None),
    # sshd exited at its start (no host key, a bad option, no privilege separation user):
    # nothing listens. A port it could not bind ("bind_failed") is no such exit.
    "sshd_failed": ("server.sshd_down", None),
}
# A failed password names the cause only when nothing more specific was logged.
_WEAK = {"failed": "auth.password_rejected"}
_PASSWORD_METHODS = ("password", "keyboard-interactive")
# sshd calls every user it will not serve "invalid" (getpwnamallow gives it no account:
# AllowUsers, DenyGroups, a locked or expired account, a missing shell, a nologin file), so
# an invalid user's line proves account.invalid_user only in a connection that logged no
# such refusal: there, the refusal is the cause.
_REFUSALS = frozenset(
    {"not_allowed", "account_locked", "account_expired", "shell_refused", "nologin_refused"}
)
SLACK = timedelta(seconds=2)
# "Authentication key ED25519 SHA256:... revoked by file /etc/ssh/revoked": the key, the file.
_REVOKED = re.compile(r"Authentication key \S+ (\S+) revoked by file (\S+)")
# Facts an event proves by itself, whatever its words: they pick the catalog's variants.
_EVENT_FACTS: dict[str, dict[str, str]] = {"password_expired": {"password_change": "required"}}


def source_address(address: str, port: int) -> str | None:
    """The local address the kernel would use to reach ``address`` (what sshd logs)."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            probe.connect((address, port))  # UDP: no packet leaves, only a route lookup
            return probe.getsockname()[0]
    except OSError:
        return None


def _ours(events: list[logs.LogEvent], user: str, client: str | None) -> list[logs.LogEvent]:
    """The lines of our connections: by address (and user), then whole sshd processes."""
    pids = {
        (e.host, e.pid)
        for e in events
        if e.pid is not None
        and (client is None or e.ip == client)
        and (e.user in (None, user) or e.event == "invalid_user")
    }
    # The session's own process ("User child is on pid N": ChrootDirectory, the shell).
    pids |= {
        (e.host, int(e.reason))
        for e in events
        if e.event == "user_child" and (e.host, e.pid) in pids and e.reason
    }
    by_pid = [e for e in events if (e.host, e.pid) in pids]
    # A process some other user's lines belong to is not ours.
    foreign = {(e.host, e.pid) for e in by_pid if e.user not in (None, user)}
    mine = [e for e in by_pid if (e.host, e.pid) not in foreign]
    without_pid = [e for e in events if e.pid is None and (client is None or e.ip == client)]
    return mine + without_pid


def _stillborn(events: list[logs.LogEvent]) -> list[list[logs.LogEvent]]:
    """The lines of each sshd process that exited before it named any client: a listener's
    re-executed child for one connection (OpenSSH before 9.8 loads the host keys, checks
    the privilege separation directory and its config in each), so during an attempt that
    saw no client line, such a process most likely was the attempt's own."""
    by_process: dict[tuple[str | None, int], list[logs.LogEvent]] = {}
    for event in events:
        if event.pid is not None:
            by_process.setdefault((event.host, event.pid), []).append(event)
    return [
        lines
        for lines in by_process.values()
        if any(e.event == "sshd_failed" for e in lines)
        and not any(e.ip or e.event == "listening" for e in lines)
    ]


def _stillborn_finding(lines: list[logs.LogEvent], user: str) -> Finding:
    """What a connection's sshd that could not start tells: its fatal error, and the host
    keys it could not load (the catalog's variants)."""
    fatal = next(e for e in lines if e.event == "sshd_failed")
    data: dict[str, str | int] = {"user": user, "sshd_error": fatal.reason or _message(fatal)}
    missing = [e.reason for e in lines if e.event == "hostkey_missing" and e.reason]
    if missing:
        data["hostkeys_missing"] = " ".join(missing)
    return Finding(
        "server-log",
        "auth.log",
        "fail",
        f"sshd: {_message(fatal)} (an sshd process that named no client, during this attempt)",
        cause_id="proto.closed_early",
        evidence=[e.raw for e in lines],
        data=data,
    )


def check_auth_log(
    paths: Sequence[str],
    *,
    user: str,
    client: str | None,
    since: datetime,
    until: datetime,
    settle: float = 0.5,
) -> list[Finding]:
    """Findings from sshd's log lines of this diagnosis' own connections.

    ``settle``: syslog writes asynchronously; if none of our lines are there yet, look
    again once after this many seconds.
    """
    label = ", ".join(paths)
    for attempt in (0, 1):
        stats = logs.LogStats()
        events = list(
            logs.iter_events(paths, since=since - SLACK, until=until + SLACK, stats=stats)
        )
        ours = _ours(events, user, client)
        if ours or attempt:
            break
        time.sleep(settle)
    if not ours and (stillborn := _stillborn(events)):
        return [_stillborn_finding(lines, user) for lines in stillborn[:1]]
    if not ours:
        return [
            Finding(
                "server-log",
                "auth.log",
                "warn",
                f"no line of this attempt in {label} ({stats.summary()})",
                evidence=[
                    "is it the log of this server, with LogLevel VERBOSE or INFO, and are "
                    "the clocks close?"
                ],
            )
        ]
    findings = []
    refused = {(e.host, e.pid) for e in ours if e.event in _REFUSALS}
    for event in ours:
        cause, fact = SERVER_CAUSES.get(event.event, (None, None))
        if cause is None or (event.event == "invalid_user" and (event.host, event.pid) in refused):
            continue
        data: dict[str, str | int] = {"user": event.user or user}
        if fact and event.reason:
            data[fact] = event.reason
            if fact in ("chroot_dir", "unreadable_path"):  # the path the modes are wrong on
                data["bad_path"] = event.reason
        if fact == "refused_algorithm" and event.method:
            data["refused_algorithm"] = event.method
        data.update(_EVENT_FACTS.get(event.event, {}))
        if event.event == "key_revoked" and (revoked := _REVOKED.search(event.raw)):
            data["revoked_key"], data["revoked_by"] = revoked.groups()
        findings.append(
            Finding(
                "server-log",
                "auth.log",
                "fail",
                f"sshd: {_message(event)}",
                cause_id=cause,
                evidence=[event.raw],
                data=data,
            )
        )
    if not findings:
        weak = [
            e
            for e in ours
            # keyboard-interactive/pam: the same password, asked through PAM's conversation
            if e.event in _WEAK and (e.method or "").split("/")[0] in _PASSWORD_METHODS
        ]
        findings += [
            Finding(
                "server-log",
                "auth.log",
                "fail",
                f"sshd: {_message(e)}",
                cause_id=_WEAK[e.event],
                evidence=[e.raw],
                data={"user": e.user or user},
            )
            for e in weak[:1]
        ]
    seen = [
        Finding(
            "server-log",
            "auth.log",
            "info",
            f"{len(ours)} sshd line(s) of this attempt in {label}",
            evidence=[e.raw for e in ours[:12]],
        )
    ]
    return seen + findings


def _message(event: logs.LogEvent) -> str:
    raw = event.raw
    for marker in ("]: ", "sshd: "):
        if marker in raw:
            return raw.split(marker, 1)[1]
    return raw
