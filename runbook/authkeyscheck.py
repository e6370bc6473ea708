"""authorized_keys: does a file sshd reads hold the client's key, on a line sshd accepts?

Keys are matched by SHA256 fingerprint. A line that holds the key can still be refused:
sshd skips a line whose options it cannot parse (and says so at debug level only), and
cert-authority, a passed expiry-time=, principals= or a from= that excludes the client
refuse the key. RevokedKeys and AuthorizedKeysCommand are judged as sshd judges them, and
lines sshd can read no key from (a key pasted over two lines) are named.
"""

from __future__ import annotations

import base64
import hashlib
import re
from datetime import UTC, datetime

from runbook import sshdconfig
from runbook.findings import Finding
from runbook.hosts import Host
from runbook.servercontext import (
    Context,
    authorized_keys_paths,
    finding,
    keys_command,
    remote_host,
    setting,
    skip,
)

__all__ = ["check_authorized_keys"]


def _fingerprint(line: str) -> str | None:
    for word in line.split():
        if word.startswith("AAAA"):
            try:
                blob = base64.b64decode(word, validate=True)
            except ValueError:
                return None
            digest = base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
            return f"SHA256:{digest}"
    return None


def _broken_lines(text: str) -> list[tuple[int, str]]:
    """authorized_keys lines sshd skips, and why: most often a key pasted over two lines
    (its first half cut short, its second half no key at all)."""
    broken = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        blob = next((w for w in line.split() if w.startswith("AAAA")), None)
        if blob is None:
            broken.append((number, "no key on this line (the rest of a key broken over lines?)"))
            continue
        try:
            data = base64.b64decode(blob, validate=True)
        except ValueError:
            broken.append((number, "the key is cut or mangled (not base64: broken over lines?)"))
            continue
        if not _whole_blob(data):
            broken.append((number, "the key is cut short (broken over lines when pasted?)"))
    return broken


def _whole_blob(data: bytes) -> bool:
    """Whether a public key blob is whole: length-prefixed fields to its very end (the key
    type first), as a key cut off mid-way is not."""
    fields, at = 0, 0
    while at < len(data):
        size = int.from_bytes(data[at : at + 4], "big")
        if at + 4 > len(data) or at + 4 + size > len(data):
            return False
        if fields == 0 and not data[at + 4 : at + 4 + size].isascii():
            return False
        at, fields = at + 4 + size, fields + 1
    return fields >= 2


# Key types sshd reads at the start of an authorized_keys line (else options come first).
_KEY_TYPE = re.compile(
    r"(ssh-(rsa|dss|ed25519|ed448)|ecdsa-sha2-nistp\d+|sk-(ssh-ed25519|ecdsa-sha2-nistp256)"
    r"@openssh\.com|[a-z0-9-]+-cert-v01@openssh\.com|rsa-sha2-(256|512))\Z"
)


# Flag options (auth-options.c, in its order); True: "no-" may negate it.
_KEY_FLAGS = (
    ("restrict", False),
    ("cert-authority", False),
    ("port-forwarding", True),
    ("agent-forwarding", True),
    ("x11-forwarding", True),
    ("touch-required", True),
    ("verify-required", True),
    ("pty", True),
    ("user-rc", True),
)


_KEY_VALUES = (
    "command",
    "principals",
    "from",
    "expiry-time",
    "environment",
    "permitopen",
    "permitlisten",
    "tunnel",
)


def _split_key_line(line: str) -> tuple[str | None, str]:
    """(options, the rest from the key type on) as sshd splits a line: options only when
    the first word is no key type, and they end at the first unquoted blank."""
    line = line.strip()
    first = line.split(None, 1)[0] if line else ""
    if _KEY_TYPE.match(first):
        return None, line
    quoted, at = False, 0
    while at < len(line) and (quoted or line[at] not in " \t"):
        if line[at] == "\\" and line[at + 1 : at + 2] == '"':
            at += 1
        elif line[at] == '"':
            quoted = not quoted
        at += 1
    return line[:at], line[at:].strip()


def _key_options(text: str) -> tuple[dict[str, object], str | None]:
    """auth-options.c's sshauthopt_parse: the options, or the reason sshd refuses the
    whole line (it then skips it: "bad key options", logged at debug level only)."""
    options: dict[str, object] = {}
    rest = text
    while rest and rest[0] not in " \t":
        lower = rest.lower()
        for name, negatable in _KEY_FLAGS:
            negated = negatable and lower.startswith("no-")
            word = lower[3:] if negated else lower
            if word.startswith(name):
                options[name] = not negated
                rest = rest[len(name) + (3 if negated else 0) :]
                break
        else:
            name = next((n for n in _KEY_VALUES if lower.startswith(f"{n}=")), None)
            if name is not None:
                rest = rest[len(name) + 1 :]
                if not rest.startswith('"'):
                    return options, f'{name}= needs a quoted value ({name}="...")'
                end = 1
                while end < len(rest) and rest[end] != '"':
                    end += 2 if rest[end] == "\\" and rest[end + 1 : end + 2] == '"' else 1
                if end >= len(rest):
                    return options, f"{name}= has no closing quote"
                value = rest[1:end].replace('\\"', '"')
                rest = rest[end + 1 :]
                if name in ("command", "principals", "from") and name in options:
                    return options, f'multiple "{name}" clauses'
                if name == "expiry-time":
                    when = _expiry_time(value)
                    if when is None:
                        return options, f'invalid expires time "{value}"'
                    options[name] = min(when, options.get(name, when))  # type: ignore[type-var]
                    options["expiry-text"] = value
                else:
                    options.setdefault(name, value)
        if not rest or rest[0] in " \t":
            break
        if rest[0] != ",":
            word = re.split(r'[,\s="]', rest, maxsplit=1)[0] or rest[:20]
            return options, f"unknown key option {word!r}"
        rest = rest[1:]
        if not rest:
            return options, "unexpected end-of-options"
    return options, None


def _expiry_time(value: str) -> float | None:
    """misc.c's parse_absolute_time: YYYYMMDD[HHMM[SS]], local time unless Z or UTC."""
    utc = value.upper().endswith(("Z", "UTC"))
    digits = value[: -1 if value.upper().endswith("Z") else -3] if utc else value
    formats = {8: "%Y%m%d", 12: "%Y%m%d%H%M", 14: "%Y%m%d%H%M%S"}
    if not digits.isdigit() or len(digits) not in formats:
        return None
    try:
        moment = datetime.strptime(digits, formats[len(digits)])
    except ValueError:
        return None
    return (moment.replace(tzinfo=UTC) if utc else moment).timestamp()


def _judge_key_line(
    host: Host, ctx: Context, where: str, options_text: str | None
) -> Finding | None:
    """What sshd makes of a line that holds the client's key: None when it accepts it,
    else the finding that says why not (auth2-pubkeyfile.c's auth_check_authkey_line and
    auth_authorise_keyopts)."""
    options, error = _key_options(options_text) if options_text else ({}, None)
    shown = [f"{where}: {options_text}"] if options_text else []
    if error:
        return finding(
            "authorized_keys",
            "fail",
            f"{where} holds the client's key, but sshd skips the line: {error} "
            "(sshd logs that only at debug level)",
            "auth.key_rejected",
            shown,
            authorized_keys_line=where,
        )
    if options.get("cert-authority"):
        return finding(
            "authorized_keys",
            "fail",
            f"{where} marks the client's key cert-authority: sshd takes it only as a CA for "
            "certificates, never as a key",
            "auth.key_rejected",
            shown,
            authorized_keys_line=where,
        )
    expiry = options.get("expiry-time")
    if isinstance(expiry, float) and expiry < host.now():
        stamp = datetime.fromtimestamp(expiry, UTC).strftime("%Y-%m-%d %H:%M UTC")
        return finding(
            "authorized_keys",
            "fail",
            f'{where}: expiry-time="{options["expiry-text"]}" passed ({stamp}): sshd refuses '
            'the key ("Refused by key options")',
            "auth.key_rejected",
            shown,
            authorized_keys_line=where,
        )
    if "principals" in options:
        return finding(
            "authorized_keys",
            "fail",
            f"{where}: principals= on a plain key (not cert-authority): sshd refuses it",
            "auth.key_rejected",
            shown,
            authorized_keys_line=where,
        )
    if "from" in options:
        allowed = str(options["from"])
        name = remote_host(host, ctx)
        verdict = sshdconfig.match_host_and_ip(name, ctx.client_ip, allowed)
        if ctx.client_ip is None:
            return finding(
                "authorized_keys",
                "warn",
                f'{where}: from="{allowed}" limits where the key may log in from; the '
                "client's address is not known here",
                "account.not_allowed",
                shown,
                authorized_keys_line=where,
            )
        if verdict != 1:
            client = ctx.client_ip if name in (None, ctx.client_ip) else f"{name} ({ctx.client_ip})"
            why = "is no valid pattern list" if verdict < 0 else f"excludes {client}"
            return finding(
                "authorized_keys",
                "fail",
                f'{where}: from="{allowed}" {why}: sshd refuses the key from here ("correct key '
                'but not from a permitted host")',
                "account.not_allowed",
                shown,
                authorized_keys_line=where,
            )
    return None


def _key_notes(ctx: Context, where: str, options_text: str | None, uid: str) -> list[Finding]:
    """What an accepted line's options do to the login: a forced command, restrict, and
    PermitRootLogin forced-commands-only, which needs a command= on root's key."""
    options, _ = _key_options(options_text) if options_text else ({}, None)
    notes = []
    command = options.get("command")
    if uid == "0" and setting(ctx, "permitrootlogin") == "forced-commands-only" and not command:
        notes.append(
            finding(
                "PermitRootLogin",
                "fail",
                f"PermitRootLogin forced-commands-only and {where} has no command= option: "
                'sshd refuses root with this key ("ROOT LOGIN REFUSED")',
                "account.root_denied",
                [
                    f"{where}: {options_text or '(no options)'}",
                    "permitrootlogin forced-commands-only",
                ],
            )
        )
    if isinstance(command, str):
        program = command.split()[0] if command.split() else ""
        dead = program.rsplit("/", 1)[-1] in ("false", "nologin")
        notes.append(
            finding(
                "authorized_keys",
                "fail" if dead else "info",
                f'{where}: command="{command}" runs instead of any shell or command the client '
                "asks for" + (": no login gets further" if dead else ""),
                "account.nologin" if dead else None,
                [f"{where}: {options_text}"],
                forced_command=command,
                forced_command_line=where,
            )
        )
    if options.get("restrict"):
        notes.append(
            finding(
                "authorized_keys",
                "info",
                f"{where}: restrict: no terminal, forwarding or ~/.ssh/rc for this key "
                "(unless re-allowed: pty, port-forwarding...)",
                evidence=[f"{where}: {options_text}"],
            )
        )
    return notes


def _revoked(host: Host, ctx: Context) -> Finding | None:
    """RevokedKeys: a text list of public keys that lists the client's key, or a file sshd
    cannot read (then it refuses every key)."""
    path = setting(ctx, "revokedkeys", "none")
    if not path or path.lower() == "none":
        return None
    data = host.read(path)
    if data is None:
        return finding(
            "RevokedKeys",
            "fail",
            f"RevokedKeys {path} is missing or unreadable: sshd refuses every key",
            "auth.key_rejected",
            [f"revokedkeys {path}"],
        )
    if data.startswith("SSHKRL"):
        return None  # a binary KRL: ssh-keygen -Q -f tells, not this reader
    for number, line in enumerate(data.splitlines(), 1):
        if (fingerprint := _fingerprint(line)) in ctx.client_keys:
            return finding(
                "RevokedKeys",
                "fail",
                f"the client's key {fingerprint} is revoked: {path}:{number} lists it",
                "auth.key_rejected",
                [f"revokedkeys {path}", f"{path}:{number}"],
                revoked_key=fingerprint or "",
                revoked_by=f"{path}:{number}",
            )
    return None


def _other_keys_file(ctx: Context, path: str) -> dict[str, str]:
    """The fact authorized_keys_file when sshd reads another file than the
    ~/.ssh/authorized_keys ssh-copy-id writes (the fix then appends the key there)."""
    default = f"{ctx.passwd[5]}/.ssh/authorized_keys" if ctx.passwd else ""
    return {"authorized_keys_file": path} if path and path != default else {}


def check_authorized_keys(host: Host, ctx: Context) -> list[Finding]:
    """Does an authorized_keys file hold one of the keys the client offers (by
    fingerprint), on a line sshd accepts (its options: from=, expiry-time=, unknown
    options that make sshd skip the line), and is the key not revoked?"""
    if ctx.passwd is None:
        return [skip("authorized_keys", "the account does not exist")]
    if not ctx.client_keys and not ctx.unoffered_keys:
        return [skip("authorized_keys", "the client offers no key")]
    if revoked := _revoked(host, ctx):
        return [revoked]
    command = keys_command(ctx)
    missing_command = None
    if command:
        program = command.split()[0]
        if host.stat([program]):
            return [
                finding(
                    "authorized_keys",
                    "info",
                    f"keys may also come from AuthorizedKeysCommand {command}",
                )
            ]
        missing_command = f"AuthorizedKeysCommand {program} does not exist (sshd skips it)"
    paths = authorized_keys_paths(ctx)
    files = [(path, text) for path in paths if (text := host.read(path)) is not None]
    refused: list[Finding] = []
    for path, text in files:
        for number, line in enumerate(text.splitlines(), 1):
            fingerprint = _fingerprint(line)
            if fingerprint not in ctx.client_keys:
                continue
            where = f"{path}:{number}"
            options_text, _ = _split_key_line(line)
            if problem := _judge_key_line(host, ctx, where, options_text):
                refused.append(problem)
                continue
            found = [
                finding(
                    "authorized_keys",
                    "pass",
                    f"{where} holds the client's key {fingerprint}",
                    evidence=[f"skipped before it: {f.summary}" for f in refused],
                )
            ]
            return found + _key_notes(ctx, where, options_text, ctx.passwd[2])
    if refused:
        return refused[:1] + [
            finding("authorized_keys", "info", f.summary, evidence=f.evidence) for f in refused[1:3]
        ]
    for path, text in files:
        for number, line in enumerate(text.splitlines(), 1):
            if (fingerprint := _fingerprint(line)) in ctx.unoffered_keys:
                key = ctx.unoffered_keys[fingerprint]
                return [
                    finding(
                        "authorized_keys",
                        "fail",
                        f"{path}:{number} holds {key}, a key this client has but ssh does not "
                        "offer (IdentitiesOnly, or IdentityFile naming other keys): offer that one",
                        "auth.key_rejected",
                        [f"offered: {', '.join(ctx.client_keys)}", f"{path}:{number}: {key}.pub"],
                        unoffered_key=key,
                    )
                ]
    extra = [missing_command] if missing_command else []
    if missing_command and not paths:
        return [
            finding(
                "authorized_keys",
                "fail",
                f"{missing_command} and AuthorizedKeysFile is none: sshd has no key for "
                f"{ctx.user} at all",
                "auth.key_rejected",
                [f"authorizedkeyscommand {command}", "authorizedkeysfile none"],
            )
        ]
    if files:
        path, text = files[0]
        broken = [(path, n, why) for path, text in files for n, why in _broken_lines(text)]
        names = " and ".join(p for p, _ in files)
        return [
            finding(
                "authorized_keys",
                "fail",
                f"{names} {'does' if len(files) == 1 else 'do'} not hold any of the client's "
                f"keys ({', '.join(ctx.client_keys)})"
                + (
                    f"; {len(broken)} of {'its' if len(files) == 1 else 'their'} lines are no "
                    "key sshd can read"
                    if broken
                    else ""
                ),
                "auth.key_rejected",
                [f"{p}: {len(t.splitlines())} line(s)" for p, t in files]
                + [f"{p}:{number}: {why}" for p, number, why in broken[:5]]
                + extra,
                **_other_keys_file(ctx, files[0][0]),
            )
        ]
    home = ctx.passwd[5]
    unread = f"{home}/.ssh/authorized_keys"
    elsewhere = (
        [f"{unread} exists, but this sshd does not read it (AuthorizedKeysFile)"]
        if unread not in paths and host.stat([unread])
        else []
    )
    return [
        finding(
            "authorized_keys",
            "fail",
            f"{ctx.user} has none of the authorized_keys files sshd reads: {', '.join(paths)}"
            if paths
            else f"AuthorizedKeysFile none: sshd reads no authorized_keys file for {ctx.user}",
            "auth.key_rejected",
            [*paths, *elsewhere, *extra],
            **_other_keys_file(ctx, paths[0] if paths else ""),
        )
    ]
