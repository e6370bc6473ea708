"""sshd_config read offline as sshd reads it: first value wins, Include, Match."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runbook.sshdconfig import MatchContext, effective, match_user, problems


def _root(tmp_path: Path, main: str, drop_in: str = "") -> Path:
    (tmp_path / "etc/ssh/sshd_config.d").mkdir(parents=True)
    (tmp_path / "etc/ssh/sshd_config").write_text(main)
    if drop_in:
        (tmp_path / "etc/ssh/sshd_config.d/10-local.conf").write_text(drop_in)
    return tmp_path


def test_first_value_wins_and_includes_come_in_place(tmp_path) -> None:
    root = _root(
        tmp_path,
        "Include /etc/ssh/sshd_config.d/*.conf\nPasswordAuthentication yes\nPort 2222\n",
        "PasswordAuthentication no\n",
    )
    settings, origin = effective(root, MatchContext(user="alice"))
    assert settings["passwordauthentication"] == ["no"]  # the drop-in came first
    assert origin["passwordauthentication"].endswith("10-local.conf:1")
    assert settings["port"] == ["2222"] and settings["strictmodes"] == ["yes"]  # a default


def test_match_blocks_and_accumulating_keywords(tmp_path) -> None:
    root = _root(
        tmp_path,
        "AllowUsers alice\nAllowUsers bob@10.0.0.*\n"
        "Match User carol,!dave Address 192.0.2.0/24\n  PermitRootLogin no\n  MaxAuthTries 2\n"
        "Match Group admins\n  PasswordAuthentication no\n"
        "Match all\n  MaxAuthTries 9\n",
    )
    carol = effective(root, MatchContext(user="carol", address="192.0.2.7"))[0]
    assert carol["allowusers"] == ["alice", "bob@10.0.0.*"]
    assert (carol["permitrootlogin"], carol["maxauthtries"]) == (["no"], ["2"])
    elsewhere = effective(root, MatchContext(user="carol", address="198.51.100.1"))[0]
    assert elsewhere["maxauthtries"] == ["9"] and elsewhere["permitrootlogin"] == [
        "prohibit-password"
    ]
    dave = effective(root, MatchContext(user="dave", groups=["admins"], address="192.0.2.7"))[0]
    assert dave["passwordauthentication"] == ["no"] and dave["maxauthtries"] == ["9"]


def test_missing_or_looping_files_do_not_break(tmp_path) -> None:
    root = _root(tmp_path, "Include sshd_config\nInclude /nope/*.conf\nPort = 2200\n")
    settings, _ = effective(root, MatchContext(user="x"))
    assert settings["port"] == ["2200"]


# -- against the real sshd -T -------------------------------------------------------------

_KEYS = (
    "passwordauthentication",
    "permitrootlogin",
    "maxauthtries",
    "allowusers",
    "pubkeyauthentication",
)
_SETTINGS = [
    "PasswordAuthentication yes",
    "passwordauthentication no",
    "PermitRootLogin=no",
    "PermitRootLogin prohibit-password",
    "PERMITROOTLOGIN yes",
    "MaxAuthTries 2",
    "MaxAuthTries = 7",
    "AllowUsers alice bob",
    "AllowUsers carol",
    "PubkeyAuthentication no",
]
_MATCHES = [
    "Match User alice",
    "Match User !alice,*",
    "Match Address 192.0.2.0/24",
    "Match Address 10.0.0.*",
    "Match User carol Address 10.0.0.0/8",
    "Match LocalPort 22",
    "Match Host h",
    "Match all",
]


def _config(draw_lines: list[str], include: str) -> str:
    return "".join(line.replace("INCLUDE", include) + "\n" for line in draw_lines)


def _sshd_and_key(tmp_path_factory, tag: str) -> tuple[str, Path, Path]:
    """The real sshd to compare with (CI fails without it), a fresh directory and a host
    key in it."""
    sshd = shutil.which("sshd") or "/usr/sbin/sshd"
    if not Path(sshd).is_file():
        message = "the comparison needs OpenSSH's sshd (make test installs it as root)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    root = tmp_path_factory.mktemp(tag)
    key = root / "hostkey"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    return sshd, root, key


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    main=st.lists(st.sampled_from([*_SETTINGS, *_MATCHES, "Include INCLUDE"]), max_size=12),
    drop_in=st.lists(st.sampled_from([*_SETTINGS, *_MATCHES]), max_size=6),
)
def test_offline_reading_equals_sshd_T(tmp_path_factory, main: list[str], drop_in: list[str]):
    """Generated sshd_configs (Match blocks, drop-ins included inside and outside them,
    keyword case, "=" separators): what --server-root reads offline is what the real
    `sshd -T -C` prints for the same user and address."""
    sshd, root, key = _sshd_and_key(tmp_path_factory, "sshd")
    (root / "d").mkdir(exist_ok=True)
    (root / "d" / "10.conf").write_text(_config(drop_in, ""))
    config = root / "sshd_config"
    config.write_text(f"HostKey {key}\n" + _config(main, str(root / "d" / "*.conf")))
    for user, address in (("alice", "192.0.2.7"), ("carol", "10.0.0.7")):
        done = subprocess.run(
            [
                sshd,
                "-T",
                "-f",
                str(config),
                "-C",
                f"user={user},host=h,addr={address},laddr=127.0.0.1,lport=22",
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert done.returncode == 0, done.stderr
        real: dict[str, list[str]] = {}
        for line in done.stdout.splitlines():
            name, _, value = line.partition(" ")
            if name in _KEYS:
                real.setdefault(name, []).extend(
                    value.replace("without-password", "prohibit-password").split()
                )
        ours, _ = effective(
            "/",
            MatchContext(user, host="h", address=address, local_address="127.0.0.1", local_port=22),
            str(config),
        )
        mine = {k: [w for v in ours.get(k, []) for w in v.split()] for k in _KEYS}
        real.setdefault("allowusers", [])
        assert mine == real, (
            user,
            address,
            config.read_text(),
            (root / "d" / "10.conf").read_text(),
        )


# -- the offline sshd -t ------------------------------------------------------------------

_LINES = [
    "PermitRootLogin maybe",
    "PermitRootLogin without-password",
    "PasswordAuthentication YES",
    "PasswordAuthentication perhaps",
    "PasswordAuthentcation no",
    "UsePAM yes no",
    "MaxAuthTries x",
    "MaxAuthTries 3",
    "MaxAuthTries -1",
    "LoginGraceTime 1m30s",
    "LoginGraceTime soon",
    "Port 0",
    "Port 2222",
    "LogLevel VERBOSE",
    "LogLevel LOUD",
    "SyslogFacility AUTHPRIV",
    "AllowTcpForwarding local",
    "Compression delayed",
    "Protocol 2",
    "UsePrivilegeSeparation sandbox",
    "KbdInteractiveAuthentication",
    'Banner "/etc/issue net',
    "Match User alice",
    "Match Bogus x",
    "Match User",
    "Match all",
    "  X11Forwarding no",
    "  Port 22",
    "  StrictModes no",
    "  PermitRootLogin no",
    "AllowUsers alice bob@10.0.0.0/8",
]


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(lines=st.lists(st.sampled_from(_LINES), max_size=6))
def test_offline_syntax_check_agrees_with_sshd_t(tmp_path_factory, lines: list[str]) -> None:
    """Generated sshd_configs with good and bad lines: the offline check finds a problem
    exactly when the real `sshd -t` refuses the file (--server-root's sshd -t)."""
    sshd, root, key = _sshd_and_key(tmp_path_factory, "syntax")
    config = root / "etc/ssh/sshd_config"
    config.parent.mkdir(parents=True)
    config.write_text(f"HostKey {key}\n" + "".join(f"{line}\n" for line in lines))
    done = subprocess.run(
        [sshd, "-t", "-f", str(config)], capture_output=True, text=True, timeout=30
    )
    found = problems(root)
    assert bool(found) is (done.returncode != 0), (config.read_text(), done.stderr, found)
    # sshd stops at its first fatal line; the first problem found offline is that line
    said = [ln for ln in done.stderr.splitlines() if "ecated option" not in ln]
    if found and said and "line" in said[0]:
        number = re.search(r"line (\d+)", said[0])
        assert number and f"line {number.group(1)}:" in str(found[0]), (done.stderr, found)


def test_offline_syntax_names_the_file_and_line_of_an_include(tmp_path) -> None:
    root = _root(
        tmp_path,
        "Include /etc/ssh/sshd_config.d/*.conf\nPort 22\nMatch User x\n  PidFile /x\n",
        "PermitRootLogin maybe\n",
    )
    assert [str(p) for p in problems(root)] == [
        '/etc/ssh/sshd_config.d/10-local.conf line 1: unsupported option "maybe".',
        "/etc/ssh/sshd_config line 4: Directive 'PidFile' is not allowed within a Match block",
    ]


@pytest.mark.parametrize(
    "user, host, address, pattern, expected",
    [
        ("ac1", "127.0.0.1", "127.0.0.1", "ac1@127.0.0.0/8", 1),
        ("ac1", "127.0.0.1", "127.0.0.1", "ac1@10.0.0.0/8", 0),
        ("ac1", "127.0.0.1", "127.0.0.1", "ac*@127.0.0.?", 1),
        ("ac1", "127.0.0.1", "127.0.0.1", "ac1@10.0.0.1/8", -1),  # host bits set
        ("au3", "localhost", "127.0.0.1", "au3@LOCALHOST", 1),  # names: case-insensitive
        ("au3", "127.0.0.1", "127.0.0.1", "au3@localhost", 0),
        ("ac1", "127.0.0.1", "127.0.0.1", "ac1@!127.0.0.1,*", 0),
        ("ac1", "127.0.0.1", "127.0.0.1", "AC1", 0),  # user names: case-sensitive
        ("a@b", "h", "10.0.0.1", "a@b@10.0.0.0/8", 1),  # the last @ splits
    ],
)
def test_match_user_as_sshd(user, host, address, pattern, expected) -> None:
    assert match_user(user, host, address, pattern) == expected
