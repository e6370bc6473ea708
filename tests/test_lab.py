"""The lab is real: the real ssh client shows every scenario's defining symptom."""

from __future__ import annotations

import errno
import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from runbook import lab as lab_mod
from runbook.errors import LabError
from runbook.lab import SCENARIOS, procs
from tests.conftest import file_digests, lab_processes, new_lab_dir, require_lab

# Every cause id the foundation issue asks the lab to produce on one machine.
REQUIRED_CAUSES = {
    "port.refused",
    "net.no_route",
    "net.timeout",
    "dns.unresolved",
    "proto.not_ssh",
    "proto.ssh1",
    "proto.closed_early",
    "kex.no_common_alg",
    "hostkey.changed",
    "hostkey.unknown",
    "client.identity_missing",
    "client.key_perms",
    "client.config_perms",
    "client.key_invalid",
    "auth.no_method",
    "auth.key_rejected",
    "auth.password_rejected",
    "auth.too_many_failures",
    "auth.sig_alg",
    "server.bad_modes",
    "account.invalid_user",
    "account.locked",
    "account.expired",
    "account.not_allowed",
    "account.root_denied",
    "account.nologin",
    "proxy.failed",
}


def test_every_required_cause_has_a_scenario() -> None:
    assert {s.expected for s in SCENARIOS} >= REQUIRED_CAUSES
    assert any(s.expected is None for s in SCENARIOS), "a healthy scenario"
    assert len({s.name for s in SCENARIOS}) == len(SCENARIOS)


@pytest.mark.parametrize("name", [s.name for s in SCENARIOS])
def test_real_ssh_shows_the_symptom(lab, name: str) -> None:
    """`ssh -vvv -o BatchMode=yes` as the scenario's client prints its defining symptom."""
    target = lab.targets[name]
    assert target.state == "up"
    argv, extra = lab.ssh_symptom_argv(name)
    proc = lab.run_client(name, argv, env={**os.environ, **extra}, timeout=30)
    output = proc.stdout + proc.stderr
    assert re.search(target.spec.symptom, output), output[-2000:]
    assert proc.returncode == target.spec.exit_status, output[-2000:]
    if target.spec.server_log:
        log = Path(target.auth_log).read_text()
        assert re.search(target.spec.server_log, log), log[-2000:]


def test_auth_log_is_syslog_with_pids(lab) -> None:
    """The lab's auth.log keeps sshd's per-connection pid and a precise timestamp."""
    log = Path(lab.targets["healthy"].auth_log).read_text().splitlines()
    assert log, "sshd logged nothing"
    pattern = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}[+-]\d\d:\d\d lab sshd\[\d+\]: ")
    assert all(pattern.match(line) for line in log), log[:3]


def test_lab_status_lists_every_scenario(lab) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "runbook", "lab", "status", "--dir", str(lab.dir)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for s in SCENARIOS:
        line = next(ln for ln in out.splitlines() if ln.startswith(s.name + " "))
        assert (s.expected or "(ok)") in line and line.rstrip().endswith("up")


def test_exec_runs_this_runbook_as_the_client(lab) -> None:
    """`runbook lab exec X -- runbook diagnose X` works with the virtualenv not on PATH."""
    bare = {**os.environ, "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
    lab_exec = [sys.executable, "-m", "runbook", "lab", "exec", "key-rejected", "--dir"]
    client = ["runbook", "diagnose", "key-rejected", "--no-report", "--timeout", "5"]
    proc = subprocess.run(
        [*lab_exec, str(lab.dir), "--", *client],
        capture_output=True,
        text=True,
        env=bare,
        timeout=60,
    )
    assert "verdict: failed: auth.key_rejected" in proc.stdout, proc.stdout + proc.stderr


def test_machine_accounts_unchanged(lab, machine_digests) -> None:
    """Lab users exist only in sshd's private mount namespace."""
    assert file_digests() == machine_digests
    passwd = Path("/etc/passwd").read_text()
    assert "lab user" not in passwd and "\nalice:" not in passwd


def test_lab_servers_yield_the_cpu(lab) -> None:
    """The lab stands in for remote servers: its processes, and the per-connection sshd
    of a login, run at the lowest priority (its session's autogroup too, where the
    kernel schedules sessions as groups), so they never take the cores from the client."""
    for record in lab.processes:
        assert os.getpriority(os.PRIO_PROCESS, record.pid) == 19, record
        group = Path(f"/proc/{record.pid}/autogroup")
        if group.exists():
            assert group.read_text().split()[-1] == "19", (record, group.read_text())
    argv, _ = lab.ssh_symptom_argv("healthy")
    client = lab.client_argv("healthy", [*argv[:-1], "sleep 5"])
    env = lab.client_env("healthy", None)
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    with subprocess.Popen(client, env=env, stdin=subprocess.DEVNULL, **quiet) as login:
        try:
            deadline = time.monotonic() + 20
            niced: list[int] = []
            while not niced and time.monotonic() < deadline:
                niced = [
                    os.getpriority(os.PRIO_PROCESS, pid)
                    for record in lab.processes
                    for pid in procs.descendants(record.pid)
                    if Path(f"/proc/{pid}/comm").read_text().strip() == "sleep"
                ]
                time.sleep(0.1)
            assert niced == [19], niced
        finally:
            login.kill()


def _netns() -> str:
    return subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout


def test_down_removes_processes_namespace_and_files() -> None:
    require_lab()
    small = lab_mod.up(["healthy", "timeout", "closed-early"], new_lab_dir("down"))
    assert lab_processes(str(small.dir)) and small.netns in _netns()
    with pytest.raises(LabError, match="already up"):
        lab_mod.up(["healthy"], small.dir)
    # A connection in progress leaves a per-connection sshd child: down must take it too.
    argv, _ = small.ssh_symptom_argv("healthy")
    assert small.run_client("healthy", argv, timeout=30).returncode == 0
    assert lab_mod.down(small.dir)
    assert not lab_processes(str(small.dir))
    assert not any(procs.alive(p) for p in small.processes)
    assert small.netns not in _netns()
    assert not small.dir.exists()
    assert not lab_mod.down(small.dir), "a second down finds nothing"


def test_down_all_cleans_a_lab_whose_directory_is_gone(tmp_path, monkeypatch) -> None:
    """After a crash that lost the lab directory, `lab down --all` still finds everything.

    The lab is registered in a private index so that `--all` leaves the session's lab be.
    """
    require_lab()
    monkeypatch.setenv("RUNBOOK_LAB_INDEX", str(tmp_path / "index"))
    small = lab_mod.up(["healthy", "no-route"], new_lab_dir("crash"))
    subprocess.run(["rm", "-rf", str(small.dir)], check=True)
    proc = subprocess.run(
        [sys.executable, "-m", "runbook", "lab", "down", "--all"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "lab stopped" in proc.stdout
    assert not lab_processes(str(small.dir))
    assert not any(procs.alive(p) for p in small.processes)
    assert small.netns not in _netns()


def test_two_labs_do_not_collide(lab) -> None:
    require_lab()
    other = lab_mod.up(["healthy", "port-refused"], new_lab_dir("second"))
    try:
        assert other.targets["healthy"].port != lab.targets["healthy"].port
        argv, _ = other.ssh_symptom_argv("healthy")
        assert other.run_client("healthy", argv, timeout=30).returncode == 0
    finally:
        lab_mod.down(other.dir)
    argv, _ = lab.ssh_symptom_argv("healthy")
    assert lab.run_client("healthy", argv, timeout=30).returncode == 0


def test_state_file_names_client_material(lab) -> None:
    state = json.loads((lab.dir / "lab.json").read_text())
    t = state["targets"]["password-rejected"]
    assert t["password_env"] == "RUNBOOK_LAB_PASSWORD"
    assert "lab-password" not in json.dumps(state), "no password in the state file"
    for key in (
        "user",
        "host",
        "port",
        "identity_files",
        "known_hosts",
        "ssh_config",
        "netns",
        "auth_log",
        "expected",
    ):
        assert key in t


def test_bad_usage_is_one_line_exit_2(tmp_path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "runbook",
            "lab",
            "up",
            "no-such-scenario",
            "--dir",
            str(tmp_path / "x"),
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "no lab scenario 'no-such-scenario'" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_port_taken_before_sshd_binds_is_picked_again(monkeypatch) -> None:
    """Another program may bind the free port the lab picked before sshd does."""
    require_lab()
    import socket

    from runbook.lab import core

    squatter = socket.socket()
    squatter.bind(("127.0.0.1", 0))
    squatter.listen()
    taken = squatter.getsockname()[1]
    real = core._free_port
    picks = iter([taken])
    monkeypatch.setattr(core, "_free_port", lambda taken: next(picks, None) or real(taken))
    running = core.up(["healthy"], new_lab_dir("port"))
    try:
        target = running.targets["healthy"]
        assert target.state == "up" and target.port != taken
        probe = socket.create_connection(("127.0.0.1", target.port), timeout=5)
        assert probe.recv(64).startswith(b"SSH-2.0-")
        probe.close()
    finally:
        core.down(running.dir)
        squatter.close()


def test_refused_port_stays_the_labs(lab) -> None:
    """Nothing listens on port-refused's port, yet no other program can take it while the
    lab runs (a dask cluster once did, and the scenario answered with its protocol)."""
    target = lab.targets["port-refused"]
    with socket.socket() as other:
        with pytest.raises(OSError) as taken:
            other.bind((target.host, target.port))
        assert taken.value.errno == errno.EADDRINUSE
    with socket.socket() as client, pytest.raises(ConnectionRefusedError):
        client.connect((target.host, target.port))
