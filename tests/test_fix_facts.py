"""The fix a transcript gets names what the transcript shows: the host, port and user
ssh printed, the host key entry to remove, the algorithm to allow, the jump host. Where a
value is truly absent the text says it in general words, never as a ``<placeholder>``."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from runbook import catalog
from runbook.explain import explain_text
from tests.conftest import require_lab

CASES = Path(__file__).parent / "data" / "fixes"
HEADER_KEYS = {"case", "expected", "fix", "no-fix", "says"}
PLACEHOLDER = re.compile(r"<[a-z_]+>")


def _case(path: Path) -> tuple[dict[str, list[str]], str]:
    header: dict[str, list[str]] = {}
    body: list[str] = []
    for line in path.read_text().splitlines(keepends=True):
        key, sep, value = line[2:].partition(": ")
        if not body and line.startswith("# ") and sep and key in HEADER_KEYS:
            header.setdefault(key, []).append(value.strip())
        else:
            body.append(line)
    return header, "".join(body)


def _cases() -> list[Path]:
    return sorted(CASES.glob("*.txt"))


def test_cases_are_documented() -> None:
    for path in _cases():
        header, body = _case(path)
        assert {"case", "expected"} <= set(header), path.name
        assert header.get("fix") or header.get("says"), path.name
        assert body.strip(), path.name


@pytest.mark.parametrize("path", _cases(), ids=lambda p: p.stem)
def test_the_fix_names_what_the_transcript_shows(path: Path) -> None:
    header, body = _case(path)
    for lang in catalog.LANGS:
        root = explain_text(body, lang=lang)["root_cause"]
        assert root and root["id"] == header["expected"][0], (lang, root)
        shown = "\n".join([root["title"], root["explanation"], *root["fix"]])
        assert not PLACEHOLDER.search(shown), f"{lang}:\n{shown}"
        for wanted in header.get("fix", []):
            assert any(wanted in line for line in root["fix"]), f"{lang} {wanted!r}:\n{shown}"
        for unwanted in header.get("no-fix", []):
            assert not any(unwanted in line for line in root["fix"]), f"{lang} {unwanted!r}"
        if lang == "en":
            for said in header.get("says", []):
                assert said in root["title"] + " " + root["explanation"], f"{said!r}:\n{shown}"


# -- what the server showed picks the fix (servercheck's and serverlog's facts) ------------


def _fix(cause_id: str, **facts) -> dict[str, list[str]]:
    facts = {"user": "u1", "hostname": "h", "port": 22, **facts}
    return {lang: catalog.render(cause_id, lang, **facts).fix for lang in catalog.LANGS}


def _decide(findings, **facts):
    """The root cause in both languages for a real ssh that failed and these findings."""
    from runbook.findings import Finding
    from runbook.verdict import decide

    client = Finding("ssh", "ssh", "fail", "Permission denied", cause_id=facts.pop("client"))
    facts = {"user": "u1", "hostname": "h", "port": 22, **facts}
    roots = {}
    for lang in catalog.LANGS:
        verdict, root = decide([client, *findings], lang=lang, facts=facts)
        assert verdict == "failed" and root is not None
        roots[lang] = root
    return roots


def test_a_faillock_lock_gets_its_own_reset_command() -> None:
    reset = "faillock --dir /var/run/faillock --user u1 --reset"
    fix = _fix("account.locked", faillock_reset=reset)
    assert fix["en"][0] == f"sudo {reset}   # pam_faillock has locked u1: this clears its failures"
    assert fix["ja"][0].startswith(f"sudo {reset}   # pam_faillock が u1 をロック")
    for lines in fix.values():
        assert "sudo usermod -U u1" not in [line.split("#")[0].strip() for line in lines]
    plain = _fix("account.locked")
    assert "sudo usermod -U u1" in plain["en"] and "sudo usermod -U u1" in plain["ja"]


def test_faillock_found_on_the_server_reaches_the_fix(tmp_path) -> None:
    from test_servercheck import _faillock_server, _tally

    server = _faillock_server(tmp_path)
    _tally(server, "/var/run/faillock", 30, 20, 10)
    roots = _decide(server.check(password=True), client="auth.password_rejected")
    reset = "sudo faillock --dir /var/run/faillock --user u1 --reset"
    for lang, root in roots.items():
        assert root.id == "account.locked", (lang, root)
        assert root.fix[0].startswith(reset + "   # "), (lang, root.fix)


def _commands(lines: list[str]) -> list[str]:
    return [line.split("#")[0].strip() for line in lines]


def test_a_key_rejected_for_another_authorized_keys_file_goes_there() -> None:
    fix = _fix("auth.key_rejected", authorized_keys_file="/etc/ssh/authorized_keys/u1")
    assert fix["en"][0] == (
        "cat ~/.ssh/id_ed25519.pub   # on the server, append this line to "
        "/etc/ssh/authorized_keys/u1: the file this sshd reads (AuthorizedKeysFile), not the "
        "one ssh-copy-id writes"
    )
    assert fix["ja"][0].startswith(
        "cat ~/.ssh/id_ed25519.pub   # サーバ側でこの行を /etc/ssh/authorized_keys/u1 に追記"
    )
    for lines in fix.values():
        assert not any("ssh-copy-id" in c or "chmod" in c for c in _commands(lines)), lines


def test_a_revoked_key_is_told_to_use_another_key() -> None:
    fix = _fix("auth.key_rejected", revoked_key="SHA256:abc", revoked_by="/etc/ssh/revoked:2")
    assert fix["en"][0] == (
        "# this key (SHA256:abc) is revoked (RevokedKeys /etc/ssh/revoked:2): use another key"
    )
    assert fix["ja"][0] == (
        "# この鍵(SHA256:abc)は失効しています(RevokedKeys /etc/ssh/revoked:2)。"
        "別の鍵を使ってください"
    )
    for lang, lines in fix.items():
        assert not any("ssh-copy-id" in line for line in lines), lines
        root = catalog.render("auth.key_rejected", lang, revoked_key="SHA256:abc")
        assert "SHA256:abc" in root.explanation and "RevokedKeys" in root.explanation


def test_a_missing_home_is_said_and_no_key_is_copied() -> None:
    fix = _fix("auth.key_rejected", missing_home="/nonexistent/u1")
    assert fix["en"][:3] == [
        "# the home directory /nonexistent/u1 of u1 does not exist on the server",
        "sudo mkhomedir_helper u1   # on the server: creates it from /etc/skel "
        "(pam_mkhomedir's helper)",
        "sudo usermod -d /home/u1 u1   # or: point the account at a home that exists",
    ]
    assert fix["ja"][0] == "# u1 のホームディレクトリ /nonexistent/u1 がサーバにありません"
    assert _commands(fix["ja"]) == _commands(fix["en"])
    for lines in fix.values():
        assert not any("ssh-copy-id" in c or "chmod" in c for c in _commands(lines)), lines


def test_a_refused_key_line_is_to_be_edited() -> None:
    where = "/home/u1/.ssh/authorized_keys:2"
    fix = _fix("auth.key_rejected", authorized_keys_line=where)
    assert fix["en"][0].startswith(f"# on the server, edit {where}: it holds this key, but sshd")
    assert "expiry-time" in fix["en"][0]
    assert fix["ja"][0].startswith(f"# サーバ側で {where} を編集: この鍵がありますが")
    for lines in fix.values():
        assert not any("ssh-copy-id" in line for line in lines), lines


def test_without_server_facts_the_key_is_copied_as_before() -> None:
    fix = _fix("auth.key_rejected")
    assert fix["en"][0].startswith("ssh-copy-id -p 22 u1@h")
    assert fix["ja"][0].startswith("ssh-copy-id -p 22 u1@h")


@pytest.mark.parametrize(
    "setup, wanted",
    [
        ("revoked", "# this key ("),
        ("expired", "# on the server, edit /home/u1/.ssh/authorized_keys:1"),
        ("misspelt", "# on the server, edit /home/u1/.ssh/authorized_keys:1"),
        ("keys_file", "cat ~/.ssh/id_ed25519.pub   # on the server, append this line to "),
    ],
)
def test_what_the_server_shows_about_the_key_reaches_the_fix(tmp_path, setup, wanted) -> None:
    from test_servercheck import KEY, OTHER, Server

    options = {"AuthorizedKeysFile": "/etc/ssh/keys/%u"} if setup == "keys_file" else {}
    if setup == "revoked":
        options["RevokedKeys"] = "/etc/ssh/revoked"
    server = Server(tmp_path, **options)
    server.file("/etc/ssh/revoked", f"{OTHER}\n{KEY}\n")
    if setup == "expired":
        server.keys(f'expiry-time="20200101" {KEY}')
    if setup == "misspelt":
        server.keys(f'comand="/usr/bin/uptime" {KEY}')
    roots = _decide(server.check(), client="auth.key_rejected")
    for lang, root in roots.items():
        assert root.id == "auth.key_rejected"
        assert not any("ssh-copy-id" in c for c in _commands(root.fix)), (lang, root.fix)
    assert roots["en"].fix[0].startswith(wanted), roots["en"].fix
    if setup == "keys_file":
        assert "/etc/ssh/keys/u1" in roots["en"].fix[0] and "/etc/ssh/keys/u1" in roots["ja"].fix[0]
    if setup == "revoked":
        assert "/etc/ssh/revoked:2" in roots["en"].fix[0] + roots["ja"].fix[0]


def test_a_missing_home_on_the_server_reaches_the_fix(tmp_path) -> None:
    from test_servercheck import Server

    server = Server(tmp_path)
    passwd = tmp_path / "etc/passwd"
    passwd.write_text(passwd.read_text().replace(":/home/u1:", ":/nonexistent/u1:"))
    roots = _decide(server.check(), client="auth.key_rejected")
    assert roots["en"].title == "The home directory of u1 does not exist"
    # With a password, which still logs in (in /), the missing home is only a warning.
    home = [f for f in server.check(password=True) if f.check == "StrictModes"]
    assert [f.status for f in home] == ["warn"] and "password login still works" in home[0].summary
    assert roots["en"].fix[1].startswith("sudo mkhomedir_helper u1")
    assert roots["ja"].fix[1].startswith("sudo mkhomedir_helper u1")


def test_sshd_on_another_address_is_connected_to_or_made_to_listen() -> None:
    facts = {"user": "alice", "hostname": "127.0.0.2", "address": "127.0.0.2"}
    fix = _fix("port.refused", **facts, other_port=22, other_address="127.0.0.3")
    assert fix["en"][:2] == [
        "ssh -p 22 alice@127.0.0.3   # sshd listens on 127.0.0.3:22, not on this address",
        "# or on the server: add ListenAddress 127.0.0.2 (or 0.0.0.0: every address) to "
        "/etc/ssh/sshd_config, then: sudo sshd -t && sudo systemctl reload ssh   "
        "(sshd listens on 127.0.0.3 only)",
    ]
    assert fix["ja"][0].startswith("ssh -p 22 alice@127.0.0.3   # sshd はこのアドレスではなく")
    assert "ListenAddress 127.0.0.2" in fix["ja"][1]
    for lines in fix.values():
        assert "ssh -p 22 alice@127.0.0.2" not in _commands(lines), lines
    # another port, same address: that port, as before
    moved = _fix("port.refused", **facts, other_port=2222)
    assert moved["en"][0].startswith("ssh -p 2222 alice@127.0.0.2   # an SSH server answers")
    assert not any("ListenAddress" in line for line in moved["en"] + moved["ja"])


def test_the_listening_address_the_server_shows_reaches_the_fix() -> None:
    from runbook.hosts import CommandResult, Host
    from runbook.servercheck import Context, check_listening

    ss = (
        'LISTEN 0 128 127.0.0.1:47885 0.0.0.0:* users:(("sshd",pid=700,fd=3))\n'
        'LISTEN 0 128 127.0.0.3:22 0.0.0.0:* users:(("sshd",pid=812,fd=3))\n'
    )

    class Server(Host):
        def _execute(self, line: str) -> CommandResult:
            if line.startswith("ss "):
                return CommandResult(line, 0, ss, "")
            return CommandResult(line, 1, "", "")  # /proc/PID/stat: not stuck

    ctx = Context(user="alice", port=22, client_ip="127.0.0.1", server_address="127.0.0.2")
    found = check_listening(Server("fake"), ctx)
    assert found[0].data == {"other_port": 22, "other_address": "127.0.0.3"}
    roots = _decide(
        found, client="port.refused", user="alice", hostname="127.0.0.2", address="127.0.0.2"
    )
    for lang, root in roots.items():
        assert root.id == "port.refused"
        assert root.fix[0].startswith("ssh -p 22 alice@127.0.0.3   # "), (lang, root.fix)
        assert "ListenAddress 127.0.0.2" in root.fix[1]


def test_the_line_that_turns_a_method_off_is_named() -> None:
    line = "passwordauthentication no (/etc/ssh/sshd_config.d/50-cloud.conf:1)"
    fix = _fix("auth.no_method", config_line=line)
    assert fix["en"][0] == f"# on the server, {line} turns off the method this client uses"
    assert "sshd takes the first value it reads" in fix["en"][1]
    assert (
        fix["ja"][0] == f"# サーバ側で {line} が、このクライアントの使う認証方式を無効にしています"
    )
    assert "最初に読んだ値" in fix["ja"][1]
    for lines in fix.values():
        assert "sudo sshd -t && sudo systemctl reload ssh" in lines
        assert not any("ssh-copy-id" in line or "ssh-keygen" in line for line in lines)


def test_an_include_that_comes_first_is_named_on_the_server(tmp_path) -> None:
    from test_servercheck import Server

    server = Server(tmp_path)
    config = tmp_path / "etc/ssh/sshd_config"
    config.write_text("Include /etc/ssh/sshd_config.d/*.conf\nPasswordAuthentication yes\n")
    server.file("/etc/ssh/sshd_config.d/50-cloud.conf", "PasswordAuthentication no\n")
    roots = _decide(server.check(password=True, keys=()), client="auth.no_method")
    line = "passwordauthentication no (/etc/ssh/sshd_config.d/50-cloud.conf:1)"
    assert roots["en"].fix[0] == f"# on the server, {line} turns off the method this client uses"
    assert roots["ja"].fix[0].startswith(f"# サーバ側で {line} が")


def test_a_match_block_that_turns_keys_off_is_named_on_the_server(tmp_path) -> None:
    from test_servercheck import Server

    server = Server(tmp_path)
    config = tmp_path / "etc/ssh/sshd_config"
    config.write_text("UsePAM no\nMatch User u1\n    PubkeyAuthentication no\n")
    roots = _decide(server.check(), client="auth.no_method")
    line = (
        "pubkeyauthentication no (/etc/ssh/sshd_config:3, in Match User u1 at "
        "/etc/ssh/sshd_config:2)"
    )
    assert roots["en"].fix[0] == f"# on the server, {line} turns off the method this client uses"
    assert roots["ja"].fix[0].startswith(f"# サーバ側で {line} が")


def test_a_forced_command_on_the_key_is_to_be_edited() -> None:
    where = "/home/u1/.ssh/authorized_keys:1"
    fix = _fix("account.nologin", forced_command="/bin/false", forced_command_line=where)
    assert fix["en"][-2] == (
        f'# on the server, edit the command="/bin/false" of the key\'s line {where} in '
        "authorized_keys: it runs instead of any shell (remove it, or make it the command meant)"
    )
    assert fix["ja"][-2].startswith(
        f'# サーバ側で authorized_keys の鍵の行 {where} の command="/bin/false" を編集'
    )
    for lines in fix.values():
        assert not any("usermod -s" in line for line in lines), lines


def test_a_real_shell_points_at_its_startup_files() -> None:
    fix = _fix("account.nologin", login_shell="/bin/bash")
    assert fix["en"][-2].startswith("# u1's shell /bin/bash is a real shell: a startup file")
    assert "~/.bashrc, ~/.profile" in fix["en"][-2]
    assert fix["ja"][-2].startswith("# u1 のシェル /bin/bash は通常のシェルです: 起動ファイル")
    assert "~/.bashrc、~/.profile" in fix["ja"][-2]
    for lines in fix.values():
        assert not any("usermod -s /bin/bash" in line for line in lines), lines


def test_a_shell_refused_before_authentication_is_not_called_authenticated() -> None:
    reason = "shell /bin/nonexistent-shell does not exist"
    for lang in catalog.LANGS:
        root = catalog.render("account.nologin", lang, user="u1", shell_refused=reason)
        text = root.title + " " + root.explanation
        assert reason in root.explanation
        assert "Authentication succeeded" not in text and "after authentication" not in text
        assert "認証には成功" not in text and "認証後" not in text
        assert "sudo usermod -s /bin/bash u1" in _commands(root.fix)
    assert catalog.render("account.nologin", shell_refused=reason).title == (
        "sshd refuses <user> before authentication: the login shell cannot run"
    )


def test_what_the_server_shows_about_the_session_reaches_the_fix(tmp_path) -> None:
    from test_servercheck import KEY, Server

    server = Server(tmp_path)
    server.keys(f'command="/bin/false" {KEY}')
    roots = _decide(server.check(), client="account.nologin")
    assert "/home/u1/.ssh/authorized_keys:1" in roots["en"].fix[-2]
    assert 'command="/bin/false"' in roots["ja"].fix[-2]
    server.keys(KEY)  # bash, and the key is fine: the startup files
    (tmp_path / "etc/passwd").write_text(
        (tmp_path / "etc/passwd").read_text().replace(":/bin/sh\n", ":/bin/bash\n")
    )
    roots = _decide(server.check(), client="account.nologin")
    assert "/bin/bash is a real shell" in roots["en"].fix[-2]
    # a shell that does not exist: sshd refused before authentication
    (tmp_path / "etc/passwd").write_text(
        (tmp_path / "etc/passwd").read_text().replace(":/bin/bash\n", ":/bin/nosuchsh\n")
    )
    roots = _decide(server.check(), client="auth.key_rejected")
    for lang, root in roots.items():
        assert root.id == "account.nologin", (lang, root)
        assert "/bin/nosuchsh" in root.explanation
    assert roots["en"].title.startswith("sshd refuses u1 before authentication")


def test_the_shell_sshd_logs_it_refused_reaches_the_explanation() -> None:
    from runbook.findings import Finding
    from runbook.serverlog import SERVER_CAUSES

    assert SERVER_CAUSES["shell_refused"] == ("account.nologin", "shell_refused")
    reason = "shell /bin/nosuchsh does not exist"
    logged = Finding(
        "server-log",
        "auth.log",
        "fail",
        f"sshd: User u1 not allowed because {reason}",
        cause_id="account.nologin",
        data={"user": "u1", "shell_refused": reason},
    )
    roots = _decide([logged], client="auth.key_rejected")
    assert roots["en"].explanation.startswith(
        f"sshd refused u1 before any key or password was checked: {reason}."
    )
    assert roots["ja"].explanation.startswith("sshd は鍵やパスワードを確かめる前に u1 を拒否")


def _attempt_in_log(tmp_path: Path, host: str, messages: list[str | tuple[int, str]]) -> list:
    """serverlog's findings for u1's attempt from 192.0.2.7, whose sshd logged ``messages``
    (under pid 700, or the pid given with one)."""
    from test_logs import write_sshd_lines

    from runbook import serverlog

    log = tmp_path / "auth.log"
    when = write_sshd_lines(log, host, [m if isinstance(m, tuple) else (700, m) for m in messages])
    return serverlog.check_auth_log(
        [str(log)], user="u1", client="192.0.2.7", since=when, until=when, settle=0
    )


def test_a_key_sshd_logs_as_revoked_reaches_the_fix(tmp_path) -> None:
    found = _attempt_in_log(
        tmp_path,
        "srv",
        [
            "Connection from 192.0.2.7 port 40104 on 192.0.2.1 port 22",
            "error: Authentication key ED25519 SHA256:abc revoked by file /etc/ssh/revoked",
            "Connection closed by authenticating user u1 192.0.2.7 port 40104 [preauth]",
        ],
    )
    roots = _decide(found, client="auth.key_rejected")
    assert roots["en"].fix[0] == (
        "# this key (SHA256:abc) is revoked (RevokedKeys /etc/ssh/revoked): use another key"
    )
    assert roots["ja"].fix[0].startswith("# この鍵(SHA256:abc)は失効しています")


def test_the_usual_authorized_keys_file_keeps_ssh_copy_id(tmp_path) -> None:
    from test_servercheck import OTHER, Server

    server = Server(tmp_path)
    server.keys(OTHER)
    roots = _decide(server.check(), client="auth.key_rejected")
    for root in roots.values():
        assert root.fix[0].startswith("ssh-copy-id -p 22 u1@h"), root.fix


def test_the_shell_refusal_in_sshds_log_reaches_the_explanation(tmp_path) -> None:
    """Debian 12's sshd 9.2 logs the refusal without the address (the audit's lab)."""
    found = _attempt_in_log(
        tmp_path,
        "lab",
        [
            "Connection from 192.0.2.7 port 40104 on 192.0.2.1 port 22",
            "User u1 not allowed because shell /bin/nonexistent-shell does not exist",
            "Connection closed by invalid user u1 192.0.2.7 port 40104 [preauth]",
        ],
    )
    roots = _decide(found, client="auth.key_rejected")
    assert roots["en"].id == "account.nologin"
    assert "shell /bin/nonexistent-shell does not exist" in roots["en"].explanation
    assert "Authentication succeeded" not in roots["en"].explanation
    assert "認証には成功" not in roots["ja"].explanation


@pytest.mark.parametrize(
    "message, password",
    [
        # Linux-PAM's pam_unix (modules/pam_unix/pam_unix_acct.c): a change an admin forced
        # (chage -d 0), a password past its maximum age.
        ("pam_unix(sshd:account): expired password for user u1 (root enforced)", True),
        ("pam_unix(sshd:account): expired password for user u1 (password aged)", True),
        # sshd without PAM (auth.c, auth-shadow.c): the account's own expiry day.
        ("Account u1 has expired", False),
    ],
)
def test_an_expired_password_is_changed_at_a_login_not_undated(tmp_path, message, password):
    """sshd's log says whether the password or the account expired: only the account's
    expiry date is for chage -E; a password is changed at a terminal login."""
    found = _attempt_in_log(
        tmp_path,
        "srv",
        [
            "Connection from 192.0.2.7 port 40104 on 192.0.2.1 port 22",
            message,
            "Connection closed by authenticating user u1 192.0.2.7 port 40104 [preauth]",
        ],
    )
    roots = _decide(found, client="auth.key_rejected")
    for lang, root in roots.items():
        assert root.id == "account.expired"
        commands = " ".join(_commands(root.fix))
        assert ("ssh -t -p 22 u1@h" in commands) is password, (lang, root.fix)
        assert ("chage -E -1 u1" in commands) is not password, (lang, root.fix)


def test_a_connections_sshd_without_host_keys_is_why_it_closed_early(tmp_path) -> None:
    """Host keys deleted under a running sshd 9.2: the listener still accepts, each
    connection's re-executed sshd logs (with its own pid, no client address: sshd.c) that it
    cannot load them and exits, and the client sees the connection reset before the banner.
    Lines of sshd 9.2p1 (Debian 12), its listener's and one connection's."""
    found = _attempt_in_log(
        tmp_path,
        "srv",
        [
            (600, "Server listening on 0.0.0.0 port 22."),
            (701, "Unable to load host key: /etc/ssh/ssh_host_ed25519_key"),
            (701, "sshd: no hostkeys available -- exiting."),
        ],
    )
    roots = _decide(found, client="proto.closed_early")
    for lang, root in roots.items():
        assert root.id == "proto.closed_early"
        assert root.fix[0].startswith("sudo ssh-keygen -A"), (lang, root.fix)
        assert "/etc/ssh/ssh_host_ed25519_key" in root.explanation, (lang, root.explanation)


def test_no_host_key_under_a_running_sshd_is_why_connections_close(tmp_path) -> None:
    """The real sshd -t of a config whose only host key is gone: while an sshd serves
    (before 9.8 each connection's sshd loads the keys again), that is why connections close
    before the banner, and the fix creates the keys."""
    from runbook.hosts import LocalHost
    from runbook.servercheck import Context, check_config

    require_lab()

    config = tmp_path / "sshd_config"
    config.write_text(f"HostKey {tmp_path / 'ssh_host_ed25519_key'}\nUsePAM no\n")
    ctx = Context(user="u1", port=22, client_ip="127.0.0.1", sshd_serves=True, config=str(config))
    found = check_config(LocalHost("local", 10), ctx)
    assert (found[0].status, found[0].cause_id) == ("fail", "proto.closed_early"), found
    roots = _decide(found, client="proto.closed_early")
    assert roots["en"].fix[0].startswith("sudo ssh-keygen -A"), roots["en"].fix
    assert str(tmp_path / "ssh_host_ed25519_key") in roots["ja"].explanation


def test_a_security_key_refused_for_its_touch_or_pin_is_no_missing_key(tmp_path) -> None:
    """sshd refused a FIDO key's signature ("user verification requirement not met"): the
    key is authorized already, so the fix is the touch or a key with a PIN, not
    ssh-copy-id (was: the event unmapped, the generic fix)."""
    found = _attempt_in_log(
        tmp_path,
        "srv",
        [
            "Connection from 192.0.2.7 port 40104 on 192.0.2.1 port 22",
            "error: public key ED25519-SK SHA256:abc signature for u1 from 192.0.2.7 port 40104 "
            "rejected: user verification requirement not met",
            "Connection closed by authenticating user u1 192.0.2.7 port 40104 [preauth]",
        ],
    )
    refused = [f for f in found if f.cause_id]
    assert [f.cause_id for f in refused] == ["auth.key_rejected"]
    assert refused[0].data["fido_requirement"] == "user verification requirement not met"
    roots = _decide(found, client="auth.key_rejected")
    assert "user verification requirement not met" in roots["en"].title
    assert "verify-required" in roots["ja"].explanation
    for root in roots.values():
        assert not any("ssh-copy-id" in c for c in _commands(root.fix)), root.fix


@pytest.mark.parametrize(
    "fact, copies", [(None, True), ("fido_requirement", False), ("revoked_key", False)]
)
def test_apply_copies_the_key_only_where_it_is_missing(tmp_path, fact, copies) -> None:
    """`runbook fix --apply --server`: ssh-copy-id is a step only when the server lacks the
    key; a revoked key or a security key refused for its touch or PIN is there already.
    The plan reads the diagnosis back from its findings.json, as `runbook fix --from`."""
    from runbook import catalog, fix
    from runbook.findings import Diagnosis, Finding, Target
    from runbook.hosts import RootedHost

    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "passwd").write_text("u1:x:1000:1000::/home/u1:/bin/bash\n")
    data = {fact: "SHA256:abc"} if fact else {}
    diagnosis = Diagnosis(
        target=Target("h", "h", 22, "u1"),
        verdict="failed",
        root_cause=catalog.render("auth.key_rejected", user="u1", hostname="h", **data),
        findings=[Finding("server-log", "auth.log", "fail", "sshd", "auth.key_rejected", [], data)],
        started_at="",
        duration_s=0.0,
    )
    diagnosis = Diagnosis.from_dict(json.loads(json.dumps(diagnosis.to_dict())))
    steps = fix._server_steps(diagnosis, RootedHost("root", root=tmp_path), "/tmp/id_ed25519")
    assert any(s.command.startswith("ssh-copy-id") for s in steps) is copies
