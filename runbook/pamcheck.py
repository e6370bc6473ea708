"""sshd's PAM stack (UsePAM yes): modules that refuse a user whatever the key or password.

sshd's PAM service file is read with its includes as PAM reads it, each module with its
control. pam_access's access.conf rules are matched against the user and the client as
sshd names it (account stack; auth stack too when a password is tried, as PAM's auth stack
does not run for keys); pam_faillock's tally file says whether failed passwords locked the
user.
"""

from __future__ import annotations

import ipaddress
import re
import struct
from dataclasses import dataclass
from datetime import UTC, datetime

from runbook.findings import Finding
from runbook.hosts import Host
from runbook.servercontext import (
    Context,
    finding,
    passwords_asked,
    remote_host,
    setting,
    skip,
    uses_pam,
)

__all__ = ["PamLine", "check_pam", "faillock", "pam_stack"]


@dataclass(frozen=True)
class PamLine:
    """One module line of a PAM stack, with where it was read."""

    control: str
    module: str  # without directory and ".so": "pam_access"
    args: tuple[str, ...]
    where: str  # "/etc/pam.d/sshd:3"

    @property
    def decisive(self) -> bool:
        """Whether a failure of this module fails the stack (required, requisite, or a
        bracket whose failure action is not ignore/reset/a jump)."""
        if self.control in ("required", "requisite"):
            return True
        if not self.control.startswith("["):
            return False  # sufficient, optional, include...
        actions = dict(
            pair.split("=", 1) for pair in self.control.strip("[]").split() if "=" in pair
        )
        action = actions.get("perm_denied", actions.get("auth_err", actions.get("default", "")))
        return action not in ("", "ignore", "reset") and not action.isdigit()

    def arg(self, name: str) -> str | None:
        return next((a.split("=", 1)[1] for a in self.args if a.startswith(f"{name}=")), None)


def _pam_tokens(line: str) -> list[str]:
    """A PAM config line's words; a ``[...]`` control is one word."""
    words, rest = [], line.strip()
    while rest:
        if rest.startswith("["):
            end = rest.find("]")
            end = len(rest) if end < 0 else end + 1
        else:
            end = next((i for i, c in enumerate(rest) if c.isspace()), len(rest))
        words.append(rest[:end])
        rest = rest[end:].lstrip()
    return words


def pam_stack(host: Host, ctx: Context, kind: str) -> list[PamLine] | None:
    """The ``kind`` (auth, account...) modules of sshd's PAM service in order, includes
    (@include, include, substack) followed; None when /etc/pam.d/sshd cannot be read."""
    service = setting(ctx, "pamservicename", "sshd") or "sshd"
    return _pam_file(host, f"/etc/pam.d/{service}", kind, 0)


def _pam_file(host: Host, path: str, kind: str, depth: int) -> list[PamLine] | None:
    text = host.read(path)
    if text is None or depth > 8:
        return None
    lines: list[PamLine] = []
    for number, raw in enumerate(text.replace("\\\n", " ").splitlines(), 1):
        words = _pam_tokens(raw.split("#", 1)[0])
        if not words:
            continue
        if words[0] == "@include" and len(words) > 1:
            lines += _pam_file(host, _pam_path(words[1]), kind, depth + 1) or []
            continue
        if len(words) < 3 or words[0].lstrip("-") != kind:
            continue
        control, module = words[1], words[2]
        if control in ("include", "substack"):
            lines += _pam_file(host, _pam_path(module), kind, depth + 1) or []
            continue
        name = module.rsplit("/", 1)[-1].removesuffix(".so")
        lines.append(PamLine(control, name, tuple(words[3:]), f"{path}:{number}"))
    return lines


def _pam_path(name: str) -> str:
    return name if name.startswith("/") else f"/etc/pam.d/{name}"


_FAILLOCK_DIR = "/var/run/faillock"


_TALLY = struct.Struct("<52sHHQ")  # faillock.h: source, reserved, status, time (64 bytes)


def _faillock_options(host: Host, line: PamLine) -> dict[str, str]:
    """pam_faillock's settings for one stack line: faillock.conf (or conf=), then the
    line's own arguments, which win (pam_faillock.c's args_parse)."""
    options = {"dir": _FAILLOCK_DIR, "deny": "3", "fail_interval": "900", "unlock_time": "600"}
    conf = line.arg("conf") or "/etc/security/faillock.conf"
    for raw in (host.read(conf) or "").splitlines():
        name, _, value = raw.split("#", 1)[0].strip().partition("=")
        words = name.split(None, 1)
        if len(words) == 2 and not value:  # "deny 3": whitespace instead of "="
            name, value = words
        if name.strip():
            options[name.strip()] = value.strip() or "yes"
    for arg in line.args:
        name, _, value = arg.partition("=")
        if name not in ("preauth", "authfail", "authsucc", "conf"):
            options[name] = value or "yes"
    if "root_unlock_time" not in options:
        options["root_unlock_time"] = options["unlock_time"]
    return options


def _seconds(value: str, default: int) -> int:
    if value == "never":
        return 0
    return int(value) if value.isdigit() else default


def faillock(host: Host, ctx: Context) -> list[Finding]:
    """Has pam_faillock locked the user? Its tally (dir/USER, 64-byte records) against
    deny within fail_interval, until unlock_time has passed (pam_faillock.c's
    check_tally). It guards PAM's auth stack: passwords, not keys."""
    if not uses_pam(ctx) or ctx.passwd is None:
        return []
    stack = pam_stack(host, ctx, "auth") or []
    line = next((m for m in stack if m.module == "pam_faillock"), None)
    if line is None:
        return []
    options = _faillock_options(host, line)
    tally = f"{options['dir'].rstrip('/')}/{ctx.user}"
    data = host.read_bytes(tally)
    if not data:
        return []
    records = [_TALLY.unpack_from(data, at) for at in range(0, len(data) // 64 * 64, 64)]
    valid = sorted(when for _, _, status, when in records if status & 0x1)
    if not valid:
        return []
    latest = valid[-1]
    interval = _seconds(options["fail_interval"], 900)
    failures = [t for t in valid if latest - t < interval]
    deny = int(options["deny"]) if options["deny"].isdigit() else 3
    admin = ctx.passwd[2] == "0"
    unlock = _seconds(options["root_unlock_time" if admin else "unlock_time"], 600)
    now = host.now()
    stamp = datetime.fromtimestamp(latest, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    evidence = [
        f"{line.where}: {line.control} pam_faillock.so {' '.join(line.args)}".rstrip(),
        f"{tally}: {len(failures)} valid failure(s), the last at {stamp}",
        f"deny = {deny}, unlock_time = {unlock or 'never'}, fail_interval = {interval}",
    ]
    reset = f"faillock --dir {options['dir']} --user {ctx.user} --reset"
    if admin and "even_deny_root" not in options:
        return []
    if not deny or len(failures) < deny:
        return [
            finding(
                "faillock",
                "info",
                f"pam_faillock counts {len(failures)} failure(s) for {ctx.user}; "
                f"it locks at {deny}",
                evidence=evidence,
            )
        ]
    if unlock and latest + unlock < now:
        return [
            finding(
                "faillock",
                "info",
                f"pam_faillock locked {ctx.user} until {unlock}s after {stamp}; that has passed",
                evidence=evidence,
            )
        ]
    until = (
        "for good (unlock_time = 0: only an admin's reset unlocks it)"
        if not unlock
        else "until "
        + datetime.fromtimestamp(latest + unlock, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    )
    asked = passwords_asked(ctx)
    return [
        finding(
            "faillock",
            "fail" if asked else "warn",
            f"pam_faillock has locked {ctx.user} {until}: {len(failures)} failures, "
            f"deny = {deny}; "
            + (
                "every password is refused, the right one too"
                if asked
                else "password logins are refused, keys still work"
            ),
            "account.locked",
            [*evidence, f"to unlock: sudo {reset}"],
            faillock_reset=reset,
        )
    ]


def _access_rules(host: Host, line: PamLine) -> list[tuple[str, str]]:
    """The access.conf files pam_access reads for one stack line: accessfile=, else
    /etc/security/access.conf and then access.d/*.conf (read only if nothing matched)."""
    named = line.arg("accessfile")
    if named:
        return [(named, host.read(named) or "")]
    files = ["/etc/security/access.conf", *host.listdir("/etc/security/access.d", ".conf")]
    return [(f, text) for f in files if (text := host.read(f)) is not None]


def _pam_access_refusal(
    host: Host, ctx: Context, line: PamLine, rhost: str
) -> tuple[str, str] | None:
    """The access.conf rule that refuses the user from ``rhost``, as (file:line, rule), or
    None when pam_access lets them in (pam_access.c's login_access, list_match)."""
    fs = line.arg("fieldsep") or ":"
    sep = line.arg("listsep") or ", \t"
    groups = set(host.groups(ctx.user))
    nodefgroup = "nodefgroup" in line.args
    local = (host.read("/etc/hostname") or "").strip()

    def words(text: str) -> list[str]:
        return [w for w in re.split(f"[{re.escape(sep)}]", text) if w]

    def user_match(token: str) -> int:
        if token.startswith("(") and token.endswith(")") and len(token) > 2:
            return int(token[1:-1] in groups)
        at = token.lstrip("@").find("@")
        if at >= 0:
            at += len(token) - len(token.lstrip("@"))
            return int(
                bool(user_match(token[:at])) and bool(from_match(token[at + 1 :], local, None))
            )
        if token.startswith("@"):
            return 0  # a netgroup: not evaluated here
        if token.upper() == "ALL":
            return 2
        if token.lower() == ctx.user.lower():
            return 1
        return int(not nodefgroup and token in groups)

    def from_match(token: str, origin: str, address: str | None) -> int:
        if token.startswith("@"):
            return 0
        if token.upper() == "ALL":
            return 2
        if token.lower() == origin.lower():
            return 1
        if token.upper() == "LOCAL":
            return 0  # sshd always sets PAM_RHOST: never a local login
        if token.startswith("."):
            return int(len(origin) > len(token) and origin.lower().endswith(token.lower()))
        if token.endswith("."):
            return int(address is not None and f"{address}.".startswith(token))
        net, slash, mask = token.partition("/")
        try:
            ip = ipaddress.ip_address(address or origin)
            if not slash:
                return int(ip == ipaddress.ip_address(net))
            return int(ip in ipaddress.ip_network(f"{net}/{mask}", strict=False))
        except ValueError:
            return 0

    def list_match(items: list[str], match) -> int:
        for at, token in enumerate(items):
            if token.upper() == "EXCEPT":
                return 0
            if found := match(token):
                rest = items[at + 1 :]
                if not any(t.upper() == "EXCEPT" for t in rest):
                    return found
                exceptions = rest[[t.upper() for t in rest].index("EXCEPT") + 1 :]
                return 1 if not list_match(exceptions, match) else 0
        return 0

    for path, text in _access_rules(host, line):
        for number, raw in enumerate(text.splitlines(), 1):
            rule = raw.rstrip()
            if not rule or rule.startswith("#"):
                continue
            fields = re.split(f"[{re.escape(fs)}]+", rule.lstrip(fs), maxsplit=2)
            if len(fields) < 3 or fields[0][:1] not in "+-" or not fields[0]:
                continue
            if list_match(words(fields[1]), user_match) and list_match(
                words(fields[2]), lambda t: from_match(t, rhost, ctx.client_ip)
            ):
                return None if fields[0].startswith("+") else (f"{path}:{number}", rule)
    return None


def check_pam(host: Host, ctx: Context) -> list[Finding]:
    """UsePAM yes: PAM modules that refuse the user whatever the key or password. Here
    pam_access (access.conf) in sshd's account stack, and in its auth stack when a
    password is tried (PAM's auth stack does not run for keys)."""
    if not uses_pam(ctx) or ctx.passwd is None:
        return []
    stacks = [("account", pam_stack(host, ctx, "account"))]
    if passwords_asked(ctx):
        stacks.append(("auth", pam_stack(host, ctx, "auth")))
    if stacks[0][1] is None:
        return [skip("PAM", f"/etc/pam.d/{setting(ctx, 'pamservicename', 'sshd')} is not readable")]
    rhost = remote_host(host, ctx) or ""
    for kind, stack in stacks:
        for line in stack or []:
            if line.module != "pam_access" or not line.decisive or not rhost:
                continue
            if refusal := _pam_access_refusal(host, ctx, line, rhost):
                where, rule = refusal
                return [
                    finding(
                        "PAM",
                        "fail",
                        f"pam_access ({kind} stage, {line.where}) refuses {ctx.user} from "
                        f"{rhost}: {where} says {rule!r}",
                        "account.not_allowed",
                        [
                            f"{line.where}: {kind} {line.control} pam_access.so "
                            + " ".join(line.args),
                            f"{where}: {rule}",
                            f"pam_access logs: access denied for user `{ctx.user}' from `{rhost}'",
                        ],
                        pam_rule=where,
                    )
                ]
    modules = sorted({m.module for _, stack in stacks for m in stack or []})
    return [
        finding(
            "PAM",
            "pass",
            f"no PAM account module refuses {ctx.user} from {rhost or '?'}",
            evidence=[f"modules: {', '.join(modules)}"],
        )
    ]
