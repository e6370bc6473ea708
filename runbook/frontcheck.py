"""What stands in front of sshd: firewall rules on its port, and fail2ban's ban of the client.

Either keeps the client from reaching an sshd that would let it in, whatever the server's
configuration says. nftables, iptables, ufw and fail2ban are each asked only where they
are installed, and only read.
"""

from __future__ import annotations

import re

from runbook.findings import Finding
from runbook.hosts import Host
from runbook.servercontext import Context, finding, skip

__all__ = ["check_fail2ban", "check_firewall"]


def check_firewall(host: Host, ctx: Context) -> list[Finding]:
    """Rules that drop or reject the port: nftables, iptables, ufw, firewalld."""
    port = str(ctx.port)
    probes = [
        (
            "nft list ruleset",
            re.compile(rf"dport (?:{{[^}}]*\b{port}\b[^}}]*}}|{port})\b.*\b(drop|reject)"),
        ),
        ("iptables -S", re.compile(rf"--dport {port}\b.*-j (DROP|REJECT)")),
        ("ufw status", re.compile(rf"^{port}(?:/tcp)?\s+(DENY|REJECT)", re.M)),
    ]
    seen = []
    for command, rule in probes:
        if not host.exists(command.split()[0]):
            continue
        result = host.run(command)
        if not result.ok:
            continue
        seen.append(command)
        for line in result.stdout.splitlines():
            daddr = re.search(r"\bdaddr (\S+)|-d (\S+?)(?:/32)? ", line)
            target = daddr and (daddr.group(1) or daddr.group(2))
            if target and ctx.server_address and target != ctx.server_address:
                continue  # a rule for another address of this machine
            if rule.search(line):
                return [
                    finding(
                        "firewall",
                        "fail",
                        f"{command}: {line.strip()}",
                        "server.firewall",
                        [result.command, line.strip()],
                    )
                ]
    if not seen:
        return [skip("firewall", "no firewall tool answers here")]
    return [
        finding("firewall", "pass", f"no rule drops or rejects port {ctx.port} ({', '.join(seen)})")
    ]


def check_fail2ban(host: Host, ctx: Context) -> list[Finding]:
    """Is the client's address banned by fail2ban's sshd jail?"""
    if not host.exists("fail2ban-client"):
        return []
    result = host.run("fail2ban-client status sshd")
    if (
        result.ok
        and ctx.client_ip
        and re.search(rf"Banned IP list:.*\b{re.escape(ctx.client_ip)}\b", result.stdout)
    ):
        return [
            finding(
                "fail2ban",
                "fail",
                f"fail2ban's sshd jail bans {ctx.client_ip}",
                "server.firewall",
                [result.command],
            )
        ]
    return [finding("fail2ban", "pass", f"fail2ban does not ban {ctx.client_ip or 'the client'}")]
