"""`runbook diagnose --json` against every lab scenario, as that scenario's client."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from runbook.lab import SCENARIOS

# Causes only server evidence can prove: here the client-side view is expected.
CLIENT_SIDE = {s.name: s.cause_seen_by_client for s in SCENARIOS}


def _diagnose(lab, name: str, *extra: str, timeout: int = 4) -> tuple[int, dict, str]:
    argv = lab.diagnose_argv(name, "--json", "--no-report", "--timeout", str(timeout), *extra)
    proc = lab.run_client(name, argv, timeout=120)
    assert proc.returncode in (0, 1), proc.stderr[-2000:]
    return proc.returncode, json.loads(proc.stdout), proc.stderr


def _digests(home: str) -> dict[str, str]:
    return {
        str(p): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in Path(home).rglob("*")
        if p.is_file()
    }


@pytest.mark.parametrize("name", [s.name for s in SCENARIOS])
def test_diagnose_names_the_cause(lab, name: str) -> None:
    target = lab.targets[name]
    before = _digests(target.home)
    code, result, _ = _diagnose(lab, name)
    assert result["schema"] == "ssh-runbook/diagnosis/v1"
    expected = CLIENT_SIDE[name]
    if expected is None:
        assert (code, result["verdict"], result["root_cause"]) == (0, "ok", None), result
    else:
        assert code == 1 and result["verdict"] == "failed"
        assert result["root_cause"]["id"] == expected, json.dumps(result, indent=1)[:3000]
        assert result["root_cause"]["fix"]
    assert _digests(target.home) == before, "diagnose must not change any client file"


def test_cloud_images_root_is_told_whom_to_log_in_as(lab) -> None:
    """cloud-init's command= on root's key prints whom to log in as and exits 142: the fix
    logs in as that user (not a shell change for root), in both languages."""
    for lang, then in (("en", "# then: sudo -i"), ("ja", "# その後: sudo -i")):
        _, result, _ = _diagnose(lab, "root-cloud-image", "--lang", lang)
        root = result["root_cause"]
        assert root["id"] == "account.root_denied", root
        assert re.match(rf"ssh -p \d+ debian@127\.0\.0\.1 +{then}$", root["fix"][0]), root["fix"]
        assert not any("usermod" in line for line in root["fix"])


def test_a_password_to_change_is_changed_at_a_terminal(lab) -> None:
    """chage -d 0 under PAM: the key login works, then no terminal answers "Password change
    required": the fix is a login with one (ssh -t), not removing the account's expiry."""
    target = lab.targets["password-change"]
    for lang in ("en", "ja"):
        _, result, _ = _diagnose(lab, "password-change", "--lang", lang)
        root = result["root_cause"]
        assert root["id"] == "account.expired", root
        assert root["fix"][0].startswith(f"ssh -t -p {target.port} ivan@127.0.0.1 "), root
        assert not any("chage -E" in line for line in root["fix"]), root["fix"]
    _, result, _ = _diagnose(lab, "password-change", "--auth-log", target.auth_log)
    evidence = result["root_cause"]["evidence"]
    assert len(evidence) == len(set(evidence)), evidence  # one line per thing seen


def test_diagnose_japanese(lab) -> None:
    _, result, _ = _diagnose(lab, "hostkey-changed", "--lang", "ja")
    title = result["root_cause"]["title"]
    assert any("\u3040" <= ch <= "\u30ff" or "\u4e00" <= ch <= "\u9fff" for ch in title)


def test_password_never_in_output(lab) -> None:
    target = lab.targets["password-rejected"]
    password = lab.client_env("password-rejected")[target.password_env]
    argv = lab.diagnose_argv("password-rejected", "--json", "--no-report")
    proc = lab.run_client("password-rejected", argv, timeout=120)
    assert password not in proc.stdout + proc.stderr
    assert "PRIVATE KEY" not in proc.stdout + proc.stderr


@pytest.mark.parametrize(
    "args, needle",
    [
        (["bad host"], "malformed target"),
        (["host:2222"], "-p 2222"),
        (["alice@[::1]:2222"], "alice@::1 -p 2222"),
        (["host:0"], "give the port (1-65535) with -p"),
        (["@host"], "malformed user"),
        (["ssh://host:99999"], "out of range"),
        (["ssh://host/path"], "ssh://[user@]host[:port]"),
        (["localhost", "--auth-log", "/bin/true"], "is not a log"),
        (["localhost", "-p", "70000"], "out of range"),
        (["localhost", "-F", "/nonexistent/ssh_config"], "does not exist"),
        (["localhost", "--timeout", "-1"], "not positive"),
        (["localhost", "--password-env", "RUNBOOK_NO_SUCH_VAR"], "is not set"),
    ],
)
def test_bad_input_is_one_line_exit_2(args: list[str], needle: str) -> None:
    import subprocess

    env = {k: v for k, v in os.environ.items() if k != "RUNBOOK_NO_SUCH_VAR"}
    proc = subprocess.run(
        [sys.executable, "-m", "runbook", "diagnose", *args, "--no-report"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert needle in proc.stderr and proc.stderr.count("\n") == 1
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("scenario, cause", [("healthy", None), ("port-refused", "port.refused")])
def test_ssh_uri_target_uses_its_port(lab, scenario: str, cause: str | None) -> None:
    """`ssh://user@host:port`, which OpenSSH reads (7.7+), is diagnosed at that port: the
    healthy alias with the port of the refusing scenario is refused."""
    healthy, port = lab.targets["healthy"], lab.targets[scenario].port
    argv = lab.diagnose_argv("healthy", "--json", "--no-report", "--timeout", "4")
    argv[argv.index(healthy.alias)] = f"ssh://{healthy.user}@{healthy.alias}:{port}"
    proc = lab.run_client("healthy", argv, timeout=120)
    assert proc.returncode == (0 if cause is None else 1), proc.stderr[-2000:]
    result = json.loads(proc.stdout)
    assert result["target"]["port"] == port
    assert (result["root_cause"] or {}).get("id") == cause


def test_a_revoked_key_steers_the_host_key_choice_as_in_ssh(lab, tmp_path) -> None:
    """With its ed25519 key @revoked and the others known, ssh prefers a known type and
    logs in: the probe agrees (no failing host key next to an "ok"); with the revoked key
    alone, both refuse it."""
    target = lab.targets["healthy"]
    known = Path(target.known_hosts).read_text()
    first = next(line for line in known.splitlines() if "ssh-ed25519" in line).split()
    revoked = f"@revoked * {first[1]} {first[2]}\n"
    for text, verdict in ((revoked + known, "ok"), (revoked, "failed")):
        path = tmp_path / "known_hosts"
        path.write_text(text)
        _, result, _ = _diagnose(lab, "healthy", "--known-hosts", str(path))
        hostkey = next(f for f in result["findings"] if f["step"] == "hostkey")
        assert result["verdict"] == verdict
        assert hostkey["status"] == ("pass" if verdict == "ok" else "fail"), hostkey


def _diagnose_with_key(lab, key: Path, env: dict[str, str] | None = None) -> dict:
    """The healthy target by address with only ``key`` (-i): no Host block adds another."""
    target = lab.targets["healthy"]
    argv = lab.diagnose_argv("healthy", "--json", "--no-report", "--timeout", "4")
    argv[argv.index(target.alias)] = f"{target.user}@{target.host}"
    argv += ["-p", str(target.port), "--known-hosts", target.known_hosts, "-i", str(key)]
    prefix = ["env", *(f"{k}={v}" for k, v in (env or {}).items())]
    proc = lab.run_client("healthy", [*prefix, *argv], timeout=120)
    assert proc.returncode in (0, 1) and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    return json.loads(proc.stdout)


def test_keys_that_cannot_sign_are_named_not_blamed_on_the_server(lab, tmp_path) -> None:
    """The public key given as -i (ssh itself only says its mode is "too open"), and a
    private key with a passphrase that nothing can ask for: client.key_invalid, each with
    its reason; the same passphrase key held by a running ssh-agent logs in."""
    public = Path(lab.targets["healthy"].identity_files[0] + ".pub")
    result = _diagnose_with_key(lab, public)
    assert result["root_cause"]["id"] == "client.key_invalid"
    assert "public key" in " ".join(result["root_cause"]["evidence"])
    sealed = tmp_path / "id_sealed"
    shutil.copy(lab.targets["healthy"].identity_files[0], sealed)
    sealed.chmod(0o600)
    subprocess.run(
        ["ssh-keygen", "-q", "-p", "-N", "lab-secret", "-P", "", "-f", str(sealed)],
        check=True,
        capture_output=True,
    )
    result = _diagnose_with_key(lab, sealed)
    assert result["root_cause"]["id"] == "client.key_invalid"
    assert "passphrase" in " ".join(result["root_cause"]["evidence"])
    sock = tmp_path / "agent.sock"
    agent = subprocess.Popen(["ssh-agent", "-D", "-a", str(sock)], stdout=subprocess.DEVNULL)
    try:
        askpass = tmp_path / "askpass"
        askpass.write_text("#!/bin/sh\necho lab-secret\n")
        askpass.chmod(0o700)
        for _ in range(50):  # the agent's socket appears once it listens
            if sock.exists():
                break
            time.sleep(0.1)
        env = {"SSH_AUTH_SOCK": str(sock), "SSH_ASKPASS": str(askpass)}
        subprocess.run(
            ["ssh-add", str(sealed)],
            env={**os.environ, **env, "SSH_ASKPASS_REQUIRE": "force"},
            check=True,
            capture_output=True,
            stdin=subprocess.DEVNULL,
            timeout=30,
        )
        result = _diagnose_with_key(lab, sealed, {"SSH_AUTH_SOCK": str(sock)})
        assert (result["verdict"], result["root_cause"]) == ("ok", None), result["findings"]
    finally:
        agent.terminate()
        agent.wait(10)


def test_openssh_decides_whether_a_key_file_loads(lab, tmp_path) -> None:
    """Keys the healthy server accepts, written two ways: as PKCS#8 PEM (ssh reads it,
    paramiko does not) it logs in; with Windows line endings (paramiko reads it, ssh does
    not) it is client.key_invalid, with the cure."""
    key = Path(lab.targets["healthy"].identity_files[0])
    pkcs8 = tmp_path / "id_pkcs8"
    shutil.copy(Path(lab.dir) / "keys" / "authorized-rsa", pkcs8)  # ed25519 has no PKCS#8
    pkcs8.chmod(0o600)
    subprocess.run(
        ["ssh-keygen", "-q", "-p", "-m", "PKCS8", "-N", "", "-P", "", "-f", str(pkcs8)],
        check=True,
        capture_output=True,
    )
    assert pkcs8.read_text().startswith("-----BEGIN PRIVATE KEY-----")
    result = _diagnose_with_key(lab, pkcs8)
    assert result["verdict"] == "ok", result["findings"]
    checked = [
        f for f in result["findings"] if f["step"] == "client" and str(pkcs8) in f["summary"]
    ]
    assert checked and checked[0]["status"] == "pass", checked  # the probe signs with it too
    crlf = tmp_path / "id_crlf"
    crlf.write_bytes(key.read_bytes().replace(b"\n", b"\r\n"))
    crlf.chmod(0o600)
    result = _diagnose_with_key(lab, crlf)
    assert result["root_cause"]["id"] == "client.key_invalid", result["findings"]
    assert "Windows line endings" in " ".join(result["root_cause"]["evidence"])


def test_a_hanging_match_exec_is_one_line_and_leaves_nothing(tmp_path) -> None:
    """ssh -G runs a config's Match exec: one that hangs ends the run within the time-out,
    in one line, and its command does not outlive it."""
    marker = f"runbook-test-{os.getpid()}"
    config = tmp_path / "ssh_config"
    config.write_text(f'Match exec "sleep 60; : {marker}"\n  User bob\n')
    config.chmod(0o600)
    started = time.monotonic()
    proc = subprocess.run(
        [
            *(sys.executable, "-m", "runbook", "diagnose", "alice@127.0.0.1", "-p", "1"),
            *("-F", str(config), "--timeout", "1", "--no-report"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and "did not answer" in proc.stderr, proc.stderr[-1500:]
    assert proc.stderr.count("\n") == 1 and time.monotonic() - started < 15
    left = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True).stdout
    assert not left.strip(), left


def test_blackholed_host_is_bounded(lab) -> None:
    """A black-holed host's verdict comes within the time-out plus a margin, not minutes."""
    code, result, _ = _diagnose(lab, "timeout", timeout=2)
    assert code == 1 and result["root_cause"]["id"] == "net.timeout"
    assert result["duration_s"] < 2 + 2


# With the server's log, the causes only sshd can see are named (firewall-reject needs
# the server checks, not the log).
WITH_LOG = [
    s for s in SCENARIOS if s.server == "sshd" and s.net in ("host", "moved") and not s.stopped
]


@pytest.mark.parametrize("name", [s.name for s in WITH_LOG])
def test_auth_log_refines_to_the_server_side_cause(lab, name: str) -> None:
    spec = next(s for s in SCENARIOS if s.name == name)
    target = lab.targets[name]
    _, result, _ = _diagnose(lab, name, "--auth-log", target.auth_log)
    expected = spec.expected if spec.server_log else spec.cause_seen_by_client
    if expected is None:
        assert result["verdict"] == "ok", result
        return
    root = result["root_cause"]
    assert root["id"] == expected, json.dumps(result, indent=1)[:3000]
    server = [f for f in result["findings"] if f["step"] == "server-log"]
    # The lines of this attempt are found, unless the jump host never reached the target.
    assert server and server[0]["status"] == ("warn" if spec.jump else "info"), server
    if expected != spec.cause_seen_by_client:
        assert root["confidence"] == "high"
        assert any(spec.cause_seen_by_client in line for line in root["evidence"])
        proof = [f for f in server if f["cause_id"] == expected]
        assert proof and re.search(spec.server_log, proof[0]["evidence"][0])


def test_bad_modes_fix_names_the_path(lab) -> None:
    target = lab.targets["bad-modes"]
    _, result, _ = _diagnose(lab, "bad-modes", "--auth-log", target.auth_log)
    bad = next(f for f in result["findings"] if f["cause_id"] == "server.bad_modes")
    path = bad["summary"].rsplit(" ", 1)[-1]
    assert path.endswith("/bob")
    assert f"sudo chmod go-w {path}" in result["root_cause"]["fix"]


def _diagnose_healthy(lab, *args: str):  # -> subprocess.CompletedProcess[str]
    """`runbook diagnose healthy ARGS` as its client, exit status and output as they are."""
    argv = [sys.executable, "-m", "runbook", "diagnose", "healthy", *args]
    return lab.run_client("healthy", argv, timeout=60)


def test_missing_auth_log_is_bad_input(lab) -> None:
    proc = _diagnose_healthy(lab, "--auth-log", "/nope/auth.log")
    assert proc.returncode == 2 and "auth log /nope/auth.log does not exist" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def _sshd_pid(lab, name: str) -> int:
    return next(p.pid for p in lab.processes if p.what == f"sshd {name}")


@pytest.mark.parametrize("name", [s.name for s in SCENARIOS if s.server == "sshd"])
def test_server_checks_name_the_server_side_cause(lab, name: str) -> None:
    """--server nsenter:PID reads the lab sshd's own view: its config, accounts, firewall."""
    spec = next(s for s in SCENARIOS if s.name == name)
    _, result, _ = _diagnose(lab, name, "--server", f"nsenter:{_sshd_pid(lab, name)}")
    server = [f for f in result["findings"] if f["step"] == "server"]
    assert server[-1]["check"] == "commands" and server[-1]["evidence"]  # what was run
    if spec.expected is None:
        assert result["verdict"] == "ok", result
        assert not [f for f in server if f["status"] == "fail"], server
        return
    assert result["root_cause"]["id"] == spec.expected, json.dumps(server, indent=1)[:3000]


@pytest.mark.parametrize(
    "name, extra, file",
    [
        ("nologin-file", (), None),  # PAM shows the text; which file, only the server knows
        ("nologin-file", ("--server", "nsenter:SSHD"), "/etc/nologin"),
        ("nologin-file-sshd", (), "/etc/nologin"),  # sshd's own check: exit status 254
    ],
)
def test_a_nologin_file_is_named_with_its_text(lab, name: str, extra: tuple, file) -> None:
    """/etc/nologin (maintenance) is no shell problem: the verdict shows the file's text,
    and where the file is known the fix names it."""
    extra = tuple(e.replace("SSHD", str(_sshd_pid(lab, name))) for e in extra)
    _, result, _ = _diagnose(lab, name, *extra)
    root = result["root_cause"]
    assert root["id"] == "account.nologin", root
    assert any("Maintenance until 18:00" in line for line in root["evidence"]), root
    named = [line for line in root["fix"] if line.startswith("sudo cat")]
    assert named == (
        [f"sudo cat {file}   # the reason it gives; once that work is over: sudo rm {file}"]
        if file
        else []
    ), root["fix"]


def test_a_session_pam_will_not_open_is_no_nologin_file(lab) -> None:
    """sshd exits 254 for /etc/nologin (without PAM, after printing the file on stderr) and
    for a PAM session that cannot open (after printing the motd on stdout): the probe reads
    which stream the server wrote to, and does not send the user to a file that is not there."""
    _, result, _ = _diagnose(lab, "pam-session")
    session = next(f for f in result["findings"] if f["step"] == "session")
    assert session["cause_id"] == "account.nologin", session
    assert "PAM could not open the session" in session["summary"], session
    assert "/etc/nologin exists" not in session["summary"]


def test_a_host_key_of_another_type_is_changed_and_names_the_users_file(lab) -> None:
    """The server offers only RSA, known_hosts holds its ED25519 key: ssh calls that a
    changed key, and so do the probe and the verdict; every path shown is the user's own
    known_hosts, never the private copy the real ssh ran with."""
    name = "hostkey-type-changed"
    _, result, _ = _diagnose(lab, name)
    root = result["root_cause"]
    assert (root["id"], root["confidence"]) == ("hostkey.changed", "high"), root
    assert "ssh-rsa key" in root["explanation"]
    assert any("Offending ssh-ed25519 key" in line for line in root["evidence"])
    known = lab.targets[name].known_hosts
    assert any(line.startswith("ssh-keygen -R") and known in line for line in root["fix"])
    assert "runbook-ssh-" not in json.dumps(result)


def test_the_signature_algorithm_fix_says_which_side_allows_what(lab) -> None:
    """The server takes only ssh-rsa signatures and the client signs rsa-sha2-512: its
    checks see that the client may allow ssh-rsa; its log sees only the refusal."""
    server = ["--server", f"nsenter:{_sshd_pid(lab, 'sig-alg')}"]
    _, result, _ = _diagnose(lab, "sig-alg", *server)
    assert any("PubkeyAcceptedAlgorithms=+ssh-rsa" in f for f in result["root_cause"]["fix"])
    _, result, _ = _diagnose(lab, "sig-alg", "--auth-log", lab.targets["sig-alg"].auth_log)
    fixes = result["root_cause"]["fix"]
    assert any("the server refuses rsa-sha2-512" in f for f in fixes), fixes
    assert not any("PubkeyAcceptedAlgorithms=+" in f for f in fixes), fixes


def test_the_key_the_server_holds_but_ssh_does_not_offer_is_named(lab, tmp_path) -> None:
    """IdentitiesOnly with another key: the server holds the client's ~/.ssh/id_authorized,
    which ssh never offers. The server check names that key, and the fix offers it."""
    target = lab.targets["healthy"]
    stranger = tmp_path / "id_other"
    shutil.copy(Path(lab.dir) / "keys" / "stranger", stranger)
    stranger.chmod(0o600)
    config = tmp_path / "ssh_config"
    config.write_text(
        f"Host wrongkey\n  HostName {target.host}\n  Port {target.port}\n  User alice\n"
        f"  IdentitiesOnly yes\n  IdentityFile {stranger}\n"
        f"  UserKnownHostsFile {target.known_hosts}\n"
    )
    config.chmod(0o600)
    argv = [sys.executable, "-m", "runbook", "diagnose", "wrongkey", "-F", str(config)]
    argv += ["--json", "--no-report", "--timeout", "4"]
    argv += ["--server", f"nsenter:{_sshd_pid(lab, 'healthy')}"]
    proc = lab.run_client("healthy", argv, timeout=120)
    assert proc.returncode == 1, proc.stderr[-1500:]
    root = json.loads(proc.stdout)["root_cause"]
    held = "/.ssh/" + Path(target.identity_files[0]).name  # under the client's own home
    assert root["id"] == "auth.key_rejected"
    assert any("ssh does not offer" in line and held in line for line in root["evidence"]), root
    assert root["fix"][0].startswith("ssh -i ") and held in root["fix"][0], root["fix"]


def test_a_stopped_sshd_still_has_its_configuration_checked(lab) -> None:
    """Server checks where nothing listens (a fresh network namespace): sshd is down, and
    what says why (its configuration, its host keys) is still checked, not skipped."""
    holder = subprocess.Popen(["unshare", "--net", "--mount", "sleep", "60"])
    try:
        time.sleep(0.5)  # unshare execs sleep in place: its pid holds the namespaces
        argv = lab.diagnose_argv("port-refused", "--json", "--no-report", "--timeout", "4")
        argv += ["--server", f"nsenter:{holder.pid}"]
        proc = lab.run_client("port-refused", argv, timeout=120)
        assert proc.returncode == 1, proc.stderr[-1500:]
        server = [f for f in json.loads(proc.stdout)["findings"] if f["step"] == "server"]
        assert any(f["cause_id"] == "server.sshd_down" for f in server), server
        checked = {f["check"]: f["status"] for f in server}
        assert checked.get("sshd -t") in ("pass", "fail") and checked.get("host keys") != "skip"
    finally:
        holder.kill()
        holder.wait()


def test_server_checks_change_nothing(lab, machine_digests) -> None:
    """Read-only: the lab server's files and the machine's accounts are untouched."""
    srv = Path(lab.dir) / "srv"
    before = _digests(str(srv))
    _diagnose(lab, "bad-modes", "--server", f"nsenter:{_sshd_pid(lab, 'bad-modes')}")
    assert _digests(str(srv)) == before
    from tests.conftest import file_digests

    assert file_digests() == machine_digests


def test_bad_server_spec_is_bad_input(lab) -> None:
    proc = _diagnose_healthy(lab, "--server", "nsenter:abc")
    assert proc.returncode == 2 and "nsenter:1234" in proc.stderr


def _mounted_root(lab, name: str, dest: Path) -> None:
    """A copy of the lab server's disk for one scenario, as a rescue mount would show it."""
    srv = Path(lab.dir) / "srv"
    (dest / "etc" / "ssh").mkdir(parents=True)
    for table in ("passwd", "shadow", "group"):
        shutil.copy2(srv / "etc" / table, dest / "etc" / table)
    shutil.copy2(Path(lab.dir) / "scenarios" / name / "sshd_config", dest / "etc/ssh/sshd_config")
    for shell in ("bin/sh", "bin/bash", "usr/sbin/nologin"):
        (dest / shell).parent.mkdir(parents=True, exist_ok=True)
        (dest / shell).write_text("#!/bin/true\n")
        os.chmod(dest / shell, 0o755)
    homes = srv / "homes"
    copy = dest / str(homes).lstrip("/")
    copy.parent.mkdir(parents=True)
    shutil.copytree(homes, copy, symlinks=True)
    for path in [homes, *homes.rglob("*")]:
        info = path.lstat()
        os.chown(copy / path.relative_to(homes), info.st_uid, info.st_gid, follow_symlinks=False)
        os.chmod(copy / path.relative_to(homes), info.st_mode & 0o7777)


OFFLINE = [
    "healthy",
    "key-rejected",
    "sig-alg",
    "bad-modes",
    "invalid-user",
    "locked",
    "expired",
    "not-allowed",
    "root-denied",
    "nologin",
]


@pytest.mark.parametrize("name", OFFLINE)
def test_server_root_reads_a_mounted_disk(lab, name: str) -> None:
    spec = next(s for s in SCENARIOS if s.name == name)
    root = Path(tempfile.mkdtemp(prefix="rb-root-", dir="/var/tmp"))
    try:
        os.chmod(root, 0o755)
        _mounted_root(lab, name, root)
        before = _digests(str(root))
        _, result, _ = _diagnose(lab, name, "--server-root", str(root))
        assert _digests(str(root)) == before  # read, never written
    finally:
        shutil.rmtree(root)
    if spec.expected is None:
        assert result["verdict"] == "ok", result
    else:
        assert result["root_cause"]["id"] == spec.expected, json.dumps(result, indent=1)[:3000]
    server = [f for f in result["findings"] if f["step"] == "server"]
    assert server[0]["check"] == "sshd_config" and "offline" in server[0]["summary"]


def test_a_key_pasted_over_two_lines_is_shown_where_it_broke(lab) -> None:
    """The client's own key is in authorized_keys, but pasted over two lines: sshd reads
    neither line, and the server check says which lines and why."""
    root = Path(tempfile.mkdtemp(prefix="rb-root-", dir="/var/tmp"))
    try:
        os.chmod(root, 0o755)
        _mounted_root(lab, "key-rejected", root)
        key = Path(lab.targets["key-rejected"].identity_files[0] + ".pub").read_text().strip()
        homes = Path(lab.dir) / "srv" / "homes"
        authorized = root / str(homes).lstrip("/") / "alice" / ".ssh" / "authorized_keys"
        authorized.write_text(f"# alice's keys\n{key[:50]}\n{key[50:]}\n")
        _, result, _ = _diagnose(lab, "key-rejected", "--server-root", str(root))
    finally:
        shutil.rmtree(root)
    found = next(f for f in result["findings"] if f["check"] == "authorized_keys")
    assert found["status"] == "fail" and "2 of its lines are no key" in found["summary"]
    assert [e.split(": ", 1)[0].rsplit(":", 1)[1] for e in found["evidence"][1:]] == ["2", "3"]
    assert "broken over lines" in found["evidence"][1]


_QUICK = """
import json, sys
from runbook.diagnose import diagnose
r = diagnose(sys.argv[1], timeout=float(sys.argv[2]), quick_ok=True)
print(json.dumps({"cause": r.root_cause.id if r.root_cause else None,
                  "steps": [f.step for f in r.findings], "took": r.duration_s}))
"""


_KEX = """
import json, re, sys
from runbook.diagnose import diagnose
out = {}
for fleet in (False, True):
    r = diagnose(sys.argv[1], timeout=5, quick_ok=fleet, ssh_config=sys.argv[2] or None)
    ssh = next(f for f in r.findings if f.step == "ssh")
    kex = re.search(r"kex: algorithm: (\\S+)", ssh.data["transcript"])
    out[str(fleet)] = [r.root_cause.id if r.root_cause else None, kex and kex.group(1)]
print(json.dumps(out))
"""

_PQ_AND_X25519 = "sntrup761x25519-sha512@openssh.com,curve25519-sha256"


@pytest.mark.parametrize(
    "name, user_kex", [("healthy", None), ("healthy", _PQ_AND_X25519), ("kex-mismatch", None)]
)
def test_fleet_logins_offer_the_cheapest_key_exchange_first(lab, tmp_path, name, user_kex) -> None:
    """A fleet login offers P-256, then curve25519 first (OpenSSH's post-quantum default
    costs 0.1 s of CPU a login here), from the user's own set of algorithms: the verdict
    is the one a single diagnosis gives, a server without them included; a user's set
    without P-256 gets curve25519, not the costly default."""
    config = ""
    if user_kex:
        config = str(tmp_path / "ssh_config")
        Path(config).write_text(
            f"KexAlgorithms {user_kex}\nInclude {lab.targets[name].ssh_config}\n"
        )
    argv = [sys.executable, "-c", _KEX, lab.targets[name].alias, config]
    proc = lab.run_client(name, argv, timeout=120)
    assert proc.returncode == 0, proc.stderr[-1500:]
    single, fleet = json.loads(proc.stdout)["False"], json.loads(proc.stdout)["True"]
    assert single[0] == fleet[0] == (None if name == "healthy" else "kex.no_common_alg")
    if name != "healthy":
        return
    default = subprocess.run(["ssh", "-G", "x"], capture_output=True, text=True).stdout
    offered = (user_kex or re.search(r"^kexalgorithms (\S+)", default, re.M).group(1)).split(",")
    assert single[1] == offered[0]
    cheapest = "ecdh-sha2-nistp256" if "ecdh-sha2-nistp256" in offered else "curve25519-sha256"
    assert fleet[1] == cheapest


@pytest.mark.parametrize(
    "name, probed",
    [("healthy", False), ("timeout", False), ("port-refused", False), ("key-rejected", True)],
)
def test_fleet_mode_probes_only_what_ssh_leaves_open(lab, name, probed) -> None:
    """A fleet target (quick_ok) costs what `ssh host true` costs: a login, a refusal or
    the time-out alone gives the verdict; an authentication failure still gets the probes
    that say which key or method."""
    target = lab.targets[name]
    proc = lab.run_client(name, [sys.executable, "-c", _QUICK, target.alias, "3"], timeout=120)
    assert proc.returncode == 0, proc.stderr[-1500:]
    got = json.loads(proc.stdout)
    expected = None if name == "healthy" else CLIENT_SIDE[name]
    assert got["cause"] == expected
    if probed:
        assert "auth" in got["steps"], got["steps"]
    else:
        assert got["steps"] == ["target", "ssh"], got["steps"]  # no probe connections
    if name == "timeout":
        assert got["took"] < 3 + 0.8  # the time-out, not the time-out and the probes


_NO_CLIENT = """
import json, os, sys, tempfile
os.environ["PATH"] = tempfile.mkdtemp()  # no ssh, ssh-keygen or ping: only Python
from runbook.diagnose import diagnose
r = diagnose(sys.argv[1], timeout=3)
print(json.dumps({"cause": r.root_cause.id if r.root_cause else None,
                  "ssh": [f.summary for f in r.findings if f.step == "ssh"]}))
"""


def test_without_an_ssh_client_the_probes_still_find_the_cause(lab) -> None:
    """A machine without OpenSSH's client (a container, a Windows jump box's Python) still
    gets the probes' verdict, its alias read from ~/.ssh/config by paramiko; the real ssh
    is reported as not run, not as a crash."""
    target = lab.targets["port-refused"]
    proc = lab.run_client("port-refused", [sys.executable, "-c", _NO_CLIENT, target.alias])
    assert proc.returncode == 0, proc.stderr[-1500:]
    got = json.loads(proc.stdout)
    assert got["cause"] == "port.refused"
    assert got["ssh"] == ["not checked: no ssh client on this machine (install openssh-client)"]
