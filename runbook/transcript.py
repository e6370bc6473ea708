"""Reading ``ssh -v``/``-vv``/``-vvv`` output: which phase failed, why, and the proof.

A transcript is read once, in linear time: one combined search finds the lines that carry
a known OpenSSH message (the table :data:`RULES`, from OpenSSH's own format strings, see
``shared/reference/openssh_messages.md``), and only those lines are parsed further. The
events then decide the cause the way an experienced operator reads the output: the first
decisive problem wins, not the last line (an ignored key with bad permissions ends in
"Permission denied", a changed host key with StrictHostKeyChecking=no ends there too).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from runbook import catalog
from runbook.sshconfig import is_address

__all__ = [
    "NOLOGIN_STATUS",
    "ROOT_PASSWORD",
    "RULES",
    "SESSION_REFUSED",
    "SETUP_FAILED",
    "Classification",
    "Event",
    "Rule",
    "Transcript",
    "after_accept",
    "classify",
    "explain",
    "last_attempt",
    "parse",
    "server_says",
    "setup_failed",
]

Verdict = Literal["ok", "failed", "unknown"]
Confidence = Literal["high", "medium", "low"]


@dataclass(frozen=True)
class Rule:
    """One OpenSSH message: a literal to find it fast, a pattern to read its facts."""

    event: str
    needle: str
    pattern: str
    phase: str
    # Messages printed with a debug prefix only count when ``debug_ok`` (e.g. "no such
    # identity" is an error for a configured key but debug3 noise for a default one).
    debug_ok: bool = True


_PROMPT = r"^(?:PS [^>]*>|\[[^\]]*\][$#%]|\S*[$#%>]) +(?:ssh|scp|sftp)(?: +\S+)+$"

# A pasted command: a shell prompt, maybe a pipe into ssh, then ssh and its arguments.
_COMMAND_LINE = (
    r"^(?:(?:(?!: ).){0,120}?[$#%>]\s*|\+\s+)?(?:[^|]{0,200}\|\s*)?(?:sudo\s+)?"
    r"(?:\S*[/\\])?ssh(?:\.exe)?\s+(?P<args>\S.*)$"
)
# Order matters only within one line: of the rules whose literal it contains, the longest
# literal is tried first, and the first pattern that matches names the event.
# fmt: off
RULES: tuple[Rule, ...] = tuple(Rule(*row) for row in (
    # -- versions, configuration, proxy --
    ("client_version", "OpenSSH", r"^(?P<client_version>OpenSSH_\S+?)(?:,| |$)", "config"),
    # A shell prompt running ssh, scp or sftp: a paste holding more than one attempt (the
    # user fixed something and ran it again) is judged by the last; a marker, no phase.
    *(("attempt", f"{prompt} ", _PROMPT, "") for prompt in "$#%>"),
    ("remote_version", "Remote protocol version",
     r"Remote protocol version (?P<proto>[\d.]+), "
     r"remote software version (?P<server_version>.*)$", "protocol"),
    ("config_applied", "Applying options for",
     r"(?P<path>\S+) line (?P<line>\d+): Applying options for (?P<pattern>.+)$", "config"),
    ("config_read", "Reading configuration data", r"Reading configuration data (?P<path>.+)$",
     "config"),
    ("config_perms", "Bad owner or permissions on",
     r"Bad owner or permissions on (?P<ssh_config>.+?)\s*$", "config"),
    ("config_missing", "Can't open user config file",
     r"Can't open user config file (?P<ssh_config>.+?): (?P<error>.+)$", "config"),
    ("config_bad_option", "Bad configuration option",
     r"line \d+: Bad configuration option: (?P<option>\S+)", "config"),
    # Other lines ssh cannot read stop it as well, before it connects anywhere.
    ("config_bad_option", "extra arguments at end of line",
     r"line \d+: keyword (?P<option>\S+) extra arguments at end of line", "config"),
    ("config_bad_option", "Missing argument", r"line \d+: Missing argument", "config"),
    ("config_stopped", "bad configuration options",
     r"terminating, \d+ bad configuration options?", "config"),
    # The command a user pasted with its output, after a shell prompt ("$ ", "PS C:\\>",
    # set -x's "+ "): what ssh was asked for, where the output does not say it.
    ("command_line", "ssh ", _COMMAND_LINE, "config", False),
    ("command_line", "ssh.exe ", _COMMAND_LINE, "config", False),
    # 10.0+ log their own command line at -vvv (ssh.c; misc.c's argv_assemble puts a word
    # with blanks in double quotes): what ssh was asked for, where no prompt was pasted.
    ("started_with", "Started with: ",
     r"^Started with: (?:\S*/)?ssh\s+(?P<args>\S.*)$", "config"),
    ("proxy_jump", "ProxyCommand from ProxyJump", r"ProxyJump: (?P<command>.+)$", "proxy"),
    ("proxy_command", "Executing proxy",
     r"Executing proxy (?:dialer )?command: (?:exec )?(?P<command>.+)$", "proxy"),
    # Longer literals than "Connection closed by", so that rule does not take the line.
    ("proxy_unknown", "closed by UNKNOWN port 65535", r"closed by UNKNOWN port 65535", "proxy"),
    ("proxy_unknown", "reset by UNKNOWN port 65535", r"reset by UNKNOWN port 65535", "proxy"),
    ("channel_failed", "open failed", r"channel (?P<channel>\d+): open failed: (?P<reason>.+)$",
     "proxy"),
    ("stdio_failed", "stdio forwarding failed", r"stdio forwarding failed", "proxy"),
    # The ProxyCommand itself could not run: the shell's own words ("nc: not found").
    ("proxy_start_failed", "not found",
     r"^(?:/usr)?(?:/bin/)?(?:ba|da|z)?sh: (?:line )?(?:\d+: )?(?:exec: )?(?P<command>\S+): "
     r"(?:command )?not found", "proxy"),
    ("proxy_start_failed", "command not found: ",
     r"^(?:\S*/)?(?:z|k|ba)?sh:(?:\d+:)? command not found: (?P<command>\S+)", "proxy"),
    ("proxy_config", "jumphost loop", r"jumphost loop via (?P<command>\S+)", "proxy"),
    ("proxy_config", "Cannot specify -J with ProxyCommand", r"Cannot specify -J", "proxy"),
    ("proxy_config", "inconsistent options: ProxyCommand+ProxyJump",
     r"inconsistent options: ProxyCommand\+ProxyJump", "proxy"),
    # -- name resolution and TCP --
    ("dns_failed", "Could not resolve host",
     r"Could not resolve host(?:name)? \"?(?P<hostname>[^\s\"]+?)\"?(?:: (?P<detail>.+))?$",
     "dns"),
    ("connecting", "Connecting to",
     r"Connecting to (?P<hostname>\S+) \[(?P<address>[^\]]+)\] port (?P<port>\d+)", "dns"),
    ("authenticating", "Authenticating to",
     r"Authenticating to (?P<hostname>\S+?):(?P<port>\d+) as '(?P<user>[^']*)'", "network"),
    ("connect_failed", "connect to ",
     r"connect to (?P<kind>host|address) (?P<where>\S+) port (?P<port>\d+): "
     r"(?P<error>.+?)\s*$", "network"),
    ("connected", "Connection established", r"Connection established", "network"),
    ("local_version", "Local version string", r"Local version string (?P<local_version>\S+)",
     "protocol"),
    # -- banner --
    ("pre_banner", "banner line", r"_identification: banner line \d+: (?P<text>.*)$", "protocol"),
    # Before 8.0 the same lines were "ssh_exchange_identification: TEXT" (debug1), beside
    # its fatal errors of the same prefix, which are not text the server sent.
    ("pre_banner", "ssh_exchange_identification: ",
     r"^ssh_exchange_identification: "
     r"(?!read: |select: |Connection (?:closed|reset)|No banner received)(?P<text>.+)$",
     "protocol"),
    ("ssh1", "Protocol major versions differ", r"Protocol major versions differ", "protocol"),
    ("not_ssh", "banner line contains invalid", r"banner line contains invalid", "protocol"),
    ("not_ssh", "banner line too long", r"banner line too long", "protocol"),
    ("not_ssh", "Bad remote protocol version", r"Bad remote protocol version", "protocol"),
    ("not_ssh", "No SSH version received", r"No SSH version received", "protocol"),
    ("not_ssh", "invalid format",
     r"banner exchange: (?:Connection to (?P<address>\S+) port (?P<port>\d+): )?.*invalid format",
     "protocol"),
    ("banner_timeout", "timed out during banner", r"timed out during banner", "protocol"),
    # packet.c's SSH_ERR_CONN_TIMEOUT names where: after the banner timed out, for one.
    ("timed_out", "Connection to ",
     r"Connection to (?P<address>\S+) port (?P<port>\d+) timed out", "protocol"),
    # MaxStartups or PerSourcePenalties (9.8+) turned the connection away before the banner.
    ("closed_early", "Not allowed at this time", r"(?P<error>Not allowed at this time)",
     "protocol"),
    ("closed_early", "exchange_identification",
     r"_exchange_identification: (?:read: )?(?P<error>Connection (?:closed|reset).*)$",
     "protocol"),
    # Any other system error once TCP connected, before the server's banner: 7.4's
    # ssh_exchange_identification and 8.0+'s kex_exchange_identification name the call
    # ("read: Connection timed out"), and 8.9+ end with sshconnect.c's "banner exchange:
    # Connection to HOST port N: ERROR" (its "invalid format" is the not_ssh rule's).
    *(("banner_error", f"exchange_identification: {call}: ",
       rf"_exchange_identification: {call}: (?!Connection reset)(?P<error>.+?)\.?$", "protocol")
      for call in ("read", "write", "select")),
    ("banner_error", "banner exchange: Connection to ",
     r"banner exchange: Connection to (?P<address>\S+) port (?P<port>\d+): "
     r"(?!invalid format)(?P<error>.+)$", "protocol"),
    # A fatal protocol error: a corrupted stream (MTU, NIC offload, a middlebox) or a broken
    # crypto library; no cause of the catalog, but a failure of that phase.
    ("protocol_fatal", "ssh_dispatch_run_fatal",
     r"ssh_dispatch_run_fatal: Connection to \S+ port \d+: (?P<error>.+)$", "kex"),
    ("protocol_fatal", "strict KEX violation", r"strict KEX violation: (?P<error>.+)$", "kex"),
    # The same before OpenSSH 7.x, which said it in words of its own.
    ("protocol_fatal", "Corrupted MAC on input", r"(?P<error>Corrupted MAC on input)", "kex"),
    ("protocol_fatal", "Bad packet length", r"(?P<error>Bad packet length \d+)", "kex"),
    ("protocol_fatal", "Packet corrupt", r"Disconnecting: (?P<error>Packet corrupt)", "kex"),
    # A server that breaks the protocol's authentication (sshconnect2.c's fatal), and a
    # ControlMaster that died under its socket (mux.c): failures no cause of the catalog is.
    ("protocol_fatal", "Unexpected authentication success",
     r"(?P<error>Unexpected authentication success during \S+?)\.?$", "auth"),
    ("protocol_fatal", "read from master failed",
     r"(?P<error>mux_client_\w+: read from master failed: .+)$", "config"),
    # -- key exchange --
    ("kex_failed", "Unable to negotiate",
     r"Unable to negotiate with (?P<address>\S+) port (?P<port>\d+): "
     r"no matching (?P<what>.+?) found\.?(?: Their offer: (?P<offer>\S*))?", "kex"),
    ("kex_done", "SSH2_MSG_NEWKEYS received", r"SSH2_MSG_NEWKEYS received", "kex"),
    # The client sent its key exchange and waits for the server's reply (kex.c, kexgen.c,
    # kexgexc.c): its first large packet (the host key, a signature, a post-quantum share).
    ("kex_waiting", "expecting SSH2_MSG_KEX",
     r"expecting (?P<message>SSH2_MSG_KEX\w*)", "kex"),
    ("kex_chosen", "kex: ",
     r"kex: (?P<what>algorithm|host key algorithm|server->client cipher|client->server cipher):? "
     r"(?P<value>.+)$", "kex"),
    # -- host key --
    ("server_host_key", "Server host key:",
     r"Server host key: (?P<key_type>\S+) (?P<fingerprint>SHA256:[A-Za-z0-9+/=]+|MD5:\S+)",
     "hostkey"),
    ("hostkey_changed", "IDENTIFICATION HAS CHANGED", r"IDENTIFICATION HAS CHANGED", "hostkey"),
    ("hostkey_changed", "POSSIBLE DNS SPOOFING", r"POSSIBLE DNS SPOOFING", "hostkey"),
    # A key marked @revoked in known_hosts (or in a RevokedHostKeys list): distrusted on
    # purpose, not stale (the fact host_key_revoked picks the catalog's variant).
    ("hostkey_changed", "REVOKED HOST KEY", r"(?P<host_key_revoked>REVOKED) HOST KEY", "hostkey"),
    ("hostkey_changed", "is marked as revoked",
     r"The (?P<key_type>\S+) host key for (?P<host_spec>\S+) is marked as "
     r"(?P<host_key_revoked>revoked)", "hostkey"),
    ("hostkey_changed", "ost key for ", r"[Hh]ost key for (?P<host_spec>\S+) has changed",
     "hostkey"),
    ("hostkey_changed", "was revoked and you have requested",
     r"(?:(?P<key_type>\S+) host key for (?P<host_spec>\S+) )?was (?P<host_key_revoked>revoked)",
     "hostkey"),
    # CheckHostIP: the key for the name is known, the one stored for the address differs.
    ("hostkey_changed", "differs from the key for the IP address",
     r"(?P<key_type>\S+) host key for '(?P<host_spec>[^']+)' differs from the key for the IP"
     r"(?: address '(?P<address>[^']+)')?",
     "hostkey"),
    ("hostkey_changed", "to avoid man-in-the-middle",
     r"authentication is disabled to avoid man-in-the-middle", "hostkey"),
    ("hostkey_offending", "Offending",
     r"Offending (?:(?P<key_type>\S+) key|key for (?P<for_ip>IP)) in "
     r"(?P<known_hosts>.+):(?P<known_hosts_line>\d+)\s*$", "hostkey"),
    # "POSSIBLE DNS SPOOFING": the name's key changed, and the address's entry differs too.
    ("hostkey_ip", "corresponding IP address", r"corresponding IP address (?P<address>[^\s,]+)",
     "hostkey"),
    # Debian's hint after "Offending ... key": the entry to remove, as ssh-keygen names it.
    ("hostkey_remove", "ssh-keygen -f ",
     r"ssh-keygen -f [\"']?(?P<known_hosts>[^\"']+?)[\"']? -R [\"']?(?P<host_spec>[^\"'\s]+)",
     "hostkey"),
    # CheckHostIP: the name's own entry is right (the address's is "Offending").
    ("hostkey_matching", "Matching host key in",
     r"Matching host key in (?P<known_hosts>.+):(?P<known_hosts_line>\d+)\s*$", "hostkey"),
    ("hostkey_fingerprint", "key sent by the remote host is",
     r"The fingerprint for the (?P<key_type>\S+) key sent by the remote host is", "hostkey"),
    ("hostkey_unknown", "host key is known for",
     r"No (?P<key_type>\S+) host key is known for (?P<host_spec>\S+)", "hostkey"),
    ("hostkey_ask", "can't be established",
     r"authenticity of host '(?P<host_spec>[^' ]+)", "hostkey"),
    # The question's fingerprint, on the line after it.
    ("hostkey_ask_key", "key fingerprint is",
     r"^(?P<key_type>[A-Z0-9-]+) key fingerprint is "
     r"(?P<fingerprint>SHA256:[A-Za-z0-9+/=]+|MD5:\S+)", "hostkey"),
    ("hostkey_failed", "Host key verification failed", r"Host key verification failed", "hostkey"),
    # A host certificate the client refused (sshkey.c's reasons: expired, not yet valid, a
    # name it was not signed for): ssh then checks the plain key, which is rarely known.
    ("hostkey_cert_invalid", "Certificate invalid: ", r"Certificate invalid: (?P<error>.+?)\.?$",
     "hostkey"),
    ("hostkey_refused", "Bad server host key", r"Bad server host key: (?P<error>.+)$", "hostkey"),
    ("hostkey_refused", "not in HostKeyAlgorithms",
     r"Server host key (?P<key_type>\S+) not in HostKeyAlgorithms", "hostkey"),
    # The user answered yes (or gave the fingerprint), or ssh added a new key: a warning
    # before it did not stop the login.
    ("hostkey_yes", "continue connecting",
     r"continue connecting \([^)]*\)\? *(?i:yes|SHA256:\S+)$", "hostkey"),
    ("hostkey_yes", "Please type 'yes'", r"Please type 'yes'[^:]*: *(?i:yes|SHA256:\S+)$",
     "hostkey"),
    ("hostkey_added", "Permanently added", r"Permanently added ", "hostkey"),
    ("hostkey_ok", "is known and matches", r"is known and matches", "hostkey"),
    ("hostkey_found", "Found key in",
     r"Found key in (?P<known_hosts>.+):(?P<known_hosts_line>\d+)\s*$", "hostkey"),
    # The changed-key warning prints the fingerprint alone, on the line after "... is".
    ("fingerprint_line", "SHA256:", r"(?:^|[\s>])(?P<fingerprint>SHA256:[A-Za-z0-9+/=]+)\.?$",
     "hostkey"),
    # -- client files --
    ("key_perms", "UNPROTECTED PRIVATE KEY FILE", r"UNPROTECTED PRIVATE KEY FILE", "client"),
    ("key_perms", "are too open",
     r"Permissions (?:(?P<mode>0?[0-7]{3,4}) )?for '(?P<identity_file>.+)' are too open",
     "client"),  # Win32-OpenSSH's authfile.c names no mode: an ACL lets others read the key
    ("key_perms", "bad permissions: ignore key", r"ignore key: (?P<identity_file>.+?)\s*$",
     "client"),
    ("key_perms", "bad permissions", r"Load key \"(?P<identity_file>.+)\": bad permissions",
     "client"),
    ("key_invalid", "Load key", r"Load key \"(?P<identity_file>.+)\": (?P<error>.+)$", "client"),
    # A key file with a passphrase: asked once per try (NumberOfPasswordPrompts, 3), after
    # the server accepted its public key or before offering a key without a .pub file.
    ("passphrase_asked", "Enter passphrase for key",
     r"Enter passphrase for key '(?P<identity_file>[^']+)'", "client"),
    ("passphrase_wrong", "bad passphrase given", r"bad passphrase given", "client"),
    # Win32-OpenSSH names who else may read the key (debug3).
    ("key_acl", "Try removing permissions for user",
     r"Try removing permissions for user: (?P<acl_user>.+?) \(S-[\d-]+\)", "client"),
    ("identity_missing", "not accessible",
     r"Identity file (?P<identity_file>.+) not accessible: (?P<error>.+?)\.?\s*$", "client"),
    ("identity_missing", "no such identity",
     r"no such identity: (?P<identity_file>.+): (?P<error>[^:]+)$", "client", False),
    # At debug level the same words only say that a default key file does not exist.
    ("identity_absent", "no such identity", r"no such identity: (?P<identity_file>.+): ",
     "client"),
    ("identity_absent", "identity file ", r"identity file (?P<identity_file>\S+) type -1$",
     "client"),
    # -- authentication --
    ("methods", "Authentications that can continue",
     r"Authentications that can continue: (?P<methods>\S*)", "auth"),
    ("next_method", "Next authentication method",
     r"Next authentication method: (?P<method>\S+)", "auth"),
    # 8.x+: "Offering public key: PATH TYPE SHA256:..."; 7.x: "Offering public key: TYPE
    # SHA256:... PATH-or-comment"; before 7.x: "Offering RSA public key: PATH".
    ("key_offered", "Offering ",
     r"Offering (?:\S+ )?public key: (?:[A-Z0-9-]+ SHA256:\S+ )?(?P<identity_file>\S+)"
     r"(?: (?P<key_type>[A-Z0-9-]+) SHA256:)?", "auth"),
    ("key_offered", "Trying private key", r"Trying private key: (?P<identity_file>\S+)", "auth"),
    # 8.0+ name the key; 7.x said "Server accepts key: pkalg ALG blen N" (sshconnect2.c).
    ("key_accepted", "Server accepts key",
     r"Server accepts key: (?:pkalg \S+ blen \d+|(?P<identity_file>\S+))", "auth"),
    # The client leaves out a key its own PubkeyAcceptedAlgorithms (before 8.5:
    # PubkeyAcceptedKeyTypes; 8.5-8.9: "corresponding algo") or the server's
    # server-sig-algs (8.5+: "not supported by server") does not allow.
    ("key_skipped", "Skipping ",
     r"Skipping (?P<key_type>\S+) key (?P<identity_file>\S+) - (?:corresponding algo(?:rithm)? )?"
     r"not (?P<by>in Pubkey\w+|supported by server)", "auth"),
    ("sig_alg", "no mutual signature", r"no mutual signature", "auth"),
    # An old agent answered a SHA-2 signature request with a SHA-1 one (sshconnect2.c).
    ("sig_alg", "returned incorrect signature type",
     r"(?P<signer>agent )?key (?P<key_type>\S+) (?P<fingerprint>\S+) returned "
     r"(?P<wrong_signature>incorrect signature type)", "auth"),
    # The agent or a security key would not sign: the key exists, it cannot be used.
    ("signing_failed", "signing failed for",
     r"signing failed for (?P<key_type>\S+) \"(?P<identity_file>[^\"]+)\".*?: (?P<error>[^:]+)$",
     "client"),
    # OpenSSH 8.1 and older named neither the key nor its type.
    ("signing_failed", "signing failed: ", r"signing failed: (?P<error>.+)$", "client"),
    # No terminal and no askpass program: a password or passphrase cannot be asked for.
    ("askpass_missing", "ssh_askpass: exec",
     r"ssh_askpass: exec\((?P<command>[^)]*)\): (?P<error>.+)$", "auth"),
    ("auth_failed", "Authentication failed.", r"^Authentication failed\.", "auth"),
    ("password_asked", "read_passphrase", r"read_passphrase", "auth"),
    # The prompts as a terminal shows them: the password method's, and (8.x+) the
    # keyboard-interactive one with PAM's prompt after "(user@host)". Unlike -vvv's
    # read_passphrase (a key's passphrase too), they prove a password was typed.
    ("password_prompt", "'s password:",
     r"^(?P<user>[^@\s]+)@(?P<hostname>\S+)'s password:", "auth"),
    ("password_prompt", ") Password",
     r"^\((?P<user>[^@\s]+)@(?P<hostname>[^)\s]+)\) [Pp]assword\b[^:]*:", "auth"),
    ("password_retry", "please try again", r"Permission denied, please try again", "auth"),
    ("denied", "Permission denied (",
     r"(?:(?P<user>[^@\s]+)@(?P<hostname>\S+): )?Permission denied \((?P<methods>[^)]*)\)",
     "auth"),
    ("too_many", "Too many authentication failures", r"Too many authentication failures", "auth"),
    ("no_methods", "No supported authentication methods",
     r"No supported authentication methods", "auth"),
    # A method accepted, and AuthenticationMethods wants another one after it.
    ("partial", "with partial success",
     r"Authenticated (?:using \"?(?P<method>[\w@.-]+)\"? )?with partial success", "auth"),
    ("authenticated", "Authenticated to", r"Authenticated to ", "auth"),
    ("authenticated", "Authentication succeeded", r"Authentication succeeded", "auth"),
    # -- account and session --
    ("nologin", "currently not available", r"This account is currently not available", "session"),
    # cloud-init's disable_root (cloudinit/ssh_util.py, DISABLE_USER_OPTS): root's key runs
    # command="echo 'Please login as the user \"$USER\" rather than the user \"root\".';
    # echo;sleep 10;exit 142" (older releases end with the sleep: status 0, as if it ran).
    ("login_as", "rather than the user",
     r'Please login as the user "(?P<login_as>[^"]+)" rather than the user "[^"]+"', "session"),
    # systemd's /run/nologin, shown by pam_nologin while the system boots or shuts down.
    ("nologin_file", "Unprivileged users are not permitted",
     r"System is (?P<state>booting up|going down)\. Unprivileged users are not permitted",
     "account"),
    # pam_faillock's and pam_tally2's words, which keyboard-interactive shows before the prompt.
    ("locked", "locked due to", r"[Aa]ccount (?:is )?locked due to \d+ failed logins?", "account"),
    ("locked", "Account temporary locked", r"Account temporary locked", "account"),
    # The account's expiry date, or its password's age (pam_unix: max days, chage -d 0),
    # which a login can mend where a terminal asks for a new password.
    ("expired", "has expired", r"(?:account|(?P<password_change>password)) has expired",
     "account"),
    ("expired", "change your password", r"(?P<password_change>required) to change your password",
     "account"),
    # An expired password with no terminal to change it on (BatchMode, a script).
    ("expired", "no TTY available",
     r"(?P<password_change>Password change required) but no TTY available", "account"),
    ("exit_status", "Exit status", r"Exit status (?P<status>-?\d+)", "session"),
    # -v's last words: how long the connection lasted.
    ("transferred", "Transferred: sent",
     r"Transferred: sent \d+, received \d+ bytes, in (?P<seconds>\d+(?:\.\d+)?) seconds",
     "session"),
    # The server's own line as a session starts (PrintLastLog, pam_lastlog): the login worked.
    ("last_login", "Last login: ", r"^Last login: \w{3} \w{3} +\d", "session"),
    # sshd tells a -v client the options of the authorized_keys line that let it in.
    ("key_options", ": key options: ",
     r"Remote: (?P<path>\S+?):(?P<line>\d+): key options: (?P<options>.*)$", "session"),
    ("command_sent", "Sending command:", r"Sending command: (?P<command>.+)$", "session"),
    # The login's own session channel (9.x: "new session [client-session]", before: "new
    # [client-session]"), and the server's refusal of what was asked of it.
    ("session_channel", "[client-session]",
     r"channel (?P<channel>\d+): new (?:session )?\[client-session\]", "session"),
    ("session_opening", ": send open", r"channel (?P<channel>\d+): send open", "session"),
    ("session_confirmed", "channel_input_open_confirmation",
     r"channel_input_open_confirmation: channel (?P<channel>\d+)", "session"),
    ("session_refused", "request failed on channel",
     r"(?P<what>exec|shell|subsystem|pty-req|env) request failed on channel \d+", "session"),
    # After a login: the session dropped or a forward failed (the login itself worked).
    ("session_lost", "client_loop: send disconnect",
     r"client_loop: send disconnect: (?P<error>.+)$", "session"),
    ("session_lost", "not responding", r"Timeout, server \S+ not responding", "session"),
    ("session_lost", "closed by remote host.", r"Connection to \S+ closed by remote host\.",
     "session"),
    ("forward_failed", "port forwarding failed", r"port forwarding failed", "session"),
    ("mux_failed", "Control socket connect",
     r"Control socket connect\((?P<path>[^)]*)\): (?P<error>.+)$", "config"),
    ("session_open", "Entering interactive session", r"Entering interactive session", "session"),
    ("closed", "Connection closed by",
     r"Connection closed by (?P<address>\S+) port (?P<port>\d+)", "network"),
    ("closed", "Connection reset by",
     r"Connection reset by (?P<address>\S+) port (?P<port>\d+)", "network"),
    ("disconnect", "Received disconnect from",
     r"Received disconnect from (?P<address>\S+) port (?P<port>\d+):(?P<code>\d+): (?P<reason>.*)$",
     "network"),
))
# fmt: on

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
# The level prefix, possibly after a pasted timestamp or host name.
_LEVEL = re.compile(r"\b(?P<level>debug[123]|error|fatal):\s")  # not "..._run_fatal: "
_COMPILED = [(r, re.compile(r.pattern)) for r in RULES]
_BY_NEEDLE: dict[str, list[tuple[Rule, re.Pattern[str]]]] = {}
for _rule, _pattern in _COMPILED:
    _BY_NEEDLE.setdefault(_rule.needle, []).append((_rule, _pattern))
# Longest needle first, so the specific rules of one line are tried before the general ones.
_NEEDLE_ORDER = sorted(_BY_NEEDLE, key=len, reverse=True)
MAX_LINE = 4096  # longer lines are cut: no OpenSSH message needs more


@dataclass(frozen=True)
class Event:
    """A recognised line: what it says and the facts it carries."""

    lineno: int
    event: str
    phase: str
    text: str
    debug: bool
    facts: dict[str, str] = field(default_factory=dict)


@dataclass
class Transcript:
    """The recognised events of one transcript, in order, and its length in lines."""

    events: list[Event]
    lines: int
    debug: bool  # any debug line at all: the output of ssh -v or more

    def of(self, *names: str) -> list[Event]:
        return [e for e in self.events if e.event in names]

    def first(self, *names: str) -> Event | None:
        return next((e for e in self.events if e.event in names), None)


@dataclass
class Classification:
    """The verdict on one transcript: the cause, the lines that prove it, its facts."""

    verdict: Verdict
    cause_id: str | None
    confidence: Confidence | None
    decisive_lines: list[tuple[int, str]]
    facts: dict[str, Any]


def _line_events(text: str, lineno: int) -> Iterator[Event]:
    line = text[:MAX_LINE].rstrip("\r\n ")
    if "\x1b" in line:
        line = _ANSI.sub("", line)
    level = _LEVEL.search(line, 0, 64)
    debug = bool(level and level.group("level").startswith("debug"))
    message = line[level.end() :] if level else line
    for needle in _NEEDLE_ORDER:
        if needle not in message:
            continue
        for rule, pattern in _BY_NEEDLE[needle]:
            if debug and not rule.debug_ok:
                continue
            match = pattern.search(message)
            if match:
                facts = {k: v for k, v in match.groupdict().items() if v is not None}
                yield Event(lineno, rule.event, rule.phase, line, debug, facts)
                return


def parse(text: str) -> Transcript:
    """Find every known OpenSSH message in ``text`` (each line read once)."""
    events: list[Event] = []
    lineno = 1
    counted = 0
    debug = False
    for start in _lines_with_needles(text):
        end = text.find("\n", start)
        end = len(text) if end < 0 else end
        lineno += text.count("\n", counted, start)
        counted = start
        for event in _line_events(text[start:end], lineno):
            events.append(event)
            debug = debug or event.debug
    if not debug:
        debug = bool(re.search(r"^debug[123]: ", text[:65536], re.M))
    said = _server_words(text, events)
    if said:
        events = sorted(events + said, key=lambda e: e.lineno)
    return Transcript(events, text.count("\n") + (0 if text.endswith("\n") else 1), debug)


# A credential the server took: a key it accepted, a password typed at its prompt (a
# wrong one gets "Permission denied" before anything else).
_TAKEN = ("key_accepted", "password_prompt")


def _server_words(text: str, events: list[Event]) -> list[Event]:
    """What the server said between accepting a key (or taking a password) and hanging up:
    the text of a refusal in its account stage (pam_nologin shows its file, pam_unix an
    expiry), which ssh prints as a banner with no prefix and no words of its own."""
    accepted = next((e for e in reversed(events) if e.event in _TAKEN), None)
    if accepted is None:
        return []
    closed = next(
        (e for e in events if e.event in ("closed", "disconnect") and e.lineno > accepted.lineno),
        None,
    )
    if closed is None:
        return []
    known = {e.lineno for e in events}
    lines = text.split("\n", closed.lineno)[accepted.lineno : closed.lineno - 1]
    return [
        Event(n, "server_said", "account", line.strip()[:MAX_LINE], False)
        for n, line in enumerate(lines, accepted.lineno + 1)
        if line.strip() and n not in known and not _LEVEL.search(line, 0, 64)
    ]


def _lines_with_needles(text: str) -> list[int]:
    """Where each line holding a needle starts, in order: ``str.find`` per needle runs at C
    speed, where one ``re`` alternation of all the needles tries each at every position."""
    starts: set[int] = set()
    for needle in _NEEDLE_ORDER:
        at = text.find(needle)
        while at >= 0:
            # A line is read up to MAX_LINE: a needle further on cannot count.
            newline = text.rfind("\n", max(0, at - MAX_LINE), at)
            if newline >= 0 or at <= MAX_LINE:
                starts.add(newline + 1)
            end = text.find("\n", at)
            at = -1 if end < 0 else text.find(needle, end + 1)  # once a line is enough
    return sorted(starts)


# -- classification -------------------------------------------------------------------

_CONNECT_ERRORS = {
    "connection refused": "port.refused",
    "no route to host": "net.no_route",
    "network is unreachable": "net.no_route",
    "host is unreachable": "net.no_route",
    "host is down": "net.no_route",  # BSD and macOS: the host did not answer ARP
    "operation not permitted": "net.no_route",  # this machine's own firewall (output rules)
    "permission denied": "net.no_route",  # ... or a security policy (SELinux, an agent)
    "connection timed out": "net.timeout",
    "operation timed out": "net.timeout",
    "name or service not known": "dns.unresolved",
    "temporary failure in name resolution": "dns.unresolved",
    "no address associated with hostname": "dns.unresolved",
    "nodename nor servname provided": "dns.unresolved",
}
# What "no matching X found" names, as the category word and the ssh_config option.
_KEX_CATEGORY = {
    "key exchange method": ("key exchange", "KexAlgorithms"),
    "host key type": ("host key", "HostKeyAlgorithms"),
    "cipher": ("cipher", "Ciphers"),
    "mac": ("MAC", "MACs"),
    "compression method": ("compression", "Compression"),
}
# The algorithms of each kind OpenSSH still has (some only when re-enabled with +), the
# strongest first: of a server's offer, the fix re-enables the first of these it holds.
_ALGORITHM_RANK = {
    "KexAlgorithms": (
        "mlkem768x25519-sha256",
        "sntrup761x25519-sha512",
        "sntrup761x25519-sha512@openssh.com",
        "curve25519-sha256",
        "curve25519-sha256@libssh.org",
        "ecdh-sha2-nistp521",
        "ecdh-sha2-nistp384",
        "ecdh-sha2-nistp256",
        "diffie-hellman-group18-sha512",
        "diffie-hellman-group16-sha512",
        "diffie-hellman-group-exchange-sha256",
        "diffie-hellman-group14-sha256",
        "diffie-hellman-group14-sha1",  # 2048-bit, SHA-1
        "diffie-hellman-group-exchange-sha1",  # the server picks the group, may be 1024-bit
        "diffie-hellman-group1-sha1",  # 1024-bit, SHA-1
    ),
    "HostKeyAlgorithms": (
        "ssh-ed25519",
        "ecdsa-sha2-nistp521",
        "ecdsa-sha2-nistp384",
        "ecdsa-sha2-nistp256",
        "rsa-sha2-512",
        "rsa-sha2-256",
        "ssh-rsa",  # SHA-1, off since 8.8
        "ssh-dss",  # off since 7.0, gone in 10.0
    ),
    "Ciphers": (
        "chacha20-poly1305@openssh.com",
        "aes256-gcm@openssh.com",
        "aes128-gcm@openssh.com",
        "aes256-ctr",
        "aes192-ctr",
        "aes128-ctr",
        "aes256-cbc",
        "aes192-cbc",
        "aes128-cbc",
        "3des-cbc",
    ),
    "MACs": (
        "hmac-sha2-512-etm@openssh.com",
        "hmac-sha2-256-etm@openssh.com",
        "umac-128-etm@openssh.com",
        "hmac-sha2-512",
        "hmac-sha2-256",
        "umac-128@openssh.com",
        "hmac-sha1-etm@openssh.com",
        "hmac-sha1",
        "umac-64-etm@openssh.com",
        "umac-64@openssh.com",
        "hmac-sha1-96-etm@openssh.com",
        "hmac-sha1-96",
        "hmac-md5-etm@openssh.com",
        "hmac-md5",
        "hmac-md5-96-etm@openssh.com",
        "hmac-md5-96",
    ),
}
# Algorithms a client of this OpenSSH version or later no longer has at all.
_ALGORITHM_GONE = {"ssh-dss": (10, 0), "ssh-dss-cert-v01@openssh.com": (10, 0)}
# Words a refusing sshd (or a throttle in front of it) sends instead of a banner.
_REFUSAL = re.compile(
    r"maxstartups|not allowed|too many|refused|penalty|try again|denied|blocked", re.I
)
# Events after which a login did not (or no longer) work.
_FAILURES = frozenset(
    {
        "config_perms",
        "config_bad_option",
        "config_stopped",
        "dns_failed",
        "connect_failed",
        "ssh1",
        "not_ssh",
        "banner_timeout",
        "closed_early",
        "banner_error",
        "proxy_unknown",
        "channel_failed",
        "stdio_failed",
        "kex_failed",
        "protocol_fatal",
        "hostkey_refused",
        "config_missing",
        "auth_failed",
        "proxy_config",
        "hostkey_failed",
        "denied",
        "too_many",
        "no_methods",
        "closed",
        "disconnect",
        "session_refused",
    }
)
_HOP_ERRORS = frozenset(
    {
        "dns_failed",
        "connect_failed",
        "denied",
        "hostkey_failed",
        "hostkey_unknown",
        "closed_early",
        "kex_failed",
        "too_many",
        "channel_failed",
        "key_perms",
        "identity_missing",
        "proxy_start_failed",
    }
)


@dataclass
class _Signal:
    cause: str
    events: list[Event]
    confidence: Confidence
    note: str | None = None
    facts: dict[str, str] = field(default_factory=dict)


def _connect_cause(error: str, table: dict[str, str] = _CONNECT_ERRORS) -> str | None:
    lowered = error.lower()
    return next((cause for text, cause in table.items() if text in lowered), None)


# The events that say where the client connects, and as whom.
_WHERE = frozenset(
    {
        "connecting",
        "authenticating",
        "server_host_key",
        "dns_failed",
        "kex_failed",
        "not_ssh",
        "timed_out",
        "banner_error",
        "password_asked",
        "password_prompt",
        "denied",
        "closed",
        "disconnect",
    }
)
_WHERE_FACTS = frozenset({"hostname", "address", "port", "user", "key_type", "fingerprint"})
# The hop's traces: a connection through a jump host or a proxy command.
_HOP_TRACES = ("proxy_jump", "proxy_command", "proxy_start_failed", "stdio_failed", "proxy_unknown")


def _base_facts(t: Transcript) -> dict[str, Any]:
    """Where the client connected: host, address, port, user, the server's key; then what
    the pasted command line asked for. Through a jump host the lines before the hop's login
    are the hop's own (the client itself connects nowhere): they do not name the target."""
    facts: dict[str, Any] = {}
    command = _command_facts(t)
    proxy = t.first("proxy_jump", "proxy_command")
    if proxy is not None:
        facts.update(_jump(proxy))
        # ProxyJump's own line keeps %h and %p; the command ssh then runs has them filled
        # in: the target -W asks the hop for.
        executed = t.first("proxy_command")
        if executed is not None and executed is not proxy:
            facts.update({k: v for k, v in _jump(executed).items() if k in ("hostname", "port")})
    hop = proxy or t.first(*_HOP_TRACES[2:]) or "jump" in command or "proxy_command" in command
    jump_host = re.sub(r"^.*@|:\d+$", "", facts.get("jump") or command.get("jump", ""))
    hop_login = t.first("authenticated") if hop else None
    for event in t.events:
        if hop and _hop_said(event, hop_login, jump_host):
            continue
        # Through a proxy ssh knows no address: "UNKNOWN port 65535".
        if event.event in _WHERE and event.facts.get("address") != "UNKNOWN":
            for key, value in event.facts.items():
                if key in _WHERE_FACTS:
                    facts.setdefault(key, value)
        elif event.event == "connect_failed":
            key = "hostname" if event.facts["kind"] == "host" else "address"
            facts.setdefault(key, event.facts["where"])
            facts.setdefault("port", event.facts["port"])
    for key, value in command.items():
        if key != "identity_file":  # ssh's own lines name the file in full: see classify
            facts.setdefault(key, value)
    if "hostname" not in facts and "address" in facts:
        facts["hostname"] = facts["address"]  # ssh named no host: the address it reached
    if "address" not in facts and is_address(facts.get("hostname", "")):
        facts["address"] = facts["hostname"]
    if "port" in facts:
        facts["port"] = int(facts["port"])
    return facts


def _hop_said(event: Event, hop_login: Event | None, jump_host: str) -> bool:
    """Through a jump host: the line is the hop's. The client itself connects nowhere (its
    proxy does), and with ssh -v the hop's lines come before the hop's login; without it a
    line that names the jump host is the hop's."""
    if event.event in ("connecting", "connect_failed", "dns_failed"):
        return True
    if hop_login is not None:
        return event.lineno <= hop_login.lineno
    return bool(jump_host) and event.facts.get("hostname") == jump_host


# ssh's options that take an argument (the others are flags, and may be grouped: -vvv).
_SSH_ARG_OPTIONS = frozenset("BbcDEeFIiJLlmOoPpQRSWw")
# What -o names, as facts.
_SSH_O_FACTS = {
    "user": "user",
    "port": "port",
    "hostname": "hostname",
    "identityfile": "identity_file",
    "proxyjump": "jump",
    "proxycommand": "proxy_command",
}


def _command_facts(t: Transcript) -> dict[str, str]:
    """What the pasted ``ssh ...`` command line asks for: user, host (as typed: the alias),
    port, identity file, jump host or proxy command. A pasted prompt's command wins; else
    the first one ssh logged (a jump host's own ssh logs the next)."""
    lines = t.of("command_line") or t.of("started_with")[:1]
    if not lines:
        return {}
    words = _words(lines[-1].facts["args"])
    facts: dict[str, str] = {}
    options: list[tuple[str, str]] = []
    destination = None
    it = iter(words)
    for word in it:
        if word in ("|", ";", "&&", "||") or word.startswith((">", "2>", "&>")):
            break
        if destination is not None:
            continue  # the remote command
        if not word.startswith("-") or word == "-":
            destination = word
            continue
        for n, flag in enumerate(word[1:], 2):
            if flag in _SSH_ARG_OPTIONS:
                options.append((flag, word[n:] or next(it, "")))
                break
    for flag, value in options:
        if flag == "o":
            name, _, val = value.partition("=") if "=" in value else value.partition(" ")
            fact = _SSH_O_FACTS.get(name.strip().lower())
            if fact and val.strip():
                facts.setdefault(fact, val.strip())
        else:
            fact = {"l": "user", "p": "port", "i": "identity_file", "J": "jump"}.get(flag)
            if fact:
                facts.setdefault(fact, value)
    # "none" turns ProxyCommand, ProxyJump and IdentityFile off: no hop, no file.
    facts = {k: v for k, v in facts.items() if v.lower() != "none"}
    if "jump" in facts:
        facts["jump"] = facts["jump"].split(",")[0]  # the first hop is tried first
    if "port" in facts and not facts["port"].isdigit():
        del facts["port"]
    if destination:
        facts.update(_destination(destination, facts))
    return facts


_WORD = re.compile(r"""(?:[^\s"']+|"[^"]*"|'[^']*'|["'])+""")


def _words(text: str) -> list[str]:
    """A command line's words, unquoted; a backslash stays (a Windows path: .\\key)."""
    return [re.sub(r"""(["'])(.*?)\1""", r"\2", word) for word in _WORD.findall(text)]


def _destination(text: str, given: dict[str, str]) -> dict[str, str]:
    """``[user@]host`` or ``ssh://[user@]host[:port]``, as facts (-l and -p win, as in ssh)."""
    facts: dict[str, str] = {}
    uri = re.fullmatch(r"ssh://(?:([^@/]+)@)?(\[[^\]]+\]|[^:/]+)(?::(\d+))?/?", text)
    if uri:
        user, host, port = uri.groups()
        host = host.strip("[]")
    else:
        user, _, host = text.rpartition("@")
        port = None
    if user and "user" not in given:
        facts["user"] = user
    if port and "port" not in given:
        facts["port"] = port
    if host:
        facts["alias"] = host  # a Host of ssh_config, or the name itself
        facts["hostname"] = given.get("hostname", host)
    return facts


def _proxy_signal(t: Transcript, proxy: Event | None) -> _Signal | None:
    """The hop failed: the pipe closed before the target's banner and the hop never worked.
    Without ssh -v the hop shows only in its traces; then its own error must show too (a
    pipe that closes with no word from the hop is the target closing: see _banner_signal)."""
    if proxy is None:
        return None
    closure = [e for e in t.of("proxy_unknown", "closed_early") if e.lineno >= proxy.lineno]
    if not closure:
        return None
    channel = t.first("channel_failed")
    if channel is not None and "prohibited" not in channel.facts.get("reason", ""):
        return None  # the hop works but cannot reach the target: see _channel_signal
    hop_worked = any(
        e.event == "authenticated" and proxy.lineno < e.lineno < closure[0].lineno for e in t.events
    )
    if hop_worked and channel is None:
        return None  # the target itself closed: a protocol problem, not the hop's
    said = proxy.event in ("proxy_jump", "proxy_command")  # ssh -v said so, before the hop
    start = proxy.lineno if said else 0
    inner = [
        e for e in t.events if e.event in _HOP_ERRORS and start <= e.lineno < closure[-1].lineno
    ]
    if not said:
        # The client's own "kex_exchange_identification: Connection closed" (the last one)
        # only says the pipe closed: the hop's error is another line.
        own = next((e for e in reversed(inner) if e.event == "closed_early"), None)
        inner = [e for e in inner if e is not own]
        if not inner and channel is None and not t.first("stdio_failed"):
            return None
    missing = t.first("proxy_start_failed")  # the proxy command's program is not there
    facts = {"proxy_program": missing.facts["command"]} if missing else {}
    confidence: Confidence = "high" if inner or channel else "medium"
    return _Signal("proxy.failed", [proxy, *inner[-3:], closure[-1]], confidence, facts=facts)


def _channel_signal(t: Transcript) -> _Signal | None:
    channel = t.first("channel_failed")
    if channel is None or "prohibited" in channel.facts.get("reason", ""):
        return None
    reason = channel.facts.get("reason", "")
    cause = _connect_cause(reason) or "proxy.failed"
    return _Signal(
        cause,
        [channel],
        "high",
        f"the jump host cannot reach the target: {reason}",
        {"seen_from": "jump"},
    )


def _network_signal(t: Transcript) -> _Signal | None:
    dns = t.first("dns_failed")
    if dns is not None:
        name = dns.facts.get("hostname", "")
        note = None
        meant: dict[str, str] = {}
        if typed := re.fullmatch(r"([^:\s\[\]]+):(\d+)", name):
            note = f"the port is typed into the host name {name}: ssh wants -p PORT"
            meant = {"meant_host": typed.group(1), "meant_port": typed.group(2)}
        elif bracketed := re.fullmatch(r"\[([^\]]+)\](?::(\d+))?", name):
            note = (
                f"ssh takes an IPv6 address without brackets ({bracketed.group(1)}); brackets "
                "belong in known_hosts and ssh:// URIs"
            )
            meant = {"meant_host": bracketed.group(1)}
            if bracketed.group(2):
                meant["meant_port"] = bracketed.group(2)
        return _Signal("dns.unresolved", [dns], "high", note, meant)
    failures = t.of("connect_failed")
    for event in reversed(failures):  # the final "ssh: connect to host" line sums them up
        error = event.facts.get("error", "")
        cause = _connect_cause(error)
        if cause:
            local = error.lower() in ("operation not permitted", "permission denied")
            # EPERM, EACCES: this machine's own doing (the catalog's local_block variant)
            facts = {"local_block": error} if local else {}
            return _Signal(cause, failures[-3:], "high", facts=facts)
    return None


def _banner_signal(t: Transcript) -> _Signal | None:
    if t.first("ssh1"):
        return _Signal("proto.ssh1", t.of("ssh1"), "high")
    pre = t.of("pre_banner")
    closed = t.first("closed_early")
    if pre and not t.first("remote_version"):
        said = " ".join(e.facts.get("text", "") for e in pre)
        if closed is not None and _REFUSAL.search(said):
            return _Signal(
                "proto.closed_early",
                [*pre[:3], closed],
                "high",
                "the server refused the connection before its banner",
            )
        return _Signal("proto.not_ssh", [*pre[:3], *([closed] if closed else [])], "high")
    if t.first("not_ssh"):
        return _Signal("proto.not_ssh", t.of("not_ssh")[:3], "high")
    if t.first("banner_timeout"):
        return _Signal(
            "proto.not_ssh",
            t.of("banner_timeout"),
            "medium",
            "TCP connected but no SSH banner came within the time limit: a service that waits "
            "for the client to speak first, a stuck proxy, or an sshd that is stopped or hung "
            "(the kernel still completes the handshake); --server tells them apart",
        )
    errors = t.of("banner_error")
    if errors and (signal := _banner_error_signal(errors)):
        return signal
    if closed is not None:
        return _Signal("proto.closed_early", [closed], "high")
    return _bare_close(t)


# A system error of the banner exchange, by its words: connect(2)'s, and EPIPE (the
# client's own banner met a connection the server had closed).
_BANNER_ERRORS = {**_CONNECT_ERRORS, "broken pipe": "proto.closed_early"}
# What such an error means once TCP had connected, where it differs from connect(2)'s.
_BANNER_NOTES = {
    "net.no_route": "TCP connected, then the route to the server failed during the banner "
    "exchange (an ICMP unreachable: a VPN or a link that went down)",
}


def _banner_error_signal(errors: list[Event]) -> _Signal | None:
    """A system error after TCP connected and before the server's banner (None: one no
    cause explains, which stays a failure with its line). A time-out there is the
    catalog's "cut" variant of net.timeout: the accepted connection cut on the way."""
    error = errors[-1].facts["error"]
    cause = _connect_cause(error, _BANNER_ERRORS)
    if cause is None:
        return None
    if cause == "net.timeout":
        return _Signal(cause, errors[-2:], "medium", facts={"cut_after_connect": error})
    note = _BANNER_NOTES.get(cause)
    return _Signal(cause, errors[-2:], "medium" if note else "high", note)


# Where a connection stands before the server's banner: no phase (a prompt), ssh's
# configuration, the name, the TCP connection.
_BEFORE_BANNER = frozenset({"", "config", "dns", "network"})


def _bare_close(t: Transcript) -> _Signal | None:
    """ "Connection closed by HOST port N" and nothing that shows the connection got further
    (a banner, a host key, a prompt, authentication): since 9.5 plain ssh prints only that
    line when the server hangs up before its banner (kex_exchange_identification's line
    needs -v)."""
    closed = t.first("closed")
    if closed is None or closed.facts["address"] == "UNKNOWN":
        return None  # "UNKNOWN port 65535" is a ProxyCommand's pipe: the hop's doing
    if any(
        e.phase not in _BEFORE_BANNER and e.event not in ("local_version", "identity_absent")
        for e in t.events
    ):
        return None
    return _Signal(
        "proto.closed_early",
        [closed],
        "medium",
        "the server hung up with nothing before it: since OpenSSH 9.5 this is all plain ssh "
        "prints when the connection is closed before the banner (ssh -v shows "
        "kex_exchange_identification)",
    )


def _kex_signal(t: Transcript, facts: dict[str, Any]) -> _Signal | None:
    event = t.first("kex_failed")
    if event is None:
        return _kex_stall(t)
    what = event.facts.get("what", "").lower()
    category, option = _KEX_CATEGORY.get(what, (what or "algorithm", "KexAlgorithms"))
    # kex-strict-* and ext-info-* are markers, not algorithms one could enable.
    offer = [
        a
        for a in event.facts.get("offer", "").split(",")
        if a and not a.startswith(("kex-strict-", "ext-info-"))
    ]
    facts.update(category=category, option=option, server_offer=",".join(offer) or "(none)")
    algorithm = _strongest(option, offer, _client_release(t))
    if algorithm:
        facts["algorithm"] = algorithm
    elif offer:  # the client's release dropped every one of them
        facts["gone"] = ",".join(offer)
    return _Signal("kex.no_common_alg", [event], "high")


# What ends a connection whose key exchange reply never came: the server's LoginGraceTime
# (a close), a middlebox (a reset), ServerAliveInterval, TCP's own give-up (a fatal error of
# a read), ssh's own time-out ("Connection to HOST port N timed out"); or nothing at all,
# where ssh was stopped while it still waited.
_STALL_ENDS = frozenset({"closed", "session_lost", "protocol_fatal", "timed_out"})
_STALL_ERRORS = ("timed out", "reset by peer", "broken pipe")
# Key exchanges whose server share alone is over 1 KB (sntrup761: 1039 bytes, ML-KEM-768: 1088).
_LARGE_SHARES = ("sntrup", "mlkem")


def _kex_stall(t: Transcript) -> _Signal | None:
    """The client sent its key exchange and the server's reply never came, though TCP and
    the banners went through: the reply is the first packet large enough to be lost where
    a path drops big packets and the ICMP that would say so (an MTU black hole: a VPN, a
    tunnel, PPPoE). Nothing after the wait shows the reply (its host key, new keys)."""
    waiting = t.of("kex_waiting")
    if not waiting:
        return None
    last = waiting[-1]
    later = [e for e in t.events if e.lineno > last.lineno]
    if any(e.phase not in ("kex", "network", "") and e.event not in _STALL_ENDS for e in later):
        return None
    if any(e.event == "kex_done" for e in later):
        return None
    fatal = [e for e in later if e.event == "protocol_fatal"]
    if fatal and not any(x in fatal[0].facts["error"].lower() for x in _STALL_ERRORS):
        return None  # a corrupted stream or a crypto error: another failure of that phase
    kex = next((e for e in t.of("kex_chosen") if e.facts.get("what") == "algorithm"), None)
    facts = {"kex_stall": last.facts["message"]}
    name = kex.facts["value"].split()[0] if kex is not None else ""
    if any(share in name for share in _LARGE_SHARES):
        facts["kex_algorithm"] = name
    ended = [e for e in later if e.event in _STALL_ENDS][:1]
    return _Signal("net.timeout", [last, *ended], "medium", facts=facts)


def _strongest(option: str, offer: list[str], release: tuple[int, int] | None) -> str | None:
    """The strongest algorithm of the server's offer this client can re-enable (None: it
    has none of them); an offer of names it does not rank: the first of them."""
    usable = [a for a in offer if not (release and release >= _ALGORITHM_GONE.get(a, (99, 0)))]
    ranked = [a for a in _ALGORITHM_RANK.get(option, ()) if a in usable]
    if ranked:
        return ranked[0]
    unknown = [a for a in usable if not any(a in names for names in _ALGORITHM_RANK.values())]
    return unknown[0] if unknown else None


def _client_release(t: Transcript) -> tuple[int, int] | None:
    """The client's OpenSSH release, (9, 6) for OpenSSH_9.6p1 (None: not said)."""
    version = t.first("client_version")
    match = version and re.search(r"_(\d+)\.(\d+)", version.facts["client_version"])
    return (int(match.group(1)), int(match.group(2))) if match else None


# What the lines of a changed (or revoked) host key tell the fix.
_CHANGED_FACTS = frozenset(
    {"known_hosts", "known_hosts_line", "host_spec", "key_type", "host_key_revoked"}
)


def _hostkey_signal(t: Transcript, facts: dict[str, Any]) -> _Signal | None:
    # A warning the user then accepted (CheckHostIP's "differs from the key for the IP
    # address ... (yes/no)? yes"), or one of an earlier try before a key ssh added, did not
    # stop the login: only what follows the last acceptance counts.
    accepted = t.of("hostkey_yes", "hostkey_added")
    after = accepted[-1].lineno if accepted else 0
    changed = [
        e
        for e in t.of("hostkey_changed", "hostkey_offending", "hostkey_fingerprint")
        if e.lineno > after
    ]
    failed = next((e for e in t.of("hostkey_failed") if e.lineno > after), None)
    if any(e.event == "hostkey_changed" for e in changed):
        for event in changed:
            facts.update({k: v for k, v in event.facts.items() if k in _CHANGED_FACTS})
        warned = next((e for e in changed if e.event == "hostkey_fingerprint"), None)
        if warned is not None:  # the key the server sent; "Offending" names the known one
            facts["key_type"] = warned.facts["key_type"]
        printed = [e for e in t.of("fingerprint_line") if warned and e.lineno > warned.lineno]
        if printed:
            facts["fingerprint"] = printed[0].facts["fingerprint"]
        hint = t.first("hostkey_remove")  # Debian's "remove with: ssh-keygen -f F -R HOST"
        if hint is not None:
            facts.setdefault("host_spec", hint.facts["host_spec"])
            facts.setdefault("known_hosts", hint.facts["known_hosts"])
        _target_from_spec(facts)
        _stale_address(t, facts)
        return _Signal(
            "hostkey.changed", [*changed[:6], *printed[:1], *([failed] if failed else [])], "high"
        )
    if failed is not None:
        unknown = [e for e in t.of("hostkey_unknown", "hostkey_ask") if e.lineno > after]
        asked = [e for e in t.of("hostkey_ask_key") if e.lineno > after]
        for event in [*unknown, *asked]:
            wanted = ("host_spec", "key_type", "fingerprint")
            facts.update({k: v for k, v in event.facts.items() if k in wanted})
        _target_from_spec(facts)
        cert = next((e for e in t.of("hostkey_cert_invalid") if e.lineno > after), None)
        return _Signal(
            "hostkey.unknown",
            [*([cert] if cert else []), *unknown[:2], failed],
            "high" if unknown else "medium",
            _refused_certificate(cert),
        )
    return None


def _refused_certificate(cert: Event | None) -> str | None:
    """What a refused host certificate changes: the plain key is unknown only because the
    certificate no longer vouches for it."""
    if cert is None:
        return None
    return (
        f"the server's host certificate was refused ({cert.facts['error']}), so ssh checked "
        "its plain key, which known_hosts does not hold: the fix is a new certificate for the "
        "server (ssh-keygen -s CA_KEY -h -n NAME -V ...), not trusting the plain key"
    )


def _stale_address(t: Transcript, facts: dict[str, Any]) -> None:
    """CheckHostIP keeps the server's address in known_hosts too; "Offending key for IP"
    says that entry is stale. Then the address's entry is removed as well, or alone when
    the name's own entry matches (no "Offending" key for the name)."""
    offending = t.of("hostkey_offending")
    stale = [e for e in offending if "for_ip" in e.facts]
    said = t.of("hostkey_changed", "hostkey_ip")
    address = next((e.facts["address"] for e in said if "address" in e.facts), None)
    if not stale or not address:
        return
    port = int(facts.get("port", 22))
    # ssh names a port other than 22 the way known_hosts holds it: [address]:port
    spec = address if address.startswith("[") or port == 22 else f"[{address}]:{port}"
    if any("for_ip" not in e.facts for e in offending):  # the name's entry is stale too
        facts["ip_spec"] = spec
    else:
        facts["host_spec"] = spec
        facts.update({k: stale[0].facts[k] for k in ("known_hosts", "known_hosts_line")})


def _target_from_spec(facts: dict[str, Any]) -> None:
    """Host and port from known_hosts' ``[host]:port`` when the transcript names no other."""
    spec = facts.get("host_spec", "")
    match = re.fullmatch(r"\[([^\]]+)\]:(\d+)", spec)
    host, port = (match.group(1), int(match.group(2))) if match else (spec, 22)
    if host:
        facts.setdefault("hostname", host)
        facts.setdefault("port", port)


def _client_signal(t: Transcript, facts: dict[str, Any]) -> _Signal | None:
    if t.first("authenticated"):
        return None  # the login worked: trouble with other keys is not the cause
    for name, cause in (
        ("key_perms", "client.key_perms"),
        ("key_invalid", "client.key_invalid"),
        ("signing_failed", "client.key_invalid"),
        ("identity_missing", "client.identity_missing"),
    ):
        events = t.of(name)
        if events:
            for event in [*events, *t.of("key_acl")]:
                for key in ("identity_file", "mode", "acl_user"):
                    if key in event.facts:
                        facts.setdefault(key, event.facts[key].replace("\\\\", "\\"))
            path = facts.get("identity_file", "")
            if path.endswith(".pub"):  # "too open", "invalid format": it is public
                return _Signal(
                    "client.key_invalid",
                    events[:4],
                    "high",
                    f"{path} is the public key: -i and IdentityFile name the private one, "
                    "without .pub",
                    {"private_key": path.removesuffix(".pub")},
                )
            if cause == "client.key_invalid" and path.lower().endswith(".ppk"):
                # PuTTY's format: converted into a new file, never over the .ppk
                return _Signal(cause, events[:4], "high", facts={"converted_key": _converted(path)})
            return _Signal(cause, events[:4], "high")
    return _passphrase_signal(t, facts)


def _passphrase_signal(t: Transcript, facts: dict[str, Any]) -> _Signal | None:
    """The key's passphrase was asked for and the login failed: it was typed wrong (or not
    at all), so ssh could not load the key, whatever the server thinks of it."""
    asked = t.of("passphrase_asked")
    end = t.first("denied", "no_methods", "too_many")
    if not asked or end is None or end.lineno < asked[0].lineno:
        return None
    key = asked[-1].facts["identity_file"]
    facts.setdefault("identity_file", key)
    times = sum(e.facts["identity_file"] == key for e in asked)
    accepted = any(e.lineno < asked[0].lineno for e in t.of("key_accepted"))
    sure = times > 1 or accepted or t.first("passphrase_wrong") is not None
    return _Signal(
        "client.key_invalid",
        [*t.of("key_accepted")[-1:], *asked[:3], *t.of("passphrase_wrong")[:1], end],
        "high" if sure else "medium",
        f"the passphrase of {key} was asked for {times} time{'s' if times > 1 else ''} and ssh "
        "could not load the key: a wrong passphrase"
        + (" (the server had accepted the key itself)" if accepted else "")
        + ("" if sure else ", none given, or a right one for a key the server then refused"),
    )


def _converted(ppk: str) -> str:
    """Where an OpenSSH copy of a PuTTY key goes: beside it, key.ppk -> key_openssh."""
    return ppk[: -len(".ppk")] + "_openssh"


def _offered(t: Transcript) -> list[Event]:
    """Keys really sent: "Trying private key" is logged for default files that do not exist."""
    absent = {e.facts["identity_file"] for e in t.of("identity_absent")}
    return [
        e
        for e in t.of("key_offered")
        if "Offering" in e.text or e.facts["identity_file"] not in absent
    ]


# A key type ssh names in "Offering public key" -> the SHA-1-era signature algorithm the
# client may have turned off (OpenSSH 8.8: ssh-rsa; 7.0: ssh-dss). Other types have one
# algorithm each: no mutual one means the server does not take that type at all.
_LEGACY_SIGNATURE = {"RSA": "ssh-rsa", "DSA": "ssh-dss"}
_SIGNATURE = {
    "ED25519": "ssh-ed25519",
    "ECDSA": "ecdsa-sha2-nistp256",
    "ED25519-SK": "sk-ssh-ed25519@openssh.com",
    "ECDSA-SK": "sk-ecdsa-sha2-nistp256@openssh.com",
}


def _sig_facts(kind: str) -> dict[str, str]:
    """What the fix names for a key of ``kind`` with no mutual signature algorithm: the
    algorithm to allow on the client, or the one the server refuses."""
    if kind in _LEGACY_SIGNATURE:
        return {"algorithm": _LEGACY_SIGNATURE[kind]}
    return {"refused_algorithm": _SIGNATURE.get(kind, kind.lower())}


# Why a right password for root is refused all the same (OpenSSH 7.0's default).
ROOT_PASSWORD = (
    "as root: sshd's default PermitRootLogin prohibit-password refuses every password for "
    "root, the right one too; `sudo sshd -T | grep -i permitrootlogin` on the server says"
)


def _passwords(t: Transcript) -> list[Event]:
    """The password prompts a terminal showed (after a method accepted with partial
    success, if any: a password that worked is no refused one) and the retries refused."""
    partial = t.of("partial")
    after = partial[-1].lineno if partial else 0
    return [e for e in t.of("password_prompt", "password_retry") if e.lineno > after]


def _too_many_passwords(
    t: Transcript, offered: list[Event], passwords: list[Event], too_many: Event
) -> _Signal:
    """MaxAuthTries reached with passwords typed: the passwords were refused. Keys offered
    before count against the same limit (what auth.too_many_failures is about)."""
    tries = len([e for e in passwords if e.event == "password_prompt"]) or len(passwords) + 1
    note = (
        f"the server's MaxAuthTries ended the login after {tries} refused "
        f"password{'s' if tries > 1 else ''}: 'Too many authentication failures' counts "
        "passwords as well as keys"
    )
    if offered:
        note += (
            f"; the {len(offered)} key(s) offered before counted too (auth.too_many_failures: "
            "IdentitiesOnly leaves more tries for the password)"
        )
    elif not t.debug:
        note += " (keys offered before them, auth.too_many_failures, show only with ssh -v)"
    return _Signal("auth.password_rejected", [*passwords[:2], too_many], "high", note)


def _auth_signal(t: Transcript, facts: dict[str, Any]) -> _Signal | None:
    offered = _offered(t)
    passwords = _passwords(t)
    too_many = t.first("too_many")
    denied = t.first("denied", "no_methods")
    if denied is not None and "user" in denied.facts:
        facts.setdefault("user", denied.facts["user"])
    locked = t.first("locked")
    ended = [
        e
        for e in t.of("too_many", "denied", "no_methods", "closed", "disconnect")
        if locked and e.lineno > locked.lineno
    ]
    if locked is not None and ended:
        return _Signal(
            "account.locked",
            [locked, ended[0]],
            "high",
            "PAM (pam_faillock, pam_tally2) locked the account after repeated failures and "
            "refuses even the right password until the lock expires or is reset",
        )
    if too_many is not None:
        if passwords:
            return _too_many_passwords(t, offered, passwords, too_many)
        if offered:
            facts["max_auth_tries"] = len(offered)  # each refused key counted as a failure
        return _Signal("auth.too_many_failures", [*offered[-2:], too_many], "high")
    if denied is None:
        return None
    if denied.event == "denied" and denied.facts.get("methods", "x") == "":
        # "Permission denied ()": the server allows no method at all for this user.
        return _Signal(
            "auth.no_method",
            [denied],
            "high",
            "the server allows no authentication method at all: PubkeyAuthentication, "
            "PasswordAuthentication and KbdInteractiveAuthentication are all off for this user "
            "(sshd -T -C user=...)",
        )
    if sig := t.first("sig_alg"):
        key = next((e for e in reversed(offered) if e.lineno < sig.lineno), None)
        kind = key.facts.get("key_type", "RSA") if key else "RSA"
        if "wrong_signature" in sig.facts:  # the signer, not the server, lacks SHA-2
            facts = {"wrong_signature": sig.facts.get("signer", "").strip() or "signer"}
            if key is not None and "identity_file" in key.facts:
                facts["identity_file"] = key.facts["identity_file"]
        else:
            facts = _sig_facts(kind)
        return _Signal("auth.sig_alg", [*t.of("sig_alg")[:2], denied], "high", facts=facts)
    tried = [
        e
        for e in t.of("next_method")
        if e.facts.get("method") in ("password", "keyboard-interactive")
    ]
    if passwords or (tried and t.first("password_asked")):
        return _Signal(
            "auth.password_rejected",
            [*(passwords or tried)[:2], denied],
            "high",
            ROOT_PASSWORD if facts.get("user") == "root" else None,
        )
    askpass = t.first("askpass_missing")
    if askpass is not None:  # nothing could ask: a password, or the passphrase of a key
        wanted = denied.facts.get("methods", "")
        asked = "password" in wanted or "keyboard-interactive" in wanted
        tried = [e for e in t.of("key_offered") if e.lineno < askpass.lineno]
        key = {"identity_file": tried[-1].facts["identity_file"]} if tried and not asked else {}
        return _Signal(
            "auth.no_method" if asked else "client.key_invalid",
            [askpass, denied],
            "high",
            "ssh has no terminal and no askpass program to ask for the "
            + ("password" if asked else "key's passphrase"),
            key,  # the key whose passphrase ssh could not ask for
        )
    partial = t.first("partial")
    if partial is not None:
        method = partial.facts.get("method", "a method")
        return _Signal(
            "auth.no_method",
            [partial, denied],
            "high",
            f"{method} was accepted; the server's AuthenticationMethods also requires "
            f"{denied.facts.get('methods') or 'another method'}, which this login could not give",
        )
    # A key taken in this very login: a jump host's own login ("Authenticated to bastion")
    # before it took its key, not the target.
    hop = max((e.lineno for e in t.of("authenticated") if e.lineno < denied.lineno), default=0)
    taken = [e for e in t.of("key_accepted") if hop < e.lineno < denied.lineno]
    if taken and denied.event == "denied":
        # The server took the key (PK_OK) and refused the login it signed: no refused key.
        facts.setdefault("identity_file", _accepted_file(offered, taken[-1]))
        cause, confidence, why = after_accept(facts.get("user"), hung_up=False)
        note = f"the server accepted the key, then refused the login: {why}"
        return _Signal(cause, [taken[-1], denied], confidence, note)
    if offered:
        facts.setdefault("identity_file", offered[-1].facts.get("identity_file", ""))
        return _Signal("auth.key_rejected", [*offered[:3], denied], "medium")
    if not t.debug:
        return _Signal(
            "auth.key_rejected",
            [denied],
            "low",
            "without ssh -v the transcript does not show which keys were offered",
        )
    skipped = t.of("key_skipped")
    if skipped:
        kind = skipped[0].facts["key_type"]
        if skipped[0].facts["by"].startswith("supported"):  # the server's list leaves it out
            return _Signal(
                "auth.sig_alg",
                [*skipped[:2], denied],
                "medium",
                f"the client did not offer its {kind} key: the server's server-sig-algs lists "
                "no signature algorithm for that type",
                {"refused_algorithm": kind},
            )
        return _Signal(
            "auth.sig_alg",
            [*skipped[:2], denied],
            "medium",
            "the client skipped its own keys: their algorithm is not accepted",
            {"algorithm": kind},
        )
    return _Signal(
        "auth.no_method", [denied], "medium", "no key was offered and no password was tried"
    )


def _accepted_file(offered: list[Event], accepted: Event) -> str:
    """The file of the key the server accepted: its own line names it (8.0+), or (7.x, which
    named only the algorithm) the key offered just before it."""
    if "identity_file" in accepted.facts:
        return accepted.facts["identity_file"]
    before = [e for e in offered if e.lineno < accepted.lineno]
    return before[-1].facts["identity_file"] if before else ""


def after_accept(
    user: str | None, *, hung_up: bool, key: bool = True
) -> tuple[str, Confidence, str]:
    """The cause when the server took a key (PK_OK: "Server accepts key") and then refused
    the signed login (``hung_up`` False) or hung up on it without a word, how sure that is,
    and why. Said alike of ssh's transcript and of the live probe.

    sshd refuses a login whose key it accepted for one reason of its own: a uid-0 user
    PermitRootLogin does not let in (no; forced-commands-only and a key without command=;
    OpenSSH 9.2 sends its success first and then drops the connection). A hang-up without a
    word is PAM's account stage (pam_access's access.conf, pam_time, pam_sss: a denial
    they do not explain; an expired account or a nologin file would have said so). A
    password PermitRootLogin refuses gets a failure, not a hang-up (``key`` False)."""
    root = user == "root" and key
    sshd_root = (
        "PermitRootLogin refuses root with keys too (no), or a key without command= "
        "(forced-commands-only)"
    )
    if not hung_up:
        if root:
            return "account.root_denied", "medium", f"sshd does that only when {sshd_root}"
        return (
            "account.root_denied",
            "low",
            f"sshd does that when {user or 'the user'} has uid 0 and PermitRootLogin refuses "
            "it (it applies to uid 0 whatever the name), or when a security key's touch or PIN "
            "the server requires (PubkeyAuthOptions) was not given; the server's log says which",
        )
    if root:
        return (
            "account.root_denied",
            "low",
            f"for root, {sshd_root} (OpenSSH 9.2 drops the connection so), or PAM's account "
            "stage (access.conf); the server's log says which",
        )
    return (
        "account.not_allowed",
        "low",
        "PAM's account stage refused the login without a word: pam_access (access.conf), "
        "pam_time or a directory's access rule; an expired account or a nologin file would "
        "have said so; the server's log says which",
    )


def _after_accept_signal(t: Transcript, facts: dict[str, Any]) -> _Signal | None:
    """The server took the key or the password, then hung up with no refusal of ssh's
    own: its account stage (PAM) refused the login."""
    taken = t.of(*_TAKEN)
    accepted = taken[-1] if taken else None
    closed = [e for e in t.of("closed", "disconnect") if accepted and e.lineno > accepted.lineno]
    if not accepted or not closed or t.first("authenticated", "denied", "too_many", "sig_alg"):
        return None
    if t.first("expired", "nologin_file", "locked"):  # the server said which: its own signal
        return None
    what = "accepting the key" if accepted.event == "key_accepted" else "taking the password"
    said = t.of("server_said")
    if said:
        # The one account module that shows a text of its own choosing is pam_nologin.
        return _Signal(
            "account.nologin",
            [accepted, *said[:3], closed[-1]],
            "medium",
            f"the server, after {what}, showed this text and hung up: what a nologin file "
            "holds (pam_nologin shows /etc/nologin or /run/nologin to every user but root)",
        )
    key = accepted.event == "key_accepted"
    cause, confidence, why = after_accept(facts.get("user"), hung_up=True, key=key)
    return _Signal(
        cause,
        [accepted, closed[-1]],
        confidence,
        f"the server hung up after {what}: {why}"
        + ("" if key else "; or the prompt outwaited LoginGraceTime"),
    )


# systemd writes /run/nologin while the system boots and before a scheduled shutdown.
_SYSTEMD_NOLOGIN_WHY = {
    "booting up": "the system is still booting: systemd-user-sessions removes /run/nologin "
    "when the boot completes",
    "going down": "a shutdown is scheduled (shutdown -c cancels it)",
}
# sshd's own nologin check (without PAM) prints the file and exits with this status.
NOLOGIN_STATUS = 254


def server_says(text: str) -> tuple[str | None, dict[str, str]]:
    """The cause a server's own words prove (a session's output, a PAM banner: nologin,
    a nologin file, an expired account or password), with its facts; (None, {}) if none.

    The live probe reads what the server said with these same rules."""
    signal = _session_signal(parse(text))
    return (signal.cause, signal.facts) if signal else (None, {})


def _session_signal(t: Transcript) -> _Signal | None:
    if told := t.first("login_as"):
        return _Signal("account.root_denied", [told], "high", facts=dict(told.facts))
    if t.first("nologin"):
        return _Signal("account.nologin", t.of("nologin")[:2], "high")
    if file := t.first("nologin_file"):
        return _Signal(
            "account.nologin",
            [file],
            "high",
            f"/run/nologin exists: {_SYSTEMD_NOLOGIN_WHY[file.facts['state']]}",
            {"nologin_file": "/run/nologin"},
        )
    if expired := t.of("expired"):
        facts = {k: v for e in expired for k, v in e.facts.items() if k == "password_change"}
        return _Signal("account.expired", expired[:2], "high", facts=facts)
    if refused := _refused_session(t):
        return refused
    sent, status = t.first("command_sent"), t.of("exit_status")
    if sent is None or not status or status[-1].facts["status"] == "0":
        return None
    command = sent.facts["command"].strip()
    if status[-1].facts["status"] == "-1":  # ssh's word for "no exit status came"
        return _Signal(
            "account.nologin",
            [sent, *t.of("session_lost", "closed")[-1:], status[-1]],
            "medium",
            "the server hung up as the session started, without an exit status: "
            + setup_failed(_user(t)),
        )
    if command in _CANNOT_FAIL and status[-1].facts["status"] == str(NOLOGIN_STATUS):
        # sshd exits 254 in two places: its own /etc/nologin check (without PAM; it prints
        # the file to stderr first) and a PAM session that could not be opened (it prints
        # its login messages, the motd, to stdout). A transcript mixes the two streams.
        return _Signal(
            "account.nologin",
            [sent, status[-1]],
            "medium",
            "exit status 254 is sshd's refusal when /etc/nologin exists (sshd without PAM "
            "prints the file first) or when PAM could not open the session (UsePAM yes: "
            "pam_limits' maxlogins, a failing session module; the server's log says "
            "'PAM: pam_open_session()')",
        )
    if command in _CANNOT_FAIL:  # the shell or a forced command ran instead of it
        options = next(
            (e for e in t.of("key_options") if "command" in e.facts["options"].split()), None
        )
        where = (
            f"the command= of {options.facts['path']} line {options.facts['line']} ran instead"
            if options
            else "the login shell (/bin/false, nologin) or a forced command (ForceCommand, "
            "command= in authorized_keys) ran instead"
        )
        return _Signal(
            "account.nologin",
            [*([options] if options else []), sent, status[-1]],
            "high",
            f"`{command}` cannot fail where it runs: {where}",
        )
    return None


# Why a server refuses a login its session (said alike here and by the live probe).
SESSION_REFUSED = "MaxSessions 0 in its sshd_config, or a session its policy refuses"
SETUP_FAILED = (
    "its session setup failed (a ChrootDirectory it refuses, a PAM session module); the "
    "server's log says which"
)
# As root the same drop is OpenSSH 9.2's way of refusing a key under PermitRootLogin
# forced-commands-only: it says the login succeeded, then ends the connection.
_ROOT_SETUP = (
    "; as root also PermitRootLogin forced-commands-only refusing a key without "
    "command= (OpenSSH 9.2 drops the connection so; the log says 'ROOT LOGIN REFUSED')"
)


def setup_failed(user: str | None) -> str:
    """Why a session drops as it starts (SETUP_FAILED), with root's own reason."""
    return SETUP_FAILED + (_ROOT_SETUP if user == "root" else "")


def _user(t: Transcript) -> str | None:
    event = t.first("authenticating", "denied")
    return event.facts.get("user") if event else None


def _refused_session(t: Transcript) -> _Signal | None:
    """The server refused the login's session itself after authentication: the session
    channel (MaxSessions 0: "open failed"), the command or shell ("exec request failed"),
    or it dropped the connection before the command could end (its session setup failed)."""
    done = t.first("authenticated")
    if done is None:
        return None
    refused = [e for e in t.of("session_refused") if e.lineno > done.lineno]
    if refused:
        what = refused[0].facts["what"]
        return _Signal(
            "account.nologin",
            refused[:1],
            "medium",
            f"the server refused the {what} request after the login: a ForceCommand or "
            "Subsystem it cannot run, or a session its policy refuses; the server's log says why",
        )
    own = {e.facts["channel"] for e in t.of("session_channel")}
    channel = next(
        (e for e in t.of("channel_failed") if e.lineno > done.lineno and e.facts["channel"] in own),
        None,
    )
    if channel is not None:
        return _Signal(
            "account.nologin",
            [channel],
            "medium",
            f"the server refused to open a session after the login ({channel.facts['reason']}): "
            f"{SESSION_REFUSED}",
        )
    # Hung up before the command ended (no exit status): after the command was sent, or
    # before the session channel opened (-vv shows it asked for and never confirmed).
    lost = [e for e in t.of("session_lost", "closed") if e.lineno > done.lineno]
    sent = t.first("command_sent")
    asked = {e.facts["channel"] for e in t.of("session_opening")} & own
    unconfirmed = asked and not asked & {e.facts["channel"] for e in t.of("session_confirmed")}
    if lost and not t.of("exit_status") and (sent is not None or unconfirmed):
        return _Signal(
            "account.nologin",
            [*([sent] if sent else []), lost[0]],
            "medium",
            "the server dropped the connection as the session started: " + setup_failed(_user(t)),
        )
    # A shell the server ended at once: no exit status ("Exit status -1"), nothing of the
    # session shown (no "Last login"), and -v's "Transferred: ... in 0.0 seconds" says no
    # session ran (a reboot that ends a working one comes seconds or hours later).
    status = t.of("exit_status")
    quick = [e for e in t.of("transferred") if float(e.facts["seconds"]) < 1]
    if (
        lost
        and quick
        and status
        and status[-1].facts["status"] == "-1"
        and t.first("session_open")
        and not t.first("last_login")
    ):
        return _Signal(
            "account.nologin",
            [lost[0], quick[-1], status[-1]],
            "medium",
            "the server closed the shell's session as it started, without an exit status: "
            + setup_failed(_user(t)),
        )
    return None


# Commands that exit 0 wherever a shell runs them (`ssh host true`, the usual probe).
_CANNOT_FAIL = frozenset({"true", ":", "/bin/true", "/usr/bin/true", "exit 0"})


def _logged_in(t: Transcript) -> Event | None:
    """What proves the login worked: -v's "Authenticated to" (the last: a jump host's comes
    first), the server's "Last login" as the session starts, or on plain stderr a host key
    ssh added with nothing from ssh after it (a login that works prints nothing more)."""
    done = t.of("authenticated", "last_login")
    if done:
        return done[-1]
    if not t.debug and t.events and t.events[-1].event == "hostkey_added":
        return t.events[-1]
    return None


def _login_worked(t: Transcript) -> bool:
    done = _logged_in(t)
    if done is None:
        return False
    status = t.of("exit_status")
    if status and status[-1].facts["status"] == "0":
        return True  # the command ran and succeeded: a failed port forward is no failed login
    return not any(
        e.event in _FAILURES and e.lineno > done.lineno and e.event not in ("closed", "disconnect")
        for e in t.events
    )


# How a session that worked can end, in ssh's words, and what that says.
_DROPPED = (
    (
        "Broken pipe",
        "the connection broke (the network, a NAT or firewall idle timeout, a sleeping "
        "laptop); ServerAliveInterval 60 keeps an idle session alive",
    ),
    (
        "not responding",
        "the network or the server went away and stopped answering ssh's keepalives "
        "(ServerAliveInterval)",
    ),
    (
        "closed by remote host",
        "the server ended it (a reboot, an idle limit such as ClientAliveInterval or the "
        "shell's TMOUT, or the session was killed)",
    ),
)


def _worked_note(t: Transcript) -> str | None:
    """What an "ok" should still say: the session's later drop, a stale ControlMaster
    socket, a host key that was new."""
    done = _logged_in(t)
    said = []
    if done is not None and done.event == "hostkey_added":
        said.append(
            "the host key was new and ssh added it to known_hosts; nothing failed after it "
            "(without -v a working login prints nothing more)"
        )
    if mux := t.first("mux_failed"):
        said.append(
            f"the ControlMaster socket {mux.facts['path']} was stale ({mux.facts['error']}): "
            "ssh logged in without it"
        )
    lost = [e for e in t.of("session_lost") if done and e.lineno > done.lineno]
    if lost:
        why = next((w for words, w in _DROPPED if words in lost[0].text), None)
        said.append(
            f"the login worked; later the session dropped ({lost[0].text.strip()})"
            + (f": {why}" if why else "")
        )
    return "; ".join(said) or None


# What ssh prints while it parses its command line, before -v prints its version line.
_BEFORE_VERSION = frozenset({"identity_missing"})


def last_attempt(t: Transcript) -> Transcript:
    """The events of the last attempt a paste holds: from its last shell prompt running ssh,
    or its last version line ("OpenSSH_9.6p1, ..." starts every ssh -v) that is not a jump
    hop's (ProxyJump's ssh -v prints its own, after the line that starts it), and that
    something follows (`ssh -V` after a failure prints the version line alone)."""
    start, begins, hop = 0, 0, False
    for i, event in enumerate(t.events):
        if event.event in ("proxy_jump", "proxy_command"):
            hop = True
        if event.event == "attempt" or (event.event == "client_version" and not hop):
            begins, hop = i, False
            # ssh warns of an -i file it cannot read while it parses its options, before
            # -v prints the version: that warning starts the attempt.
            if event.event == "client_version":
                while begins and t.events[begins - 1].event in _BEFORE_VERSION:
                    begins -= 1
            continue
        if event.event == "client_version":
            hop = False  # the hop's own line
        start = begins
    if start == 0:
        return t
    events = t.events[start:]
    return Transcript(events, t.lines, any(e.debug for e in events))


def classify(t: Transcript) -> Classification:
    """The verdict and cause of one parsed transcript (see the module docstring): of its
    last attempt, when it holds several."""
    t = last_attempt(t)
    facts = _base_facts(t)
    proxy = t.first("proxy_jump", "proxy_command")
    config = t.of("config_perms")
    if config:
        facts["ssh_config"] = config[0].facts["ssh_config"]
    session = _session_signal(t)
    if _login_worked(t) and session is None:
        if note := _worked_note(t):
            facts["note"] = note
        return Classification("ok", None, None, [], facts)
    candidates = [
        _Signal("client.config_perms", config, "high") if config else None,
        # Without -v the hop shows only in its traces: ssh -W's "stdio forwarding failed",
        # "UNKNOWN port 65535" (a connection that is a pipe, not a socket).
        _proxy_signal(
            t, hop := proxy or t.first("proxy_start_failed", "stdio_failed", "proxy_unknown")
        ),
        _channel_signal(t) if hop else None,  # without a hop: the target refused a session
        _network_signal(t),
        _banner_signal(t),
        _kex_signal(t, facts),
        _hostkey_signal(t, facts),
        _client_signal(t, facts),
        _auth_signal(t, facts),
        _after_accept_signal(t, facts),
        session,
    ]
    signals = [s for s in candidates if s is not None and s.events]
    if not signals:
        failed = any(e.event in _FAILURES for e in t.events)
        if not failed:
            facts["note"] = _cut_short(t)
        return Classification("failed" if failed else "unknown", None, None, [], facts)
    chosen = min(signals, key=lambda s: (catalog.phase_rank(s.cause), s.events[0].lineno))
    for key in ("known_hosts", "identity_file", "ssh_config"):
        if "\\\\" in facts.get(key, ""):  # Win32-OpenSSH prints C:\\Users\\me
            facts[key] = facts[key].replace("\\\\", "\\")
    if _on_windows(t, facts):
        facts["client_os"] = "windows"
    facts |= chosen.facts
    given = _command_facts(t).get("identity_file")  # -i, where no line of ssh names it
    if given:
        facts.setdefault("identity_file", given)
    if chosen.note:
        facts["note"] = chosen.note
    lines = sorted({(e.lineno, e.text) for e in chosen.events})
    return Classification("failed", chosen.cause, chosen.confidence, lines, facts)


def _cut_short(t: Transcript) -> str:
    """Why there is no verdict: where the transcript stops, with no error and no login."""
    last = next((e for e in reversed(t.events) if e.phase), None)
    where = f" after line {last.lineno} ({last.text.strip()[:120]})" if last else ""
    return (
        f"the transcript stops{where} with neither an error nor a login: it was cut short, "
        "or ssh was still waiting (a prompt, a silent network); give all of "
        "`ssh -vvv ... 2>&1`, up to ssh's exit"
    )


def _on_windows(t: Transcript, facts: dict[str, Any]) -> bool:
    """The client is Win32-OpenSSH: its version says so, or its paths (C:\\..., .\\key), or
    the prompt the command was typed at (PS C:\\...>, C:\\...>)."""
    version = t.first("client_version")
    if version and "_for_Windows" in version.facts["client_version"]:
        return True
    paths = [str(facts.get(k, "")) for k in ("identity_file", "ssh_config", "known_hosts")]
    if any(re.match(r"[A-Za-z]:[\\/]|\.\\", path) for path in paths):
        return True
    command = t.first("command_line")
    return bool(command and re.match(r"(?:PS )?[A-Za-z]:\\[^>]*>", command.text))


def _jump(event: Event) -> dict[str, str]:
    """The first hop as ``[user@]host[:port]`` (ProxyJump's syntax) and, from ssh's -W, the
    target it asks the hop for; a proxy command that is no ssh is only the command."""
    command = event.facts.get("command", "").strip()
    words = _words(command)
    if event.event == "proxy_command" and (not words or words[0].rpartition("/")[2] != "ssh"):
        return {"proxy_command": command}
    facts: dict[str, str] = {}
    user = port = None
    for flag, value in itertools.pairwise(words):
        if flag == "-l":
            user = value
        elif flag == "-p":
            port = value
        elif flag == "-W" and "%" not in value:  # the target, as the client resolved it
            target = re.fullmatch(r"\[?(.+?)\]?:(\d+)", value)
            if target:
                facts.update(hostname=target.group(1), port=target.group(2))
    host = words[-1] if words else ""
    facts["jump"] = f"{user + '@' if user else ''}{host}{':' + port if port else ''}"
    return facts


def explain(text: str) -> dict[str, Any]:
    """The contract's ``explain --json`` object (without catalog text; see runbook.explain)."""
    whole = parse(text)
    t = last_attempt(whole)
    result = classify(t)
    client = whole.first("client_version")
    servers = whole.of("remote_version")
    root = None
    if result.cause_id:
        evidence = [f"line {n}: {line}" for n, line in result.decisive_lines]
        if "note" in result.facts:
            evidence.append(result.facts["note"])
        root = {"id": result.cause_id, "confidence": result.confidence, "evidence": evidence}
    return {
        "verdict": result.verdict,
        "root_cause": root,
        "client_version": client.facts["client_version"] if client else None,
        "server_version": servers[-1].facts["server_version"] if servers else None,
        "phases": _phases(t, result),
        "details": details(t),
        "facts": {k: v for k, v in result.facts.items() if k != "note"},
        # What a working login's transcript shows besides (a root cause holds its own).
        "note": None if root else result.facts.get("note"),
    }


def _last(t: Transcript, name: str, key: str) -> str | None:
    events = t.of(name)
    return events[-1].facts.get(key) if events else None


def details(t: Transcript) -> dict[str, Any]:
    """What the transcript shows, step by step: config, connection, versions, key exchange,
    host key, authentication (each key and its outcome), the final error and the session."""
    sent = {id(e) for e in _offered(t)}
    offered: list[dict[str, str]] = []
    for event in t.events:
        if event.event == "key_offered" and id(event) in sent:
            offered.append({"key": event.facts["identity_file"], "outcome": "refused"})
        elif event.event == "key_accepted" and offered:
            offered[-1]["outcome"] = "accepted"
        elif event.event == "sig_alg" and offered:
            offered[-1]["outcome"] = "no mutual signature algorithm"
    kex = {
        e.facts["what"].replace(" ", "_").replace("->", "_to_"): e.facts["value"]
        for e in t.of("kex_chosen")
    }
    server_key = t.first("server_host_key")
    found = t.first("hostkey_found")
    failures = [e for e in t.events if e.event in _FAILURES]
    connect = t.of("connecting")
    return {
        "config_files": [e.facts["path"] for e in t.of("config_read")],
        "config_applied": [
            f"{e.facts['path']}:{e.facts['line']} {e.facts['pattern']}"
            for e in t.of("config_applied")
        ],
        "connect": {
            **(
                {k: connect[-1].facts[k] for k in ("hostname", "address", "port")}
                if connect
                else {}
            ),
            "errors": [e.facts["error"] for e in t.of("connect_failed")],
            "established": bool(t.first("connected")),
        },
        "local_version": _last(t, "local_version", "local_version"),
        "remote_version": _last(t, "remote_version", "server_version"),
        "kex": kex,
        "host_key": {
            "type": server_key.facts["key_type"] if server_key else None,
            "fingerprint": server_key.facts["fingerprint"] if server_key else None,
            "known_hosts": f"{found.facts['known_hosts']}:{found.facts['known_hosts_line']}"
            if found
            else None,
        },
        "auth_methods": _last(t, "methods", "methods"),
        "keys": offered,
        "authenticated": bool(t.first("authenticated")),
        "exit_status": int(status) if (status := _last(t, "exit_status", "status")) else None,
        # ssh's "terminating, N bad configuration options" sums up the lines that say why.
        "final_error": next(
            (e.text for e in reversed(failures) if e.event != "config_stopped"),
            failures[-1].text if failures else None,
        ),
    }


def _phases(t: Transcript, result: Classification) -> list[dict[str, Any]]:
    """Each phase the transcript shows (pass, fail, or warn after the root cause), with lines."""
    failed = catalog.get(result.cause_id).phase if result.cause_id else None
    phases = []
    for phase in catalog.PHASES:
        events = [e for e in t.events if e.phase == phase]
        lines = [e.lineno for e in events]
        if lines or phase == failed:
            # A later phase that failed too is a consequence of the root cause: warn.
            status = "fail" if phase == failed else "pass"
            if status == "pass" and any(e.event in _FAILURES for e in events):
                status = "warn"
            phases.append({"name": phase, "status": status, "lines": lines[:50]})
    return phases
