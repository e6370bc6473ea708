"""Shared fixtures: one real lab for the whole test session.

The lab runs real /usr/sbin/sshd instances. Where sshd is missing the lab tests skip on a
developer's machine but FAIL in CI (CI=true): CI must never pass by skipping them.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

MACHINE_FILES = ("/etc/passwd", "/etc/shadow", "/etc/group")


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


def new_lab_dir(tag: str) -> Path:
    return Path(f"/var/tmp/ssh-runbook-lab-{tag}-{secrets.token_hex(3)}")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run if any lab process or namespace outlived the tests."""
    from runbook.lab.core import NETNS_PREFIX

    if not shutil.which("ip"):
        return
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    stray = [ln.split()[0] for ln in netns.splitlines() if ln.startswith(NETNS_PREFIX)]
    procs = []
    for entry in os.listdir("/proc"):
        try:
            if (
                entry.isdigit()
                and b"RUNBOOK_LAB_ID=" in Path(f"/proc/{entry}/environ").read_bytes()
            ):
                procs.append(entry)
        except OSError:
            pass
    if stray or procs:
        print(f"\nlab leftovers after the tests: netns {stray}, pids {procs}")
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
