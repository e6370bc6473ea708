"""The lab's network namespace: where network faults live, with no way out.

One namespace per lab holds every network fault, so nothing the faults do can reach the
machine's real network:

* ``198.51.100.0/24`` has an ``unreachable`` route: connecting fails with "No route to host".
* ``203.0.113.22`` is an address of the namespace's loopback whose packets an nftables rule
  drops: connects time out, as behind a DROP firewall or a cloud security group.
* there is no default route, so the machine's resolver is unreachable and any name that is
  not in /etc/hosts fails at once ("Temporary failure in name resolution").
* an nftables rule rejects TCP port 22 of 127.0.0.1 with ICMP admin-prohibited, the way
  firewalld's default reject does, while ping still answers.
* ``127.0.0.2`` has sshd on port 2222 only, as after ``Port 2222`` in sshd_config.
"""

from __future__ import annotations

import subprocess

from runbook.errors import LabError

__all__ = [
    "BLACKHOLE_HOST",
    "FIREWALLED_PORT",
    "MOVED_HOST",
    "MOVED_PORT",
    "NOROUTE_HOST",
    "create",
    "delete",
    "exists",
]

NOROUTE_HOST = "198.51.100.22"
BLACKHOLE_HOST = "203.0.113.22"
MOVED_HOST = "127.0.0.2"
MOVED_PORT = 2222
FIREWALLED_PORT = 22

_NFT_RULES = f"""
table inet rblab {{
    chain input {{
        type filter hook input priority 0; policy accept;
        ip daddr {BLACKHOLE_HOST} drop
        ip daddr 127.0.0.1 tcp dport {FIREWALLED_PORT} reject with icmpx type admin-prohibited
    }}
}}
"""


def _ip(*args: str, stdin: str | None = None) -> None:
    proc = subprocess.run(
        ["ip", *args], input=stdin, capture_output=True, text=True, timeout=20, check=False
    )
    if proc.returncode != 0:
        raise LabError(
            f"`ip {' '.join(args)}` failed: {proc.stderr.strip()}",
            hint="the lab's network faults need root and iproute2/nftables",
        )


def exists(name: str) -> bool:
    """True when the named network namespace exists."""
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False)
    return any(line.split()[0] == name for line in out.stdout.splitlines() if line.strip())


def create(name: str) -> None:
    """Create the namespace with its faults (see the module docstring)."""
    _ip("netns", "add", name)
    _ip("-n", name, "link", "set", "lo", "up")
    _ip("-n", name, "addr", "add", f"{BLACKHOLE_HOST}/32", "dev", "lo")
    _ip("-n", name, "route", "add", "unreachable", "198.51.100.0/24")
    _ip("netns", "exec", name, "nft", "-f", "-", stdin=_NFT_RULES)


def delete(name: str) -> None:
    """Delete the namespace (its interfaces and rules go with it); absent is fine."""
    if exists(name):
        _ip("netns", "delete", name)
