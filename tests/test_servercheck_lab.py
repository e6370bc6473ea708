"""Server checks against real sshd: faults the built-in scenarios do not have, in a small
lab of their own (a locked hash with the right password, pam_faillock's lock, options on
the key in authorized_keys). Each diagnosis runs with ``--server nsenter:PID``, and the
real ``ssh`` shows that the fault is real."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from runbook.lab import build, core
from runbook.lab.scenarios import Scenario
from tests.conftest import COMMON_AUTH_FAILLOCK, adhoc_lab

PAM_PASSWORDS = {
    "UsePAM": "yes",
    "PasswordAuthentication": "yes",
    "PubkeyAuthentication": "no",
}
DENIED = r"Permission denied"
EXTRA = (
    Scenario(
        "x-locked-password",
        "account.locked",
        "'!' locked hash, UsePAM yes, the right password",
        DENIED,
        user="dave",
        client_keys=(),
        password="right",
        sshd_options=PAM_PASSWORDS,
    ),
    Scenario(
        "x-faillock",
        "account.locked",
        "pam_faillock locked the user (deny = 3, its own tally dir); the right password",
        DENIED,
        user="grace",
        client_keys=(),
        password="right",
        sshd_options=PAM_PASSWORDS,
        etc_files={
            "pam.d/common-auth": COMMON_AUTH_FAILLOCK,
            "security/faillock.conf": "dir = /etc/faillock-lab\ndeny = 3\nunlock_time = 0\n",
            "faillock-lab/.keep": "",
        },
    ),
    Scenario(
        "x-key-options",
        "account.not_allowed",
        'options on the key in authorized_keys (from="10.9.9.9", then others)',
        DENIED,
        user="mallory",
    ),
)


@pytest.fixture(scope="module")
def lab():
    with adhoc_lab(EXTRA, "servercheck") as running:
        yield running


def _sshd_pid(lab, name: str) -> int:
    return next(p.pid for p in lab.processes if p.what == f"sshd {name}")


def _ssh(lab, name: str, password: str | None = None) -> subprocess.CompletedProcess[str]:
    argv, extra = lab.ssh_symptom_argv(name)
    env = {**lab.client_env(name), **extra}
    if password is not None:
        env[core.PASSWORD_ENV] = password
    return subprocess.run(
        lab.client_argv(name, argv),
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def _diagnose(lab, name: str) -> dict:
    argv = lab.diagnose_argv(name, "--json", "--no-report", "--timeout", "5")
    argv += ["--server", f"nsenter:{_sshd_pid(lab, name)}"]
    proc = lab.run_client(name, argv, timeout=180)
    assert proc.returncode == 1, proc.stderr[-2000:]
    return json.loads(proc.stdout)


def _server(result: dict, check: str) -> list[dict]:
    return [f for f in result["findings"] if f["step"] == "server" and f["check"] == check]


def test_a_locked_hash_refuses_the_right_password(lab) -> None:
    """UsePAM yes and a '!' hash: keys would still work, but the client tries the right
    password, which pam_unix refuses like any other. The server shows the lock."""
    real = _ssh(lab, "x-locked-password")
    assert real.returncode == 255 and "Permission denied" in real.stderr, real.stderr[-800:]
    result = _diagnose(lab, "x-locked-password")
    shadow = _server(result, "shadow")
    assert [(f["status"], f["cause_id"]) for f in shadow] == [("fail", "account.locked")]
    assert result["root_cause"]["id"] == "account.locked", result["root_cause"]


def test_a_faillock_lock_refuses_the_right_password(lab) -> None:
    """pam_faillock counts wrong passwords in its own tally dir (faillock.conf's dir);
    at deny = 3 the right password is refused too, until `faillock --reset`."""
    name = "x-faillock"
    for _ in range(4):
        _ssh(lab, name, password=build.WRONG_PASSWORD)
    tally = Path(lab.dir) / "scenarios" / name / "etc/upper/faillock-lab/grace"
    assert tally.stat().st_size >= 3 * 64, "pam_faillock wrote no tally"
    real = _ssh(lab, name)
    assert real.returncode == 255 and "Permission denied" in real.stderr, real.stderr[-800:]
    result = _diagnose(lab, name)
    found = _server(result, "faillock")
    assert [(f["status"], f["cause_id"]) for f in found] == [("fail", "account.locked")], found
    assert "deny = 3" in found[0]["summary"]
    assert any("--dir /etc/faillock-lab --user grace --reset" in e for e in found[0]["evidence"])
    assert result["root_cause"]["id"] == "account.locked", result["root_cause"]


@pytest.mark.parametrize(
    "options, cause, says",
    [
        ('from="10.9.9.9"', "account.not_allowed", 'from="10.9.9.9" excludes 127.0.0.1'),
        ('expiry-time="20200101"', "auth.key_rejected", 'expiry-time="20200101" passed'),
        ('comand="/usr/bin/uptime"', "auth.key_rejected", "sshd skips the line"),
    ],
)
def test_options_on_the_key_are_read(lab, options: str, cause: str, says: str) -> None:
    """The client's key is in authorized_keys, with an option that makes sshd refuse it
    from here, refuse it by date, or skip the whole line (a misspelt option)."""
    name = "x-key-options"
    keys = Path(lab.dir) / "srv/homes/mallory/.ssh/authorized_keys"
    original = keys.read_text()
    try:
        keys.write_text("".join(f"{options} {line}\n" for line in original.splitlines()))
        real = _ssh(lab, name)
        assert real.returncode == 255 and "Permission denied" in real.stderr
        result = _diagnose(lab, name)
    finally:
        keys.write_text(original)
    found = _server(result, "authorized_keys")
    assert (found[0]["status"], found[0]["cause_id"]) == ("fail", cause), found
    assert says in found[0]["summary"], found[0]["summary"]
    assert result["root_cause"]["id"] == cause, result["root_cause"]
