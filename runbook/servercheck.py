"""Read-only checks on the server itself (``--server local|nsenter:PID|USER@HOST``).

In dependency order, each a small function returning findings (step ``server``): the sshd
that listens on the port, its configuration (``sshd -t``, then the effective settings
for this very user with ``sshd -T -C``), the account (exists, locked, expired, shell),
StrictModes on the authorized_keys path and every directory above it, whether
authorized_keys holds the client's key, and firewalls and fail2ban in front of the port.
A check whose precondition failed says "not checked"; every command run is listed in the
findings' evidence. Nothing is written.

Each check lives in the module of its concern (runbook.sshdcheck, accountcheck,
pamcheck, modecheck, authkeyscheck, frontcheck; what they share in
runbook.servercontext); this module runs them in order.
"""

from __future__ import annotations

from runbook.accountcheck import check_account
from runbook.authkeyscheck import check_authorized_keys
from runbook.findings import Finding
from runbook.frontcheck import check_fail2ban, check_firewall
from runbook.hosts import Host
from runbook.modecheck import check_chroot, check_modes, check_selinux
from runbook.pamcheck import check_pam
from runbook.servercontext import Context, finding, skip, sshd_program
from runbook.sshdcheck import (
    ROOT_KEYS_ONLY,
    SIGNATURES,
    check_access_rules,
    check_config,
    check_duplicate_keys_files,
    check_host_keys,
    check_listening,
    check_privsep,
    check_signature_algorithms,
    effective_settings,
    find_config,
    offline_settings,
    offline_syntax,
)

__all__ = [
    "ROOT_KEYS_ONLY",
    "SIGNATURES",
    "Context",
    "check_config",
    "check_listening",
    "check_server",
    "find_config",
]

CHECKS = (
    check_listening,
    find_config,
    check_config,
    effective_settings,
    check_host_keys,
    check_privsep,
    check_duplicate_keys_files,
    check_access_rules,
    check_signature_algorithms,
    check_account,
    check_pam,
    check_modes,
    check_authorized_keys,
    check_chroot,
    check_selinux,
    check_firewall,
    check_fail2ban,
)


# Checks that need the sshd program here (running or not: a stopped sshd's configuration
# and host keys are what say why it is down).
_NEEDS_SSHD = {
    "find_config",
    "check_config",
    "effective_settings",
    "check_access_rules",
    "check_signature_algorithms",
    "check_host_keys",
    "check_privsep",
    "check_duplicate_keys_files",
}


# A mounted root: nothing runs there, so the file-based checks only.
OFFLINE_CHECKS = (
    offline_settings,
    offline_syntax,
    check_host_keys,
    check_access_rules,
    check_signature_algorithms,
    check_account,
    check_pam,
    check_modes,
    check_authorized_keys,
    check_chroot,
)


def check_server(host: Host, ctx: Context) -> list[Finding]:
    """Every server check, in dependency order, with the commands run as evidence."""
    findings: list[Finding] = []
    installed = True
    for check in OFFLINE_CHECKS if host.offline else CHECKS:
        if not installed and check.__name__ in _NEEDS_SSHD:
            findings.append(skip(check.__name__.removeprefix("check_"), "sshd is not installed"))
            continue
        try:
            found = check(host, ctx)
        except Exception as err:  # one broken check must not hide the others
            found = [finding(check.__name__, "warn", f"the check failed: {err}")]
        findings += found
        if check is check_listening and any(f.cause_id == "server.sshd_down" for f in found):
            # Down: its configuration and host keys say why, if the program is there at all.
            installed = sshd_program(host) is not None
            if not installed:
                findings.append(
                    finding(
                        "installed",
                        "fail",
                        "sshd is not installed here (no sshd command, no /usr/sbin/sshd)",
                        "server.sshd_down",
                        ["command -v sshd", "command -v /usr/sbin/sshd"],
                    )
                )
    findings.append(
        finding(
            "commands",
            "info",
            f"{len(host.history)} read-only command(s) run on {host.name}",
            evidence=host.history[-40:],
        )
    )
    return findings
