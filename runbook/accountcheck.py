"""The account on the server: it exists, has a login shell, and is neither locked nor expired.

Judged as sshd judges it: without PAM sshd itself refuses a locked password field and, the
day after, an expired account (auth.c, auth-shadow.c); with UsePAM yes pam_unix does, from
the expiry day on. A nologin file shuts everyone but root out after authentication, and a
pam_faillock lock (runbook.pamcheck) refuses passwords until it ends.
"""

from __future__ import annotations

from datetime import UTC, datetime

from runbook.findings import Finding
from runbook.hosts import Host
from runbook.pamcheck import faillock, pam_stack
from runbook.servercontext import (
    Context,
    chroot_dir,
    finding,
    passwords_asked,
    setting,
    uses_pam,
)

__all__ = ["check_account"]


def check_account(host: Host, ctx: Context) -> list[Finding]:
    """The account exists, is not locked or expired, and has a login shell."""
    ctx.passwd = host.passwd(ctx.user)
    if ctx.passwd is None:
        return [
            finding(
                "account",
                "fail",
                f"there is no user {ctx.user} on the server",
                "account.invalid_user",
                [f"getent passwd {ctx.user}: no entry"],
            )
        ]
    entry_text = ":".join(ctx.passwd)
    findings = []
    shell = ctx.passwd[6] if len(ctx.passwd) > 6 else ""
    if shell.endswith(("/nologin", "/false")):
        findings.append(
            finding(
                "shell",
                "fail",
                f"{ctx.user}'s shell is {shell}",
                "account.nologin",
                [entry_text],
            )
        )
    elif shell and not chroot_dir(ctx) and not host.executable(shell):
        # With a ChrootDirectory the shell is looked for inside it (check_chroot).
        findings.append(
            finding(
                "shell",
                "fail",
                f"{ctx.user}'s shell {shell} does not exist",
                "account.nologin",
                [entry_text],
                # sshd refuses such a user before authentication (auth.c's allowed_user)
                shell_refused=f"shell {shell} does not exist or is not executable",
            )
        )
    findings += _nologin_files(host, ctx)
    fields = host.shadow(ctx.user)
    if fields:
        findings += _shadow(host, ctx, fields)
    else:
        findings.append(finding("shadow", "skip", "not checked: shadow is not readable here"))
    findings += faillock(host, ctx)
    return findings or [
        finding(
            "account",
            "pass",
            f"{ctx.user} exists, not locked or expired, shell {shell}",
            **({"login_shell": shell} if shell else {}),
        )
    ]


def _shadow(host: Host, ctx: Context, fields: list[str]) -> list[Finding]:
    """The password field and the account's expiry day, as sshd (UsePAM no: auth.c,
    platform.c, auth-shadow.c) or PAM's pam_unix (UsePAM yes) judge them."""
    findings = []
    password, expire = fields[1], fields[7] if len(fields) > 7 else ""
    pam = uses_pam(ctx)
    if not pam and password.startswith(("!", "*LK*")):
        findings.append(
            finding(
                "shadow",
                "fail",
                f"{ctx.user}'s password is locked ('!' in shadow): sshd without PAM refuses "
                "the account, keys included",
                "account.locked",
                ["getent shadow: password field starts with '!'", "usepam no"],
            )
        )
    elif password.startswith(("!", "*")):
        # Such a hash matches no password, the right one included (crypt never yields it).
        what = (
            "locked ('!' in shadow)"
            if password.startswith("!") and password != "!!"
            else f"not set ('{password[:2]}' in shadow)"
        )
        asked = passwords_asked(ctx)
        if asked or password.startswith("!"):
            findings.append(
                finding(
                    "shadow",
                    "fail" if asked else "warn",
                    f"{ctx.user}'s password is {what}: "
                    + (
                        "every password is refused, the right one too"
                        if asked
                        else "password logins fail; with UsePAM yes keys still work"
                    ),
                    "account.locked",
                    [
                        f"getent shadow: password field starts with '{password[:2]}'",
                        f"usepam {'yes' if pam else 'no'}",
                    ],
                )
            )
    if expire.lstrip("-").isdigit() and int(expire) >= 0:
        findings += _expiry(host, ctx, int(expire))
    return findings


def _expiry(host: Host, ctx: Context, expire: int) -> list[Finding]:
    """The shadow expiry day (days since 1970-01-01, UTC). sshd itself (UsePAM no) refuses
    once the day has passed (auth-shadow.c: expire - today < 0); pam_unix already on the
    day itself (passverify.c: today >= expire)."""
    today = int(host.now() // 86400)
    pam = uses_pam(ctx)
    day = datetime.fromtimestamp(expire * 86400, UTC).date().isoformat()
    evidence = [f"shadow expire day {expire} ({day}), today {today}"]
    if pam:
        stack = pam_stack(host, ctx, "account")
        unix = stack is None or any(m.module == "pam_unix" for m in stack)
        expired = today >= expire
        judge = "pam_unix (UsePAM yes) refuses from that day on"
        if expired and not unix:
            return [
                finding(
                    "shadow",
                    "warn",
                    f"{ctx.user}'s account expired on {day}, but sshd's PAM account stack has "
                    "no pam_unix to enforce it",
                    evidence=evidence,
                )
            ]
    else:
        expired = today > expire
        judge = "sshd without PAM refuses the day after"
    if expired:
        ago = today - expire
        when = "today" if ago == 0 else f"{ago} day(s) ago"
        return [
            finding(
                "shadow",
                "fail",
                f"{ctx.user}'s account expired {when} ({day}): {judge}",
                "account.expired",
                [*evidence, judge],
            )
        ]
    if expire - today <= 7:
        left = "still valid today" if expire == today else f"expires on {day}"
        return [
            finding(
                "shadow",
                "info",
                f"{ctx.user}'s account {left} ({judge})",
                evidence=evidence,
            )
        ]
    return []


def _nologin_files(host: Host, ctx: Context) -> list[Finding]:
    """A nologin file shuts every user but root out after authentication: sshd itself
    reads /etc/nologin, pam_nologin also /run/nologin (systemd's, while the system boots
    and before a scheduled shutdown)."""
    if ctx.passwd is None or ctx.passwd[2] == "0":
        return []
    paths = ["/etc/nologin"]
    if setting(ctx, "usepam", "no") == "yes":
        paths += ["/run/nologin", "/var/run/nologin"]
    found = host.stat(paths)
    if not found:
        return []
    path = found[0][2]
    text = host.read(path)
    said = [f"{path}: {line}" for line in (text or "").strip().splitlines()[:2]]
    return [
        finding(
            "nologin",
            "fail",
            f"{path} exists: sshd lets no user but root log in",
            "account.nologin",
            said or [f"{path} exists ({'empty' if text is not None else 'not readable here'})"],
            nologin_file=path,
        )
    ]
