"""The lab as an unprivileged user: sshd runs as that user and the rest says "needs root".

The user exists only for this test, in a private mount namespace with bind-mounted copies
of passwd and group (the machine's accounts are never changed); the lab itself then runs
with that user's rights alone and its real ssh must show every runnable symptom.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from runbook.lab import SCENARIOS
from tests.conftest import file_digests, lab_processes, new_lab_dir, require_lab

UID = 62_999
REPO = Path(__file__).resolve().parents[1]
# Runs as the unprivileged user: the lab needs only the standard library.
_PROBE = """
import json, os, re, sys
from runbook import lab
running = lab.up(None, sys.argv[1])
try:
    result = {}
    for name, target in running.targets.items():
        if target.state != "up":
            result[name] = {"state": target.state}
            continue
        argv, extra = running.ssh_symptom_argv(name)
        proc = running.run_client(name, argv, env={**os.environ, **extra})
        out = proc.stdout + proc.stderr
        result[name] = {"state": "up", "user": target.user, "exit": proc.returncode,
                        "symptom": bool(re.search(target.spec.symptom, out)), "tail": out[-300:]}
finally:
    lab.down(running.dir)
print(json.dumps(result))
"""
_AS_USER = (
    'mount --bind "$1/passwd" /etc/passwd && mount --bind "$1/group" /etc/group && shift && '
    f"exec setpriv --reuid={UID} --regid={UID} --clear-groups "
    'env -i PATH=/usr/bin:/bin HOME="$HOME_DIR" PYTHONPATH="$REPO" "$@"'
)


def _as_user(tmp: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "--",
            "sh",
            "-c",
            _AS_USER,
            "sh",
            str(tmp / "etc"),
            *argv,
        ],
        env={**os.environ, "HOME_DIR": str(tmp / "home"), "REPO": str(REPO)},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def user_tree():
    require_lab()
    tmp = new_lab_dir("user-etc")
    (tmp / "etc").mkdir(parents=True)
    (tmp / "home").mkdir()
    os.chmod(tmp, 0o755)
    os.chown(tmp / "home", UID, UID)
    (tmp / "etc" / "passwd").write_text(
        Path("/etc/passwd").read_text() + f"rbuser:x:{UID}:{UID}:lab test:{tmp / 'home'}:/bin/sh\n"
    )
    (tmp / "etc" / "group").write_text(Path("/etc/group").read_text() + f"rbuser:x:{UID}:\n")
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(f"/tmp/ssh-runbook-lab-{UID}", ignore_errors=True)


def _python_for(tmp: Path) -> str:
    """A Python the unprivileged user may run (the venv's may live under /root)."""
    for candidate in (sys.executable, "/usr/bin/python3", shutil.which("python3")):
        if candidate and _as_user(tmp, candidate, "-c", "import runbook.lab").returncode == 0:
            return candidate
    pytest.fail("no Python that an unprivileged user may run: install python3")


def test_unprivileged_lab_runs_sshd_as_the_user(user_tree) -> None:
    before = file_digests()
    lab_dir = new_lab_dir("user")
    proc = _as_user(user_tree, _python_for(user_tree), "-c", _PROBE, str(lab_dir))
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout)
    runnable = {s.name for s in SCENARIOS if s.runs_without_root}
    assert {n for n, r in result.items() if r["state"] == "up"} == runnable
    assert {n for n, r in result.items() if r["state"] == "needs root"} == (
        {s.name for s in SCENARIOS} - runnable
    )
    assert len(runnable) >= 15
    for name in runnable:
        got = result[name]
        spec = next(s for s in SCENARIOS if s.name == name)
        assert got["symptom"] and got["exit"] == spec.exit_status, (name, got)
        assert got["user"] == "rbuser"
    assert file_digests() == before
    assert not lab_processes(str(lab_dir)) and not lab_dir.exists()
