"""Server checks on a server's disk (``--server-root``): each rule as OpenSSH 9.x and
Debian's PAM apply it, on small root filesystems built here. No lab, no root needed for
most (the test user's own uid plays the account; root-owned paths need root)."""

from __future__ import annotations

import base64
import hashlib
import os
import struct
import time
from pathlib import Path

import pytest

from runbook.hosts import RootedHost
from runbook.servercheck import Context, check_server
from tests.conftest import COMMON_AUTH_FAILLOCK

ROOT = os.geteuid() == 0
UID = 61990 if ROOT else os.getuid()  # the account's uid: never 0 (root is special)
needs_root = pytest.mark.skipif(not ROOT, reason="chown to another owner needs root")

PAM_SSHD = """@include common-auth
account    required     pam_nologin.so
@include common-account
"""
COMMON_ACCOUNT = """account [success=1 new_authtok_reqd=done default=ignore] pam_unix.so
account requisite pam_deny.so
account required pam_permit.so
"""


def _pub(seed: str) -> tuple[str, str]:
    """A public key line (ed25519-shaped) and its SHA256 fingerprint."""
    raw = hashlib.sha256(seed.encode()).digest()
    blob = b"\0\0\0\x0bssh-ed25519\0\0\0\x20" + raw
    line = f"ssh-ed25519 {base64.b64encode(blob).decode()} {seed}"
    digest = base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
    return line, f"SHA256:{digest}"


KEY, FP = _pub("client")
OTHER, _ = _pub("other")


class Server:
    """A server's root filesystem: accounts, sshd_config, a home with authorized_keys."""

    def __init__(self, root: Path, user: str = "u1", uid: int = UID, **sshd: str) -> None:
        self.root, self.user, self.uid = root, user, uid
        self.home = f"/home/{user}"
        os.chmod(root, 0o755)
        for name in ("etc/ssh", "etc/pam.d", "etc/security", "bin", "home"):
            (root / name).mkdir(parents=True, exist_ok=True)
        for shell in ("bin/sh", "bin/bash"):
            (root / shell).write_text("#!/bin/true\n")
            os.chmod(root / shell, 0o755)
        self.accounts = {user: (uid, "$6$salt$hash")}
        self.groups = {user: (uid, [])}
        self.expire = {user: ""}
        self.write_tables()
        self.sshd(**sshd)
        self.write_home(0o755, 0o700, 0o600)
        self.keys(KEY)

    def write_tables(self) -> None:
        passwd = ["root:x:0:0:root:/root:/bin/sh"]
        shadow = ["root:*:19000:0:99999:7:::"]
        group = ["root:x:0:"]
        for name, (uid, hashed) in self.accounts.items():
            passwd.append(f"{name}:x:{uid}:{uid}::/home/{name}:/bin/sh")
            shadow.append(f"{name}:{hashed}:19000:0:99999:7::{self.expire.get(name, '')}:")
        for name, (gid, members) in self.groups.items():
            group.append(f"{name}:x:{gid}:{','.join(members)}")
        for table, lines in (("passwd", passwd), ("shadow", shadow), ("group", group)):
            (self.root / "etc" / table).write_text("\n".join(lines) + "\n")

    def sshd(self, **options: str) -> None:
        options = {"UsePAM": "no", "PasswordAuthentication": "yes", **options}
        text = "".join(f"{k} {v}\n" for k, v in options.items())
        (self.root / "etc/ssh/sshd_config").write_text(text)

    def write_home(self, home: int, ssh: int, keys: int) -> None:
        base = self.root / self.home.lstrip("/")
        (base / ".ssh").mkdir(parents=True, exist_ok=True)
        (base / ".ssh/authorized_keys").touch()
        for path, mode in (
            (base, home),
            (base / ".ssh", ssh),
            (base / ".ssh/authorized_keys", keys),
        ):
            os.chmod(path, mode)
            if ROOT:
                os.chown(path, self.uid, self.uid)

    def keys(self, *lines: str) -> None:
        path = self.root / self.home.lstrip("/") / ".ssh/authorized_keys"
        path.write_text("".join(line + "\n" for line in lines))

    def file(self, path: str, text: str) -> Path:
        target = self.root / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        return target

    def check(
        self, *, password: bool = False, keys: tuple[str, ...] = (FP,), ip: str = "127.0.0.1"
    ):
        ctx = Context(
            user=self.user, port=22, client_ip=ip, client_keys=list(keys), password=password
        )
        return check_server(RootedHost("root", root=self.root), ctx)


def _by(findings, check: str):
    return [f for f in findings if f.check == check]


def _failing(findings):
    return {(f.check, f.cause_id) for f in findings if f.status == "fail"}


# -- A5: a locked or unset password hash -----------------------------------------------------


@pytest.mark.parametrize(
    "hashed, pam, password, status",
    [
        ("!$6$salt$hash", "yes", True, "fail"),  # the right password fails too
        ("!$6$salt$hash", "yes", False, "warn"),  # keys still work with PAM
        ("!$6$salt$hash", "no", False, "fail"),  # sshd without PAM refuses the account
        ("*", "yes", True, "fail"),  # no password set: none matches
        ("!!", "no", True, "fail"),
        ("*", "yes", False, None),  # a key-only account: nothing wrong
    ],
)
def test_a_locked_hash_refuses_passwords(tmp_path, hashed, pam, password, status) -> None:
    server = Server(tmp_path, UsePAM=pam)
    server.accounts["u1"] = (UID, hashed)
    server.write_tables()
    shadow = _by(server.check(password=password), "shadow")
    if status is None:
        assert not shadow, shadow
        return
    assert [(f.status, f.cause_id) for f in shadow] == [(status, "account.locked")], shadow
    if password and pam == "yes":
        assert "the right one too" in shadow[0].summary


def test_a_locked_hash_does_not_matter_when_passwords_are_off(tmp_path) -> None:
    server = Server(tmp_path, UsePAM="yes", PasswordAuthentication="no")
    (tmp_path / "etc/ssh/sshd_config").write_text(
        "UsePAM yes\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
    )
    server.accounts["u1"] = (UID, "!$6$x")
    server.write_tables()
    shadow = _by(server.check(password=True), "shadow")
    assert [f.status for f in shadow] == ["warn"]


# -- A6: pam_faillock ----------------------------------------------------------------------


def _tally(server: Server, directory: str, *ages: int, valid: bool = True) -> None:
    now = int(time.time())
    records = b"".join(
        struct.pack("<52sHHQ", b"127.0.0.1", 0, 0x3 if valid else 0x2, now - age) for age in ages
    )
    path = server.root / directory.lstrip("/") / server.user
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(records)


def _faillock_server(
    tmp_path, conf: str = "deny = 3\nunlock_time = 0\n", auth: str = COMMON_AUTH_FAILLOCK
):
    server = Server(tmp_path, UsePAM="yes")
    server.file("/etc/pam.d/sshd", PAM_SSHD)
    server.file("/etc/pam.d/common-auth", auth)
    server.file("/etc/pam.d/common-account", COMMON_ACCOUNT)
    server.file("/etc/security/faillock.conf", conf)
    return server


def test_faillock_at_deny_refuses_the_right_password(tmp_path) -> None:
    server = _faillock_server(tmp_path)
    _tally(server, "/var/run/faillock", 30, 20, 10)
    found = _by(server.check(password=True), "faillock")
    assert [(f.status, f.cause_id) for f in found] == [("fail", "account.locked")], found
    assert "3 failures, deny = 3" in found[0].summary and "for good" in found[0].summary
    assert found[0].data["faillock_reset"] == "faillock --dir /var/run/faillock --user u1 --reset"
    # keys do not go through PAM's auth stack: a warning only
    assert [f.status for f in _by(server.check(password=False), "faillock")] == ["warn"]


def test_faillock_reads_its_dir_and_the_module_arguments(tmp_path) -> None:
    auth = COMMON_AUTH_FAILLOCK.replace("preauth", "preauth deny=2", 1)
    server = _faillock_server(tmp_path, "dir = /etc/faillock-lab\ndeny = 5\n", auth)
    _tally(server, "/etc/faillock-lab", 20, 10)
    found = _by(server.check(password=True), "faillock")
    assert [(f.status, f.cause_id) for f in found] == [("fail", "account.locked")], found
    assert "--dir /etc/faillock-lab" in found[0].data["faillock_reset"]


@pytest.mark.parametrize(
    "conf, ages, valid",
    [
        ("deny = 3\n", (30, 20), True),  # below deny
        ("deny = 3\nunlock_time = 60\n", (300, 200, 100), True),  # unlocked again by now
        ("deny = 3\nfail_interval = 50\n", (300, 200, 10), True),  # spread over too long
        ("deny = 3\nunlock_time = 0\n", (30, 20, 10), False),  # records no longer valid
    ],
)
def test_faillock_below_deny_or_after_unlock_is_no_lock(tmp_path, conf, ages, valid) -> None:
    server = _faillock_server(tmp_path, conf)
    _tally(server, "/var/run/faillock", *ages, valid=valid)
    assert not _failing(_by(server.check(password=True), "faillock"))


def test_faillock_not_in_the_stack_is_no_lock(tmp_path) -> None:
    server = _faillock_server(tmp_path, auth="auth required pam_unix.so\n")
    _tally(server, "/var/run/faillock", 30, 20, 10)
    assert not _by(server.check(password=True), "faillock")


# -- A7, B3: authorized_keys options ---------------------------------------------------------


@pytest.mark.parametrize(
    "options, cause",
    [
        ('from="10.9.9.9"', "account.not_allowed"),
        ('from="!127.0.0.1,*"', "account.not_allowed"),
        ('from="10.0.0.1/8"', "account.not_allowed"),  # host bits set: sshd's error
        ('from="*.example.com"', "account.not_allowed"),  # UseDNS no: names never match
        ('from="127.0.0.0/8"', None),
        ('from="127.0.0.*,10.0.0.1"', None),
        ('expiry-time="20200101"', "auth.key_rejected"),
        ('expiry-time="29991231"', None),
        ('expiry-time="2020"', "auth.key_rejected"),  # invalid: the line is skipped
        ('comand="/usr/bin/uptime"', "auth.key_rejected"),  # misspelt: the line is skipped
        ("no-pty,no-port-forwarding", None),
        ("restricted", "auth.key_rejected"),
        ("cert-authority", "auth.key_rejected"),
        ('principals="u1"', "auth.key_rejected"),
        ('command="echo "hi""', "auth.key_rejected"),
        ('environment="A=1",permitopen="h:22"', None),
    ],
)
def test_key_options_decide_like_sshd(tmp_path, options, cause) -> None:
    server = Server(tmp_path)
    server.keys(OTHER, f"{options} {KEY}")
    found = server.check()
    keys = _by(found, "authorized_keys")
    if cause is None:
        assert keys[0].status == "pass" and ":2 holds" in keys[0].summary, keys
        return
    assert (keys[0].status, keys[0].cause_id) == ("fail", cause), keys
    assert keys[0].data["authorized_keys_line"].endswith("authorized_keys:2")


def test_from_names_the_pattern_and_the_client(tmp_path) -> None:
    server = Server(tmp_path)
    server.keys(f'from="10.9.9.9" {KEY}')
    keys = _by(server.check(), "authorized_keys")
    assert 'from="10.9.9.9" excludes 127.0.0.1' in keys[0].summary, keys
    assert "skips" not in keys[0].summary


def test_a_refused_line_before_a_good_one_is_no_refusal(tmp_path) -> None:
    server = Server(tmp_path)
    server.keys(f'from="10.9.9.9" {KEY}', KEY)
    keys = _by(server.check(), "authorized_keys")
    assert keys[0].status == "pass" and ":2 holds" in keys[0].summary
    assert "10.9.9.9" in keys[0].evidence[0]


def test_a_forced_command_is_noted_and_false_is_a_dead_end(tmp_path) -> None:
    server = Server(tmp_path)
    server.keys(f'restrict,command="/bin/false" {KEY}')
    keys = _by(server.check(), "authorized_keys")
    assert [f.status for f in keys] == ["pass", "fail", "info"], keys
    assert keys[1].cause_id == "account.nologin" and keys[1].data["forced_command"] == "/bin/false"
    server.keys(f'command="echo hi" {KEY}')
    keys = _by(server.check(), "authorized_keys")
    assert [(f.status, f.cause_id) for f in keys] == [("pass", None), ("info", None)]


def test_a_revoked_key_is_named(tmp_path) -> None:
    server = Server(tmp_path, RevokedKeys="/etc/ssh/revoked")
    server.file("/etc/ssh/revoked", f"{OTHER}\n{KEY}\n")
    found = _by(server.check(), "RevokedKeys")
    assert [(f.status, f.cause_id) for f in found] == [("fail", "auth.key_rejected")]
    assert "revoked" in found[0].summary and "/etc/ssh/revoked:2" in found[0].summary


def test_an_authorized_keys_file_sshd_does_not_read_is_said(tmp_path) -> None:
    server = Server(tmp_path, AuthorizedKeysFile=".ssh/authorized_keys2")
    keys = _by(server.check(), "authorized_keys")
    assert keys[0].status == "fail" and "authorized_keys2" in keys[0].summary
    assert any("does not read it" in e for e in keys[0].evidence), keys


def test_the_second_authorized_keys_file_counts(tmp_path) -> None:
    server = Server(tmp_path, AuthorizedKeysFile=".ssh/authorized_keys .ssh/authorized_keys2")
    server.keys(OTHER)
    server.file(f"{server.home}/.ssh/authorized_keys2", KEY + "\n")
    os.chmod(tmp_path / server.home.lstrip("/") / ".ssh/authorized_keys2", 0o600)
    keys = _by(server.check(), "authorized_keys")
    assert keys[0].status == "pass" and "authorized_keys2:1" in keys[0].summary


def test_forced_commands_only_needs_a_command_on_roots_key(tmp_path) -> None:
    server = Server(tmp_path, user="toor", PermitRootLogin="forced-commands-only")
    server.accounts = {"toor": (0, "$6$x")}
    server.write_tables()
    assert ("PermitRootLogin", "account.root_denied") in _failing(server.check())
    server.keys(f'command="/usr/bin/backup" {KEY}')
    assert ("PermitRootLogin", "account.root_denied") not in _failing(server.check())


# -- A8a: AllowUsers/DenyUsers user@host ------------------------------------------------------


@pytest.mark.parametrize(
    "option, value, usedns, refused",
    [
        ("AllowUsers", "u1@127.0.0.0/8", "no", False),
        ("AllowUsers", "u1@10.0.0.0/8", "no", True),
        ("AllowUsers", "u1@127.0.0.*", "no", False),
        ("AllowUsers", "other u1@!10.0.0.1,127.0.0.1", "no", False),
        ("AllowUsers", "u1@localhost", "yes", False),  # the name sshd resolves
        ("AllowUsers", "u1@localhost", "no", True),  # UseDNS no: the address only
        ("AllowUsers", "u?", "no", False),
        ("DenyUsers", "*@127.0.0.1", "no", True),
        ("DenyUsers", "u1@10.0.0.0/8", "no", False),
    ],
)
def test_user_at_host_entries_match_like_sshd(tmp_path, option, value, usedns, refused) -> None:
    server = Server(tmp_path, UseDNS=usedns, **{option: value})
    server.file("/etc/hosts", "127.0.0.1\tlocalhost\n::1 localhost ip6-localhost\n")
    found = _failing(server.check())
    assert ((option.lower(), "account.not_allowed") in found) is refused, found


# -- A8b: Debian's group-writable private group ----------------------------------------------


@pytest.mark.parametrize(
    "os_release, other_member, refused",
    [
        ("ID=debian\n", False, False),
        ('ID=ubuntu\nID_LIKE="debian"\n', False, False),
        ("ID=fedora\n", False, True),  # upstream OpenSSH: any group write is refused
        ("ID=debian\n", True, True),  # the group has another member
        (None, False, None),  # which sshd: unknown, a warning
        (b"OpenSSH_9.2p1 Debian-2+deb12u10\0", False, False),  # the sshd binary tells
        (b"OpenSSH_9.6p1\0", False, True),
    ],
)
def test_debian_allows_a_private_group_writable_home(tmp_path, os_release, other_member, refused):
    server = Server(tmp_path)
    server.write_home(0o775, 0o700, 0o600)
    if isinstance(os_release, str):
        server.file("/etc/os-release", os_release)
    elif os_release is not None:
        (tmp_path / "usr/sbin").mkdir(parents=True)
        (tmp_path / "usr/sbin/sshd").write_bytes(b"\x7fELF..." + os_release + b"...")
    if other_member:
        server.groups["u1"] = (UID, ["mallory"])
        server.write_tables()
    modes = _by(server.check(), "StrictModes")
    if refused is None:
        assert (modes[0].status, modes[0].cause_id) == ("warn", "server.bad_modes"), modes
        assert "holds u1 alone" in modes[0].summary
        return
    assert (modes[0].status == "fail") is refused, modes
    if not refused:
        assert any("holds u1 alone" in e for e in modes[0].evidence), modes


# -- A8c: the account's expiry day -----------------------------------------------------------


@pytest.mark.parametrize(
    "offset, pam, expired",
    [
        (0, "no", False),  # sshd: still valid on the day itself
        (0, "yes", True),  # pam_unix: expired from that day on
        (-1, "no", True),
        (1, "yes", False),
        (None, "no", True),  # day 0: long ago
    ],
)
def test_expiry_day_as_sshd_and_pam_unix_count_it(tmp_path, offset, pam, expired) -> None:
    server = Server(tmp_path, UsePAM=pam)
    if pam == "yes":
        server.file("/etc/pam.d/sshd", PAM_SSHD)
        server.file("/etc/pam.d/common-account", COMMON_ACCOUNT)
    while True:  # the day the check sees is the day the expiry was set from
        today = int(time.time() // 86400)
        expire = 0 if offset is None else today + offset
        server.expire["u1"] = str(expire)
        server.write_tables()
        shadow = [f for f in _by(server.check(), "shadow") if f.status != "info"]
        if int(time.time() // 86400) == today:  # else midnight (UTC) passed: again
            break
    assert bool(shadow) is expired, shadow
    if expired:
        assert shadow[0].cause_id == "account.expired"
        assert "0 day" not in shadow[0].summary
        assert ("expired today" in shadow[0].summary) is (expire == today)


# -- A9: uid 0 under another name ------------------------------------------------------------


def test_permit_root_login_applies_to_every_uid_0(tmp_path) -> None:
    server = Server(tmp_path, user="toor", uid=UID, PermitRootLogin="no")
    server.accounts = {"toor": (0, "$6$x")}
    server.write_tables()
    found = _by(server.check(), "PermitRootLogin")
    assert [(f.status, f.cause_id) for f in found] == [("fail", "account.root_denied")]
    assert "uid 0" in found[0].summary


# -- A3: ChrootDirectory ---------------------------------------------------------------------


@needs_root
def test_a_chroot_not_owned_by_root_is_bad_modes(tmp_path) -> None:
    server = Server(tmp_path, ChrootDirectory="/srv/jail/%u")
    jail = tmp_path / "srv/jail/u1"
    (jail / "bin").mkdir(parents=True)
    (jail / "bin/sh").write_text("#!/bin/true\n")
    os.chmod(jail / "bin/sh", 0o755)
    os.chown(tmp_path / "srv/jail", 61999, 61999)
    found = _by(server.check(), "ChrootDirectory")
    assert [(f.status, f.cause_id) for f in found] == [("fail", "server.bad_modes")], found
    assert found[0].data["chroot_dir"] == "/srv/jail"
    os.chown(tmp_path / "srv/jail", 0, 0)
    os.chmod(tmp_path / "srv/jail", 0o775)
    found = _by(server.check(), "ChrootDirectory")
    assert "writable by others" in found[0].summary
    os.chmod(tmp_path / "srv/jail", 0o755)
    assert [f.status for f in _by(server.check(), "ChrootDirectory")] == ["pass"]
    (jail / "bin/sh").unlink()
    found = _by(server.check(), "ChrootDirectory")
    assert [(f.status, f.cause_id) for f in found] == [("fail", "account.nologin")]


# -- A1: pam_access --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "rules, refused",
    [
        ("-:u1:ALL\n", True),
        ("+:u1:127.0.0.1\n-:ALL:ALL\n", False),
        ("+:u1:10.0.0.0/8\n-:ALL:ALL\n", True),
        ("-:ALL EXCEPT root:ALL\n", True),
        ("-:ALL EXCEPT u1:ALL\n", False),
        ("-:(u1):ALL EXCEPT 127.0.0.0/24\n", False),
        ("-:(u1):ALL\n", True),
        ("# nothing\n", False),
        ("-:u1:LOCAL\n", False),  # sshd logins are never LOCAL
        ("-:u1:127.\n", True),
    ],
)
def test_pam_access_refuses_as_access_conf_says(tmp_path, rules, refused) -> None:
    server = Server(tmp_path, UsePAM="yes")
    server.file(
        "/etc/pam.d/sshd",
        PAM_SSHD.replace(
            "@include common-account", "account required pam_access.so\n@include common-account"
        ),
    )
    server.file("/etc/pam.d/common-account", COMMON_ACCOUNT)
    server.file("/etc/security/access.conf", rules)
    pam = _by(server.check(), "PAM")
    assert (pam[0].cause_id == "account.not_allowed") is refused, pam
    if refused:
        assert (
            "/etc/security/access.conf:" in pam[0].summary and "/etc/pam.d/sshd:" in pam[0].summary
        )


def test_pam_access_is_not_asked_without_use_pam(tmp_path) -> None:
    server = Server(tmp_path, UsePAM="no")
    server.file("/etc/pam.d/sshd", "account required pam_access.so\n")
    server.file("/etc/security/access.conf", "-:ALL:ALL\n")
    assert not _by(server.check(), "PAM")


# -- B2: the offline sshd -t -----------------------------------------------------------------


def test_a_config_sshd_will_not_start_with_is_named_offline(tmp_path) -> None:
    server = Server(tmp_path)
    config = tmp_path / "etc/ssh/sshd_config"
    config.write_text(
        "Include /etc/ssh/sshd_config.d/*.conf\n" + config.read_text() + "PermitRootLogin maybe\n"
    )
    server.file("/etc/ssh/sshd_config.d/10-cloud.conf", "PasswordAuthentcation no\n")
    found = _by(server.check(), "sshd -t")
    assert [(f.status, f.cause_id) for f in found] == [("fail", "server.sshd_down")], found
    assert found[0].evidence == [
        "/etc/ssh/sshd_config.d/10-cloud.conf line 1: Bad configuration option: "
        "PasswordAuthentcation",
        '/etc/ssh/sshd_config line 4: unsupported option "maybe".',
    ]
    config.write_text("PermitRootLogin no\n")
    assert [f.status for f in _by(server.check(), "sshd -t")] == ["pass"]


def test_a_bad_config_under_a_running_sshd_is_a_warning(tmp_path) -> None:
    """sshd -t fails, but an sshd serves the port with what it loaded: only its next
    restart fails (a warning), while with no sshd serving, that is why it is down."""
    from runbook.hosts import CommandResult, Host
    from runbook.servercheck import check_config

    class Broken(Host):
        def _execute(self, line: str) -> CommandResult:
            return CommandResult(line, 255, "", 'sshd_config line 18: unsupported option "maybe".')

    for serves, expected in ((True, ("warn", None)), (False, ("fail", "server.sshd_down"))):
        ctx = Context(user="u1", port=22, client_ip="127.0.0.1", sshd_serves=serves)
        found = check_config(Broken("fake"), ctx)
        assert (found[0].status, found[0].cause_id) == expected, found
        assert "line 18" in found[0].summary


def test_a_missing_keys_command_and_no_file_is_said(tmp_path) -> None:
    server = Server(
        tmp_path, AuthorizedKeysCommand="/usr/local/bin/keys %u", AuthorizedKeysFile="none"
    )
    keys = _by(server.check(), "authorized_keys")
    assert (keys[0].status, keys[0].cause_id) == ("fail", "auth.key_rejected")
    assert "/usr/local/bin/keys does not exist" in keys[0].summary
    assert "AuthorizedKeysFile is none" in keys[0].summary
