"""`runbook fix` against its own lab: dry runs change nothing, applied fixes make the
login work (diagnosed again), a new host key needs its fingerprint, a failed fix rolls
back. Its own lab, because fixing changes the scenarios."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import new_lab_dir, require_lab

# Fixed by `fix --apply` alone; the others need a fingerprint, a firewall or a password.
APPLIED = [
    "key-perms",
    "too-many-failures",
    "bad-modes",
    "locked",
    "expired",
    "key-rejected",
    "not-allowed",
    "root-denied",
]
SCENARIOS = [
    *APPLIED,
    "healthy",
    "hostkey-changed",
    "firewall-reject",
    "password-rejected",
    "root-password",
]
SERVER_SIDE = ("bad-modes", "locked", "expired", "key-rejected", "not-allowed", "root-denied")


@pytest.fixture(scope="module")
def fix_lab():
    require_lab()
    from runbook import lab as lab_mod

    machine_etc = _digests("/etc/passwd", "/etc/shadow", "/etc/group") | {
        "ls": sorted(os.listdir("/etc"))
    }
    running = lab_mod.up(SCENARIOS, new_lab_dir("fix"))
    try:
        yield running
    finally:
        lab_mod.down(running.dir)
    # Fixes inside the lab's sshd (usermod, backups) never reach the machine's own /etc.
    assert (
        _digests("/etc/passwd", "/etc/shadow", "/etc/group") | {"ls": sorted(os.listdir("/etc"))}
        == machine_etc
    )


def _digests(*roots: str) -> dict[str, str]:
    files = []
    for root in map(Path, roots):
        files += [root] if root.is_file() else [p for p in root.rglob("*") if p.is_file()]
    return {
        str(p): hashlib.sha256(p.read_bytes()).hexdigest() + oct(p.stat().st_mode) for p in files
    }


def _diagnosis(lab, name: str, out: Path) -> Path:
    target = lab.targets[name]
    argv = lab.diagnose_argv(
        name, "-F", target.ssh_config, "--timeout", "4", "--json", "--out", str(out)
    )
    if target.auth_log:
        argv += ["--auth-log", target.auth_log]
    proc = lab.run_client(name, argv, timeout=300)
    assert proc.returncode == 1, proc.stderr[-1500:]
    return next(out.glob("*/findings.json"))


def _fix(findings: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "SSH_AUTH_SOCK"}
    return subprocess.run(
        [sys.executable, "-m", "runbook", "fix", "--from", str(findings), *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )


def _sshd(lab, name: str) -> str:
    return "nsenter:" + str(next(p.pid for p in lab.processes if p.what == f"sshd {name}"))


@pytest.mark.parametrize("name", APPLIED)
def test_dry_run_then_apply_makes_the_login_work(fix_lab, tmp_path, name) -> None:
    findings = _diagnosis(fix_lab, name, tmp_path)
    server = ["--server", _sshd(fix_lab, name)] if name in SERVER_SIDE else []
    scenario = Path(fix_lab.dir) / "scenarios" / name
    watched = (
        str(Path(fix_lab.dir) / "clients"),
        str(Path(fix_lab.dir) / "srv"),
        str(scenario / "sshd_config"),
        str(scenario / "etc" / "upper"),  # the shadow this sshd sees (usermod, chage)
    )
    before = _digests(*watched)
    dry = _fix(findings.parent, *server)  # the incident folder, as `runbook diagnose` names it
    assert dry.returncode == 0 and "dry run: nothing changed" in dry.stdout
    assert _digests(*watched) == before
    applied = _fix(findings.parent, "--apply", *server)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert "diagnosed again: ok" in applied.stdout
    record = json.loads((findings.parent / "fixes.json").read_text())  # beside findings.json
    assert all(s["outcome"].startswith("applied") for s in record["steps"]), record
    for step in record["steps"]:
        for backup in step["backups"]:  # a client's backup (a key, known_hosts) stays private
            if step["side"] == "server" and backup.startswith("/etc/"):
                backup = scenario / "etc" / "upper" / backup[5:]  # in that sshd's /etc
            mode = os.stat(backup).st_mode
            assert mode & 0o077 == 0 if step["side"] == "client" else mode & 0o022 == 0


def test_a_root_password_refused_by_default_gets_no_sshd_config_edit(fix_lab, tmp_path) -> None:
    """Under PermitRootLogin prohibit-password (OpenSSH's default) root's password is refused:
    the plan does not rewrite PermitRootLogin (a no-op, or root's password given back)."""
    name = "root-password"
    argv = fix_lab.diagnose_argv(
        name, "--timeout", "4", "--json", "--out", str(tmp_path), "--server", _sshd(fix_lab, name)
    )
    proc = fix_lab.run_client(name, argv, timeout=300)
    assert proc.returncode == 1, proc.stderr[-1500:]
    assert json.loads(proc.stdout)["root_cause"]["id"] == "account.root_denied"
    dry = _fix(next(tmp_path.glob("*/findings.json")).parent, "--server", _sshd(fix_lab, name))
    assert dry.returncode == 1 and "no automatic fix for this cause" in dry.stdout, dry.stdout
    assert "PermitRootLogin" not in dry.stdout


def test_new_host_key_needs_the_checked_fingerprint(fix_lab, tmp_path) -> None:
    findings = _diagnosis(fix_lab, "hostkey-changed", tmp_path)
    first = _fix(findings, "--apply")
    assert first.returncode == 1 and "hostkey.unknown" in first.stdout  # stale entry gone
    offered = re.findall(r"SHA256:[A-Za-z0-9+/]+", first.stdout.split("waiting:", 1)[1])
    known = fix_lab.targets["hostkey-changed"].known_hosts
    kept = Path(known).read_bytes()
    wrong = _fix(findings, "--apply", "--accept-hostkey", "SHA256:" + "A" * 43)
    assert wrong.returncode == 1 and "does not present" in wrong.stdout
    assert Path(known).read_bytes() == kept  # nothing trusted
    right = _fix(findings, "--apply", "--accept-hostkey", offered[0])
    assert right.returncode == 0 and "diagnosed again: ok" in right.stdout, right.stdout


def test_a_failed_fix_rolls_back(tmp_path) -> None:
    """An admin left a broken line in sshd_config (the running sshd still has the old
    config): the AllowUsers edit fails `sshd -t`, so sshd is not reloaded onto a config it
    refuses, and the file is restored byte for byte. Its own lab: the scenario stays broken."""
    require_lab()
    from runbook import lab as lab_mod

    lab = lab_mod.up(["not-allowed"], new_lab_dir("rollback"))
    try:
        findings = _diagnosis(lab, "not-allowed", tmp_path / "before")
        config = Path(lab.dir) / "scenarios" / "not-allowed" / "sshd_config"
        with config.open("a") as handle:
            handle.write("PermitRootLogin sometimes\n")  # sshd -t: unsupported option value
        before = config.read_bytes()
        sshd = _sshd(lab, "not-allowed")
        applied = _fix(findings, "--apply", "--server", sshd)
        assert applied.returncode == 1, applied.stdout + applied.stderr
        record = json.loads((findings.parent / "fixes.json").read_text())
        step = record["steps"][0]
        assert step["outcome"].startswith("failed, rolled back"), step
        assert "sshd -t" in step["outcome"]
        assert config.read_bytes() == before
        os.kill(int(sshd.split(":")[1]), 0)  # sshd still runs, on its old config
        again = json.loads(_diagnosis(lab, "not-allowed", tmp_path / "after").read_text())
        assert again["root_cause"]["id"] == "account.not_allowed"
    finally:
        lab_mod.down(lab.dir)


def test_bad_findings_file_is_one_line_exit_2(tmp_path) -> None:
    (tmp_path / "x.json").write_text("{}")
    for path in (tmp_path / "missing.json", tmp_path / "x.json"):
        proc = _fix(path)
        assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1


def test_key_install_is_idempotent(fix_lab) -> None:
    from runbook.fix import copy_id
    from runbook.hosts import host_for

    host = host_for(_sshd(fix_lab, "key-rejected"))
    key = Path(fix_lab.targets["key-rejected"].identity_files[0] + ".pub").read_text()
    keys_file = Path(fix_lab.dir) / "srv" / "homes" / "alice" / ".ssh" / "authorized_keys"
    first = copy_id(host, "alice", key)
    lines = keys_file.read_text().splitlines()
    assert copy_id(host, "alice", key) == "already installed"
    assert keys_file.read_text().splitlines() == lines and first in (
        "installed",
        "already installed",
    )
    assert oct(keys_file.stat().st_mode & 0o777) == "0o600"


def test_tips_host_alias_and_key(tmp_path, monkeypatch) -> None:
    from runbook.errors import BadInput
    from runbook.fix import add_host_alias, generate_key

    monkeypatch.setenv("RB_TEST_PASSPHRASE", "correct horse battery")
    fingerprint = generate_key(tmp_path / "id_new", passphrase_env="RB_TEST_PASSPHRASE")
    assert fingerprint.startswith("SHA256:")
    assert oct((tmp_path / "id_new").stat().st_mode & 0o777) == "0o600"
    locked = subprocess.run(
        ["ssh-keygen", "-y", "-P", "", "-f", str(tmp_path / "id_new")],
        capture_output=True,
        text=True,
    )
    assert locked.returncode != 0  # the passphrase is really set
    with pytest.raises(BadInput, match="exists"):
        generate_key(tmp_path / "id_new")
    config = tmp_path / "config"
    config.write_text("Host other\n    HostName 192.0.2.1\n")
    lines = add_host_alias(
        config,
        "web1",
        hostname="192.0.2.10",
        user="ops",
        port=2222,
        identity_file=str(tmp_path / "id_new"),
    )
    resolved = subprocess.run(
        ["ssh", "-G", "-F", str(config), "web1"], capture_output=True, text=True
    ).stdout
    assert "hostname 192.0.2.10" in resolved and "port 2222" in resolved and "user ops" in resolved
    assert lines[0] == "Host web1" and list(tmp_path.glob("config.runbook-*.bak"))
    with pytest.raises(BadInput, match="already has"):
        add_host_alias(config, "web1", hostname="192.0.2.11")


def test_firewall_rule_removed_and_login_works(fix_lab, tmp_path) -> None:
    """The nftables reject in the lab's network namespace: found by the server checks,
    removed by the fix (the ruleset saved first), then the login works from there."""
    name = "firewall-reject"
    target = fix_lab.targets[name]
    server = _sshd(fix_lab, name)
    argv = fix_lab.diagnose_argv(
        name,
        "-F",
        target.ssh_config,
        "--timeout",
        "4",
        "--json",
        "--out",
        str(tmp_path),
        "--server",
        server,
    )
    proc = fix_lab.run_client(name, argv, timeout=300)
    assert json.loads(proc.stdout)["root_cause"]["id"] == "server.firewall"
    findings = next(tmp_path.glob("*/findings.json"))
    env = {k: v for k, v in os.environ.items() if k != "SSH_AUTH_SOCK"}
    fixed = subprocess.run(
        [
            "ip",
            "netns",
            "exec",
            fix_lab.netns,
            sys.executable,
            "-m",
            "runbook",
            "fix",
            "--from",
            str(findings),
            "--apply",
            "--server",
            server,
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    saved = json.loads((findings.parent / "fixes.json").read_text())["steps"][0]["backups"]
    for backup in saved:  # the ruleset backup lands in the server's /var/tmp: ours to remove
        Path(backup).unlink(missing_ok=True)
    assert fixed.returncode == 0 and "diagnosed again: ok" in fixed.stdout, fixed.stdout
    assert saved and saved[0].startswith("/var/tmp/nft-ruleset.runbook-")
    rules = subprocess.run(
        ["ip", "netns", "exec", fix_lab.netns, "nft", "list", "ruleset"],
        capture_output=True,
        text=True,
    ).stdout
    assert "dport 22" not in rules and "203.0.113.22 drop" in rules  # only that rule went


def test_copy_id_over_a_password_login(fix_lab, tmp_path) -> None:
    """ssh-copy-id before any key works: the user's own password login (the host key
    verified from known_hosts first); the key lands once, with private modes."""
    from runbook.fix import copy_id, generate_key
    from runbook.hosts import SshHost
    from runbook.lab.build import LAB_PASSWORD

    target = fix_lab.targets["password-rejected"]
    generate_key(tmp_path / "id_new")
    host = SshHost(
        "password login",
        10,
        user=target.user,
        hostname=target.host,
        port=target.port,
        password=LAB_PASSWORD,
        known_hosts=(target.known_hosts,),
    )
    key = (tmp_path / "id_new.pub").read_text()
    assert copy_id(host, target.user, key) == "installed"
    assert copy_id(host, target.user, key) == "already installed"
    # This sshd takes passwords only: the proof is its user's authorized_keys.
    installed = Path(fix_lab.dir) / "srv" / "homes" / target.user / ".ssh" / "authorized_keys"
    same = [ln for ln in installed.read_text().splitlines() if ln.split()[1:2] == key.split()[1:2]]
    assert len(same) == 1 and oct(installed.stat().st_mode & 0o777) == "0o600"


def test_a_revoked_host_key_is_never_removed_or_accepted(fix_lab, tmp_path) -> None:
    """known_hosts marks the server's key @revoked: the verdict says revoked, not changed,
    and neither the advice nor `fix --apply` removes the line or trusts the key."""
    name = "healthy"
    target = fix_lab.targets[name]
    revoked = tmp_path / "known_hosts"
    revoked.write_text(
        "".join(f"@revoked {line}\n" for line in Path(target.known_hosts).read_text().splitlines())
    )
    argv = fix_lab.diagnose_argv(
        name, "-F", target.ssh_config, "--known-hosts", str(revoked), "--timeout", "4"
    )
    proc = fix_lab.run_client(name, [*argv, "--json", "--out", str(tmp_path / "out")], timeout=300)
    assert proc.returncode == 1, proc.stderr[-1500:]
    root = json.loads(proc.stdout)["root_cause"]
    assert root["id"] == "hostkey.changed" and "REVOKED" in root["title"], root
    assert not any("ssh-keygen -R" in line or "answer yes" in line for line in root["fix"])
    kept = revoked.read_bytes()
    applied = _fix(next((tmp_path / "out").glob("*/findings.json")), "--apply")
    assert "no automatic fix for this cause" in applied.stdout, applied.stdout
    assert revoked.read_bytes() == kept
