"""Reading real ``ssh -v``/``-vvv`` transcripts: the cause a user would be told.

The transcripts are produced live, in the test, by the real ssh against every lab
scenario; the other tests feed the same lines in the shapes users paste them (CRLF, colour,
prompts, timestamps) and random garbage, which must never raise. Its speed is measured in
bench/ (``make bench``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runbook import catalog, transcript
from runbook.lab import SCENARIOS

CLIENT_SIDE = {s.name: s.cause_seen_by_client for s in SCENARIOS}


def live(lab, name: str, level: str) -> str:
    """ssh's output as a terminal shows it: the session's output (a forced command's words
    on stdout) where it came, among ssh's own lines."""
    argv, extra = lab.ssh_symptom_argv(name)
    argv = [level if a == "-vvv" else a for a in argv]
    merged = ["sh", "-c", 'exec "$@" 2>&1', "sh", *argv]
    proc = lab.run_client(name, merged, env={**os.environ, **extra}, timeout=60)
    return proc.stdout + proc.stderr


@pytest.mark.parametrize("name", [s.name for s in SCENARIOS])
def test_live_transcript_names_the_cause_the_client_sees(lab, name: str) -> None:
    for level in ("-v", "-vvv"):
        text = live(lab, name, level)
        result = transcript.explain(text)
        expected = CLIENT_SIDE[name]
        got = result["root_cause"]["id"] if result["root_cause"] else None
        assert got == expected, f"{name} {level}: {result}\n{text[-3000:]}"
        assert result["verdict"] == ("ok" if expected is None else "failed")
        assert result["client_version"].startswith("OpenSSH_")
        if expected:
            lines = text.splitlines()
            for quoted in result["root_cause"]["evidence"]:
                if quoted.startswith("line "):
                    number, _, said = quoted[5:].partition(": ")
                    assert said in lines[int(number) - 1]  # quotes point at real lines


def test_live_facts_feed_the_fix(lab) -> None:
    text = live(lab, "hostkey-changed", "-v")
    facts = transcript.explain(text)["facts"]
    target = lab.targets["hostkey-changed"]
    assert facts["fingerprint"].startswith("SHA256:")
    assert facts["known_hosts"].endswith("known_hosts")
    assert int(facts["known_hosts_line"]) >= 1
    assert facts["host_spec"] == f"[127.0.0.1]:{target.port}"
    kex = transcript.explain(live(lab, "kex-mismatch", "-v"))["facts"]
    assert (kex["category"], kex["algorithm"]) == ("key exchange", "diffie-hellman-group1-sha1")
    jump = transcript.explain(live(lab, "proxy-failed", "-v"))["facts"]["jump"]
    assert jump.startswith("alice@127.0.0.1:")


def test_pasted_shapes_read_the_same(lab) -> None:
    """CRLF, colour codes, timestamps and a prompt around the same lines change nothing."""
    text = live(lab, "key-perms", "-vvv")
    messy = "$ ssh -vvv key-perms\r\n" + "".join(
        f"2026-11-28 10:00:{i % 60:02d} \x1b[33m{line}\x1b[0m\r\n"
        for i, line in enumerate(text.splitlines())
    )
    clean = transcript.explain(text)
    pasted = transcript.explain(messy)
    assert pasted["root_cause"]["id"] == clean["root_cause"]["id"] == "client.key_perms"
    assert pasted["facts"]["identity_file"] == clean["facts"]["identity_file"]


def test_first_error_wins_over_the_last() -> None:
    """A changed key with StrictHostKeyChecking=no ends in "Permission denied"."""
    text = "\n".join(
        [
            "OpenSSH_8.9p1 Ubuntu-3ubuntu0.6, OpenSSL 3.0.2 15 Mar 2022",
            "@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@",
            "@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @",
            "The fingerprint for the ED25519 key sent by the remote host is",
            "SHA256:Jb1nEX0y6e9aOeC5cFGs1eV6B0hF3xE2Ygk2M6Pp0aQ.",
            "Offending ED25519 key in /home/u/.ssh/known_hosts:7",
            "Password authentication is disabled to avoid man-in-the-middle attacks.",
            "u@web: Permission denied (publickey,password).",
        ]
    )
    result = transcript.explain(text)
    assert result["root_cause"]["id"] == "hostkey.changed"
    assert result["facts"]["known_hosts_line"] == "7"
    assert result["facts"]["fingerprint"] == "SHA256:Jb1nEX0y6e9aOeC5cFGs1eV6B0hF3xE2Ygk2M6Pp0aQ"


@pytest.mark.parametrize(
    ("lines", "cause"),
    [
        (["ssh_exchange_identification: read: Connection reset by peer"], "proto.closed_early"),
        (["ssh: connect to host 10.0.0.5 port 22: Operation timed out"], "net.timeout"),
        (
            [
                "ssh: Could not resolve hostname web:2222: nodename nor servname provided, or not "
                "known"
            ],
            "dns.unresolved",
        ),
        (
            [
                "Unable to negotiate with 10.1.1.1 port 22: no matching host key type found. "
                "Their offer: ssh-rsa,ssh-dss"
            ],
            "kex.no_common_alg",
        ),
        (
            [
                "Warning: Identity file C:\\\\Users\\\\me/.ssh/id_rsa not accessible: "
                "No such file or directory.",
                "me@10.0.0.9: Permission denied (publickey).",
            ],
            "client.identity_missing",
        ),
        (
            [
                "Permission denied, please try again.",
                "Permission denied, please try again.",
                "u@h: Permission denied (publickey,password).",
            ],
            "auth.password_rejected",
        ),
        (
            [
                "debug1: Offering public key: /home/u/.ssh/id_rsa RSA SHA256:x explicit",
                "debug1: send_pubkey_test: no mutual signature algorithm",
                "u@old: Permission denied (publickey).",
            ],
            "auth.sig_alg",
        ),
        (
            [
                "debug1: Setting implicit ProxyCommand from ProxyJump: ssh -v -W '[%h]:%p' bastion",
                'debug1: Authenticated to bastion ([10.0.0.1]:22) using "publickey".',
                "channel 0: open failed: connect failed: Name or service not known",
                "stdio forwarding failed",
                "kex_exchange_identification: Connection closed by remote host",
                "Connection closed by UNKNOWN port 65535",
            ],
            "dns.unresolved",
        ),
        (
            [
                "debug1: Setting implicit ProxyCommand from ProxyJump: ssh -v -W '[%h]:%p' bastion",
                "ssh: Could not resolve hostname bastion: Name or service not known",
                "kex_exchange_identification: Connection closed by remote host",
                "Connection closed by UNKNOWN port 65535",
            ],
            "proxy.failed",
        ),
        (  # AuthenticationMethods publickey,password, before 8.x without the method's name
            [
                "debug1: Offering public key: /home/u/.ssh/id_ed25519 ED25519 SHA256:x",
                "Authenticated with partial success.",
                "u@h: Permission denied (password).",
            ],
            "auth.no_method",
        ),
        (  # CheckHostIP: the name's key is known, the address's entry is stale
            [
                "Warning: the ECDSA host key for 'h' differs from the key for the IP address "
                "'192.0.2.1'",
                "Offending key for IP in /home/u/.ssh/known_hosts:3",
                "Host key verification failed.",
            ],
            "hostkey.changed",
        ),
        (
            ["Not allowed at this time", "Connection closed by 192.0.2.1 port 22"],
            "proto.closed_early",
        ),
        (  # -i id.pub: ssh only says its mode is too open; the cause is the wrong file
            [
                "Permissions 0644 for '/home/u/.ssh/id_ed25519.pub' are too open.",
                'Load key "/home/u/.ssh/id_ed25519.pub": bad permissions',
                "u@h: Permission denied (publickey).",
            ],
            "client.key_invalid",
        ),
        (
            [
                'sign_and_send_pubkey: signing failed for ED25519 "/home/u/.ssh/id_ed25519" from '
                "agent: agent refused operation",
                "u@h: Permission denied (publickey).",
            ],
            "client.key_invalid",
        ),
        (  # the same in the words of OpenSSH 8.1 and older
            [
                "sign_and_send_pubkey: signing failed: agent refused operation",
                "u@h: Permission denied (publickey).",
            ],
            "client.key_invalid",
        ),
        (  # OpenSSH 7.x -v: what an HTTP server answers, line by line before the close
            [
                "debug1: ssh_exchange_identification: HTTP/1.1 400 Bad Request",
                "debug1: ssh_exchange_identification: ",
                "ssh_exchange_identification: Connection closed by remote host",
            ],
            "proto.not_ssh",
        ),
        (  # ... and a throttling sshd of that time, which says why it refuses
            [
                "debug1: ssh_exchange_identification: Exceeded MaxStartups",
                "ssh_exchange_identification: read: Connection reset by peer",
            ],
            "proto.closed_early",
        ),
        (
            [
                "ssh_askpass: exec(/usr/bin/ssh-askpass): No such file or directory",
                "u@h: Permission denied (password).",
            ],
            "auth.no_method",
        ),
        (  # ProxyCommand nc ... on a machine without nc
            [
                "/bin/sh: 1: exec: nc: not found",
                "kex_exchange_identification: Connection closed by remote host",
                "Connection closed by UNKNOWN port 65535",
            ],
            "proxy.failed",
        ),
        (  # without -v: the hop shows only in its refused channel and "UNKNOWN port 65535"
            [
                "channel 0: open failed: administratively prohibited: open failed",
                "stdio forwarding failed",
                "kex_exchange_identification: Connection closed by remote host",
                "Connection closed by UNKNOWN port 65535",
            ],
            "proxy.failed",
        ),
        (  # an expired password (chage -d 0), met by BatchMode with no terminal to change it
            [
                'Authenticated to h ([192.0.2.1]:22) using "publickey".',
                "WARNING: Your password has expired.",
                "Password change required but no TTY available.",
            ],
            "account.expired",
        ),
        (  # the same from a client that gives no warning line first
            ["Password change required but no TTY available."],
            "account.expired",
        ),
    ],
)
def test_messages_of_other_versions_and_platforms(lines: list[str], cause: str) -> None:
    assert transcript.explain("\n".join(lines))["root_cause"]["id"] == cause


def test_a_failure_no_cause_explains_still_fails_with_its_line() -> None:
    """A fatal protocol error (a corrupted stream) is no cause of the catalog: the verdict
    is still "failed", and the line that says why is the final error shown."""
    line = (
        "ssh_dispatch_run_fatal: Connection to 192.0.2.9 port 22: "
        "message authentication code incorrect"
    )
    result = transcript.explain(f"debug1: Connection established.\n{line}\n")
    assert (result["verdict"], result["root_cause"]) == ("failed", None)
    assert result["details"]["final_error"] == line


@pytest.mark.parametrize(
    "line",
    [
        "Bad server host key: Invalid key length",
        "Server host key ssh-rsa not in HostKeyAlgorithms",
        "strict KEX violation: unexpected packet type 2 (seqnr 1)",
        "Can't open user config file /nope: No such file or directory",
        "Authentication failed.",
        "jumphost loop via bastion",
        "Corrupted MAC on input.",  # OpenSSH before 7.x: "message authentication code ..."
        "Bad packet length 1349676916.",
        "/home/u/.ssh/config line 4: keyword hostname extra arguments at end of line",
        "/home/u/.ssh/config line 5: Missing argument.",
    ],
)
def test_fatal_lines_without_a_cause_still_fail(line: str) -> None:
    """OpenSSH's fatal words that no cause of the catalog covers: a failure, with its line."""
    result = transcript.explain(line + "\n")
    assert (result["verdict"], result["root_cause"]) == ("failed", None)
    assert result["details"]["final_error"] == line


@pytest.mark.parametrize(
    "text, confidence, file",
    [
        (  # pam_nologin shows systemd's /run/nologin, even without -v
            "System is booting up. Unprivileged users are not permitted to log in yet. "
            "Please come back later. For technical details, see pam_nologin(8).\n\n"
            "Connection closed by 192.0.2.9 port 22\n",
            "high",
            "/run/nologin",
        ),
        (  # sshd's own check (UsePAM no) prints the file and exits 254; a PAM session
            # that cannot open exits 254 too, after the motd: in one stream, either may be
            'Authenticated to h ([192.0.2.9]:22) using "publickey".\n'
            "debug1: Sending command: true\n"
            "Back at 18:00\n"
            "debug1: Exit status 254\n",
            "medium",
            None,  # which of the two, only the probe (by the stream) or the server can say
        ),
        (  # the server accepts the key, shows an admin's text and hangs up (PAM)
            "debug1: Server accepts key: /home/u/.ssh/id_ed25519 ED25519 SHA256:abc explicit\n"
            "Back at 18:00\n\n"
            "Connection closed by 192.0.2.9 port 22\n",
            "medium",
            None,
        ),
        (  # the same after a password (keyboard-interactive's prompt)
            "(u@h) Password: \nBack at 18:00\n\nConnection closed by 192.0.2.9 port 22\n",
            "medium",
            None,
        ),
    ],
)
def test_a_nologin_file_is_account_nologin(text: str, confidence: str, file) -> None:
    result = transcript.explain(text)
    root = result["root_cause"]
    assert (root["id"], root["confidence"]) == ("account.nologin", confidence), root
    assert transcript.classify(transcript.parse(text)).facts.get("nologin_file") == file


def test_a_forced_command_from_authorized_keys_is_named_by_its_line() -> None:
    """sshd tells a -v client which authorized_keys line let it in and its options: a
    command= there is what ran instead of `true`."""
    text = (
        "debug1: Remote: /home/u/.ssh/authorized_keys:3: key options: agent-forwarding "
        "command port-forwarding pty user-rc x11-forwarding\n"
        'Authenticated to h ([192.0.2.9]:22) using "publickey".\n'
        "debug1: Sending command: true\n"
        "debug1: Exit status 1\n"
    )
    root = transcript.explain(text)["root_cause"]
    assert root["id"] == "account.nologin"
    assert "the command= of /home/u/.ssh/authorized_keys line 3" in " ".join(root["evidence"])


def test_a_hang_up_after_an_accepted_key_without_words_stays_unsure() -> None:
    """Without a text from the server the account stage's reason is a guess (low): PAM's
    account modules that refuse without a word (pam_access), not a refused key."""
    text = (
        "debug1: Server accepts key: /home/u/.ssh/id_ed25519 ED25519 SHA256:abc explicit\n"
        "debug3: send packet: type 50\n"
        "Connection closed by 192.0.2.9 port 22\n"
    )
    root = transcript.explain(text)["root_cause"]
    assert (root["id"], root["confidence"]) == ("account.not_allowed", "low")
    assert any("pam_access" in line for line in root["evidence"])


@pytest.mark.parametrize(
    "user, confidence",
    [("root", "medium"), ("toor", "low")],  # sshd applies PermitRootLogin to uid 0
)
def test_a_key_accepted_then_refused_is_no_refused_key(user: str, confidence: str) -> None:
    """ "Server accepts key" and then "Permission denied": the key is in authorized_keys;
    sshd refused the login it signed, which it does to a uid-0 user PermitRootLogin
    refuses."""
    text = (
        f"debug1: Authenticating to h:22 as '{user}'\n"
        "debug1: Offering public key: /home/u/.ssh/id_ed25519 ED25519 SHA256:abc explicit\n"
        "debug1: Server accepts key: /home/u/.ssh/id_ed25519 ED25519 SHA256:abc explicit\n"
        "debug1: Authentications that can continue: publickey\n"
        f"{user}@h: Permission denied (publickey).\n"
    )
    root = transcript.explain(text)["root_cause"]
    assert (root["id"], root["confidence"]) == ("account.root_denied", confidence), root


@pytest.mark.parametrize("status", ["142", "0"])
def test_a_cloud_images_root_key_names_the_user_to_log_in_as(status: str) -> None:
    """cloud-init's disable_root (cloudinit/ssh_util.py, DISABLE_USER_OPTS) puts
    command="echo 'Please login as the user \\"$USER\\" rather than the user \\"root\\".';
    echo;sleep 10;exit 142" on root's key; older releases end with the sleep (status 0, as
    if `true` ran). Either way the command never ran: log in as that user."""
    text = (
        "debug1: Authenticating to h:22 as 'root'\n"
        'Authenticated to h ([192.0.2.9]:22) using "publickey".\n'
        "debug1: Sending command: true\n"
        'Please login as the user "ubuntu" rather than the user "root".\n'
        "\n"
        f"debug1: Exit status {status}\n"
    )
    from runbook.explain import explain_text

    result = explain_text(text)
    root = result["root_cause"]
    assert (result["verdict"], root["id"]) == ("failed", "account.root_denied"), result
    assert root["fix"][0].startswith("ssh -p 22 ubuntu@h "), root["fix"]
    assert "disable_root" in root["explanation"]


def test_roots_session_dropped_at_once_names_permitrootlogin_too() -> None:
    """OpenSSH 9.2 under PermitRootLogin forced-commands-only tells the client it
    authenticated, then drops the connection: for root the evidence says so."""
    text = (
        "debug1: Authenticating to h:22 as 'root'\n"
        "debug1: Server accepts key: /root/.ssh/id_ed25519 ED25519 SHA256:abc explicit\n"
        'Authenticated to h ([192.0.2.9]:22) using "publickey".\n'
        "debug1: channel 0: new session [client-session] (inactive timeout: 0)\n"
        "debug2: channel 0: send open\n"
        "debug1: Sending command: true\n"
        "client_loop: send disconnect: Broken pipe\n"
    )
    root = transcript.explain(text)["root_cause"]
    assert root["id"] == "account.nologin"
    assert any("forced-commands-only" in line for line in root["evidence"]), root


@pytest.mark.parametrize(
    "lines, says",
    [
        (  # OpenSSH 8.8+ with an RSA key and a server older than 7.2
            [
                "debug1: Offering public key: /home/u/.ssh/id_rsa RSA SHA256:abc explicit",
                "debug1: send_pubkey_test: no mutual signature algorithm",
            ],
            "PubkeyAcceptedAlgorithms=+ssh-rsa",
        ),
        (  # a DSA key the client itself no longer offers
            [
                "debug1: Skipping ssh-dss key /home/u/.ssh/id_dsa - corresponding algorithm "
                "not in PubkeyAcceptedAlgorithms"
            ],
            "PubkeyAcceptedAlgorithms=+ssh-dss",
        ),
        (  # 8.5+: the server's server-sig-algs has no algorithm for the key's type
            [
                "debug1: Skipping ssh-rsa key /home/u/.ssh/id_rsa - corresponding algorithm "
                "not supported by server"
            ],
            "the server refuses ssh-rsa",
        ),
        (  # 8.5 to 8.9 said "algo"
            [
                "debug1: Skipping ssh-dss key /home/u/.ssh/id_dsa - corresponding algo not in "
                "PubkeyAcceptedAlgorithms"
            ],
            "PubkeyAcceptedAlgorithms=+ssh-dss",
        ),
        (  # before 8.5 the option was PubkeyAcceptedKeyTypes
            ["debug1: Skipping ssh-dss key /home/u/.ssh/id_dsa - not in PubkeyAcceptedKeyTypes"],
            "PubkeyAcceptedAlgorithms=+ssh-dss",
        ),
        (  # an ed25519 key a server's PubkeyAcceptedAlgorithms leaves out
            [
                "debug1: Offering public key: /home/u/.ssh/id_ed25519 ED25519 SHA256:abc",
                "debug1: send_pubkey_test: no mutual signature algorithm",
            ],
            "the server refuses ssh-ed25519",
        ),
    ],
)
def test_a_signature_algorithm_fix_names_the_algorithm(lines: list[str], says: str) -> None:
    """The fix allows the algorithm this key needs, not always ssh-rsa; one the server
    refuses is the server's to allow."""
    text = "\n".join([*lines, "u@h: Permission denied (publickey)."]) + "\n"
    root = transcript.explain(text)["root_cause"]
    fixes = catalog.render(root["id"], **transcript.classify(transcript.parse(text)).facts).fix
    assert root["id"] == "auth.sig_alg"
    assert any(says in line for line in fixes), fixes
    assert sum("PubkeyAcceptedAlgorithms=+" in line for line in fixes) == (says[0] == "P")


def test_a_refused_root_password_says_what_openssh_does_to_it() -> None:
    """As root a right password is refused too (PermitRootLogin prohibit-password, the
    default): the evidence says so, for root only."""
    for user, said in (("root", True), ("alice", False)):
        text = (
            f"debug1: Authenticating to h:22 as '{user}'\n"
            "debug1: Next authentication method: password\n"
            "Permission denied, please try again.\n"
            f"{user}@h: Permission denied (publickey,password).\n"
        )
        root = transcript.explain(text)["root_cause"]
        assert root["id"] == "auth.password_rejected"
        assert any("PermitRootLogin" in line for line in root["evidence"]) is said


def test_a_session_that_drops_after_login_is_a_working_login() -> None:
    text = (
        'Authenticated to h ([192.0.2.1]:22) using "publickey".\n'
        "client_loop: send disconnect: Broken pipe\n"
    )
    result = transcript.explain(text)
    assert result["verdict"] == "ok"
    assert (
        "later the session dropped (client_loop: send disconnect: Broken pipe)" in (result["note"])
    )


@pytest.mark.parametrize(
    "seconds, verdict",
    [("0.0", "failed"), ("3605.2", "ok")],
)
def test_a_shell_the_server_ends_at_once_is_no_working_login(seconds: str, verdict) -> None:
    """ "Exit status -1" (no exit status came) after an interactive session: a server that
    closed it as it started refused it; one that closed it an hour later ended a working
    one (a reboot)."""
    text = (
        'Authenticated to h ([192.0.2.9]:22) using "publickey".\n'
        "debug1: channel 0: new session [client-session] (inactive timeout: 0)\n"
        "debug1: Entering interactive session.\n"
        "Connection to h closed by remote host.\n"
        "Connection to h closed.\n"
        f"Transferred: sent 2964, received 2268 bytes, in {seconds} seconds\n"
        "debug1: Exit status -1\n"
    )
    result = transcript.classify(transcript.parse(text))
    assert result.verdict == verdict
    if verdict == "failed":
        assert (result.cause_id, result.confidence) == ("account.nologin", "medium")
    else:
        assert "the server ended it" in result.facts["note"]


def test_explain_says_a_working_first_login_is_ok() -> None:
    """Plain ssh prints nothing on success but the host key it added: exit 0, with the
    note, not "no ssh output"."""
    text = (
        "Warning: Permanently added '192.0.2.4' (ED25519) to the list of known hosts.\n"
        " 10:11:12 up 12 days,  3:04,  0 users,  load average: 0.00, 0.01, 0.00\n"
    )
    proc = _explain_cli("-", "--json", stdin=text.encode())
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert (result["verdict"], result["root_cause"]) == ("ok", None)
    assert "added it to known_hosts" in result["note"]


def test_mistyped_names_say_what_ssh_wanted() -> None:
    """A port typed into the name, or an IPv6 address in brackets: the cause is the name
    not resolving, and the evidence says how ssh wants it written."""
    for name, says in (("web:2222", "-p PORT"), ("[2001:db8::7]", "without brackets")):
        result = transcript.explain(
            f"ssh: Could not resolve hostname {name}: Name or service not known\n"
        )
        assert result["root_cause"]["id"] == "dns.unresolved"
        assert says in " ".join(result["root_cause"]["evidence"])


def test_a_refused_session_without_a_hop_is_no_proxy_failure() -> None:
    """ "channel 0: open failed" after logging in to the target itself (MaxSessions 0, a
    refused session) is the target's doing: no jump host is blamed."""
    text = (
        'Authenticated to 192.0.2.9 ([192.0.2.9]:22) using "publickey".\n'
        "debug1: Entering interactive session.\n"
        "channel 0: open failed: connect failed: open failed\n"
    )
    result = transcript.explain(text)
    assert result["verdict"] == "failed" and result["root_cause"] is None
    assert "open failed" in result["details"]["final_error"]


def test_text_that_is_not_a_transcript_is_unknown() -> None:
    result = transcript.explain("hello\nthis is a shopping list\n")
    assert (result["verdict"], result["root_cause"]) == ("unknown", None)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.one_of(
            st.text(max_size=200),
            st.sampled_from([r.needle for r in transcript.RULES]),
            st.builds(
                lambda r, t: f"debug1: {r.needle}{t}",
                st.sampled_from(transcript.RULES),
                st.text(max_size=60),
            ),
        ),
        max_size=60,
    )
)
def test_fuzz_never_raises(parts: list[str]) -> None:
    result = transcript.explain("\n".join(parts))
    assert result["verdict"] in ("ok", "failed", "unknown")


def _explain_cli(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "runbook", "explain", *args],
        input=stdin,
        capture_output=True,
        timeout=60,
    )


def test_explain_command_prints_the_contracts_json(lab, tmp_path) -> None:
    saved = tmp_path / "ssh.txt"
    saved.write_text(live(lab, "kex-mismatch", "-vvv"))
    proc = _explain_cli(str(saved), "--json", "--lang", "ja")
    assert proc.returncode == 1, proc.stderr
    result = json.loads(proc.stdout)
    assert set(result) >= {"verdict", "root_cause", "client_version", "server_version", "phases"}
    root = result["root_cause"]
    assert root["id"] == "kex.no_common_alg" and root["confidence"] == "high"
    assert any("KexAlgorithms=+diffie-hellman-group1-sha1" in line for line in root["fix"])
    assert "アルゴリズム" in root["title"]
    healthy = _explain_cli("-", stdin=live(lab, "healthy", "-v").encode())
    assert healthy.returncode == 0 and "verdict: ok" in healthy.stdout.decode()


@pytest.mark.parametrize(
    ("args", "stdin", "says"),
    [
        (["/no/such/transcript.txt"], b"", "does not exist"),
        (["/"], b"", "is a directory"),
        (["/dev/null"], b"", "no ssh output"),  # a pipe or device is read, as a file is
        (["-"], b"\x00\x01binary\x00" * 100, "binary"),
        (["-"], b"just some notes\nnothing from ssh here\n", "no ssh output"),
    ],
)
def test_explain_bad_input_is_one_line_and_exit_2(args, stdin, says) -> None:
    proc = _explain_cli(*args, stdin=stdin)
    err = proc.stderr.decode()
    assert proc.returncode == 2 and says in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert proc.stdout == b""


@pytest.mark.parametrize("encoding", ["utf-16", "utf-8-sig"])
def test_a_transcript_saved_by_windows_is_read(encoding: str) -> None:
    """PowerShell 5 saves `ssh -vvv host 2> file` as UTF-16, Notepad adds a BOM."""
    text = (
        "OpenSSH_for_Windows_8.1p1, LibreSSL 3.0.2\r\n"
        "ssh: connect to host h port 22: Connection refused\r\n"
    )
    proc = _explain_cli("-", "--json", stdin=text.encode(encoding))
    result = json.loads(proc.stdout)
    assert result["client_version"] == "OpenSSH_for_Windows_8.1p1"
    assert result["root_cause"]["id"] == "port.refused"


CORPUS = Path(__file__).parent / "data" / "transcripts"


def _corpus() -> list[Path]:
    return sorted(CORPUS.glob("*.txt"))


def _split_header(text: str, keys: set[str]) -> tuple[dict[str, str], str]:
    """A documented transcript's leading ``# key: value`` lines (of ``keys``), and its body."""
    header, body = {}, []
    for line in text.splitlines(keepends=True):
        key, sep, value = line[2:].partition(": ")
        if not body and line.startswith("# ") and sep and key in keys:
            header[key] = value.strip()
        else:
            body.append(line)
    return header, "".join(body)


def _header(path: Path) -> tuple[dict[str, str], str]:
    return _split_header(path.read_text(), HEADER_KEYS)


HEADER_KEYS = {"source", "platform", "expected", "confirmed"}


def test_corpus_is_documented() -> None:
    assert len(_corpus()) >= 12
    for path in _corpus():
        header, body = _header(path)
        assert set(header) == HEADER_KEYS, path.name
        assert header["source"].startswith("https://"), path.name
        assert body.strip()


@pytest.mark.parametrize("path", _corpus(), ids=lambda p: p.stem)
def test_real_world_transcripts(path: Path) -> None:
    header, body = _header(path)
    result = transcript.explain(body)
    expected = header["expected"]
    if expected == "ok":
        assert result["verdict"] == "ok"
    else:
        got = result["root_cause"]["id"] if result["root_cause"] else None
        assert got == expected, json.dumps(result, indent=1)[:2000]


AUDIT = Path(__file__).parent / "data" / "audit"
AUDIT_KEYS = {"audit", "expected", "confidence", "says"}


def _audit_case(path: Path) -> tuple[dict[str, str], str]:
    """An audit transcript's header and its body, line endings kept (CRLF is a case)."""
    return _split_header(path.read_bytes().decode("utf-8"), AUDIT_KEYS)


@pytest.mark.parametrize("path", sorted(AUDIT.glob("*.txt")), ids=lambda p: p.stem)
def test_audit_transcripts(path: Path) -> None:
    """The audit's transcripts: the verdict, the cause and how sure it is; what ssh shows
    after a working login (a dropped session) is said in the note of an "ok"."""
    header, body = _audit_case(path)
    assert {"audit", "expected", "confidence"} <= set(header), path.name
    result = transcript.explain(body)
    root = result["root_cause"]
    if header["expected"] == "ok":
        assert (result["verdict"], root) == ("ok", None), json.dumps(result, indent=1)[:2000]
        said = [result.get("note") or ""]
    else:
        got = (root["id"], root["confidence"]) if root else None
        assert got == (header["expected"], header["confidence"]), json.dumps(result)[:3000]
        said = root["evidence"]
    if "says" in header:
        assert any(header["says"] in line for line in said), said


def test_details_follow_the_connection_step_by_step(lab) -> None:
    healthy = transcript.explain(live(lab, "healthy", "-vvv"))["details"]
    target = lab.targets["healthy"]
    assert healthy["connect"]["port"] == str(target.port) and healthy["connect"]["established"]
    assert healthy["local_version"].startswith("SSH-2.0-OpenSSH_")
    assert healthy["kex"]["algorithm"] and healthy["kex"]["host_key_algorithm"]
    assert healthy["host_key"]["fingerprint"].startswith("SHA256:")
    assert healthy["host_key"]["known_hosts"].startswith(target.known_hosts + ":")
    assert healthy["keys"][-1]["outcome"] == "accepted"
    assert (healthy["authenticated"], healthy["exit_status"], healthy["final_error"]) == (
        True,
        0,
        None,
    )
    many = transcript.explain(live(lab, "too-many-failures", "-vvv"))["details"]
    assert [k["outcome"] for k in many["keys"]] == ["refused"] * len(many["keys"])
    assert len(many["keys"]) >= 2 and "Too many authentication failures" in many["final_error"]
    bare = transcript.explain(live(lab, "no-method", "-vvv"))["details"]
    assert bare["keys"] == [] and bare["auth_methods"] == "publickey"


def test_notebook_view_marks_the_decisive_lines(lab) -> None:
    from runbook.explain import explain_text, highlight_html

    text = live(lab, "key-perms", "-vvv") + "<script>alert(1)</script>\n"
    result = explain_text(text)
    page = highlight_html(text, result)
    marks = page.count("<mark")
    assert marks == len([e for e in result["root_cause"]["evidence"] if e.startswith("line ")])
    assert "UNPROTECTED PRIVATE KEY FILE" in page and "lines …" in page
    assert "<script>" not in page  # the transcript is escaped, never markup


_LOGGED_IN = (
    'Authenticated to h ([192.0.2.9]:22) using "publickey".\n'
    "debug1: channel 0: new session [client-session] (inactive timeout: 0)\n"
    "debug2: channel 0: send open\n"
)
_CONFIRMED = "debug2: channel_input_open_confirmation: channel 0: callback start\n"


@pytest.mark.parametrize(
    "tail, verdict, note",
    [
        # MaxSessions 0: the server refuses the session channel itself.
        ("channel 0: open failed: connect failed: open failed\n", "failed", "MaxSessions 0"),
        (
            _CONFIRMED + "debug1: Sending command: true\nexec request failed on channel 0\n",
            "failed",
            "exec request",
        ),
        # ChrootDirectory the session cannot enter: the server dies before confirming.
        ("client_loop: send disconnect: Broken pipe\n", "failed", "ChrootDirectory"),
        (
            _CONFIRMED + "debug1: Sending command: true\n"
            "Connection to h closed by remote host.\ndebug1: Exit status -1\n",
            "failed",
            "without an exit status",
        ),
        # An interactive session that worked for hours, then the network dropped it.
        (
            _CONFIRMED + "debug2: channel 0: request shell confirm 1\n"
            "client_loop: send disconnect: Broken pipe\n",
            "ok",
            None,
        ),
        # A -L forward whose far end refused: the login itself worked.
        (
            _CONFIRMED + "debug1: Sending command: true\n"
            "channel 1: open failed: connect failed: Connection refused\ndebug1: Exit status 0\n",
            "ok",
            None,
        ),
    ],
)
def test_a_session_the_server_refuses_after_login(tail: str, verdict: str, note) -> None:
    """Authenticated, then no session: the verdict is failed (the login does not work),
    named account.nologin with what the server refused; a login that worked stays ok."""
    result = transcript.classify(transcript.parse(_LOGGED_IN + tail))
    assert result.verdict == verdict, result
    if note:
        assert (result.cause_id, result.confidence) == ("account.nologin", "medium")
        assert note in result.facts["note"], result.facts["note"]


@pytest.mark.parametrize(
    "error, local",
    [
        ("Host is down", False),  # BSD and macOS: no answer on the local network
        ("Operation not permitted", True),  # this machine's own output rules (a BPF filter)
        ("Permission denied", True),  # or a security policy
    ],
)
def test_connect_errors_of_other_systems_and_of_this_machine(error: str, local: bool) -> None:
    text = (
        "debug1: Connecting to h [192.0.2.9] port 22.\n"
        f"debug1: connect to address 192.0.2.9 port 22: {error}\n"
        f"ssh: connect to host h port 22: {error}\n"
    )
    result = transcript.classify(transcript.parse(text))
    assert (result.verdict, result.cause_id) == ("failed", "net.no_route")
    assert (result.facts.get("local_block") == error) is local
    root = catalog.render("net.no_route", **result.facts)
    assert ("This machine refuses to send" in root.title) is local
    assert any("firewall-cmd" in line for line in root.fix) is not local  # not the server's


def test_the_line_ssh_could_not_read_is_the_error_not_its_summing_up() -> None:
    result = transcript.explain(
        "/home/u/.ssh/config: line 3: Bad configuration option: identityfle\n"
        "/home/u/.ssh/config: terminating, 1 bad configuration options\n"
    )
    assert result["verdict"] == "failed"
    assert result["details"]["final_error"].endswith("Bad configuration option: identityfle")


def test_permission_denied_with_no_method_at_all_is_no_method() -> None:
    """ "Permission denied ()": the server allows nothing, whatever the client holds."""
    result = transcript.classify(
        transcript.parse(
            "debug1: Offering public key: /home/u/.ssh/id_ed25519 ED25519 SHA256:abc explicit\n"
            "debug1: Authentications that can continue: \nu@h: Permission denied ().\n"
        )
    )
    assert (result.cause_id, result.confidence) == ("auth.no_method", "high")
    assert "no authentication method at all" in result.facts["note"]


def test_a_password_typed_at_the_keyboard_interactive_prompt_and_refused() -> None:
    """The prompts a terminal shows ("(u@h) Password:" of 8.x+, "u@h's password:") prove
    that a password was asked for and given: its refusal is the cause, not the key refused
    before it."""
    text = (
        "debug1: Offering public key: /home/u/.ssh/id_ed25519 ED25519 SHA256:abc\n"
        "debug1: Authentications that can continue: publickey,keyboard-interactive\n"
        "debug1: Next authentication method: keyboard-interactive\n"
        "(u@web1) Password: \n"
        "debug1: Authentications that can continue: publickey,keyboard-interactive\n"
        "(u@web1) Password: \n"
        "u@web1: Permission denied (publickey,keyboard-interactive).\n"
    )
    result = transcript.classify(transcript.parse(text))
    assert (result.cause_id, result.confidence) == ("auth.password_rejected", "high")


@pytest.mark.parametrize(
    "lines, cause, says",
    [
        (  # keys offered and passwords refused: the passwords failed, the keys used up tries
            [
                "debug1: Offering public key: /home/u/.ssh/id_rsa RSA SHA256:abc agent",
                "debug1: Offering public key: /home/u/.ssh/id_ed25519 ED25519 SHA256:def agent",
                "debug1: Next authentication method: password",
                "u@h's password: ",
                "Permission denied, please try again.",
                "u@h's password: ",
                "Received disconnect from 192.0.2.9 port 22:2: Too many authentication failures",
            ],
            "auth.password_rejected",
            "the 2 key(s) offered before counted too",
        ),
        (  # keys alone: MaxAuthTries was spent on them
            [
                "debug1: Offering public key: /home/u/.ssh/id_rsa RSA SHA256:abc agent",
                "Received disconnect from 192.0.2.9 port 22:2: Too many authentication failures",
            ],
            "auth.too_many_failures",
            None,
        ),
        (  # pam_tally2's words: the lock, not the password, refused the login
            [
                "(u@h) Account locked due to 4 failed logins",
                "Password: ",
                "u@h: Permission denied (keyboard-interactive).",
            ],
            "account.locked",
            "pam_faillock, pam_tally2",
        ),
        (  # AuthenticationMethods password,publickey: the password worked, no key followed
            [
                "u@h's password: ",
                'Authenticated using "password" with partial success.',
                "u@h: Permission denied (publickey).",
            ],
            "auth.no_method",
            "password was accepted",
        ),
    ],
)
def test_passwords_refused_and_the_limits_on_them(lines: list[str], cause: str, says) -> None:
    """Typed passwords that MaxAuthTries cut off are refused passwords (keys offered before
    only used up tries); a lock PAM announces is the cause; a password that was accepted
    with partial success is none."""
    root = transcript.explain("\n".join(lines) + "\n")["root_cause"]
    assert root["id"] == cause, root
    if says:
        assert any(says in line for line in root["evidence"]), root["evidence"]


@pytest.mark.parametrize(
    "lines, confidence",
    [
        (  # asked once: wrong (NumberOfPasswordPrompts=1), not given, or right and refused
            [
                "Enter passphrase for key '/home/u/.ssh/id_rsa': ",
                "u@h: Permission denied (publickey).",
            ],
            "medium",
        ),
        (  # -vvv says it was wrong
            [
                "Enter passphrase for key '/home/u/.ssh/id_rsa': ",
                "debug2: bad passphrase given, try again...",
                "u@h: Permission denied (publickey).",
            ],
            "high",
        ),
        (  # the key named on the command line, with no terminal to ask on
            [
                'Load key "/home/u/.ssh/id_rsa": incorrect passphrase supplied to decrypt '
                "private key",
                "u@h: Permission denied (publickey).",
            ],
            "high",
        ),
    ],
)
def test_a_passphrase_that_fails_is_a_key_that_cannot_be_loaded(lines, confidence) -> None:
    result = transcript.classify(transcript.parse("\n".join(lines) + "\n"))
    assert (result.cause_id, result.confidence) == ("client.key_invalid", confidence)
    assert result.facts["identity_file"] == "/home/u/.ssh/id_rsa"


_CHANGED = [
    "@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @",
    "Offending ED25519 key in /home/u/.ssh/known_hosts:14",
    "Host key for web has changed and you have requested strict checking.",
    "Host key verification failed.",
]


@pytest.mark.parametrize(
    "lines, cause",
    [
        (  # two runs pasted without their prompts: the key was removed and accepted anew
            [
                *_CHANGED,
                "The authenticity of host 'web (192.0.2.9)' can't be established.",
                "Are you sure you want to continue connecting (yes/no/[fingerprint])? yes",
                "Warning: Permanently added 'web' (ED25519) to the list of known hosts.",
                "u@web: Permission denied (publickey).",
            ],
            "auth.key_rejected",
        ),
        (  # the same warning not accepted is the cause
            [
                "Warning: the ED25519 host key for 'web' differs from the key for the IP "
                "address '192.0.2.9'",
                "Offending key for IP in /home/u/.ssh/known_hosts:21",
                "Matching host key in /home/u/.ssh/known_hosts:40",
                "Are you sure you want to continue connecting (yes/no)? no",
                "Host key verification failed.",
            ],
            "hostkey.changed",
        ),
        (  # two ssh -v runs: the first on the wrong port, the second refused the key
            [
                "OpenSSH_9.6p1 Ubuntu-3ubuntu13.5, OpenSSL 3.0.13 30 Jan 2024",
                "debug1: Connecting to web [192.0.2.9] port 22.",
                "ssh: connect to host web port 22: Connection refused",
                "OpenSSH_9.6p1 Ubuntu-3ubuntu13.5, OpenSSL 3.0.13 30 Jan 2024",
                "debug1: Connecting to web [192.0.2.9] port 2222.",
                "debug1: Offering public key: /home/u/.ssh/id_ed25519 ED25519 SHA256:abc",
                "u@web: Permission denied (publickey).",
            ],
            "auth.key_rejected",
        ),
        (  # a ProxyJump hop's ssh -v prints a version line of its own: the same attempt
            [
                "OpenSSH_9.6p1 Ubuntu-3ubuntu13.5, OpenSSL 3.0.13 30 Jan 2024",
                "debug1: Setting implicit ProxyCommand from ProxyJump: ssh -v -W '[%h]:%p' bastion",
                "OpenSSH_9.6p1 Ubuntu-3ubuntu13.5, OpenSSL 3.0.13 30 Jan 2024",
                "ssh: Could not resolve hostname bastion: Name or service not known",
                "kex_exchange_identification: Connection closed by remote host",
                "Connection closed by UNKNOWN port 65535",
            ],
            "proxy.failed",
        ),
    ],
)
def test_a_paste_of_several_attempts_is_judged_by_the_last(lines: list[str], cause: str) -> None:
    """A new version line or shell prompt starts a new attempt, and a host key warning the
    user accepted (or one before a key ssh added) is no longer the cause."""
    result = transcript.classify(transcript.parse("\n".join(lines) + "\n"))
    assert result.cause_id == cause, result
    if "port 2222." in "\n".join(lines):
        assert result.facts["port"] == 2222


@pytest.mark.parametrize(
    "lines, cause",
    [
        (["Connection closed by 192.0.2.9 port 22"], "proto.closed_early"),
        (["Connection reset by 192.0.2.9 port 22"], "proto.closed_early"),
        (  # -v without the kex_exchange_identification line (a cut paste): the same
            [
                "debug1: Connecting to h [192.0.2.9] port 22.",
                "debug1: Connection established.",
                "debug1: identity file /home/u/.ssh/id_ecdsa type -1",
                "debug1: Local version string SSH-2.0-OpenSSH_9.6p1 Ubuntu-3ubuntu13.5",
                "Connection closed by 192.0.2.9 port 22",
            ],
            "proto.closed_early",
        ),
        # After a banner, a host key or a prompt the close is no banner exchange's.
        (
            [
                "debug1: Remote protocol version 2.0, remote software version OpenSSH_9.6p1",
                "Connection closed by 192.0.2.9 port 22",
            ],
            None,
        ),
        (
            [
                "Warning: Permanently added '192.0.2.9' (ED25519) to the list of known hosts.",
                "Connection closed by 192.0.2.9 port 22",
            ],
            None,
        ),
        # A ProxyCommand's pipe: the hop's doing, not the target's.
        (["Connection closed by UNKNOWN port 65535"], None),
    ],
)
def test_a_bare_close_is_a_close_before_the_banner(lines: list[str], cause) -> None:
    """OpenSSH 9.5+ without -v prints only "Connection closed by HOST port N" when the
    server hangs up before its banner: that (medium), when nothing shows it got further."""
    result = transcript.classify(transcript.parse("\n".join(lines) + "\n"))
    assert (result.verdict, result.cause_id) == ("failed", cause), result
    if cause:
        assert result.confidence == "medium"


@pytest.mark.parametrize(
    "lines, cause, confidence",
    [
        (  # 9.6 kex.c kex_exchange_identification: error_f("read: %.100s", strerror(errno)),
            # then sshconnect.c sshpkt_fatal(ssh, r, "banner exchange") (packet.c logdie_r)
            [
                "debug1: Connection established.",
                "kex_exchange_identification: read: Connection timed out",
                "banner exchange: Connection to 192.0.2.9 port 22: Connection timed out",
            ],
            "net.timeout",
            "medium",
        ),
        (  # 7.4 sshconnect.c ssh_exchange_identification: fatal("...: read: %.100s", ...)
            ["ssh_exchange_identification: read: Connection timed out"],
            "net.timeout",
            "medium",
        ),
        (  # 8.0 kex.c: error("%s: write: %.100s", __func__, strerror(errno)), then exit
            ["kex_exchange_identification: write: Broken pipe"],
            "proto.closed_early",
            "high",
        ),
        (  # 9.6 without -v: the write error is debug_f, the "banner exchange" line is all
            ["banner exchange: Connection to 192.0.2.9 port 22: Broken pipe"],
            "proto.closed_early",
            "high",
        ),
    ],
)
def test_a_system_error_in_the_banner_exchange_is_named(lines, cause, confidence) -> None:
    """TCP connected, then read or write failed before the server's banner: a timeout is
    packets dropped after the handshake, a broken pipe a server that hung up (was: unknown)."""
    result = transcript.classify(transcript.parse("\n".join(lines) + "\n"))
    assert (result.verdict, result.cause_id, result.confidence) == ("failed", cause, confidence)
    assert result.decisive_lines[-1] == (len(lines), lines[-1])
    if cause == "net.timeout":
        assert result.facts["cut_after_connect"] == "Connection timed out"
        assert result.facts.get("port", 22) == 22
        # Not "nothing answered": the catalog's variant for a connection accepted, then cut.
        for lang in ("en", "ja"):
            root = catalog.render("net.timeout", lang, **result.facts)
            assert "TCP" in root.title and "Connection timed out" in root.explanation
            assert root.fix[0].startswith("nc -v -w 5 ")


def test_an_openssh_7_accepted_key_is_the_key_offered_before_it() -> None:
    """7.4 sshconnect2.c logs debug("Server accepts key: pkalg %s blen %u", ...), without the
    key's file; that is the one of the "Offering %s public key: %s" line before it."""
    text = (
        "OpenSSH_7.4p1, OpenSSL 1.0.2k-fips  26 Jan 2017\n"
        "debug1: Authenticating to h:22 as 'root'\n"
        "debug1: Offering RSA public key: /root/.ssh/id_rsa\n"
        "debug1: Server accepts key: pkalg rsa-sha2-512 blen 279\n"
        "debug1: Authentications that can continue: publickey,password\n"
        "Permission denied (publickey,password).\n"
    )
    result = transcript.classify(transcript.parse(text))
    assert result.cause_id == "account.root_denied"
    assert result.facts["identity_file"] == "/root/.ssh/id_rsa"


def test_a_windows_key_others_may_read_is_named_without_a_mode() -> None:
    """Win32-OpenSSH (PowerShell/openssh-portable v9.5.0.0 authfile.c sshkey_perm_ok) says
    error("Permissions for '%s' are too open.", filename): an ACL, no octal mode."""
    line = "Permissions for 'C:\\\\Users\\\\x/.ssh/id_ed25519' are too open."
    text = (
        "OpenSSH_for_Windows_9.5p1, LibreSSL 3.8.2\r\n"
        "@         WARNING: UNPROTECTED PRIVATE KEY FILE!          @\r\n"
        f"{line}\r\n"
        "This private key will be ignored.\r\n"
        "x@h: Permission denied (publickey).\r\n"
    )
    result = transcript.classify(transcript.parse(text))
    assert result.cause_id == "client.key_perms"
    assert result.facts["identity_file"] == "C:\\Users\\x/.ssh/id_ed25519"
    assert "mode" not in result.facts  # the fix says "an ACL", not a mode
    assert (3, line) in result.decisive_lines


def test_an_expired_host_certificate_is_why_the_plain_key_is_unknown() -> None:
    """9.6 sshconnect.c check_host_key: error("%s", fail_reason) with sshkey.c's "Certificate
    invalid: expired", then debug("No matching CA found. Retry with plain key"), which
    known_hosts (a @cert-authority line) does not hold."""
    text = (
        "debug1: Host 'h' is known and matches the ED25519-CERT host certificate.\n"
        "debug1: Found CA key in /home/u/.ssh/known_hosts:1\n"
        "Certificate invalid: expired\n"
        "debug1: No matching CA found. Retry with plain key\n"
        "No ED25519 host key is known for h and you have requested strict checking.\n"
        "Host key verification failed.\n"
    )
    result = transcript.classify(transcript.parse(text))
    assert result.cause_id == "hostkey.unknown"
    assert (3, "Certificate invalid: expired") in result.decisive_lines
    assert "host certificate was refused (expired)" in result.facts["note"]


# OpenSSH 10.0's ssh.c logs its version with debug() (before: unprefixed) and then
# debug3("Started with: %s", args), misc.c's argv_assemble quoting words with blanks.
_V10 = "debug1: OpenSSH_10.0p2, OpenSSL 3.5.0 8 Apr 2025\n"


def test_openssh_10_names_the_command_it_was_started_with() -> None:
    """The alias, -i and -p of a 10.0 -vvv transcript come from its own "Started with" (a
    jump host's ssh logs its own next); ProxyCommand=none is no hop."""
    text = (
        _V10 + 'debug3: Started with: ssh -vvv -i /home/u/.ssh/id_work -o "ProxyCommand=none" '
        "-J admin@bastion prod\n"
        "debug1: Setting implicit ProxyCommand from ProxyJump: ssh -l admin -vvv -W '[%h]:%p' "
        "bastion\n" + _V10 + "debug3: Started with: ssh -l admin -vvv -W [prod]:22 bastion\n"
        "ssh: Could not resolve hostname bastion: Name or service not known\n"
        "kex_exchange_identification: Connection closed by remote host\n"
        "Connection closed by UNKNOWN port 65535\n"
    )
    result = transcript.explain(text)
    assert result["client_version"] == "OpenSSH_10.0p2"
    assert result["root_cause"]["id"] == "proxy.failed"
    facts = result["facts"]
    assert (facts["alias"], facts["jump"]) == ("prod", "admin@bastion")
    assert facts["identity_file"] == "/home/u/.ssh/id_work" and "proxy_command" not in facts


@pytest.mark.parametrize(
    "text, stops",
    [
        (  # cut after the TCP connection: no error, no login
            "OpenSSH_9.6p1 Ubuntu-3ubuntu13.5, OpenSSL 3.0.13 30 Jan 2024\n"
            "debug1: Connecting to h [192.0.2.9] port 22.\n"
            "debug1: Connection established.\n",
            "after line 3 (debug1: Connection established.)",
        ),
        (_V10, "after line 1"),  # ssh -v of 10.0 stopped at once (or `ssh -V` of older ones)
    ],
)
def test_a_transcript_cut_short_says_where_it_stops(text: str, stops: str) -> None:
    proc = _explain_cli("-", stdin=text.encode())
    out = proc.stdout.decode()
    assert proc.returncode == 1 and "verdict: unknown" in out, out
    assert f"the transcript stops {stops}" in out and "cut short" in out


# The key exchange sent, its reply never back (kex.c / kexgen.c: debug("expecting %s")).
_KEX_SENT = (
    "OpenSSH_9.2p1 Debian-2+deb12u3, OpenSSL 3.0.13 30 Jan 2024\n"
    "debug1: Connecting to 192.0.2.9 [192.0.2.9] port 22.\n"
    "debug1: Connection established.\n"
    "debug1: Local version string SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\n"
    "debug1: Remote protocol version 2.0, remote software version OpenSSH_9.6p1 Ubuntu-3ubuntu13\n"
    "debug1: Authenticating to 192.0.2.9:22 as 'ops'\n"
    "debug1: SSH2_MSG_KEXINIT sent\n"
    "debug1: SSH2_MSG_KEXINIT received\n"
    "debug1: kex: algorithm: sntrup761x25519-sha512@openssh.com\n"
    "debug1: kex: host key algorithm: ssh-ed25519\n"
    "debug1: expecting SSH2_MSG_KEX_ECDH_REPLY\n"
)


@pytest.mark.parametrize(
    "end",
    [
        "Connection closed by 192.0.2.9 port 22\n",  # the server's LoginGraceTime, 2 minutes on
        "Connection reset by 192.0.2.9 port 22\n",  # a middlebox
        "Timeout, server 192.0.2.9 not responding.\n",  # ServerAliveInterval
        "ssh_dispatch_run_fatal: Connection to 192.0.2.9 port 22: Connection timed out\n",
        "",  # cut there: ssh stopped while it waited (runbook's own bounded run, Ctrl-C)
    ],
)
def test_a_key_exchange_reply_that_never_comes_is_a_path_losing_large_packets(end) -> None:
    """TCP and the banners pass, the server's KEX reply (its first large packet, over 1 KB
    with sntrup761) never arrives: an MTU black hole or a middlebox, net.timeout with the
    path-MTU test and a smaller key exchange as the fix (was: no cause at all)."""
    result = transcript.classify(transcript.parse(_KEX_SENT + end))
    assert result.cause_id == "net.timeout", (end, result)
    assert (11, "debug1: expecting SSH2_MSG_KEX_ECDH_REPLY") in result.decisive_lines
    assert result.facts["kex_stall"] == "SSH2_MSG_KEX_ECDH_REPLY"
    root = catalog.render("net.timeout", "en", **result.facts)
    assert root.fix[0].startswith("ping -M do -s 1472 -c 3 192.0.2.9")
    assert "KexAlgorithms=curve25519-sha256" in root.fix[1]
    assert "sntrup761x25519-sha512@openssh.com" in root.explanation


def test_a_key_exchange_that_got_its_reply_is_no_stall() -> None:
    """The reply came (its host key) and a corrupted stream ended the connection: that is
    no lost packet, and no cause of the catalog."""
    text = _KEX_SENT + (
        "debug1: SSH2_MSG_KEX_ECDH_REPLY received\n"
        "debug1: Server host key: ssh-ed25519 SHA256:W3+TwZpBcX8CNeYBxlhblnGiCsb1/0EaHTtnbPnQsG8\n"
        "ssh_dispatch_run_fatal: Connection to 192.0.2.9 port 22: message authentication code "
        "incorrect\n"
    )
    result = transcript.classify(transcript.parse(text))
    assert result.cause_id is None and result.verdict == "failed"
    corrupted = _KEX_SENT + (
        "ssh_dispatch_run_fatal: Connection to 192.0.2.9 port 22: incorrect signature\n"
    )
    assert transcript.classify(transcript.parse(corrupted)).cause_id is None


@pytest.mark.parametrize(
    "last",
    [
        "Unexpected authentication success during publickey.",
        "mux_client_request_session: read from master failed: Broken pipe",
    ],
)
def test_fatal_lines_without_a_cause_are_failures_not_cut_short(last: str) -> None:
    """A server that breaks authentication's protocol, a ControlMaster that died: ssh
    failed (its last line says how), not a transcript cut short."""
    text = (
        "OpenSSH_9.6p1, OpenSSL 3.0.13 30 Jan 2024\n"
        "debug1: Connecting to h [192.0.2.9] port 22.\n"
        "debug1: Connection established.\n"
        f"{last}\n"
    )
    from runbook.explain import explain_text

    result = explain_text(text)
    assert (result["verdict"], result["root_cause"]) == ("failed", None)
    assert last.rstrip(".") in result["details"]["final_error"]
