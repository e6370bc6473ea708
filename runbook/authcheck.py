"""Authentication and session probes with paramiko, as ssh would try them and never more.

First the "none" method learns what the server allows (OpenSSH does not count it as a
failure). Then the client's keys in ssh's own order (agent keys for identity files,
other agent keys unless IdentitiesOnly, then the files), each first asked about without
a signature as ssh does (the server answers PK_OK for a key it would take), and a
password only when the user gave one through an environment variable. A key the server
took and whose login it then refused or hung up on is no refused key: the refusal came
after it (PermitRootLogin, PAM's account stage). The probe stays below MaxAuthTries: at
most ``max_attempts`` tries per connection; when a server disconnects earlier, that
limit is the finding ("Too many authentication failures") and the remaining keys are
tried on a fresh connection, so the fix can name the key that works. After a success a
session runs ``true`` to catch nologin shells, expired passwords and forced commands.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import count

import paramiko
from paramiko.auth_handler import AuthHandler
from paramiko.common import cMSG_USERAUTH_REQUEST

from runbook import transcript
from runbook.clientcheck import Identity, agent_keys
from runbook.findings import Finding
from runbook.sshconfig import Settings

__all__ = ["Candidate", "Connection", "candidates", "check_auth", "check_session", "connect"]

MAX_CONNECTIONS = 3
_channels = count()


@dataclass
class Candidate:
    """A key ssh would offer: where it comes from and the key that signs."""

    label: str
    key: paramiko.PKey
    source: str  # "file" or "agent"


@dataclass
class Connection:
    """A started transport and the disconnect reasons its log carried."""

    transport: paramiko.Transport
    said: list[str] = field(default_factory=list)

    def alive(self) -> bool:
        return self.transport.is_active()

    def close(self) -> None:
        self.transport.close()


class _Said(logging.Handler):
    def __init__(self, sink: list[str]) -> None:
        super().__init__(logging.INFO)
        self.sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message.startswith("Disconnect"):
            self.sink.append(message)


def connect(
    address: str,
    port: int,
    settings: Settings,
    host_key_algorithm: str | None,
    timeout: float,
    sock: socket.socket | None = None,
) -> Connection:
    """A paramiko transport through KEX, preferring the host key algorithm ssh would use."""
    sock = sock or socket.create_connection((address, port), timeout=timeout)
    client_pubkeys = set(settings.pubkey_accepted_algorithms)
    known = paramiko.Transport._preferred_pubkeys
    disabled = [a for a in known if client_pubkeys and a not in client_pubkeys]
    transport = paramiko.Transport(sock, disabled_algorithms={"pubkeys": disabled})
    said: list[str] = []
    channel = f"runbook.probe.{next(_channels)}"
    transport.set_log_channel(channel)
    logger = logging.getLogger(channel)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    logger.addHandler(_Said(said))
    transport.banner_timeout = transport.auth_timeout = transport.handshake_timeout = timeout
    if host_key_algorithm:
        options = transport.get_security_options()
        for algorithm in (
            host_key_algorithm,
            host_key_algorithm.replace("-cert-v01@openssh.com", ""),
        ):
            if algorithm in transport._preferred_keys:
                options.key_types = [algorithm]
                break
    transport.start_client(timeout=timeout)
    if transport.host_key is None:  # start_client returns quietly when its time is up
        transport.close()
        raise paramiko.SSHException(f"no key exchange within {timeout:g}s")
    return Connection(transport, said)


def candidates(settings: Settings, identities: Sequence[Identity]) -> list[Candidate]:
    """The keys ssh offers, in its order (sshconnect2.c pubkey_prepare)."""
    held = agent_keys()
    by_fp = {k.fingerprint: k for k in held}
    order: list[Candidate] = []
    used: set[str] = set()
    for ident in identities:
        if ident.fingerprint and ident.fingerprint in by_fp:
            order.append(Candidate(ident.path, by_fp[ident.fingerprint], "agent"))
            used.add(ident.fingerprint)
    if not settings.identities_only:
        order += [
            Candidate(f"agent key {k.comment or k.fingerprint}", k, "agent")
            for k in held
            if k.fingerprint not in used
        ]
    order += [
        Candidate(i.path, i.key, "file")
        for i in identities
        if i.key is not None and i.fingerprint not in used
    ]
    return order


def _none(conn: Connection, user: str) -> list[str] | None:
    """The methods the server allows, or None when "none" itself logs in."""
    try:
        conn.transport.auth_none(user)
    except paramiko.BadAuthenticationType as err:
        return list(err.allowed_types)
    return None


class _KeyQuery(AuthHandler):
    """Asks whether the server would take a key, without signing: ssh's own first step
    ("Offering public key"). SSH_MSG_USERAUTH_PK_OK (60, paramiko's keyboard-interactive
    info request number) means it would ("Server accepts key"); a failure, that it would
    not. OpenSSH counts a refused query as a failed attempt and an accepted one not."""

    def __init__(self, transport: paramiko.Transport, algorithm: str, blob: bytes) -> None:
        super().__init__(transport)
        self.algorithm, self.blob = algorithm, blob
        self.pk_ok = False

    def _parse_service_accept(self, m: paramiko.Message) -> None:
        request = paramiko.Message()
        request.add_byte(cMSG_USERAUTH_REQUEST)
        request.add_string(self.username)
        request.add_string("ssh-connection")
        request.add_string("publickey")
        request.add_boolean(False)
        request.add_string(self.algorithm)
        request.add_string(self.blob)
        self.transport._send_message(request)

    def _parse_userauth_info_request(self, m: paramiko.Message) -> None:
        self.pk_ok = True
        if self.auth_event is not None:
            self.auth_event.set()


def _query(conn: Connection, user: str, cand: Candidate) -> bool | None:
    """Whether the server would take ``cand`` (PK_OK), or None when the probe cannot ask
    (no signature algorithm both sides accept for it: the signed request says the rest).
    Raises paramiko's errors as auth_publickey does: a hang-up, publickey not allowed."""
    transport = conn.transport
    try:
        probe = _KeyQuery(transport, "", b"")
        kind, bits = probe._get_key_type_and_bits(cand.key)
        probe.algorithm = probe._finalize_pubkey_algorithm(kind)
        probe.blob = bits if isinstance(bits, bytes) else bits.asbytes()
    except (paramiko.SSHException, ValueError, AttributeError):
        return None
    answered = threading.Event()
    with transport.lock:
        transport.auth_handler = probe
        probe.auth_event, probe.auth_method, probe.username = answered, "publickey", user
        probe._request_auth()
    try:
        probe.wait_for_response(answered)
    except paramiko.BadAuthenticationType:
        raise
    except paramiko.AuthenticationException:
        if probe.pk_ok:
            return True
        if not transport.is_active():
            raise
        return False
    return True  # "none" would have logged in: no server answers a query so


@dataclass
class _Keys:
    """How offering the keys went: the accepted key, the refused ones, the key the server
    took (PK_OK) and then refused the login with, and whether the server hung up."""

    accepted: Candidate | None = None
    rejected: list[Candidate] = field(default_factory=list)
    taken: Candidate | None = None
    hung_up: bool = False
    more: list[str] = field(default_factory=list)


def _try_keys(conn: Connection, user: str, keys: Sequence[Candidate], budget: int) -> _Keys:
    """Offer keys until one is accepted, the budget is spent or the server hangs up (the
    methods it still wants after the accepted key: AuthenticationMethods
    "publickey,password"). A key the server answers PK_OK for and then refuses when it is
    signed (or hangs up on) ends the offers: ssh's next keys would meet the same refusal."""
    outcome = _Keys()
    for cand in keys[:budget]:
        try:
            taken = _query(conn, user, cand)
        except paramiko.BadAuthenticationType:
            break
        except (paramiko.SSHException, EOFError, OSError):
            outcome.rejected.append(cand)
            outcome.hung_up = not conn.alive()
            if outcome.hung_up:
                return outcome
            continue
        if taken is False:
            outcome.rejected.append(cand)
            continue
        try:
            rest = conn.transport.auth_publickey(user, cand.key)
        except paramiko.BadAuthenticationType:
            break
        except (paramiko.SSHException, EOFError, OSError):
            if taken and getattr(conn.transport.auth_handler, "authenticated", False):
                # The server's success came and then its hang-up, read before it (paramiko
                # looks at the connection first): a login that worked and whose session
                # the session check sees end, as ssh sees it.
                outcome.accepted = cand
                return outcome
            if taken:
                outcome.taken, outcome.hung_up = cand, not conn.alive()
                return outcome
            outcome.rejected.append(cand)
            if not conn.alive():
                outcome.hung_up = True
                return outcome
            continue
        outcome.accepted, outcome.more = cand, list(rest)
        return outcome
    outcome.hung_up = not conn.alive()
    return outcome


def _password(conn: Connection, user: str, password: str) -> bool:
    try:
        conn.transport.auth_password(user, password)
    except (paramiko.SSHException, EOFError, OSError):
        return False
    return conn.transport.is_authenticated()


def check_auth(
    conn: Connection,
    reconnect: Callable[[], Connection],
    settings: Settings,
    keys: Sequence[Candidate],
    *,
    password: str | None,
    timeout: float,
    allow_password: bool = True,
    max_attempts: int = 5,
) -> list[Finding]:
    """Authenticate like ssh and say how it ends; start a session when it works."""
    user = settings.user
    findings: list[Finding] = []
    try:
        allowed = _none(conn, user)
    except (paramiko.SSHException, EOFError, OSError) as err:
        return [
            Finding(
                "auth",
                "none",
                "fail",
                f"the server closed the connection when {user} asked to log in: "
                f"{err or type(err).__name__}",
                evidence=conn.said,
            )
        ]
    if allowed is None:
        findings.append(Finding("auth", "none", "pass", f"{user} logs in without authenticating"))
        return [*findings, check_session(conn, timeout)]
    findings.append(
        Finding(
            "auth",
            "none",
            "info",
            f"the server allows: {','.join(allowed)}",
            evidence=[f"Authentications that can continue: {','.join(allowed)}"],
        )
    )
    use_keys = "publickey" in allowed and settings.pubkey_authentication and bool(keys)
    use_password = (
        password is not None
        and allow_password
        and settings.password_authentication
        and bool({"password", "keyboard-interactive"} & set(allowed))
    )
    if not use_keys and not use_password:
        return [*findings, _no_method(settings, allowed, keys, password)]
    budget = max(1, max_attempts - (1 if use_password else 0))
    accepted: Candidate | None = None
    rejected: list[Candidate] = []
    limit: int | None = None
    connections = 1
    if use_keys:
        remaining = list(keys)
        more: list[str] = []
        while remaining:
            tried = _try_keys(conn, user, remaining, budget)
            accepted, refused, hung_up, more = (
                tried.accepted,
                tried.rejected,
                tried.hung_up,
                tried.more,
            )
            last = [tried.taken] if tried.taken else refused[-1:]
            if hung_up and (refusal := _account_refusal(conn, user, last)):
                return [*findings, refusal]
            if tried.taken:
                conn.close()
                return [*findings, _after_accept(user, tried.taken, hung_up, conn.said)]
            rejected += refused
            count = len(refused) + (1 if accepted else 0)
            remaining = remaining[count:]
            if hung_up and limit is None:
                limit = max(1, len(refused))
                budget = max(1, limit - 1)
            if accepted or not remaining or connections >= MAX_CONNECTIONS:
                break
            conn.close()
            conn, connections = reconnect(), connections + 1
            if _none(conn, user) is None:
                break
        if accepted and more:
            return [*findings, *_second_factor(conn, user, accepted, more, password, timeout)]
        if accepted:
            return [
                *findings,
                _key_outcome(accepted, rejected, limit, conn),
                *([check_session(conn, timeout)] if conn.alive() or limit is None else []),
            ]
    if use_password:
        if not conn.alive():
            conn.close()
            conn = reconnect()
            _none(conn, user)
        return [
            *findings,
            *_password_outcome(
                conn,
                user,
                password or "",
                timeout,
                f"password authentication as {user} succeeds",
                f"password authentication as {user} fails" + _root_note(user),
            ),
        ]
    conn.close()
    return [*findings, _rejected(user, rejected, limit, conn.said)]


def _account_refusal(conn: Connection, user: str, keys: Sequence[Candidate]) -> Finding | None:
    """A login the server accepted and then refused in its account stage (PAM): sshd
    sends the module's text as a banner and hangs up, where a refused key or password
    gets a failure message, and too many of them a disconnect with a reason."""
    words = getattr(conn.transport.auth_handler, "banner", None)
    if conn.alive() or not words or conn.said:
        return None
    lines = [ln.strip() for ln in words.decode(errors="replace").splitlines() if ln.strip()]
    if not lines:
        return None
    what = f"the key {keys[0].label}" if keys else "the password"
    data = {"identity_file": keys[0].label} if keys else {}
    cause, facts = transcript.server_says("\n".join(lines))
    data |= facts
    return Finding(
        "auth",
        "account",
        "fail",
        f"the server accepts {what} for {user}, then refuses the login in its account "
        f"stage and says: {lines[0][:200]}"
        + ("" if cause else " (the text of a nologin file, as pam_nologin shows it)"),
        cause_id=cause or "account.nologin",
        evidence=lines[:3],
        data=data,
    )


def _after_accept(user: str, key: Candidate, hung_up: bool, said: Sequence[str]) -> Finding:
    """The server answered PK_OK for ``key`` (it is in authorized_keys and usable), then
    refused the signed login or hung up on it without a word: a refusal after the key
    (transcript.after_accept says which it likely is, and how sure that is)."""
    cause, sure, why = transcript.after_accept(user, hung_up=hung_up)
    how = "hung up on the login" if hung_up else "refused the login"
    return Finding(
        "auth",
        "account",
        "fail" if sure != "low" else "warn",
        f"the server accepts the key {key.label} for {user} (it answered the key's query "
        f"with PK_OK), then {how} when it was signed: not a refused key; {why}",
        cause_id=cause,
        evidence=[
            f"Server accepts key: {key.label} ({key.key.get_name()} {key.key.fingerprint})",
            "the signed login: " + ("connection closed" if hung_up else "Permission denied"),
            *said,
        ],
        data={"identity_file": key.label},
    )


def _root_note(user: str) -> str:
    """Why a right password for root fails all the same (OpenSSH 7.0's default)."""
    if user != "root":
        return ""
    return f" ({transcript.ROOT_PASSWORD})"


def _second_factor(
    conn: Connection,
    user: str,
    key: Candidate,
    more: list[str],
    password: str | None,
    timeout: float,
) -> list[Finding]:
    """A key accepted "with partial success": the server's AuthenticationMethods wants
    another method too; with a password to give, it is tried on the same connection."""
    first = Finding(
        "auth",
        "publickey",
        "pass",
        f"{key.label} is accepted with partial success: the server also wants {','.join(more)}",
        evidence=[
            'Authenticated using "publickey" with partial success.',
            f"Authentications that can continue: {','.join(more)}",
        ],
        data={"identity_file": key.label},
    )
    if password is None or not {"password", "keyboard-interactive"} & set(more):
        conn.close()
        return [
            first,
            Finding(
                "auth",
                "methods",
                "fail",
                f"Permission denied ({','.join(more)}): the key is not enough, the server's "
                f"AuthenticationMethods requires {','.join(more)} after it, which ssh in "
                "BatchMode (or without --password-env) cannot give",
                cause_id="auth.no_method",
                evidence=[f"Authentications that can continue: {','.join(more)}"],
            ),
        ]
    return [
        first,
        *_password_outcome(
            conn,
            user,
            password,
            timeout,
            f"the password of {user} completes the login",
            f"the key is accepted, then the password of {user} is refused" + _root_note(user),
        ),
    ]


def _password_outcome(
    conn: Connection, user: str, password: str, timeout: float, works: str, refused: str
) -> list[Finding]:
    """The password tried on ``conn``: a session when it logs in, else why not."""
    if _password(conn, user, password):
        return [Finding("auth", "password", "pass", works), check_session(conn, timeout)]
    conn.close()
    if refusal := _account_refusal(conn, user, []):
        return [refusal]
    return [
        Finding(
            "auth",
            "password",
            "fail",
            refused,
            cause_id="auth.password_rejected",
            evidence=["Permission denied, please try again.", *conn.said],
        )
    ]


def _no_method(
    settings: Settings, allowed: Sequence[str], keys: Sequence[Candidate], password: str | None
) -> Finding:
    offer = ",".join(allowed)
    if ({"password", "keyboard-interactive"} & set(allowed)) and password is None:
        return Finding(
            "auth",
            "methods",
            "warn",
            f"the server wants a password ({offer}) and no key of this client is "
            "usable: give --password-env VAR to test it",
            evidence=[f"Authentications that can continue: {offer}"],
        )
    why = "the client has no usable key" if not keys else "public key authentication is off"
    summary = f"Permission denied ({offer}): the server allows only {offer} and {why}"
    if not allowed:
        summary = (
            "Permission denied (): the server allows no authentication method at all "
            "(PubkeyAuthentication, PasswordAuthentication and KbdInteractiveAuthentication "
            "all off for this user)"
        )
    return Finding(
        "auth",
        "methods",
        "fail",
        summary,
        cause_id="auth.no_method",
        evidence=[
            f"Authentications that can continue: {offer}",
            f"usable keys on the client: {len(keys)}",
        ],
    )


def _key_outcome(
    accepted: Candidate, rejected: Sequence[Candidate], limit: int | None, conn: Connection
) -> Finding:
    before = [c.label for c in rejected]
    if limit is not None:
        return Finding(
            "auth",
            "publickey",
            "fail",
            f"Too many authentication failures: the server hangs up after {limit} refused keys, "
            f"and ssh offers {len(before)} before the one it accepts ({accepted.label})",
            cause_id="auth.too_many_failures",
            evidence=[f"refused: {label}" for label in before]
            + [f"accepted when offered first: {accepted.label}"],
            data={"identity_file": accepted.label, "max_auth_tries": limit},
        )
    return Finding(
        "auth",
        "publickey",
        "pass",
        f"the server accepts the key {accepted.label} "
        f"({accepted.key.get_name()} {accepted.key.fingerprint})",
        evidence=[f"refused first: {label}" for label in before],
        data={"identity_file": accepted.label},
    )


def _rejected(
    user: str, rejected: Sequence[Candidate], limit: int | None, said: Sequence[str]
) -> Finding:
    evidence = [
        f"refused: {c.label} ({c.key.get_name()} {c.key.fingerprint})" for c in rejected
    ] + list(said)
    hint = "" if limit is None else f"; the server hung up after {limit} refused keys"
    return Finding(
        "auth",
        "publickey",
        "fail",
        f"Permission denied (publickey): the server refuses every key for {user} "
        f"({len(rejected)} offered{hint})",
        cause_id="auth.key_rejected",
        evidence=evidence,
        data={"identity_file": rejected[0].label} if rejected else {},
    )


def check_session(conn: Connection, timeout: float) -> Finding:
    """Run ``true`` in a session: nologin shells, nologin files, expired passwords and
    sessions the server refuses (MaxSessions 0, a PAM session module) fail only here."""
    dropped = (
        "authenticated, then the server dropped the connection as the session started ({}): "
        + transcript.setup_failed(getattr(conn.transport.auth_handler, "username", None))
    )
    try:
        channel = conn.transport.open_session(timeout=timeout)
    except paramiko.ChannelException as err:  # the server answered: no session
        conn.close()
        return _refused(
            f"authenticated, but the server refuses to open a session ({err.text}): "
            + transcript.SESSION_REFUSED,
        )
    except (paramiko.SSHException, EOFError, OSError) as err:
        conn.close()
        return _refused(dropped.format(err))
    out, err_out = bytearray(), bytearray()
    try:
        channel.settimeout(timeout)
        channel.exec_command("true")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and len(out) + len(err_out) < 8192:
            if channel.recv_ready():
                out += channel.recv(1024)
            elif channel.recv_stderr_ready():
                err_out += channel.recv_stderr(1024)
            elif channel.exit_status_ready() or channel.closed:
                break
            else:
                time.sleep(0.01)
    except (paramiko.SSHException, EOFError, OSError) as err:
        conn.close()
        return _refused(dropped.format(err))
    status = channel.recv_exit_status() if channel.exit_status_ready() else None
    ended = channel.closed  # before conn.close(), which closes every channel
    conn.close()
    said_err = _lines(err_out)
    lines = _lines(out) + said_err
    said = lines[0][:200] if lines else ""
    cause, facts = transcript.server_says("\n".join(lines))
    if cause is not None:
        return Finding(
            "session",
            "exec",
            "fail",
            f"authentication works, then the session ends: {said}",
            cause_id=cause,  # type: ignore[arg-type]
            evidence=lines[:3],
            data=facts,
        )
    if status == 0:
        return Finding("session", "exec", "pass", "a session starts and `true` exits 0")
    if status is None and ended:
        return _refused(dropped.format("the session closed without an exit status"))
    if status is None:
        return Finding(
            "session",
            "exec",
            "warn",
            f"the session did not finish within {timeout:g}s "
            "(a forced command or a slow login profile)",
            evidence=lines[:3],
        )
    if status == transcript.NOLOGIN_STATUS and said_err:
        # sshd without PAM prints /etc/nologin to the session's stderr, then exits 254.
        return Finding(
            "session",
            "exec",
            "fail",
            f"authentication works, then sshd exits {status}: /etc/nologin exists and says: "
            f"{said_err[0][:200]}",
            cause_id="account.nologin",
            evidence=said_err[:3],
            data={"nologin_file": "/etc/nologin"},
        )
    if status == transcript.NOLOGIN_STATUS:
        # With UsePAM, sshd prints its login messages (the motd) to stdout and exits 254
        # when PAM could not open the session; an empty /etc/nologin says nothing either.
        return _refused(
            f"authentication works, then sshd exits {status} with nothing on stderr: PAM could "
            "not open the session (pam_limits' maxlogins, a failing session module; the "
            "server's log says 'PAM: pam_open_session()'), or an empty /etc/nologin",
            evidence=[
                f"exit status {status}; stderr: nothing; stdout: {len(lines)} line(s) "
                "(sshd's login messages: the motd)"
            ],
        )
    # `true` cannot fail where it runs: the shell or a forced command did not run it.
    return Finding(
        "session",
        "exec",
        "fail",
        f"authentication works, but `true` exits {status}"
        + (f": {said}" if said else "")
        + ": the login shell or a forced command runs no commands",
        cause_id="account.nologin",
        evidence=lines[:3] or [f"exit status {status}, nothing said"],
    )


def _lines(data: bytearray) -> list[str]:
    return [ln.strip() for ln in data.decode(errors="replace").splitlines() if ln.strip()]


def _refused(summary: str, evidence: list[str] | None = None) -> Finding:
    """The server accepted the login and would not give it a session."""
    return Finding(
        "session", "exec", "fail", summary, cause_id="account.nologin", evidence=evidence or []
    )
