"""The lab's scenarios, as data: one healthy server and one fault per cause id.

Each :class:`Scenario` says what server to run (a real ``sshd`` with options, an HTTP
server, an SSH-1 device, nothing), which lab accounts its sshd sees, what the client's
home holds (keys, known_hosts, ~/.ssh/config and their modes), where the network fault
lives, and what a user would see: the cause id a full diagnosis names (``expected``),
the cause the client alone can prove (``client_sees``) and a regex of the real ``ssh``
output that defines the symptom.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from runbook.errors import BadInput

__all__ = ["ACCOUNTS", "SCENARIOS", "Account", "Scenario", "by_name"]

ServerKind = Literal["sshd", "http", "ssh1", "none"]
NetKind = Literal["host", "noroute", "blackhole", "nodns", "firewall", "moved"]


@dataclass(frozen=True)
class Account:
    """A login that exists only in the lab's private copy of passwd/shadow/group."""

    name: str
    uid: int
    shell: str = "/bin/sh"
    # Shadow password field prefix: "" for a normal hash, "!" for a locked account.
    lock: str = ""
    # Shadow "account expires" field, days since the epoch ("" = never; 1 = long ago).
    expire: str = ""
    # Shadow "last password change" day ("0": the password must be changed at next login).
    changed: str = "19000"
    home_mode: int = 0o755
    ssh_dir_mode: int = 0o700
    authorized_keys_mode: int = 0o600
    # Owner of authorized_keys (None: the user): root's 0600 file passes StrictModes, and
    # sshd, which reads it as the user, still cannot open it.
    authorized_keys_owner: int | None = None


ACCOUNTS: dict[str, Account] = {
    a.name: a
    for a in (
        Account("alice", 61001),
        Account("bob", 61002, home_mode=0o777),  # StrictModes refuses a world-writable home
        Account("dave", 61004, lock="!"),
        Account("eve", 61005, expire="1"),
        Account("frank", 61006, shell="/usr/sbin/nologin"),
        Account("grace", 61007),
        Account("mallory", 61008),
        Account("heidi", 61009, authorized_keys_owner=0),
        Account("ivan", 61010, changed="0"),  # chage -d 0: a new password at next login
    )
}


@dataclass(frozen=True)
class Scenario:
    """One lab target: a server (or none), a client's material and the expected cause."""

    name: str
    expected: str | None
    summary: str
    symptom: str  # a regex the real `ssh -vvv -o BatchMode=yes` output matches
    server: ServerKind = "sshd"
    net: NetKind = "host"
    user: str = "alice"
    sshd_options: dict[str, str] = field(default_factory=dict)
    # Client material. Keys are named lab keys; "authorized" is in authorized_keys.
    client_keys: tuple[str, ...] = ("authorized",)
    key_mode: int = 0o600
    identity_missing: bool = False
    key_invalid: bool = False
    known_hosts: Literal["good", "changed", "empty", "ed25519-only"] = "good"
    config_mode: int = 0o600
    password: Literal["none", "right", "wrong"] = "none"
    jump: bool = False
    # What the client alone can prove when the real cause is visible only on the server.
    client_sees: str | None = None
    # The real ssh exit status when the symptom shows (255 for ssh's own failures).
    exit_status: int = 255
    # A regex of the line in the server's auth.log that proves a server-side cause.
    server_log: str | None = None
    # Files in the server's own /etc (its private layer), by path under /etc: an
    # /etc/nologin (it refuses all but root), a pam_limits rule.
    etc_files: dict[str, str] = field(default_factory=dict)
    # sshd is stopped (SIGSTOP) once it listens: the kernel still completes handshakes.
    stopped: bool = False
    # Options before the client's key in the authorized keys this sshd reads (its own copy,
    # served by AuthorizedKeysCommand): what cloud images and admins put on a key.
    key_options: str = ""

    @property
    def needs_netns(self) -> bool:
        return self.net != "host"

    @property
    def batchable(self) -> bool:
        """Whether one process can diagnose it with ``-F`` (its lab inventory.csv row): not
        in a network namespace, and nothing that only the client home overlay shows (the
        modes of ~/.ssh/config, an empty ~/.ssh)."""
        return (
            not self.needs_netns
            and self.config_mode == 0o600
            and bool(self.client_keys or self.identity_missing or self.key_invalid)
        )

    @property
    def runs_without_root(self) -> bool:
        """Whether an unprivileged user can run it: sshd as that user, logging in as itself.

        Root is needed for the lab's own accounts (other users, locked, expired, nologin,
        passwords in a private shadow), for network namespaces, and for a client home shown
        in place of ~/.ssh (ssh checks the modes of ~/.ssh/config only there).
        """
        if self.needs_netns:
            return False
        if self.server != "sshd":
            return True
        return (
            self.user == "alice"
            and self.password == "none"
            and self.config_mode == 0o600
            and not self.etc_files  # files in the server's own /etc
            # With no IdentityFile line ssh would offer the user's own default keys.
            and bool(self.client_keys or self.identity_missing or self.key_invalid)
        )

    @property
    def cause_seen_by_client(self) -> str | None:
        return self.client_sees or self.expected


_MAINTENANCE = "Maintenance until 18:00: the server is being upgraded."
# cloud-init's disable_root options on root's key (cloudinit/ssh_util.py DISABLE_USER_OPTS,
# $USER "debian" as on Debian's cloud images), with `sleep 1` for its `sleep 10`: quicker.
_CLOUD_INIT_ROOT = (
    "no-port-forwarding,no-agent-forwarding,no-X11-forwarding,command=\"echo 'Please login as "
    'the user \\"debian\\" rather than the user \\"root\\".\';echo;sleep 1;exit 142"'
)
_DENIED = r"Permission denied \((publickey|password|publickey,password)[^)]*\)"

SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        "healthy", None, "a working server: key login succeeds", r"Authenticated to ", exit_status=0
    ),
    Scenario(
        "port-refused",
        "port.refused",
        "nothing listens on the port (sshd down or moved)",
        r"connect to host \S+ port \d+: Connection refused",
        server="none",
    ),
    Scenario(
        "sshd-moved",
        "port.refused",
        "sshd listens on port 2222, the client tries 22",
        r"connect to host \S+ port 22: Connection refused",
        net="moved",
        sshd_options={"ListenAddress": "127.0.0.2", "Port": "2222"},
    ),
    Scenario(
        "no-route",
        "net.no_route",
        "the route to the host is unreachable (inside the lab's network namespace)",
        r"connect to host \S+ port \d+: (No route to host|Network is unreachable)",
        server="none",
        net="noroute",
    ),
    Scenario(
        "timeout",
        "net.timeout",
        "packets to the host are silently dropped",
        r"connect to host \S+ port \d+: Connection timed out",
        server="none",
        net="blackhole",
    ),
    Scenario(
        "dns-unresolved",
        "dns.unresolved",
        "the host name does not resolve (no resolver reachable)",
        r"Could not resolve hostname \S+: ",
        server="none",
        net="nodns",
    ),
    Scenario(
        "firewall-reject",
        "server.firewall",
        "a server firewall rejects the port with ICMP admin-prohibited while ping answers",
        r"connect to host \S+ port \d+: No route to host",
        net="firewall",
        client_sees="net.no_route",
    ),
    Scenario(
        "sshd-stopped",
        "server.sshd_down",
        "sshd listens but is stopped (SIGSTOP): connections are accepted, nothing answers",
        r"Connection timed out during banner exchange",
        client_sees="proto.not_ssh",
        stopped=True,
    ),
    Scenario(
        "not-ssh",
        "proto.not_ssh",
        "an HTTP server answers on the port",
        r"kex_exchange_identification: (banner line contains invalid characters|"
        r"Connection closed)|invalid format",
        server="http",
    ),
    Scenario(
        "ssh1",
        "proto.ssh1",
        "an old device that speaks only SSH protocol 1",
        r"Protocol major versions differ: 2 vs\. 1",
        server="ssh1",
    ),
    Scenario(
        "closed-early",
        "proto.closed_early",
        "sshd drops new connections before its banner (MaxStartups exhausted)",
        r"kex_exchange_identification: (Connection closed by remote host|"
        r"read: Connection reset by peer)",
        sshd_options={"MaxStartups": "1", "LoginGraceTime": "0"},
        server_log=r"drop connection #\d+ from \[127\.0\.0\.1\]:\d+ on \S+ past MaxStartups",
    ),
    Scenario(
        "kex-mismatch",
        "kex.no_common_alg",
        "a legacy server that offers only diffie-hellman-group1-sha1",
        r"no matching key exchange method found\. Their offer: diffie-hellman-group1-sha1",
        sshd_options={"KexAlgorithms": "diffie-hellman-group1-sha1"},
    ),
    Scenario(
        "hostkey-changed",
        "hostkey.changed",
        "known_hosts holds another key for this host",
        r"REMOTE HOST IDENTIFICATION HAS CHANGED",
        known_hosts="changed",
    ),
    Scenario(
        "hostkey-type-changed",
        "hostkey.changed",
        "the server now offers only an RSA host key; known_hosts holds its ED25519 key",
        r"REMOTE HOST IDENTIFICATION HAS CHANGED",
        sshd_options={"HostKeyAlgorithms": "rsa-sha2-512,rsa-sha2-256"},
        known_hosts="ed25519-only",
    ),
    Scenario(
        "hostkey-unknown",
        "hostkey.unknown",
        "the host is not in known_hosts and checking is strict",
        r"Host key verification failed",
        known_hosts="empty",
    ),
    Scenario(
        "identity-missing",
        "client.identity_missing",
        "the IdentityFile named in ~/.ssh/config does not exist",
        r"no such identity: \S+: No such file or directory",
        identity_missing=True,
        client_keys=(),
    ),
    Scenario(
        "key-perms",
        "client.key_perms",
        "the right private key is readable by others (0644) and ssh ignores it",
        r"UNPROTECTED PRIVATE KEY FILE",
        key_mode=0o644,
    ),
    Scenario(
        "config-perms",
        "client.config_perms",
        "~/.ssh/config is writable by everyone (Debian allows group-writable for a private group)",
        r"Bad owner or permissions on \S+",
        config_mode=0o666,
    ),
    Scenario(
        "key-invalid",
        "client.key_invalid",
        "the IdentityFile is not a private key ssh can load",
        r'Load key "[^"]+": (invalid format|error in libcrypto)',
        key_invalid=True,
        client_keys=(),
    ),
    Scenario(
        "no-method",
        "auth.no_method",
        "the server takes public keys only and the client has no key at all",
        r"Permission denied \(publickey\)",
        client_keys=(),
        sshd_options={"PasswordAuthentication": "no", "KbdInteractiveAuthentication": "no"},
    ),
    Scenario(
        "no-methods",
        "auth.no_method",
        "the server allows no method at all: public keys, passwords and keyboard-interactive off",
        r"Permission denied \(\)",
        sshd_options={
            "PubkeyAuthentication": "no",
            "PasswordAuthentication": "no",
            "KbdInteractiveAuthentication": "no",
        },
    ),
    Scenario(
        "key-rejected",
        "auth.key_rejected",
        "the client's key is not in authorized_keys",
        _DENIED,
        client_keys=("stranger",),
    ),
    Scenario(
        "password-rejected",
        "auth.password_rejected",
        "password login with the wrong password",
        r"Permission denied, please try again|Permission denied \(password\)",
        client_keys=(),
        password="wrong",
        sshd_options={"PubkeyAuthentication": "no", "PasswordAuthentication": "yes"},
        server_log=r"Failed password for alice from 127\.0\.0\.1 port \d+",
    ),
    Scenario(
        "too-many-failures",
        "auth.too_many_failures",
        "the client offers more wrong keys than MaxAuthTries allows",
        r"Too many authentication failures",
        client_keys=("spare1", "spare2", "spare3", "spare4", "authorized"),
        sshd_options={"MaxAuthTries": "3"},
        server_log=r"maximum authentication attempts exceeded for alice",
    ),
    Scenario(
        "sig-alg",
        "auth.sig_alg",
        "a server that accepts only ssh-rsa (SHA-1) signatures; the client signs with rsa-sha2",
        _DENIED,
        client_keys=("authorized-rsa",),
        sshd_options={"PubkeyAcceptedAlgorithms": "ssh-rsa"},
        client_sees="auth.key_rejected",
        server_log=r"signature algorithm rsa-sha2-\d+ not in PubkeyAcceptedAlgorithms",
    ),
    Scenario(
        "bad-modes",
        "server.bad_modes",
        "the user's home on the server is world-writable (StrictModes)",
        _DENIED,
        user="bob",
        client_sees="auth.key_rejected",
        server_log=r"Authentication refused: bad ownership or modes for directory \S+/bob",
    ),
    Scenario(
        "keys-unreadable",
        "server.bad_modes",
        "authorized_keys is root's, mode 0600: StrictModes allows it, the user cannot read it",
        _DENIED,
        user="heidi",
        client_sees="auth.key_rejected",
        server_log=r"Could not open user 'heidi' authorized keys '\S+': Permission denied",
    ),
    Scenario(
        "invalid-user",
        "account.invalid_user",
        "the user does not exist on the server",
        _DENIED,
        user="carol",
        client_sees="auth.key_rejected",
        server_log=r"Invalid user carol from 127\.0\.0\.1 port \d+",
    ),
    Scenario(
        "locked",
        "account.locked",
        "the account's password is locked ('!' in shadow)",
        _DENIED,
        user="dave",
        client_sees="auth.key_rejected",
        server_log=r"User dave not allowed because account is locked",
    ),
    Scenario(
        "expired",
        "account.expired",
        "the account expired (shadow expiry date passed)",
        _DENIED,
        user="eve",
        client_sees="auth.key_rejected",
        server_log=r"Account eve has expired",
    ),
    Scenario(
        "password-change",
        "account.expired",
        "the password must be changed at the next login (chage -d 0), which needs a terminal",
        r"Password change required but no TTY available",
        user="ivan",
        sshd_options={"UsePAM": "yes"},  # sshd alone asks for a new password only at its prompt
        exit_status=1,
        server_log=r"expired password for user ivan",
    ),
    Scenario(
        "not-allowed",
        "account.not_allowed",
        "AllowUsers does not list the user",
        _DENIED,
        user="grace",
        client_sees="auth.key_rejected",
        sshd_options={"AllowUsers": "alice"},
        server_log=r"User grace from 127\.0\.0\.1 not allowed because not listed in AllowUsers",
    ),
    Scenario(
        "root-denied",
        "account.root_denied",
        "root logs in with a good key and PermitRootLogin no refuses it: the server accepts "
        "the key, then refuses the login",
        _DENIED,
        user="root",
        sshd_options={"PermitRootLogin": "no"},
        server_log=r"ROOT LOGIN REFUSED FROM 127\.0\.0\.1 port \d+",
    ),
    Scenario(
        "root-password",
        "account.root_denied",
        "root tries a password; PermitRootLogin prohibit-password (OpenSSH's default) "
        "refuses any password for root",
        _DENIED,
        user="root",
        client_keys=(),
        password="right",
        sshd_options={"PermitRootLogin": "prohibit-password", "PasswordAuthentication": "yes"},
        client_sees="auth.password_rejected",
    ),
    Scenario(
        "root-cloud-image",
        "account.root_denied",
        "a cloud image's root: cloud-init's command= on root's key says to log in as debian",
        r'Please login as the user "debian" rather than the user "root"',
        user="root",
        key_options=_CLOUD_INIT_ROOT,
        exit_status=142,
        server_log=r"Starting session: forced-command \(key-option\) 'echo 'Please login",
    ),
    Scenario(
        "nologin",
        "account.nologin",
        "authentication works but the login shell is nologin",
        r"This account is currently not available",
        user="frank",
        exit_status=1,
        server_log=r"Accepted publickey for frank from 127\.0\.0\.1",
    ),
    Scenario(
        "forced-command",
        "account.nologin",
        "authentication works but a ForceCommand runs no commands (/bin/false), silently",
        r"Exit status 1",
        sshd_options={"ForceCommand": "/bin/false"},
        exit_status=1,
        server_log=r"Accepted publickey for alice from 127\.0\.0\.1",
    ),
    Scenario(
        "nologin-file",
        "account.nologin",
        "/etc/nologin exists (maintenance): PAM's account stage shows its text and hangs up",
        r"Maintenance until 18:00",
        sshd_options={"UsePAM": "yes"},
        etc_files={"nologin": _MAINTENANCE},
        server_log=r"Access denied for user alice by PAM account configuration",
    ),
    Scenario(
        "nologin-file-sshd",
        "account.nologin",
        "/etc/nologin exists, read by sshd itself (UsePAM no): the session exits 254",
        r"Exit status 254",
        etc_files={"nologin": _MAINTENANCE},
        exit_status=254,
        server_log=r"User alice not allowed because /etc/nologin exists",
    ),
    Scenario(
        "pam-session",
        "account.nologin",
        "PAM will not open the session (pam_limits: maxlogins 0): sshd exits 254 after the motd",
        r"Exit status 254",
        sshd_options={"UsePAM": "yes"},
        etc_files={"security/limits.conf": "alice - maxlogins 0\n"},
        exit_status=254,
        server_log=r"PAM: pam_open_session\(\): ",
    ),
    Scenario(
        "no-sessions",
        "account.nologin",
        "MaxSessions 0: the key is accepted, no session may open",
        r"channel 0: open failed",
        sshd_options={"MaxSessions": "0"},
        server_log=r"no more sessions",
    ),
    Scenario(
        "two-factor",
        "auth.no_method",
        "AuthenticationMethods wants the key and then a password, which BatchMode cannot give",
        r"with partial success",
        sshd_options={
            "AuthenticationMethods": "publickey,password",
            "PasswordAuthentication": "yes",
        },
        server_log=r"Partial publickey for alice from 127\.0\.0\.1",
    ),
    Scenario(
        "proxy-failed",
        "proxy.failed",
        "the ProxyJump host refuses the connection; the target itself is fine",
        r"Connection closed by UNKNOWN port 65535|"
        r"connect to host \S+ port \d+: Connection refused",
        jump=True,
    ),
)


def by_name(name: str) -> Scenario:
    """The scenario called ``name`` (a lab error naming the valid ones otherwise)."""
    for scenario in SCENARIOS:
        if scenario.name == name:
            return scenario
    raise BadInput(
        f"no lab scenario {name!r}",
        hint="choose from " + ", ".join(s.name for s in SCENARIOS),
    )
