"""Refusals a client sees late or blurred, against real sshd faults outside the built-in
scenarios: the client's own answer (stable, and no refused key where the key was taken),
and the server's proof of the very attempt (--auth-log, --server) naming the cause."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from runbook.lab import scenarios as lab_scenarios
from runbook.lab.scenarios import Scenario
from tests.conftest import adhoc_lab

_PAM_SSHD = Path("/etc/pam.d/sshd")


def _pam_access_stack() -> str:
    """The machine's PAM stack for sshd with pam_access before its account modules."""
    text = _PAM_SSHD.read_text() if _PAM_SSHD.exists() else ""
    return text.replace(
        "@include common-account", "account required pam_access.so\n@include common-account", 1
    )


def _libwrap() -> bool:
    """Whether this sshd reads /etc/hosts.allow and /etc/hosts.deny (Debian's does)."""
    out = subprocess.run(["ldd", "/usr/sbin/sshd"], capture_output=True, text=True).stdout
    return "libwrap" in out


ADHOC = (
    Scenario(
        "pam-access",
        "account.not_allowed",
        "UsePAM yes and pam_access (access.conf) denies alice after her key is accepted",
        r"Server accepts key: .*\n(?:.*\n)*Connection closed by",
        sshd_options={"UsePAM": "yes"},
        etc_files={"pam.d/sshd": _pam_access_stack(), "security/access.conf": "-:alice:ALL\n"},
        server_log=r"pam_access\(sshd:account\): access denied for user .alice.",
    ),
    Scenario(
        "root-forced-commands",
        "account.root_denied",
        "PermitRootLogin forced-commands-only and root's key has no command=",
        r"Server accepts key",
        user="root",
        sshd_options={"PermitRootLogin": "forced-commands-only"},
        server_log=r"ROOT LOGIN REFUSED FROM 127\.0\.0\.1",
    ),
    Scenario(
        "chroot-not-root",
        "server.bad_modes",
        "ChrootDirectory /etc/jail belongs to alice, not root",
        r"Authenticated to",
        sshd_options={"ChrootDirectory": "/etc/jail"},
        etc_files={"jail/README": "a jail sshd refuses"},
        server_log=r'bad ownership or modes for chroot directory "/etc/jail"',
    ),
    Scenario(
        "hosts-deny",
        "proto.closed_early",
        "TCP wrappers: /etc/hosts.deny has 'sshd: ALL'",
        r"kex_exchange_identification|banner exchange",
        etc_files={"hosts.deny": "sshd: ALL\n"},
        server_log=r"refused connect from 127\.0\.0\.1",
    ),
    Scenario(
        "slow-command",
        None,
        'command="sleep 6" on the key: the login works, slower than the probe waits',
        r"Exit status 0",
        key_options='command="sleep 6"',
        exit_status=0,
    ),
)
_BY_NAME = {s.name: s for s in ADHOC}


@pytest.fixture(scope="module")
def proof_lab():
    """The ad-hoc scenarios, up for this module."""
    with adhoc_lab(_BY_NAME.values(), "proof") as running:
        # sshd refuses a ChrootDirectory its user owns (the classic: a jail chowned to the
        # user so that they can write there).
        jail = running.dir / "scenarios" / "chroot-not-root" / "etc" / "upper" / "jail"
        os.chown(jail, lab_scenarios.ACCOUNTS["alice"].uid, -1)
        yield running


def _diagnose(lab, name: str, *extra: str, timeout: int = 4) -> dict:
    argv = lab.diagnose_argv(name, "--json", "--no-report", "--timeout", str(timeout), *extra)
    proc = lab.run_client(name, argv, timeout=120)
    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr[-2000:]
    return json.loads(proc.stdout)


def _with_log(lab, name: str, *extra: str, timeout: int = 4) -> dict:
    """The diagnosis with the server's log, whose proof of the attempt names the cause."""
    result = _diagnose(lab, name, "--auth-log", lab.targets[name].auth_log, *extra, timeout=timeout)
    root = result["root_cause"]
    assert (root["id"], root["confidence"]) == (_BY_NAME[name].expected, "high"), json.dumps(
        result, indent=1
    )[:4000]
    proof = [f for f in result["findings"] if f["step"] == "server-log" and f["cause_id"]]
    assert any(re.search(_BY_NAME[name].server_log or "", f["evidence"][0]) for f in proof), proof
    return result


def test_a_key_taken_then_refused_by_pam_account_is_no_refused_key(proof_lab) -> None:
    """pam_access refuses alice after the server accepted her key (PK_OK): ssh and the
    probe both see the key taken and the connection closed. The client alone can say the
    account stage refused (low: which module, only the log says); the log names it."""
    result = _diagnose(proof_lab, "pam-access")
    root = result["root_cause"]
    assert (root["id"], root["confidence"]) == ("account.not_allowed", "low"), root
    probe = next(f for f in result["findings"] if (f["step"], f["check"]) == ("auth", "account"))
    assert "PK_OK" in probe["summary"] and "key_rejected" not in json.dumps(result["findings"])
    assert not any("ssh-copy-id" in line for line in root["fix"])

    _with_log(proof_lab, "pam-access")


def test_root_refused_after_its_key_is_the_same_answer_every_time(proof_lab) -> None:
    """PermitRootLogin forced-commands-only and a key without command=: OpenSSH 9.2 says
    the login succeeded, then drops it (newer releases refuse the signed login). The
    client's answer does not depend on which of sshd's packets the probe reads first, and
    says that for root this is PermitRootLogin's doing; the log's ROOT LOGIN REFUSED is."""
    answers = set()
    for _ in range(3):
        root = _diagnose(proof_lab, "root-forced-commands")["root_cause"]
        answers.add(root["id"])
        assert root["id"] in ("account.nologin", "account.root_denied"), root
        if root["id"] == "account.nologin":  # 9.2: "Authenticated", then the drop
            assert any("forced-commands-only" in line for line in root["evidence"]), root
    assert len(answers) == 1, answers

    result = _with_log(proof_lab, "root-forced-commands")
    if answers == {"account.nologin"}:
        evidence = result["root_cause"]["evidence"]
        assert any("the client alone sees account.nologin" in line for line in evidence)


def test_a_chroot_sshd_refuses_is_named_with_its_path(proof_lab) -> None:
    """A ChrootDirectory its user owns: the client sees a session dropped as it starts;
    the log's "bad ownership or modes for chroot directory" names the directory to fix."""
    root = _diagnose(proof_lab, "chroot-not-root")["root_cause"]
    assert root["id"] == "account.nologin", root

    result = _with_log(proof_lab, "chroot-not-root")
    fix = result["root_cause"]["fix"]
    assert any("chown root:root /etc/jail" in line for line in fix), fix


@pytest.mark.skipif(not _libwrap(), reason="this sshd is built without TCP wrappers")
def test_tcp_wrappers_refusing_is_sshd_closing_early(proof_lab) -> None:
    """hosts.deny: sshd (libwrap) accepts, waits 5 s and closes without a banner. Seen to
    the end that is a close with no byte (proto.closed_early); within a shorter time-out
    the client sees only silence (proto.not_ssh), which the log's "refused connect" and
    --server's "sshd listens here" both turn into the refusal it is."""
    assert _diagnose(proof_lab, "hosts-deny", timeout=8)["root_cause"]["id"] == (
        "proto.closed_early"
    )
    silent = _diagnose(proof_lab, "hosts-deny", timeout=3)["root_cause"]
    assert silent["id"] == "proto.not_ssh", silent

    result = _with_log(proof_lab, "hosts-deny", timeout=3)
    assert any("the client alone sees proto.not_ssh" in e for e in result["root_cause"]["evidence"])

    pid = next(p.pid for p in proof_lab.processes if p.what == "sshd hosts-deny")
    server = _diagnose(proof_lab, "hosts-deny", "--server", f"nsenter:{pid}", timeout=3)
    assert server["root_cause"]["id"] == "proto.closed_early", json.dumps(server, indent=1)[:4000]
    assert any(f["check"] == "sshd answers" for f in server["findings"])


def test_a_session_still_running_when_the_probe_gives_up_is_no_dropped_login(proof_lab) -> None:
    """A forced command slower than --timeout: the probe stops waiting and closes its own
    connection, which is no server hanging up (that would be account.nologin); the real
    ssh waits, sees status 0, and the login is ok."""
    argv = proof_lab.diagnose_argv("slow-command", "--json", "--no-report", "--timeout", "2")
    proc = proof_lab.run_client("slow-command", argv, timeout=120)
    result = json.loads(proc.stdout)
    assert (proc.returncode, result["verdict"]) == (0, "ok"), result
    session = next(f for f in result["findings"] if f["step"] == "session")
    assert (session["status"], session["cause_id"]) == ("warn", None), session
    assert "did not finish within 2s" in session["summary"]
