"""sshd's side of the story: auth.log, secure, the journal, into events and DataFrames.

The seed's second advice is ``less /var/log/auth.log``. This module reads what sshd (and
sshd-session / sshd-auth since OpenSSH 9.8, and PAM under sshd's name) wrote, in every
framing found in the wild: classic syslog (``Nov 23 10:00:00 host sshd[123]: ...``, the
year inferred so it never lies in the future), rsyslog's high-precision ISO timestamps,
RFC 5424, ``journalctl -o json``, bare ``sshd -E`` files, compressed rotations and
directories of them. Each recognised line becomes one :class:`LogEvent` in the contract's
jsonl shape; the messages are a table (:data:`MESSAGES`), not code.

An event's outcome is "failure" when the line shows a refused or failed attempt: a failed
method, an invalid or refused user, a locked or expired account, bad modes, too many
failures, a PAM failure, a connection that ended before authentication ("[preauth]", or
a client giving up in the middle of authenticating), a connection refused before
authentication (banner, key exchange, MaxStartups, TCP
wrappers, time-out), and the end of a connection that failed so. Lines without the
client's address get it from the earlier lines of the same sshd process.

Every line is accounted for in :class:`LogStats`: recognised, from sshd but not
recognised, from other programs, or unreadable (binary, truncated). Nothing is dropped
silently, and nothing stops a run.
"""

from __future__ import annotations

import bz2
import codecs
import json
import lzma
import os
import re
import shlex
import subprocess
import tempfile
import threading
import zlib
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta, tzinfo
from itertools import chain, islice
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

from runbook.errors import BadInput, MissingTool

__all__ = [
    "MESSAGES",
    "LogEvent",
    "LogStats",
    "Message",
    "accepted_after_failures",
    "brute_force_sources",
    "failures_by",
    "holds_log_lines",
    "iter_events",
    "parse_line",
    "read_journal",
    "read_sshd_log",
    "timeseries",
]

Outcome = Literal["success", "failure", "info"]


@dataclass(frozen=True)
class Message:
    """One sshd message: its event name, outcome and the pattern that reads its fields.

    ``needle`` is a literal every matching message contains (a cheap first test); ``user``
    the user a message names by its very words, not in a field ("ROOT LOGIN REFUSED": root).
    """

    event: str
    outcome: Outcome
    needle: str
    pattern: str
    user: str | None = None


# The client's address: IPv4, IPv6 (also v4-mapped) or a host name (UseDNS yes).
# An address is dotted IPv4, IPv6 (it has a colon) or a dotted host name, never a bare word:
# "port" or a number cannot be taken for it, which keeps injected user names apart. A
# link-local IPv6 address keeps its zone as sshd wrote it (fe80::1%eth0). sshd -i on a pipe
# (no socket, no peer) writes "UNKNOWN port 65535": no address (nor port, see _parse).
_IP = (
    r"(?:UNKNOWN|(?P<ip>(?:::ffff:)?\d{1,3}(?:\.\d{1,3}){3}"
    r"|[0-9A-Fa-f]*:[0-9A-Fa-f:.]*[0-9A-Fa-f](?:%[\w.-]+)?"
    r"|[\w-]*[A-Za-z][\w-]*(?:\.[\w-]+)+|[\w-]+(?:\.[\w-]+)*\.[\w-]*[A-Za-z][\w-]*(?:\.[\w-]+)*))"
)
# PAM's "from HOST" that ends sshd's "PAM: ..." lines: sshd's name of the client, a bare
# host name too with UseDNS yes ("localhost", "buildbox"). Last on the line, it cannot be
# taken from an injected user name (the greedy user before it leaves the last "from").
_RHOST = r"(?:UNKNOWN|(?P<ip>[\w.:%-]+))"
_PORT = r"(?: port (?P<port>\d+))?"
_TAIL = r"(?: ssh\d?)?(?:: (?P<detail>.*?))?(?P<preauth> \[(?:preauth|postauth)\])?\s*$"
# "authenticating user U" / "invalid user U" before the address (OpenSSH 7.5+): the user
# may hold spaces, so the address is the last one, always followed by its port.
_WHO = r"(?:(?:authenticating|invalid) user (?P<user>.*) )?"
# The user of "Failed/Accepted ... for USER from": the first " from " ends it.
_FOR = r"(?P<user>.*?)"

# The patterns are written in the dialect that Python's re (with re.ASCII) and Rust's regex
# (runbook.logframe runs them through polars) read alike: no look-arounds, no
# back-references, ASCII classes.
# fmt: off
MESSAGES: tuple[Message, ...] = tuple(Message(*row) for row in (
    ("accepted", "success", "Accepted ",
     rf"^Accepted (?P<method>\S+) for {_FOR} from {_IP}{_PORT}{_TAIL}"),
    # keyboard-interactive is postponed for an invalid user too (the name is the client's,
    # read as the failed row below reads it); Accepted never is (sshd aborts first).
    ("partial", "info", " for ",
     rf"^(?:Partial|Postponed) (?P<method>\S+) for invalid user (?P<user>(?:.*[^:])?) "
     rf"from {_IP}{_PORT}(?: ssh\d?)?(?:: (?P<detail>.*?))?(?P<preauth> \[preauth\])?\s*$"),
    ("partial", "info", " for ",
     rf"^(?:Partial|Postponed) (?P<method>\S+) for {_FOR} from {_IP}{_PORT}{_TAIL}"),
    # An invalid user's name is whatever the client sent, " from 1.2.3.4 port 22" included:
    # the address is then the last one whose user part does not end in ":" (so a detail
    # after "ssh2: " that names another address cannot pass for the real one).
    ("failed", "failure", "Failed ",
     rf"^Failed (?P<method>\S+) for invalid user (?P<user>(?:.*[^:])?) from {_IP}{_PORT}"
     r"(?: ssh\d?)?(?:: (?P<detail>.*?))?(?P<preauth> \[preauth\])?\s*$"),
    ("failed", "failure", "Failed ",
     rf"^Failed (?P<method>\S+) for {_FOR} from {_IP}{_PORT}{_TAIL}"),
    ("invalid_user", "failure", "nvalid user ",
     rf"^[Ii]nvalid user (?P<user>.*) from {_IP}{_PORT}{_TAIL}"),
    ("invalid_user", "failure", "input_userauth_request: invalid user ",
     r"^input_userauth_request: invalid user (?P<user>.*?)(?P<preauth> \[preauth\])?$"),
    # A password tried for the stand-in account sshd gives a user it will not serve (no such
    # user, or one refused by AllowUsers and the like): shadow-based sshd (RHEL 7) logs this.
    ("invalid_user", "failure", "Could not get shadow information for NOUSER",
     r"^(?:error: )?(?P<reason>Could not get shadow information for NOUSER)$"),
    # The account's own refusals, in the form that names the client too.
    ("account_locked", "failure", "account is locked",
     rf"^User (?P<user>.*) from {_IP} not allowed because account is locked"),
    ("shell_refused", "failure", " not allowed because shell ",
     rf"^User (?P<user>.*) from {_IP} not allowed because (?P<reason>shell .*?)(?: \[preauth\])?$"),
    ("not_allowed", "failure", " not allowed because ",
     rf"^User (?P<user>.*) from {_IP} not allowed because (?P<reason>.+?)(?: \[preauth\])?$"),
    ("account_locked", "failure", "account is locked",
     r"^User (?P<user>.*) not allowed because account is locked"),
    ("shell_refused", "failure", " not allowed because shell ",
     r"^User (?P<user>.*) not allowed because (?P<reason>shell .*)$"),
    # A nologin file (sshd without PAM; session.c exits 254 after printing it).
    ("nologin_refused", "failure", "nologin exists",
     r"^User (?P<user>\S+) not allowed because (?P<reason>/\S*nologin) exists$"),
    # Without the address (OpenSSH before 5.x, some vendor builds).
    ("not_allowed", "failure", " not allowed because ",
     r"^User (?P<user>\S+) not allowed because (?P<reason>.+?)(?: \[preauth\])?$"),
    # access.conf said no (pam_access); sshd then logs "Access denied ... by PAM account".
    ("not_allowed", "failure", "pam_access",
     r"^pam_access\(sshd:account\): (?P<reason>access denied) for user [`'](?P<user>[^'`]*)' "
     r"from [`'](?P<ip>[^'`]*)'"),
    ("root_refused", "failure", "ROOT LOGIN REFUSED",
     rf"^ROOT LOGIN REFUSED FROM (?:::ffff:)?{_IP}{_PORT}{_TAIL}", "root"),
    # PermitRootLogin forced-commands-only let root in (the Accepted line follows).
    ("root_forced_command", "info", "Root login accepted for forced command",
     r"^Root login accepted for forced command\.?$", "root"),
    ("bad_modes", "failure", "Authentication refused:",
     r"^Authentication refused: bad ownership or modes for (?:directory|file) (?P<reason>.+)$"),
    ("bad_modes", "failure", "Authentication refused:",
     r"^Authentication refused: (?P<reason>.+)$"),
    # HostbasedAuthentication's known_hosts of the user, under the same rules.
    ("bad_modes", "failure", "Authentication refused for ",
     r"^Authentication refused for (?P<user>\S+): bad owner or modes for (?P<reason>.+)$"),
    ("account_expired", "failure", "has expired",
     r"^Account (?P<user>\S+) has expired"),
    ("account_expired", "failure", "has expired",
     r"^pam_unix\(sshd:account\): account (?P<user>\S+) has expired(?: \((?P<reason>[^)]*)\))?"),
    # Linux-PAM's words, OpenPAM's (FreeBSD: lower case; "accound" before OpenPAM 2012).
    ("account_expired", "failure", "PAM: ",
     rf"^(?:error: )?PAM: (?P<reason>[Uu]ser accoun[td] has expired) for (?:illegal user )?"
     rf"(?P<user>.*) from {_RHOST}(?: via \S+)?\s*$"),
    ("password_expired", "failure", "expired password for user",
     r"^pam_unix\(sshd:account\): expired password for user (?P<user>\S+)"
     r"(?: \((?P<reason>[^)]*)\))?"),
    ("password_expired", "failure", "password has expired",
     r"^User (?P<user>\S+) password has expired(?: \((?P<reason>[^)]*)\))?"),
    ("max_auth_tries", "failure", "maximum authentication attempts exceeded",
     rf"maximum authentication attempts exceeded for (?:invalid user )?(?P<user>.*) "
     rf"from {_IP}{_PORT}{_TAIL}"),
    # sshd's hang-ups (packet.c) read by their first word, before the other reasons'
    # (below): 8.0+ names the user and the client, 7.4 neither.
    ("too_many_failures", "failure", "Too many authentication failures",
     rf"^Disconnecting {_WHO}{_IP} port (?P<port>\d+): Too many authentication failures"
     r"(?: \[preauth\])?$"),
    ("too_many_failures", "failure", "Too many authentication failures",
     r"^Disconnecting: Too many authentication failures(?: for (?:invalid user )?(?P<user2>.+?))?"
     r"(?: \[preauth\])?$"),
    # PAM knows no such user (an NSS/LDAP account not there yet): what "Invalid user" says.
    ("invalid_user", "failure", "PAM: ",
     rf"^(?:error: )?PAM: (?P<reason>User not known to the underlying authentication module) "
     rf"for (?:illegal user )?(?P<user>.*) from {_RHOST}(?: via \S+)?\s*$"),
    ("pam_failure", "failure", "PAM: ",
     rf"^(?:error: )?PAM: (?P<reason>[Aa]uthentication (?:failure|error)) for "
     rf"(?:illegal user )?(?P<user>.*) from {_RHOST}(?: via \S+)?\s*$"),
    # PAM's own retry limit (Linux-PAM's words, OpenPAM's): sshd then ends the
    # authentication as at MaxAuthTries.
    ("max_auth_tries", "failure", "PAM: ",
     rf"^(?:error: )?PAM: (?P<reason>Have exhausted maximum number of retries for service|maximum "
     rf"number of tries exceeded) for (?:illegal user )?(?P<user>.*) from {_RHOST}"
     r"(?: via \S+)?\s*$"),
    # The user is the rest of the line: a name may hold a space ("user=bob smith").
    ("pam_failure", "failure", "pam_unix(sshd:auth): authentication failure",
     r"^pam_unix\(sshd:auth\): authentication failure;.*? rhost=(?P<ip>\S*)"
     r"(?:\s+user=(?P<user>.*?))?(?: \[preauth\])?\s*$"),
    ("account_locked", "failure", "pam_faillock",
     r"^pam_faillock\(sshd:\w+\): (?P<reason>Consecutive login failures for user (?P<user>.+?) "
     r"account temporarily locked.*)$"),
    # pam_faillock knows no such user (sshd's "Invalid user" line is the refusal).
    ("pam_detail", "info", "pam_faillock",
     r"^pam_faillock\(sshd:\w+\): (?P<reason>User unknown)(?:: (?P<user>.*))?$"),
    # pam_tally2: over its deny count, or still inside the lock time after a failure.
    ("account_locked", "failure", "pam_tally",
     r"^pam_tally2?\(sshd:\w+\): (?P<reason>user (?P<user>\S+) \(\d+\) "
     r"(?:tally|has time limit) .*)$"),
    ("pam_account", "failure", "by PAM account configuration",
     r"Access denied for user (?P<user>\S+) by PAM account configuration"),
    # Linux-PAM 1.5+ writes "for user U(uid=N) by L(uid=N)", older releases "for user U by
    # L(uid=N)"; a name (SSSD's, AD's) may hold a space.
    ("session_opened", "success", "session opened for user",
     r"^pam_unix\(sshd:session\): session opened for user (?P<user>.+?)(?:\(uid=\d+\))? by "),
    ("sig_alg_refused", "failure", " not in Pubkey",
     r"userauth_pubkey: (?:signature algorithm|key type) (?P<method>\S+) not in "
     r"(?P<reason>PubkeyAccepted\w+)"),
    ("sig_alg_refused", "failure", " not in Hostbased",
     r"userauth_hostbased: (?:signature algorithm|key type) (?P<method>\S+) not in "
     r"(?P<reason>HostbasedAccepted\w+)"),
    ("sig_alg_refused", "failure", "unsupported public key algorithm",
     r"userauth_(?:pubkey|hostbased): (?P<reason>unsupported public key algorithm): "
     r"(?P<method>\S+)"),
    # A key sshd will not use (9.2+: "Invalid key length", an RSA key under RequiredRSASize),
    # a certificate signed with an algorithm it refuses, an old client's RSA signatures.
    ("sig_alg_refused", "failure", ": refusing ",
     r"^userauth_(?:pubkey|hostbased): refusing (?P<method>\S+) key: (?P<reason>.+?)"
     r"(?: \[preauth\])?$"),
    ("sig_alg_refused", "failure", "certificate signature algorithm ",
     r"^userauth_(?:pubkey|hostbased): certificate signature algorithm (?P<method>\S+): "
     r"(?P<reason>.+?)(?: \[preauth\])?$"),
    ("sig_alg_refused", "failure", "uses unsafe signature",
     r"^Refusing (?P<method>RSA) key because (?P<reason>client uses unsafe signature scheme)"),
    # AuthenticationMethods "publickey,publickey" wants another key than the one that passed.
    ("key_reused", "failure", "refusing previously-used",
     r"^refusing previously-used (?P<method>\S+) key(?: \[preauth\])?$"),
    # The key matched, but its from="..." option in authorized_keys excludes this client.
    ("key_from_refused", "failure", "not from a permitted host",
     r"Authentication tried for (?P<user>.+?) with correct key but (?P<reason>not from a "
     r"permitted host \(host=[^,]*, ip=(?P<ip>[^,)]*)(?:, required=[^)]*)?\))"),
    # A certificate's source-address (7.4: "host (ip=A)", 8.0+: "source address (A)").
    ("key_from_refused", "failure", "with valid certificate but not from a permitted",
     r"Authentication tried for (?P<user>.+?) with valid certificate but (?P<reason>not from a "
     r"permitted (?:host|source address) \((?:ip=)?(?P<ip>[^)]*)\))"),
    # A FIDO key (8.2+) whose signature lacks the touch or PIN its options ask for.
    ("key_refused", "failure", " requirement not met",
     rf"^(?:error: )?public key (?P<method>\S+)(?: \S+)? signature for (?:invalid user )?"
     rf"(?P<user>.*) from {_IP} port (?P<port>\d+) rejected: (?P<reason>.+? requirement not met)"),
    ("key_revoked", "failure", "revoked by file",
     r"^(?:error: )?Authentication key (?P<method>\S+) \S+ (?P<reason>revoked by file \S+)"),
    ("key_revoked", "failure", "revoked key for",
     r"^(?:error: )?(?:WARNING: )?(?P<reason>revoked key) for (?P<user>.+?) attempted "
     r"authentication"),
    ("cert_refused", "failure", "Certificate invalid: ",
     r"^(?:error: )?(?P<reason>Certificate invalid: .+?)(?: \[preauth\])?$"),
    ("cert_refused", "failure", "Refusing certificate ID",
     r'^(?:error: )?Refusing certificate ID "[^"]*" serial=\d+.*?: (?P<reason>[^:]+?)'
     r"(?: \[preauth\])?$"),
    # RefuseConnection yes in a Match block (OpenSSH 10.x).
    ("not_allowed", "failure", "administratively prohibited connection",
     rf"^(?P<reason>administratively prohibited) connection for (?:invalid user )?(?P<user>\S+) "
     rf"from {_IP}{_PORT}"),
    ("keys_unreadable", "failure", "Could not open ",
     r"^Could not open (?:user '(?P<user>[^']*)' )?authorized (?:keys|principals) "
     r"'(?P<reason>[^']*)'"),
    # 7.4-8.9 "User U authorized keys PATH is ...", 9.2+ the user and path in quotes.
    ("keys_unreadable", "failure", " is not a regular file",
     r"^User '?(?P<user>.+?)'? authorized (?:keys|principals) '?(?P<reason>.+?)'? is not a "
     r"regular file$"),
    # ForceCommand internal-sftp (an sftp-only account) refuses a shell or a command
    # (before the connection row, which would take its start for a new connection).
    ("session_refused", "failure", "refusing non-sftp session",
     rf"^(?:error: )?Connection from (?:user (?P<user>.*) )?{_IP}{_PORT}: "
     r"(?P<reason>refusing non-sftp session)$"),
    # A logged-in session's client went silent past ClientAliveInterval (packet.c: 8.0+
    # names the user), before the connection row, which would take it for a new connection.
    ("client_timeout", "info", " timed out",
     rf"^Connection from (?:user (?P<user>.*) )?{_IP} port (?P<port>\d+) timed out"),
    ("connection", "info", "Connection from ",
     rf"^Connection from {_IP}(?: port (?P<port>\d+)(?: on (?P<reason>\S+ port \d+))?)?"),
    # Some distributions' sshd log each phase this way (Ltype: Version, Kex, Authname).
    ("connection", "info", "Ltype: ",
     r"^SSH: Server;Ltype: (?P<reason>\w+);Remote: (?P<ip>[^;]+?)-(?P<port>\d+);"),
    ("closed", "info", "Connection closed by ",
     rf"^Connection closed by {_WHO}{_IP} port (?P<port>\d+){_TAIL}"),
    ("closed", "info", "Connection closed by ", rf"^Connection closed by {_IP}{_TAIL}"),
    ("reset", "info", "Connection reset by ",
     rf"^Connection reset by {_WHO}{_IP} port (?P<port>\d+){_TAIL}"),
    ("reset", "info", "Connection reset by ", rf"^Connection reset by {_IP}{_TAIL}"),
    # The client gave up and said why: its own MaxAuthTries-like limit (2), or no method
    # of its own that the server allows (14).
    ("too_many_failures", "failure", "Received disconnect from ",
     rf"^(?:error: )?Received disconnect from {_IP}{_PORT}: ?(?P<code>2): "
     r"(?P<reason>Too many authentication failures.*?)(?P<preauth> \[preauth\])?$"),
    ("no_method", "failure", "Received disconnect from ",
     rf"^(?:error: )?Received disconnect from {_IP}{_PORT}: ?(?P<code>14): "
     r"(?P<reason>No (?:supported )?authentication methods? available.*?)"
     r"(?P<preauth> \[preauth\])?$"),
    ("disconnect", "info", "Received disconnect from ",
     rf"^(?:error: )?Received disconnect from {_IP}{_PORT}: ?(?P<code>\d+): "
     r"(?P<reason>.*?)(?P<preauth> \[preauth\])?$"),
    ("disconnected", "info", "Disconnected from ",
     rf"^Disconnected from {_WHO}{_IP} port (?P<port>\d+){_TAIL}"),
    ("disconnected", "info", "Disconnected from ", rf"^Disconnected from {_IP}{_TAIL}"),
    # The end of a session (after login): a logout, not a connection that failed.
    ("logout", "info", "Disconnected from user ",
     rf"^Disconnected from user (?P<user>.*) {_IP} port (?P<port>\d+)"),
    ("logout", "info", " by user ",
     rf"^Connection (?:closed|reset) by user (?P<user>.*) {_IP} port (?P<port>\d+)"),
    ("banner_error", "failure", "exchange_identification: ",
     r"^(?:error: )?(?:kex|ssh)_exchange_identification: (?P<reason>.*)$"),
    ("banner_error", "failure", "Did not receive identification string",
     rf"^Did not receive identification string from {_IP}{_PORT}"),
    ("banner_error", "failure", "Bad protocol version identification",
     rf"^Bad protocol version identification '(?P<reason>.*)' from {_IP}{_PORT}"),
    ("banner_error", "failure", "banner exchange: ",
     rf"^banner exchange: Connection from {_IP}{_PORT}: (?P<reason>.*?)(?: \[preauth\])?$"),
    # kex.c (8.0+): a banner that is no SSH one, a scanner's or prober's (which sshd drops);
    # 7.4's sshd.c could not even send its own.
    ("banner_error", "failure", "Bad remote protocol version identification",
     r"^(?:error: )?Bad remote protocol version identification: '(?P<reason>.*)'"),
    ("banner_error", "failure", "Don't panic",
     rf"^(?:probed|scanned) from {_IP} port (?P<port>\d+) with (?P<reason>.*)\.  Don't panic\.$"),
    ("banner_error", "failure", "Could not write ident string",
     rf"^Could not write ident string to {_IP}{_PORT}"),
    ("kex_failed", "failure", "uses unsafe key agreement",
     r'^(?:fatal: )?(?P<reason>Client version ".*" uses unsafe key agreement)'),
    ("kex_failed", "failure", "Unable to negotiate",
     rf"Unable to negotiate with {_IP}{_PORT}: (?P<reason>.*?)(?: \[preauth\])?$"),
    ("kex_failed", "failure", "Unable to negotiate",
     r"Unable to negotiate (?P<reason>a key exchange method)"),
    ("kex_failed", "failure", "no matching",
     r"^fatal: (?P<reason>no matching \S+ found.*?)(?: \[preauth\])?$"),
    # OpenSSH 7.5+ names the user ("authenticating user root 192.0.2.1 port 22").
    ("protocol_error", "failure", "ssh_dispatch_run_fatal",
     rf"ssh_dispatch_run_fatal: Connection from {_WHO}{_IP}{_PORT}: (?P<reason>.*?)"
     r"(?: \[preauth\])?$"),
    # Any other function's fatal error on the connection (packet.c's sshpkt_fatal: "FUNC:
    # WHAT: Connection from ...: ERROR"): before login a failure, after it ("user U") not.
    ("protocol_error", "failure", ": Connection from ",
     rf"^[a-z]\w*(?:: [\w ]+)?: Connection from {_WHO}{_IP} port (?P<port>\d+): "
     r"(?P<reason>.*?)(?: \[preauth\])?$"),
    ("protocol_error", "info", ": Connection from user ",
     rf"^[a-z]\w*(?:: [\w ]+)?: Connection from user (?P<user>.*) {_IP} port (?P<port>\d+): "
     r"(?P<reason>.*)$"),
    # Older releases' words for a packet that cannot be framed or authenticated (a scanner,
    # a corrupting middlebox): "ssh_dispatch_run_fatal: ... Connection corrupted" today.
    ("protocol_error", "failure", "Bad packet length ",
     r"^(?:Disconnecting: )?(?P<reason>Bad packet length \d+)\.?(?: \[preauth\])?$"),
    ("protocol_error", "failure", "Corrupted MAC on input",
     r"^(?:Disconnecting: )?(?P<reason>Corrupted MAC on input)\.?(?: \[preauth\])?$"),
    ("protocol_error", "failure", "Packet corrupt",
     r"^Disconnecting: (?P<reason>Packet corrupt)(?: \[preauth\])?$"),
    ("protocol_error", "failure", "Read from socket failed",
     r"Read from socket failed: (?P<reason>.*?)(?: \[preauth\])?$"),
    ("timeout", "failure", "Timeout before authentication",
     rf"Timeout before authentication for (?:connection from )?{_IP}{_PORT}"),
    # ClientAliveCountMax reached: a logged-in session whose client went silent (7.4 names
    # no one; later releases the user and the address).
    ("client_timeout", "info", "Timeout, client not responding",
     rf"^Timeout, client not responding(?: from (?:user (?P<user>.*) )?{_IP}{_PORT})?\.?$"),
    # UnusedConnectionTimeout (9.2+, serverloop.c): a session with no channel open.
    ("client_timeout", "info", "terminating inactive connection",
     rf"^terminating inactive connection from (?:user (?P<user>.*) )?{_IP}{_PORT}$"),
    ("maxstartups", "failure", "drop connection",
     r"drop connection #\d+ from \[(?P<ip>[^\]]+)\]:(?P<port>\d+) on \S+ (?P<reason>.+)$"),
    ("penalty", "info", "srclimit_penalise",
     r"srclimit_penalise: .*?new (?P<ip>[0-9A-Fa-f:.]+)/\d+ (?P<reason>.+)$"),
    # A deferred penalty that added up past PerSourcePenalties' min: now enforced (9.8+).
    ("penalty", "info", "srclimit_penalise",
     r"^srclimit_penalise: (?P<ip>[0-9A-Fa-f:.]+)/\d+: (?P<reason>activating .+)$"),
    # The listener (9.8+) logs its drops at a limited rate, then counts those it left out.
    ("maxstartups", "info", "logging rate-limited",
     r"^(?P<reason>(?:PerSourcePenalties|Maxstartups) logging rate-limited: .+)$"),
    # The listener (9.8+) on a connection's process that crashed: health, not an attempt
    # (that process logs its own end, "preauth child terminated by signal" before login).
    ("session_crash", "info", "session process ",
     rf"^(?:error: )?session process \d+ for connection from {_IP}(?: to \S+)? "
     r"(?P<reason>killed by signal \d+|terminated abnormally, status=\w+)"),
    ("session_crash", "info", "unpriv child crash",
     rf"^Session process \d+ (?P<reason>unpriv child crash) for connection from {_IP}"),
    ("tcp_wrappers", "failure", "refused connect from ",
     r"^refused connect from (?P<reason>.*) \((?:::ffff:)?(?P<ip>[^)]+)\)$"),
    ("user_change", "failure", "Change of username or service not allowed",
     rf"^Disconnecting {_WHO}{_IP} port (?P<port>\d+): (?P<reason>Change of username or "
     r"service not allowed.*?)(?: \[preauth\])?$"),
    ("user_change", "failure", "Change of username or service not allowed",
     r"^Disconnecting: (?P<reason>Change of username or service not allowed.*?)(?: \[preauth\])?$"),
    # Any other reason sshd hangs up with (packet.c, 8.0+): before login a refusal ("no
    # authentication methods enabled", "bad service request"), after it ("user U") not.
    ("disconnecting", "failure", "Disconnecting ",
     rf"^Disconnecting {_WHO}{_IP} port (?P<port>\d+): (?P<reason>.+?)(?: \[preauth\])?$"),
    ("disconnecting", "info", "Disconnecting user ",
     rf"^Disconnecting user (?P<user>.*) {_IP} port (?P<port>\d+): (?P<reason>.+)$"),
    # UseDNS yes (canohost.c, auth.c): upstream 7.4+ no longer adds "- POSSIBLE BREAK-IN
    # ATTEMPT!", some vendor builds do.
    ("reverse_dns", "info", " maps to ",
     rf"^Address {_IP} maps to (?P<reason>.*)$"),
    ("reverse_dns", "info", "reverse mapping checking getaddrinfo",
     r"^reverse mapping checking getaddrinfo for (?P<reason>\S+) \[(?P<ip>[^\]]+)\] failed"),
    # A PTR record that names an address, not a host: sshd keeps the address.
    ("reverse_dns", "info", "Nasty PTR record",
     rf'^Nasty PTR record "(?P<reason>[^"]*)" is set up for {_IP}, ignoring'),
    # An SSH-1 client (or scanner) at an SSH-2 server.
    ("banner_error", "failure", "Protocol major versions differ",
     rf"^(?:error: )?Protocol major versions differ(?: for {_IP}{_PORT})?: (?P<reason>.+)$"),
    # RHEL's PAM stack: a policy line, and a count of failures already logged one by one.
    ("pam_policy", "info", "pam_succeed_if(",
     r'^pam_succeed_if\(sshd:\w+\): requirement (?P<reason>.+?) not met by user '
     r'"(?P<user>[^"]*)"'),
    ("pam_repeat", "info", " more authentication failure",
     r"^PAM (?P<reason>\d+ more authentication failures?);.*? rhost=(?P<ip>\S+)?"
     r"(?:\s+user=(?P<user>\S+))?"),
    ("pam_repeat", "info", "ignoring max retries",
     r"^PAM service\([^)]*\) (?P<reason>ignoring max retries; \d+ > \d+)$"),
    # Session set-up (after login): what it ran, and pam_systemd's slow logind. A subsystem
    # sshd has no Subsystem line for, or cannot run, is refused (the only subsystem line
    # sshd logs at INFO; the client sees "subsystem request failed on channel 0").
    ("subsystem", "failure", "subsystem request for ",
     r"^subsystem request for \S+(?: by user (?P<user>\S+))? failed, "
     r"(?P<reason>subsystem not found|execution failed)$"),
    ("subsystem", "info", "subsystem request for ",
     r"^subsystem request for (?P<reason>\S+) by user (?P<user>\S+)"),
    ("session_setup", "info", "pam_systemd(sshd:session): Failed to",
     r"^pam_systemd\(sshd:session\): (?P<reason>Failed to .+)$"),
    ("daemon", "info", "oom_score_adj", r"^Set /proc/self/oom_score_adj to (?P<reason>-?\d+)"),
    ("daemon", "info", "Received SIGHUP", r"^Received (?P<reason>SIGHUP); restarting"),
    ("daemon", "info", "X11 display socket",
     r"^(?:error: )?(?P<reason>Failed to allocate internet-domain X11 display socket)"),
    ("maxstartups", "info", "exited MaxStartups throttling",
     r"^(?P<reason>exited MaxStartups throttling.*)$"),
    ("protocol_error", "info", "kex_protocol_error",
     r"^(?:error: )?kex_protocol_error: (?P<reason>.+?)(?P<preauth> \[preauth\])?$"),
    ("protocol_error", "info", "dispatch_protocol_",
     r"^dispatch_protocol_(?:error|ignore): (?P<reason>.+?)(?: \[preauth\])?$"),
    # The privilege-separated child died (a seccomp sandbox that refuses a system call of a
    # newer kernel or library): the client sees the connection closed during key exchange.
    ("protocol_error", "failure", "preauth child ",
     r"^(?:fatal: |error: )?\w+: (?P<reason>preauth child (?:\d+ )?terminated by signal \d+)"),
    ("reset", "info", "Read error from remote host",
     rf"^Read error from remote host {_IP} port (?P<port>\d+): (?P<reason>.+?)"
     r"(?P<preauth> \[preauth\])?$"),
    ("forward_failed", "info", "connect_to ",
     r"^(?:error: )?connect_to (?P<reason>.+?)(?:: failed\.?)?$"),
    # AllowTcpForwarding, AllowStreamLocalForwarding or PermitOpen said no (serverloop.c).
    ("forward_failed", "info", " port forward: originator ",
     r"^(?P<reason>refused (?:local|streamlocal) port forward: originator .+)$"),
    # Other PAM modules than pam_unix: SSSD (AD, LDAP), LDAP, Kerberos, winbind.
    ("pam_failure", "failure", "(sshd:auth): authentication failure",
     r"^pam_\w+\(sshd:auth\): authentication failure;.*? rhost=(?P<ip>\S*)"
     r"(?:\s+user=(?P<user>.*?))?(?: \[preauth\])?\s*$"),
    # SSSD's password check passed (sshd's "Accepted" line follows, or a refusal of the
    # account stage).
    ("pam_success", "success", "(sshd:auth): authentication success",
     r"^pam_\w+\(sshd:auth\): authentication success;.*? rhost=(?P<ip>\S*)"
     r"(?:\s+user=(?P<user>.*?))?(?: \[preauth\])?\s*$"),
    ("pam_detail", "info", "(sshd:auth): received for user",
     r"^pam_\w+\(sshd:auth\): received for user (?P<user>.+?): (?P<reason>\d+ \(.*\))$"),
    # pam_tally2's unknown user; SSSD's notes (the server's word, the user's message).
    ("pam_detail", "info", "pam_get_uid; no such user",
     r"^pam_tally2?\(sshd:\w+\): pam_get_uid; (?P<reason>no such user)(?: (?P<user>.+))?$"),
    ("pam_detail", "info", "): system info: [",
     r"^pam_\w+\(sshd:\w+\): system info: \[(?P<reason>.*)\]$"),
    ("pam_detail", "info", " message: ",
     r"^pam_\w+\(sshd:\w+\): (?P<reason>User (?:info|error) message: .+)$"),
    ("pam_detail", "info", "check pass; user unknown",
     r"^pam_unix\(sshd:auth\): check pass; (?P<reason>user unknown)$"),
    # pam_unix's audit option names what was typed as the user (a password, at times).
    ("pam_detail", "info", "check pass; user (",
     r"^pam_unix\(sshd:auth\): check pass; (?P<reason>user \((?P<user>.*)\) unknown)$"),
    ("pam_detail", "info", "bad username [",
     r"^pam_unix\(sshd:auth\): (?P<reason>bad username) \[(?P<user>.*)\]$"),
    # No password came (the client gave up at the prompt, or none could be asked for).
    ("pam_detail", "info", "could not identify password for [",
     r"^pam_unix\(sshd:auth\): auth (?P<reason>could not identify password) for "
     r"\[(?P<user>.*)\]$"),
    ("password_expiring", "info", "will expire in ",
     r"^pam_unix\(sshd:account\): (?P<reason>password for user (?P<user>\S+) will expire in "
     r"\d+ days?)$"),
    # SSSD's access provider (simple_allow_groups, AD GPOs) refused the account.
    ("pam_account", "failure", "(sshd:account): Access denied for user",
     r"^pam_\w+\(sshd:account\): (?P<reason>Access denied) for user (?P<user>.+?)"
     r"(?:: \d+ \(.*\))?$"),
    # AuthorizedKeysCommand: it failed (no keys from it), or sshd would not run it.
    ("keys_command_failed", "failure", "Authorized",
     r"^(?:error: )?(?P<reason>Authorized(?:Keys|Principals)Command \S+ .*(?:status|signal) \d+)"),
    ("keys_command_failed", "failure", "Authorized",
     r'^(?:error: )?(?P<reason>Authorized(?:Keys|Principals)Command(?:User)? "[^"]*" '
     r"(?:not found|contains invalid quotes|yielded no arguments).*)$"),
    ("keys_command_failed", "failure", "No user for Authorized",
     r"^(?:error: )?(?P<reason>No user for Authorized(?:Keys|Principals)Command specified)"),
    ("bad_modes", "failure", "Unsafe Authorized",
     r'^(?:error: )?Unsafe Authorized(?:Keys|Principals)Command "[^"]*": bad ownership or modes '
     r"for (?:directory|file) (?P<reason>.+)$"),
    ("cert_refused", "failure", "key_cert_check_authority",
     r"^(?:error: )?key_cert_check_authority: (?P<reason>.+?)(?: \[preauth\])?$"),
    ("key_found", "info", "Accepted certificate ID", r"^Accepted certificate ID (?P<reason>.+)$"),
    # HostbasedAuthentication's key of the client host (its user@host, not the login's).
    ("key_found", "info", " public key ",
     r"^Accepted (?P<method>\S+) public key \S+ from (?P<reason>\S+@\S+)$"),
    ("session_refused", "failure", 'chroot("',
     r"^(?:error: |fatal: )?(?P<reason>chroot\(.+)$"),
    ("hostbased_refused", "failure", "userauth_hostbased mismatch",
     r"^userauth_hostbased mismatch: (?P<reason>.+)$"),
    # The connection's process hands the session to a child: its pid, the child's lines.
    ("user_child", "info", "User child is on pid", r"^User child is on pid (?P<reason>\d+)"),
    # ChrootDirectory and each directory above it must be root's and writable by no one else.
    ("chroot_refused", "failure", "bad ownership or modes for chroot",
     r'^(?:fatal: )?bad ownership or modes for chroot directory (?:component )?'
     r'"(?P<reason>[^"]*)"'),
    # A login whose session sshd would not start: PAM could not open it (pam_limits'
    # maxlogins; sshd then exits 254), MaxSessions 0, a ChrootDirectory it cannot enter.
    ("session_refused", "failure", "pam_open_session",
     r"^(?:error: )?PAM: pam_open_session\(\): (?P<reason>.+)$"),
    ("session_refused", "failure", "PAM: pam_setcred",
     r"^(?:fatal: )?PAM: pam_setcred\(\): (?P<reason>.+)$"),
    # An expired password that could not be changed (auth-pam.c, session.c): sshd exits.
    ("password_expired", "failure", "PAM: pam_chauthtok",
     r"^(?:fatal: )?PAM: pam_chauthtok\(\): (?P<reason>.+)$"),
    ("password_expired", "failure", "Password expired",
     r"^(?:fatal: )?(?P<reason>Password expired(?: \(unable to change with privsep\))?)$"),
    # A name longer than PAM takes (auth-pam.c 8.9+): no account sshd will look up.
    ("invalid_user", "failure", "Username too long",
     rf"^(?:fatal: )?(?P<reason>Username too long) from {_IP}{_PORT}"),
    ("session_refused", "failure", "no more sessions",
     r"^(?:error: )?(?P<reason>no more sessions)$"),
    # pam_limits' maxlogins: the module's own line before sshd's pam_open_session one.
    ("session_refused", "failure", "Too many logins",
     r"^pam_limits\(sshd:session\): (?P<reason>Too many logins \(max \d+\)) for (?P<user>\S+)$"),
    ("session_refused", "failure", "safely_chroot",
     r"^(?:fatal: )?safely_chroot: (?P<reason>\w+\(.+)$"),
    ("hostkey_missing", "info", "Could not load host key",
     r"^(?:error: )?Could not load host key: (?P<reason>.+)$"),
    # LogLevel VERBOSE: the key's place, the session's start and end.
    ("key_found", "info", "Accepted key ",
     r"^Accepted key (?P<method>\S+) \S+ found at (?P<reason>.+)$"),
    ("session_start", "info", "Starting session: ",
     # The last " for " ends the session's kind (a forced command may hold one), so that a
     # user name with spaces (sssd's "bob smith") is read whole.
     rf"^Starting session: (?P<reason>.+) for (?P<user>\S.*?) from {_IP} port (?P<port>\d+)"),
    ("session_close", "info", "Close session: ",
     rf"^Close session: user (?P<user>\S+) from {_IP} port (?P<port>\d+)"),
    ("session_closed", "info", "session closed for user",
     r"^pam_unix\(sshd:session\): session closed for user (?P<user>.+?)\s*$"),
    ("transferred", "info", "Transferred: ", r"^Transferred: (?P<reason>.+)$"),
    ("closing", "info", "Closing connection to ",
     rf"^Closing connection to {_IP} port (?P<port>\d+)"),
    ("throttling", "info", "MaxStartups throttling",
     r"^(?:error: )?(?P<reason>beginning MaxStartups throttling|in MaxStartups throttling for .+)"),
    # sshd cannot start, or cannot serve: clients see "Connection refused" or a closed banner.
    ("sshd_failed", "info", "no hostkeys available",
     r"^(?:fatal: )?(?:sshd: )?(?P<reason>no hostkeys available)"),
    ("hostkey_missing", "info", "Unable to load host key",
     r'^(?:error: )?Unable to load host key "?(?P<reason>[^":]+)"?'),
    ("hostkey_missing", "info", "Unable to load host key",
     r"^(?:error: )?Unable to load host key: (?P<reason>.+)$"),
    ("sshd_failed", "info", "rivilege separation ",
     r"^(?:fatal: )?(?P<reason>(?:Missing privilege separation directory|Privilege separation "
     r"user \S+ does not exist).*)$"),
    # One address sshd could not listen on (others may serve): no exit of its own.
    ("bind_failed", "info", "Bind to port ",
     r"^(?:error: )?(?P<reason>Bind to port (?P<port>\d+) on (?P<ip>\S+) failed: .+)$"),
    ("sshd_failed", "info", "Cannot bind any address",
     r"^(?:fatal: )?(?P<reason>Cannot bind any address)"),
    # sshd.c's other checks at its start: the privilege separation directory's modes, the
    # sshd-session binary (9.8+), its own path, settings that cannot work together.
    ("sshd_failed", "info", "must be owned by root and not group or world-writable",
     r"^(?:fatal: )?(?P<reason>\S+ must be owned by root and not group or world-writable)"),
    ("sshd_failed", "info", " does not exist or is not executable",
     r"^(?:fatal: )?(?P<reason>\S+ does not exist or is not executable)$"),
    ("sshd_failed", "info", "requires execution with an absolute path",
     r"^(?:fatal: )?(?P<reason>sshd (?:re-exec )?requires execution with an absolute path)$"),
    ("sshd_failed", "info", "cannot be satisfied by enabled authentication methods",
     r"^(?:fatal: )?(?P<reason>AuthenticationMethods cannot be satisfied by enabled "
     r"authentication methods)$"),
    ("sshd_failed", "info", "Command set without ",
     r"^(?:fatal: )?(?P<reason>Authorized(?:Keys|Principals)Command set without \w+)$"),
    ("hostkey_missing", "info", "does not match private key",
     r"^(?:error: )?Public key for (?P<reason>\S+) does not match private key"),
    ("sshd_failed", "info", "Bad configuration option",
     r"(?P<reason>\S+ line \d+: Bad configuration option: \S+)"),
    ("sshd_failed", "info", "bad configuration option",
     r"^(?:fatal: )?(?P<reason>\S+: terminating, \d+ bad configuration options?)$"),
    ("listening", "info", "Server listening on ",
     r"^Server listening on (?P<ip>\S+) port (?P<port>\d+)"),
    ("stopped", "info", "Received signal", r"^Received signal (?P<reason>\d+); terminating"),
))
# fmt: on

# Preauth terminations: a connection that ended before anyone logged in.
_PREAUTH_FAILURES = frozenset({"closed", "reset", "disconnected", "disconnect"})
# Disconnect reasons that end an authentication: 3 (JSch's "Auth fail"), 14 (no methods).
_AUTH_DISCONNECTS = frozenset({"3", "14"})
# Noise some kernels and relays put before sshd's message ("kernel:[ 970.69]: ").
_PREFIX = re.compile(r"^kernel: ?\[ *[\d.]+\]:? ?")
# rsyslog's reduction of repeated lines (on by default in Debian and Ubuntu): the message
# inside is read, once.
_REPEATED = re.compile(r"^message repeated \d+ times: \[ ?(.*?) ?\]$")
_BY_NEEDLE: dict[str, list[tuple[Message, re.Pattern[str]]]] = {}
for _m in MESSAGES:
    _BY_NEEDLE.setdefault(_m.needle, []).append((_m, re.compile(_m.pattern, re.ASCII)))
# Messages anchored at a literal first word, indexed by it (the fast path of _message).
_FIRST_WORD = re.compile(r"^\^(?:\(\?:(?:error|fatal): \)\?)?((?:[\w:]|\\[()])+) ")
_BY_FIRST: dict[str, list[tuple[Message, re.Pattern[str]]]] = {}
for _m in MESSAGES:
    _first = _FIRST_WORD.match(_m.pattern)
    if _first:
        _BY_FIRST.setdefault(_first.group(1).replace("\\", ""), []).append(
            (_m, re.compile(_m.pattern, re.ASCII))
        )
# Longest first, so that at one position the more specific needle is the one found.
_NEEDLES = re.compile("|".join(re.escape(n) for n in sorted(_BY_NEEDLE, key=len, reverse=True)))
_MONTHS = {
    m: i
    for i, m in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1
    )
}
_BSD_TIME = re.compile(
    r"^(?P<stamp>(?P<mon>Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) +(?P<day>\d{1,2}) "
    r"(?:(?P<year_first>\d{4}) )?(?P<hms>\d\d:\d\d:\d\d)(?:\.\d+)?(?: (?P<year>\d{4}))?) +",
    re.ASCII,
)
_ISO_TIME = re.compile(
    r"^(?P<iso>\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)?) +",
    re.ASCII,
)
_RFC5424 = re.compile(
    r"^<\d{1,3}>1 (?P<iso>\S+) (?P<host>\S+) (?P<app>\S+) (?P<pid>\S+) \S+ "
    r'(?:-|(?:\[(?:[^\]"]|"(?:[^"\\]|\\.)*")*\])+) ?(?P<msg>.*)$',
    re.ASCII,
)
# BusyBox's syslogd (Alpine, OpenWrt) writes the facility and level after the host.
_LEVEL = r"(?:(?:auth|authpriv|daemon|security|user|local[0-7])\.[a-z]+ +)?"
_TAG = re.compile(
    r"^(?:(?P<host>[^\s\[\]]+) +)?" + _LEVEL + r"\[?(?P<proc>[\w./-]+?)\]?(?:\[(?P<pid>\d+)\])?:? +"
    r"(?:\[ID \d+ [\w.]+\] +)?(?P<msg>.*)$",
    re.ASCII,
)
_PRI = re.compile(r"^<\d{1,3}>")
_SYSLOG = re.compile(_BSD_TIME.pattern + _TAG.pattern[1:], re.ASCII)
_SSHD_NAMES = frozenset({"sshd", "sshd-session", "sshd-auth"})
_SSHD = re.compile(r"(?:^|[./])sshd(?:-session|-auth)?$", re.ASCII)
MAX_LINE = 8192


@dataclass(slots=True)
class LogEvent:
    """One recognised sshd line, in the contract's ``runbook logs --format jsonl`` shape."""

    time: datetime | None
    host: str | None
    process: str
    pid: int | None
    event: str
    outcome: Outcome
    user: str | None
    ip: str | None
    port: int | None
    method: str | None
    reason: str | None
    raw: str

    def to_dict(self) -> dict[str, Any]:
        # Not dataclasses.asdict: it deep-copies every field, 10x the cost of a jsonl line.
        data = {name: getattr(self, name) for name in _FIELDS}
        data["time"] = self.time.isoformat() if self.time else None
        return data


_FIELDS = tuple(f.name for f in fields(LogEvent))


@dataclass
class LogStats:
    """What happened to every line read: nothing is dropped without being counted."""

    lines: int = 0
    events: int = 0
    sshd_unrecognised: int = 0
    other: int = 0
    unreadable: int = 0
    files: list[str] = field(default_factory=list)
    examples: list[str] = field(default_factory=list)  # a few unrecognised sshd lines

    def summary(self) -> str:
        return (
            f"{self.lines} lines in {len(self.files)} file(s): {self.events} sshd events, "
            f"{self.sshd_unrecognised} sshd lines not recognised, {self.other} from other "
            f"programs, {self.unreadable} unreadable"
        )


def _message(msg: str) -> tuple[Message, dict[str, str]] | None:
    # Most messages are known by their first word; the rest by a needle anywhere.
    head = msg[7:] if msg[:7] in ("error: ", "fatal: ") else msg
    candidates = _BY_FIRST.get(head.split(" ", 1)[0])
    if candidates:
        for message, pattern in candidates:
            match = pattern.search(msg)
            if match:
                return message, match.groupdict()
    for hit in _NEEDLES.finditer(msg):
        for message, pattern in _BY_NEEDLE[hit.group()]:
            match = pattern.search(msg)
            if match:
                return message, match.groupdict()
    return None


def _bsd_time(match: re.Match[str], now: datetime, tz: tzinfo) -> datetime | None:
    key = (match.group("stamp"), now.toordinal(), tz)
    stamp = _BSD_CACHE.get(key)
    if stamp is None:
        if len(_BSD_CACHE) > 65536:
            _BSD_CACHE.clear()
        stamp = _BSD_CACHE[key] = _bsd_time_uncached(match, now, tz)
    return stamp


# Syslog stamps by (text, day of the anchor, zone): a busy log repeats each second.
_BSD_CACHE: dict[tuple[str, int, tzinfo], datetime] = {}


def _bsd_time_uncached(match: re.Match[str], now: datetime, tz: tzinfo) -> datetime | None:
    hour, minute, second = (int(x) for x in match.group("hms").split(":"))
    month, day = _MONTHS[match.group("mon")], int(match.group("day"))
    given = match.group("year") or match.group("year_first")  # a template with the year
    year = int(given or now.year)

    def build(y: int) -> datetime | None:
        try:
            return datetime(y, month, day, hour, minute, second, tzinfo=tz)
        except ValueError:  # Feb 29 in a year without one
            return None

    stamp = build(year)
    if not given and (stamp is None or stamp > now + timedelta(days=1)):
        # Syslog has no year: the newest year that does not put the line in the future
        # (Feb 29: the last leap year, up to 8 years back across a century).
        stamp = next(filter(None, map(build, range(year - 1, year - 9, -1))), None)
    return stamp  # None for a day no year has (Feb 30)


_WEEKDAY = r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) "
_MONTH = r"(?P<mon>Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"
_CLOCK = r"\d\d:\d\d:\d\d(?:\.\d{1,6})?"
# Rarer framings of a line's time, each with how to read it (None: the line has no clock).
_OTHER_STAMPS: tuple[tuple[re.Pattern[str], Callable[..., datetime | None]], ...] = tuple(
    (re.compile(pattern, re.ASCII), read)
    for pattern, read in (
        # journalctl -o short-full: "Sat 2026-11-28 10:00:01 UTC" (a zone name, or offset).
        (
            rf"^{_WEEKDAY}(?P<date>\d{{4}}-\d\d-\d\d {_CLOCK}) "
            r"(?P<zone>[A-Z]{2,5}|[+-]\d{4}) +",
            lambda m, anchor, zone: _zoned(m["date"], m["zone"], zone),
        ),
        # journalctl -o short-unix: seconds since the epoch.
        (
            r"^(?P<epoch>\d{9,10}(?:\.\d{1,6})?) +",
            lambda m, anchor, zone: datetime.fromtimestamp(float(m["epoch"]), zone),
        ),
        # Templates writing "2026/11/28 10:00:00", or ctime's "Sat Nov 28 10:00:24 2026".
        (
            rf"^(?P<date>\d{{4}}/\d\d/\d\d {_CLOCK}) +",
            lambda m, anchor, zone: _iso_time(m["date"].replace("/", "-"), zone),
        ),
        (
            rf"^{_WEEKDAY}{_MONTH} +(?P<day>\d{{1,2}}) (?P<hms>{_CLOCK}) (?P<year>\d{{4}}) +",
            lambda m, anchor, zone: _bsd_time(
                _BSD_TIME.match(f"{m['mon']} {m['day']} {m['year']} {m['hms'][:8]} "), anchor, zone
            ),
        ),
        # Day first ("28 Nov 10:00:19"), the year inferred as syslog's is.
        (
            rf"^(?P<day>\d{{1,2}}) {_MONTH} (?P<hms>{_CLOCK}) +",
            lambda m, anchor, zone: _bsd_time(
                _BSD_TIME.match(f"{m['mon']} {m['day']} {m['hms'][:8]} "), anchor, zone
            ),
        ),
        # journalctl -o short-monotonic: seconds since boot, no clock time.
        (r"^\[ *\d+\.\d+\] +", lambda m, anchor, zone: None),
    )
)


def _other_stamp(text: str, anchor: datetime, zone: tzinfo) -> tuple[datetime | None, str] | None:
    """(time, the rest of the line) for a line framed by one of _OTHER_STAMPS, else None."""
    for pattern, read in _OTHER_STAMPS:
        if match := pattern.match(text):
            try:
                return read(match, anchor, zone), text[match.end() :]
            except (ValueError, OverflowError, OSError):  # a stamp no calendar has
                return None, text[match.end() :]
    return None


def _zoned(text: str, name: str, zone: tzinfo) -> datetime | None:
    """A local time with journalctl's zone: an offset, UTC, or (an abbreviation such as
    CET, which names no single offset) the zone the reader was given."""
    if name[0] in "+-":
        return _iso_time(f"{text}{name}", zone)
    return _iso_time(text, UTC if name in ("UTC", "GMT") else zone)


_VIS = re.compile(r"\\(?:([0-3][0-7]{2})|(.))", re.DOTALL)
_VIS_CHARS = {"n": "\n", "t": "\t", "r": "\r", "s": " ", "0": "\0", "\\": "\\"}


def _unvis(text: str) -> str:
    """A name as the client sent it: sshd writes each byte that is no printable ASCII as
    \\ooo (strnvis, VIS_OCTAL|VIS_CSTYLE), so "jörg" is logged as "j\\303\\266rg"
    (PAM, which logs it as is, and the user's own name are "jörg")."""

    def one(match: re.Match[str]) -> str:
        octal, char = match.groups()
        return chr(int(octal, 8)) if octal else _VIS_CHARS.get(char, char)

    raw = _VIS.sub(one, text)
    try:
        return raw.encode("latin-1").decode("utf-8")
    except UnicodeError:  # not UTF-8 bytes, or characters that were never escaped
        return raw


def _pid(text: str | None) -> int | None:
    """A process id as sshd's tag gives it (none when absent, nil or beyond any kernel's)."""
    return int(text) if text and text.isdigit() and len(text) <= 9 else None


def _iso_time(text: str, tz: tzinfo) -> datetime | None:
    try:
        stamp = datetime.fromisoformat(text.replace(",", ".").replace("Z", "+00:00"))
    except ValueError:
        return None
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=tz)


def _header(text: str, anchor: datetime, zone: tzinfo):
    """(time, host, process, pid, message) of a line, or None for another program's line."""
    if text[:1] == "<":
        if rfc := _RFC5424.match(text):
            if not _SSHD.search(rfc.group("app")):
                return None  # another program's line
            pid = rfc.group("pid")
            return (
                _iso_time(rfc.group("iso"), zone),
                rfc.group("host"),
                rfc.group("app"),
                _pid(pid),
                rfc.group("msg"),
            )
        if pri := _PRI.match(text):  # RFC 3164 as sent, its priority kept: "<38>Nov 28 ..."
            text = text[pri.end() :]
    fast = _SYSLOG.match(text)
    if fast:
        host, proc, pid, msg = fast.group("host", "proc", "pid", "msg")
        if proc in _SSHD_NAMES or _SSHD.search(proc):
            # The common case, in one match: "Mon DD HH:MM:SS host sshd[pid]: message".
            return _bsd_time(fast, anchor, zone), host, proc, _pid(pid), msg
        return None
    time, rest = None, text
    iso = _ISO_TIME.match(text)
    bsd = None if iso else _BSD_TIME.match(text)
    other = None if iso or bsd else _other_stamp(text, anchor, zone)
    if iso:
        time, rest = _iso_time(iso.group("iso"), zone), text[iso.end() :]
    elif bsd:
        time, rest = _bsd_time(bsd, anchor, zone), text[bsd.end() :]
    elif other:
        time, rest = other
    tag = _TAG.match(rest)
    if tag and _SSHD.search(tag.group("proc") or ""):
        return (
            time,
            tag.group("host"),
            tag.group("proc"),
            _pid(tag.group("pid")),
            tag.group("msg"),
        )
    if iso or bsd or other or (tag and tag.group("pid")):
        return None  # another program's line
    # A bare message, as `sshd -E FILE` or `sshd -d` write them.
    return None, None, "sshd", None, text


def parse_line(
    line: str, *, now: datetime | None = None, tz: tzinfo | None = None
) -> LogEvent | Literal[False] | None:
    """One log line: a :class:`LogEvent`, ``None`` when it is not from sshd, ``False`` when
    it is from sshd but not a message this reader knows.

    ``now`` anchors the year of syslog timestamps (default: the current time); ``tz`` is
    the zone of timestamps that carry none (default: this machine's).
    """
    zone = tz or datetime.now().astimezone().tzinfo or UTC
    row = _parse(line[:MAX_LINE].rstrip("\r\n"), now or datetime.now(zone), zone)
    return LogEvent(*row) if row else row


Row = tuple[Any, ...]  # a LogEvent's fields in order: the bulk reader skips the objects


def _parse(text: str, anchor: datetime, zone: tzinfo) -> Row | Literal[False] | None:
    header = _header(text, anchor, zone)
    if header is None:
        return None
    time, host, process, pid, msg = header
    if host == "-":  # RFC 5424's nil value
        host = None
    if msg[:6] == "kernel":
        msg = _PREFIX.sub("", msg)
    elif msg[:17] == "message repeated " and (repeated := _REPEATED.match(msg)):
        msg = repeated.group(1)
    found = _message(msg)
    if found is None:
        return None if time is None and host is None and pid is None else False
    message, fields = found
    get = fields.get
    user = get("user")
    if user is None:
        user = get("user2")
        if user is None:
            user = message.user
    if user is not None and "\\" in user:
        user = _unvis(user)
    outcome = message.outcome
    event = message.event
    if event in _PREAUTH_FAILURES and (get("preauth") or user is not None):
        outcome = "failure"  # the connection ended before anyone logged in
    elif event == "disconnect" and get("code") in _AUTH_DISCONNECTS:
        outcome = "failure"
    port = get("port")
    ip = get("ip")
    if ip and ip[:7].lower() == "::ffff:" and "." in ip:
        ip = ip[7:]
    return (
        time,
        host,
        process,
        pid,
        event,
        outcome,
        user,
        ip or None,
        # else no TCP port, or no address to have one ("UNKNOWN port 65535": sshd -i)
        number if port and ip and (number := int(port)) <= 65535 else None,
        get("method"),
        get("reason") or get("detail") or None,
        text,
    )


# -- files ----------------------------------------------------------------------------------


# A rotated log's suffix: a number (auth.log.2.gz is older than auth.log.1) or, with
# logrotate's dateext (RHEL's default), the day it was rotated (secure-20261101).
_ROTATED = re.compile(r"(?:\.(?P<number>\d{1,4})|-(?P<day>\d{8}))(?:\.gz|\.xz|\.bz2)?$")


def _age(path: Path) -> tuple[str, int]:
    """Sort key putting a directory's logs oldest first, the live file of each name last."""
    match = _ROTATED.search(path.name)
    if match is None:
        return path.name.removesuffix(path.suffix if path.suffix in _DECOMPRESSORS else ""), 0
    base = path.name[: match.start()]
    if match.group("number"):
        return base, -int(match.group("number"))
    return base, int(match.group("day")) - 10**8  # earlier days first, all before the live one


def _files(paths: Sequence[str | os.PathLike[str]]) -> list[Path]:
    found: list[Path] = []
    for item in paths:
        path = Path("/dev/stdin") if str(item) == "-" else Path(item)
        if path.is_dir():
            files = sorted((p for p in path.iterdir() if p.is_file()), key=_age)
            if not files:
                raise BadInput(
                    f"log directory {item} holds no files",
                    hint="give the directory of the logs, such as /var/log",
                )
            found += files
        elif path.exists():  # a file, or a pipe: `runbook logs <(ssh srv cat auth.log)`, -
            found.append(path)
        else:
            raise BadInput(
                f"log {item} does not exist",
                hint="give a file or directory such as /var/log/auth.log",
            )
    return found


def _blocks(path: Path, stats: LogStats) -> Iterator[bytes]:
    """The bytes of ``path``, a block of whole lines at a time (each block but a last line
    without its newline ends with one).

    Read a block at a time (a line at a time costs a third of the parse).
    """
    rest = b""
    first = True
    try:
        for block in _raw_blocks(path):
            if first:
                block, first = block.removeprefix(b"\xef\xbb\xbf"), False  # a UTF-8 BOM
            cut = block.rfind(b"\n") + 1
            if not cut:
                # Inside one long line: only its head is ever read (MAX_LINE), so a
                # 100 MB line of garbage costs no more than a short one.
                rest = (rest + block)[: 4 * MAX_LINE]
                continue
            yield rest + block[:cut]
            rest = block[cut:]
    except (OSError, EOFError, ValueError, lzma.LZMAError, zlib.error) as err:
        # A truncated archive or a vanished file ends that file (what came before it
        # counts), not the run.
        stats.unreadable += 1
        stats.examples.append(f"{path}: {err}")
    if rest:
        yield rest


def _raw_blocks(path: Path) -> Iterator[bytes]:
    """The (decompressed) bytes of a file, _BLOCK at a time. Archives are decompressed
    incrementally, so a truncated one yields all it holds before the cut, then raises."""
    factory = _DECOMPRESSORS.get(path.suffix)
    with open(path, "rb") as handle:
        if factory is None:
            block = handle.read(_BLOCK)
            if block[:2] in (b"\xff\xfe", b"\xfe\xff"):  # UTF-16 (PowerShell's `>`)
                decoder = codecs.getincrementaldecoder("utf-16")(errors="replace")
                while block:
                    yield decoder.decode(block).encode()
                    block = handle.read(_BLOCK)
                return
            while block:
                yield block
                block = handle.read(_BLOCK)
            return
        decompressor, fed = factory(), False
        while chunk := handle.read(_BLOCK):
            while chunk:
                yield decompressor.decompress(chunk)
                fed = True
                if not decompressor.eof:
                    break
                # The end of one member: gzip and bzip2 files may hold several.
                chunk, decompressor, fed = decompressor.unused_data, factory(), False
        if fed:
            raise EOFError("compressed file ended before the end-of-stream marker (truncated)")


_BLOCK = 1 << 20
# Compressed rotations: gzip (Debian, RHEL), xz (SUSE), bzip2.
_DECOMPRESSORS: dict[str, Callable[[], Any]] = {
    ".gz": lambda: zlib.decompressobj(wbits=31),
    ".xz": lzma.LZMADecompressor,
    ".bz2": bz2.BZ2Decompressor,
}


def _lines(path: Path, stats: LogStats) -> Iterator[str]:
    """The decoded lines of ``path``, each counted in ``stats``."""
    for block in _blocks(path, stats):
        text = block.decode("utf-8", errors="replace")
        lines = text.split("\n")
        if text.endswith("\n"):
            lines.pop()
        yield from _counted(lines, stats)


def _counted(lines: list[str], stats: LogStats) -> Iterator[str]:
    stats.lines += len(lines)
    for line in lines:
        if "\0" in line:
            stats.unreadable += 1  # binary garbage
        else:
            yield line


def _judged(lines: Iterator[str], sample: int = 50) -> tuple[bool, Iterator[str]]:
    """Whether lines are ``journalctl -o json`` records: most of the first ``sample`` are
    JSON objects (blank lines, and journalctl's "Hint:" and "-- " notes, aside); and the
    lines, all of them (a pipe cannot be read twice)."""
    head = list(islice(lines, sample))
    votes = [
        line.lstrip().startswith("{")
        for line in head
        if line.strip() and not line.startswith(("Hint: ", "-- "))
    ]
    return sum(votes) * 2 > len(votes), chain(head, lines)


def holds_log_lines(path: str | os.PathLike[str], sample: int = 200) -> bool:
    """Whether any of the first ``sample`` lines of a file (or of the files of a directory)
    is a log line: a syslog, ISO or RFC 5424 stamp, a journal record, or a message of sshd.

    What tells a log without sshd events (a syslog of cron lines) from a file that is no
    log at all (a binary, a README), which the CLI refuses as bad input.
    """
    for file in _files([path]):
        for line in islice(_lines(file, LogStats()), sample):
            text = line[:MAX_LINE].rstrip("\r\n")
            if (
                _BSD_TIME.match(text)
                or _ISO_TIME.match(text)
                or _other_stamp(text, datetime.now(UTC), UTC)
                or _RFC5424.match(text)
                or (text.lstrip().startswith("{") and _journal_line(text, UTC) is not None)
                or _message(text) is not None
            ):
                return True
    return False


def _journal_line(line: str, zone: tzinfo) -> str | None:
    """A ``journalctl -o json`` record as a syslog-style line (or None if not a record)."""
    try:
        record = json.loads(line)
    except ValueError:
        return None
    if not isinstance(record, dict) or not _JOURNAL_KEYS & record.keys():
        return None
    # Each field a plain string in all but odd records (_field's cases): tested inline.
    msg = record.get("MESSAGE")
    if type(msg) is not str:
        msg = _field(msg)
    micros = record.get("__REALTIME_TIMESTAMP") or record.get("_SOURCE_REALTIME_TIMESTAMP")
    stamp = _journal_stamp(int(micros), zone) if str(micros or "").isdigit() else ""
    ident = record.get("SYSLOG_IDENTIFIER") or record.get("_COMM")
    if type(ident) is not str:
        ident = _field(ident) or "?"
    pid = record.get("SYSLOG_PID") or record.get("_PID")
    if pid is not None and type(pid) is not str:
        pid = _field(pid)
    host = record.get("_HOSTNAME")
    if host is not None and type(host) is not str:
        host = _field(host)
    tag = f"{ident}[{pid}]" if pid else ident
    line = " ".join(part for part in (stamp, host, f"{tag}: {msg}") if part)
    if "\n" in line or "\r" in line or "\0" in line:  # rare: translate costs a tenth
        line = line.translate(_ONE_LINE)
    return line


# What makes a JSON object a journal record (not any application's JSON log line).
_JOURNAL_KEYS = frozenset({"MESSAGE", "__REALTIME_TIMESTAMP", "__CURSOR"})


def _field(value: Any) -> str:
    """A journal field's text: journalctl writes a non-UTF-8 value as an array of bytes, a
    field given twice as an array of values, and one too long (without --all) as null."""
    if isinstance(value, list):
        if value and all(isinstance(b, int) for b in value):
            return bytes(b for b in value if 0 <= b < 256).decode(errors="replace")
        value = next((v for v in value if isinstance(v, str)), "")
    return value if isinstance(value, str) else ""


def _journal_stamp(micros: int, zone: tzinfo) -> str:
    """``datetime.fromtimestamp(micros / 1e6, zone).isoformat()``, its date, time and
    offset looked up once per second (a busy journal repeats each second)."""
    seconds, fraction = divmod(micros, 1_000_000)
    key = (seconds, zone)
    parts = _STAMP_CACHE.get(key)
    if parts is None:
        if len(_STAMP_CACHE) > 65536:
            _STAMP_CACHE.clear()
        try:
            whole = datetime.fromtimestamp(seconds, zone).isoformat()
        except (ValueError, OverflowError, OSError):  # a damaged record's time: none
            return ""
        parts = _STAMP_CACHE[key] = (whole[:19], whole[19:])
    return f"{parts[0]}.{fraction:06d}{parts[1]}" if fraction else f"{parts[0]}{parts[1]}"


_STAMP_CACHE: dict[tuple[int, tzinfo], tuple[str, str]] = {}


# A record is one line of the log: its line breaks are spaces, a NUL no binary garbage.
_ONE_LINE = str.maketrans({"\n": " ", "\r": " ", "\0": "\ufffd"})


# How one sshd process's lines group into connections (a process id is reused once its
# connection is over). The listener's own lines (9.8+ logs its drops and penalties under
# its pid) belong to no connection: they neither lend an address nor borrow one.
_DAEMON_EVENTS = frozenset(
    {
        "listening",
        "stopped",
        "throttling",
        "maxstartups",
        "penalty",
        "sshd_failed",
        "bind_failed",
        "daemon",
        "hostkey_missing",
        "session_crash",
    }
)
# A connection's first line: VERBOSE's "Connection from", or a banner refusal (its only line,
# or the one before the "Connection closed by" that names the client).
_STARTS = frozenset({"connection", "banner_error"})
# The lines that end a connection; after one, only more of them (and the session's
# byte count) belong to it: any other line is the next connection of a reused pid.
_ENDS = frozenset(
    {
        "closed",
        "reset",
        "disconnected",
        "disconnect",
        "logout",
        "session_closed",
        "session_close",
        "closing",
        "timeout",
        "client_timeout",
        "disconnecting",
        "too_many_failures",
        "max_auth_tries",
    }
)
_TRAILERS = _ENDS | {"transferred"}
# Lines further apart than this in one process are not one connection's: before login,
# LoginGraceTime (2 minutes by default) bounds a connection; after it, a line this late
# (the end of a long session) still names its user and, mostly, its client.
CONNECTION_GAP = timedelta(minutes=10)


def _new_connection(event: str, previous: str, gap: timedelta | None) -> bool:
    """Whether a line (its event, the event of the process's previous line, the time since
    that line) begins another connection of the same process."""
    if event in _STARTS:  # a banner refusal after "Connection from" (VERBOSE) is its own
        return event == "connection" or previous not in _STARTS
    if gap is not None and gap > CONNECTION_GAP:
        return True
    return previous in _ENDS and event not in _TRAILERS


# How far (in events) a line without an address looks ahead for its connection's first
# line with one: what bounds the events held back, whatever the log.
LOOKAHEAD = 10_000


class _Connections:
    """What the other lines of the same connection say: its client's address and user.

    Many refusals (bad modes, locked accounts, "Too many authentication failures") name
    no address; the connection's other lines do, and they share the process id. A line
    takes them from the latest earlier line of its connection that has them, else from the
    first later one within LOOKAHEAD events (sshd often names the client only when the
    connection closes): such a line waits, and the events after it with it, so that events
    stay in order.
    """

    def __init__(self) -> None:
        # Per (host, pid): its connection's (ip, port, user), or None while unknown.
        self._known: dict[tuple[str | None, int], tuple[str | None, int | None, str | None]] = {}
        self._failed: set[tuple[str | None, int]] = set()
        # Per (host, pid): the event and time of its latest line (what _new_connection reads).
        self._last: dict[tuple[str | None, int], tuple[str, datetime | None]] = {}
        self._waiting: dict[tuple[str | None, int], dict[int, LogEvent]] = {}
        self._queue: deque[tuple[int, LogEvent]] = deque()
        self._held: set[int] = set()  # the numbers of the queued events that wait
        self._count = 0

    def feed(self, event: LogEvent) -> list[LogEvent]:
        """Take one line's event; the events (in order) now complete."""
        self._count += 1
        done = self._release()  # first: who waited too long is not lent this line's address
        if event.pid is not None and event.event not in _DAEMON_EVENTS:
            self._complete(event)
        self._queue.append((self._count, event))
        return done + self._release()

    def flush(self) -> list[LogEvent]:
        """The events still waiting (their connections never named the client)."""
        self._waiting.clear()
        self._held.clear()
        return self._release()

    def _complete(self, event: LogEvent) -> None:
        key = (event.host, event.pid)
        last = self._last.get(key)
        gap = event.time - last[1] if last and event.time and last[1] else None
        if last is None or _new_connection(event.event, last[0], gap):
            self._end(key)
        self._last[key] = (event.event, event.time)
        known = self._known.get(key)
        if event.ip is not None:
            user = event.user if event.user is not None else (known[2] if known else None)
            if known is None:  # the first address of the connection: lend it forward too
                for number, waiting in self._waiting.pop(key, {}).items():
                    _replace(waiting, ip=event.ip, port=waiting.port or event.port)
                    if waiting.user is None:
                        waiting.user = event.user
                    self._held.discard(number)
            self._known[key] = (event.ip, event.port, user)
        elif known is not None:
            ip, port, user = known
            _replace(event, ip=ip, port=event.port or port)
            if event.user is None:
                event.user = user
        else:
            self._waiting.setdefault(key, {})[self._count] = event
            self._held.add(self._count)
        if event.event == "connection" or event.outcome == "success":
            self._failed.discard(key)
        if event.outcome == "failure":
            self._failed.add(key)
        elif event.event in _PREAUTH_FAILURES and key in self._failed:
            # The end of a connection that failed before anyone logged in concludes a
            # failed attempt (fail2ban counts these lines too).
            event.outcome = "failure"

    def _end(self, key: tuple[str | None, int]) -> None:
        """The process's connection is over: what waits for its address gets none."""
        self._held.difference_update(self._waiting.pop(key, {}))
        self._known.pop(key, None)
        self._failed.discard(key)

    def _release(self) -> list[LogEvent]:
        """The queue's complete events from its head; a head that has waited LOOKAHEAD
        events gets no address and goes too."""
        queue, held, done = self._queue, self._held, []
        while queue:
            number, event = queue[0]
            if number in held:
                if self._count - number <= LOOKAHEAD:
                    break
                held.discard(number)
                self._waiting[(event.host, event.pid)].pop(number)  # type: ignore[index]
            done.append(queue.popleft()[1])
        return done


def _replace(event: LogEvent, **changes: Any) -> LogEvent:
    for name, value in changes.items():
        setattr(event, name, value)
    return event


def _scan(
    lines: Iterable[str],
    anchor: datetime,
    zone: tzinfo,
    stats: LogStats,
    *,
    journal: bool | None = None,
    count: bool = False,
) -> Iterator[Row]:
    """The rows of sshd's lines, each line counted in ``stats`` (no carry-over, no filter).

    ``journal`` says whether the lines are ``journalctl -o json`` records (None: judge by
    the first line); ``count`` counts the lines here, for sources that do not count them.
    """
    for line in lines:
        if count:
            stats.lines += 1
        if journal is None:
            journal = line.lstrip().startswith("{")
        text = _journal_line(line, zone) if journal else line
        if text is None:
            stats.unreadable += 1
            continue
        text = text[:MAX_LINE].rstrip("\r\n")
        row = _parse(text, anchor, zone)
        if row is None:
            stats.other += 1
        elif row is False:
            stats.sshd_unrecognised += 1
            if len(stats.examples) < 5:
                stats.examples.append(text.strip()[:200])
        else:
            yield row


def _zone(tz: tzinfo | str | None) -> tzinfo:
    """A zone from its name (or the machine's own): the zone of stamps that carry none."""
    if isinstance(tz, str):
        try:
            return ZoneInfo(tz)
        except (KeyError, ValueError, OSError) as err:  # ZoneInfoNotFoundError is a KeyError
            raise BadInput(
                f"unknown time zone {tz!r}", hint="use a name like Europe/Zurich"
            ) from err
    return tz or datetime.now().astimezone().tzinfo or UTC


def _anchor(path: Path, now: datetime | None, zone: tzinfo) -> datetime:
    """The time a file's year-less syslog stamps are read against: its modification time."""
    return now or datetime.fromtimestamp(path.stat().st_mtime, zone)


def iter_events(
    paths: Sequence[str | os.PathLike[str]] = (),
    *,
    lines: Iterable[str] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    now: datetime | None = None,
    tz: tzinfo | None = None,
    stats: LogStats | None = None,
) -> Iterator[LogEvent]:
    """Every sshd event in ``paths`` (files, directories, .gz) or ``lines``, in order.

    Without ``now``, a file's syslog timestamps take their year from the file's own
    modification time, so last December's lines in a rotated file stay last December's.
    """
    zone = _zone(tz)
    counted = stats if stats is not None else LogStats()
    sources: list[Iterator[Row]] = []
    if lines is not None:
        sources.append(_scan(lines, now or datetime.now(zone), zone, counted, count=True))
    for path in _files(paths):
        counted.files.append(str(path))
        journal, read = _judged(_lines(path, counted))
        sources.append(_scan(read, _anchor(path, now, zone), zone, counted, journal=journal))
    connections = _Connections()
    for source in sources:
        for row in source:
            for event in connections.feed(LogEvent(*row)):
                if _kept(event, since, until):
                    counted.events += 1
                    yield event
    for event in connections.flush():
        if _kept(event, since, until):
            counted.events += 1
            yield event


def _kept(event: LogEvent, since: datetime | None, until: datetime | None) -> bool:
    return event.time is None or not (
        (since is not None and event.time < since) or (until is not None and event.time > until)
    )


# -- DataFrames -----------------------------------------------------------------------------

COLUMNS = _FIELDS  # the contract's jsonl keys, in order


def read_sshd_log(
    paths: Sequence[str | os.PathLike[str]] = (),
    *,
    lines: Iterable[str] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    tz: tzinfo | str | None = None,
    now: datetime | None = None,
    chunksize: int = 200_000,
    workers: int | None = None,
):  # -> pd.DataFrame
    """sshd's events as a DataFrame (the contract's columns, proper dtypes).

    Text files and journal exports are read in batches of lines by runbook.logframe
    (PCRE2's JIT in a small C extension, polars where it was not built), ``workers``
    batches at once (default: the cores this process may use, at most 8), so memory
    follows the events kept, not the size of the logs; ``lines`` are read
    ``chunksize`` events at a time. The result equals :func:`iter_events`'s;
    ``frame.attrs["stats"]`` holds the :class:`LogStats` of the read.
    """
    from runbook import logframe

    return logframe.read(
        paths,
        lines=lines,
        since=since,
        until=until,
        zone=_zone(tz),
        now=now,
        chunksize=chunksize,
        workers=workers,
    )


def read_journal(
    unit: str = "ssh",
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    timeout: float = 60,
):  # -> pd.DataFrame
    """The live journal of the ssh unit (``ssh`` on Debian, ``sshd`` elsewhere)."""
    argv = [
        "journalctl",
        "-o",
        "json",
        "--no-pager",
        "-u",
        unit,
        "-u",
        "sshd",
        "-t",
        "sshd",
        "-t",
        "sshd-session",
        "-t",
        "sshd-auth",
    ]
    if since:
        argv += ["--since", since.strftime("%Y-%m-%d %H:%M:%S")]
    if until:
        argv += ["--until", until.strftime("%Y-%m-%d %H:%M:%S")]
    # Its output is read as it comes, as a pipe (in batches, like a file); its errors wait
    # in a file (a pipe of them could fill while nobody reads it).
    with tempfile.TemporaryFile() as errors:
        try:
            proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=errors)
        except FileNotFoundError as err:
            raise MissingTool(
                "journalctl is not installed",
                hint="read the log files instead: runbook logs /var/log/auth.log",
            ) from err
        expired = threading.Event()
        timer = threading.Timer(timeout, lambda: (expired.set(), proc.kill()))
        timer.start()
        try:
            with proc.stdout:
                frame = read_sshd_log([f"/dev/fd/{proc.stdout.fileno()}"], since=since, until=until)
        finally:
            timer.cancel()
            proc.kill()  # only if it still runs (an error above)
            status = proc.wait()
        if expired.is_set():
            raise BadInput(
                f"journalctl did not answer within {timeout:.0f}s", hint="narrow it with --since"
            )
        errors.seek(0)
        said = errors.read().decode(errors="replace").strip()
    stats = frame.attrs["stats"]
    if status != 0 and not stats.lines:
        raise BadInput(
            f"journalctl failed: {said[:200]}",
            hint="run as root or a member of systemd-journal / adm",
        )
    stats.files = [shlex.join(argv)]
    return frame


# -- summaries for the notebooks -------------------------------------------------------------


def failures_by(frame, by: str = "reason"):  # -> pd.Series
    """Failures counted by ``event``, ``user``, ``ip`` or ``reason`` (event when no reason)."""
    failed = frame[frame["outcome"] == "failure"]
    if by == "reason":
        key = failed["reason"].fillna(failed["event"].astype("string"))
        return key.value_counts()
    return failed[by].value_counts()


def brute_force_sources(frame, *, min_failures: int = 10):  # -> pd.DataFrame
    """Addresses with many failures: how many failure lines, in how many connections (one
    password try under PAM logs two or three lines; a scanner's connection one), over how
    many users, first and last seen."""
    failed = frame[(frame["outcome"] == "failure") & frame["ip"].notna()]
    failed = failed.assign(connection=failed["host"].astype(str) + " " + failed["pid"].astype(str))
    grouped = failed.groupby("ip", observed=True).agg(
        failures=("event", "size"),
        connections=("connection", "nunique"),
        users=("user", "nunique"),
        first=("time", "min"),
        last=("time", "max"),
    )
    return grouped[grouped["failures"] >= min_failures].sort_values("failures", ascending=False)


def accepted_after_failures(frame, *, min_failures: int = 5):  # -> pd.DataFrame
    """Logins accepted from an address that failed many times before: possible compromise."""
    import pandas as pd

    rows = []
    failures: dict[str, int] = {}
    for event in frame.sort_values("time", kind="stable").itertuples(index=False):
        if pd.isna(event.ip):
            continue
        if event.outcome == "failure":
            failures[event.ip] = failures.get(event.ip, 0) + 1
        elif event.event == "accepted" and failures.get(event.ip, 0) >= min_failures:
            rows.append(
                {
                    "time": event.time,
                    "ip": event.ip,
                    "user": event.user,
                    "method": event.method,
                    "failures_before": failures[event.ip],
                }
            )
    return pd.DataFrame(rows, columns=["time", "ip", "user", "method", "failures_before"])


def timeseries(frame, freq: str = "1h"):  # -> pd.DataFrame
    """Events per ``freq`` and outcome, ready for ``.plot()``."""
    timed = frame[frame["time"].notna()]
    return (
        timed.groupby([timed["time"].dt.floor(freq), "outcome"], observed=True)
        .size()
        .unstack(fill_value=0)
    )
