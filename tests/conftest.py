"""Shared fixtures: one real lab for the whole test session.

The lab runs real /usr/sbin/sshd instances. Where sshd is missing the lab tests skip on a
developer's machine but FAIL in CI (CI=true): CI must never pass by skipping them.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import shutil
import subprocess
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

MACHINE_FILES = ("/etc/passwd", "/etc/shadow", "/etc/group")
# Debian's common-auth with pam_faillock, as its manual sets it up (server check tests).
COMMON_AUTH_FAILLOCK = """auth required pam_faillock.so preauth
auth [success=1 default=ignore] pam_unix.so nullok
auth [default=die] pam_faillock.so authfail
auth sufficient pam_faillock.so authsucc
auth requisite pam_deny.so
auth required pam_permit.so
"""


def require_lab() -> None:
    """Skip (or fail in CI) when the lab cannot run here."""
    missing = [t for t in ("/usr/sbin/sshd", "ssh", "ssh-keygen", "unshare") if not shutil.which(t)]
    why = None
    if missing:
        why = f"the lab needs {', '.join(missing)} (make test installs them as root)"
    elif os.geteuid() != 0:
        why = "the full lab needs root (private mount and network namespaces)"
    if why:
        if os.environ.get("CI") == "true":
            pytest.fail(why)
        pytest.skip(why)


def file_digests() -> dict[str, str]:
    return {p: hashlib.sha256(Path(p).read_bytes()).hexdigest() for p in MACHINE_FILES}


LAB_DIR_PREFIX = "/var/tmp/ssh-runbook-lab-t-"


def new_lab_dir(tag: str) -> Path:
    return Path(f"{LAB_DIR_PREFIX}{tag}-{secrets.token_hex(3)}")


@contextlib.contextmanager
def adhoc_lab(extra: Iterable, tag: str) -> Iterator:
    """A lab of scenarios the built-in list does not hold (Scenario objects: the lab knows
    them by name while it runs), taken down afterwards."""
    from runbook.lab import core, scenarios

    require_lab()
    known = {s.name: s for s in extra}
    builtin = scenarios.by_name

    def by_name(name: str):
        return known[name] if name in known else builtin(name)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(core, "by_name", by_name)
        patch.setattr(scenarios, "by_name", by_name)
        running = core.up(list(known), new_lab_dir(tag))
        try:
            yield running
        finally:
            core.down(running.dir)


def lab_processes(marker: str = LAB_DIR_PREFIX) -> list[int]:
    """Processes whose command line names a lab directory (sshd keeps its -f path)."""
    found = []
    for entry in os.listdir("/proc"):
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes() if entry.isdigit() else b""
        except OSError:
            continue
        if marker.encode() in cmdline and entry != str(os.getpid()):
            found.append(int(entry))
    return found


def lab_netns() -> list[str]:
    from runbook.lab.core import NETNS_PREFIX

    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return [ln.split()[0] for ln in out.splitlines() if ln.startswith(NETNS_PREFIX)]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run if any test lab's process or namespace outlived the tests."""
    if not shutil.which("ip"):
        return
    procs, netns = lab_processes(), lab_netns()
    if procs or netns:
        print(f"\nlab leftovers after the tests: pids {procs}, netns {netns}")
        session.exitstatus = 1


@pytest.fixture(scope="session")
def machine_digests() -> dict[str, str]:
    """The machine's account files as they were before any lab started."""
    return file_digests()


@pytest.fixture(scope="session")
def lab(machine_digests: dict[str, str]) -> Iterator[object]:
    """Every scenario of the lab, up for the whole session, removed afterwards."""
    require_lab()
    from runbook import lab as lab_mod

    running = lab_mod.up(None, new_lab_dir("test"))
    try:
        yield running
    finally:
        lab_mod.down(running.dir)
