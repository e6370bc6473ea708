"""Run the real OpenSSH client the way the user would, without its side effects.

``ssh -vvv`` is the ground truth for what the user sees. To keep the diagnosis side-effect
free, ssh gets private copies of the user's known_hosts files (it may append to those,
never to the originals), no connection sharing, no host key updates and no local
commands. It runs in the background while the probes work, so the whole diagnosis
takes little longer than the slower of the two.

A password (only with ``--password-env``) reaches ssh through a private askpass script
that reads the variable and answers password prompts only; it never appears on a
command line or in any output. In that mode ssh may ask, so an unknown host key is
refused instead of asked about (``StrictHostKeyChecking=yes``).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import subprocess
import tempfile
import time
from pathlib import Path

from runbook import bounded, transcript
from runbook.errors import BadInput
from runbook.findings import Finding
from runbook.sshconfig import Settings

__all__ = ["SshRun"]

_SAFE_OPTIONS = (
    "UpdateHostKeys=no",
    "ControlMaster=no",
    "ControlPath=none",
    "PermitLocalCommand=no",
    "ClearAllForwardings=yes",
)
_ASKPASS = """#!/bin/sh
case "$1" in
  *assword*) printf '%s\\n' "${VAR}" ;;
  *) exit 1 ;;
esac
"""


# The key exchanges cheapest in CPU, cheapest first. OpenSSH 9.x offers the post-quantum
# hybrid first, about 0.1 s of CPU per login on each side of a small machine: most of a
# fleet's work. P-256 goes through OpenSSL's tuned code; OpenSSH's own curve25519 is the
# portable reference code: 13 against 15.6 ms of the client's CPU per login here, and
# 6 ms less on the server's side.
_CHEAP_KEX = ("ecdh-sha2-nistp256", "curve25519-sha256")


def _scratch(executable: bool) -> str | None:
    """Where ssh's private files go: a memory file system where one is usable (a fleet
    makes hundreds of these; on a slow disk each costs milliseconds), else tempfile's
    default. ``executable``: the askpass script must run there (no noexec mount)."""
    for candidate in (os.environ.get("XDG_RUNTIME_DIR"), "/dev/shm"):
        if not candidate or not os.access(candidate, os.W_OK | os.X_OK):
            continue
        with contextlib.suppress(OSError):
            if not executable or not os.statvfs(candidate).f_flag & os.ST_NOEXEC:
                return candidate
    return None


def _read(path: str) -> bytes | None:
    # Missing or unreadable (a root-owned one after `sudo ssh`): so for ssh too.
    try:
        return Path(path).read_bytes()
    except OSError:
        return None


def _digest(data: bytes | None) -> bytes | None:
    return hashlib.sha256(data).digest() if data else None


class SshRun:
    """One real ``ssh -vvv ... true``: start it, do other work, then :meth:`finish`.

    ``cheap_kex`` (fleets, without a password): the user's own key exchange algorithms,
    the same set, with the cheapest of them (_CHEAP_KEX, both where the user has both:
    a server without P-256 then takes curve25519, not the costly default) moved first. A
    server accepts the same set or refuses it as it would for the user, so the verdict
    cannot change; only the login's CPU does.

    ``settings`` may be presumed (a fleet starts ssh before ``ssh -G`` answers): then
    :meth:`adopt` says whether the target's own would have made the same command.
    """

    def __init__(
        self,
        settings: Settings,
        flags: list[str],
        target: str,
        timeout: float,
        password_env: str | None = None,
        *,
        cheap_kex: bool = False,
    ) -> None:
        self.timeout = timeout
        self._cheap_kex = cheap_kex
        self._password = password_env is not None
        self._tmp = tempfile.TemporaryDirectory(
            prefix="runbook-ssh-", dir=_scratch(executable=self._password)
        )
        tmp = Path(self._tmp.name)
        argv = ["ssh", "-vvv", "-o", f"ConnectTimeout={max(1, round(timeout))}"]
        env = dict(os.environ)
        if password_env:
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", password_env):
                raise BadInput(
                    f"{password_env!r} is not an environment variable name",
                    hint="name a variable such as SSH_PASSWORD",
                )
            askpass = tmp / "askpass"
            askpass.write_text(_ASKPASS.replace("VAR", password_env))
            askpass.chmod(0o700)
            env |= {"SSH_ASKPASS": str(askpass), "SSH_ASKPASS_REQUIRE": "force"}
            argv += ["-o", "BatchMode=no", "-o", "NumberOfPasswordPrompts=1"]
        else:
            argv += ["-o", "BatchMode=yes"]
        for option in _SAFE_OPTIONS:
            argv += ["-o", option]
        self._derived = self._options(settings)
        argv += self._derived
        self._copy_known_hosts(settings, tmp)
        argv += ["-o", f"UserKnownHostsFile={' '.join(self._originals) or 'none'}"]
        argv += [*flags, target, "true"]
        self._started = time.monotonic()
        self._out = tmp / "output"
        with self._out.open("wb") as sink:
            self._proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )

    def _options(self, settings: Settings) -> list[str]:
        """The options the command derives from ``settings`` (besides the known_hosts
        copies): the key exchange order, strict checking with a password."""
        options = []
        if self._password and settings.strict_host_key_checking.lower() == "ask":
            options += ["-o", "StrictHostKeyChecking=yes"]
        kex = list(settings.kex_algorithms)
        if self._cheap_kex:
            cheap = [k for k in _CHEAP_KEX if k in kex]
            first = [*cheap, *(k for k in kex if k not in cheap)]
            if first != kex:
                options += ["-o", f"KexAlgorithms={','.join(first)}"]
        return options

    def _copy_known_hosts(self, settings: Settings, tmp: Path) -> None:
        """Private copies of the known_hosts files, each with the original it stands for
        and a digest of what it held (None: missing, unreadable or empty, so for ssh)."""
        self._originals: dict[str, str] = {}
        self._held: list[bytes | None] = []
        for index, path in enumerate(settings.user_known_hosts_files):
            copy = tmp / f"known_hosts_{index}"
            data = _read(path)
            if data is not None:
                copy.write_bytes(data)
            self._originals[str(copy)] = path
            self._held.append(_digest(data))

    def adopt(self, settings: Settings) -> bool:
        """Take ``settings`` (the target's own, from ``ssh -G``) for this run, started on
        presumed ones, when they would have made the same command: the same derived
        options, and known_hosts files holding the same keys in the same order (ssh's
        lookups are the same; a file named otherwise, as a Host block may, holds no other
        key). Then the transcript names the target's own files. Returns whether it did."""
        if self._options(settings) != self._derived:
            return False
        files = settings.user_known_hosts_files
        if files == tuple(self._originals.values()):
            return True  # the very files copied (a fleet's usual case): nothing to compare
        theirs = [(path, _digest(_read(path))) for path in files]
        if [d for d in self._held if d] != [d for _, d in theirs if d]:
            return False
        named = iter(path for path, d in theirs if d)
        for copy, held in zip(list(self._originals), self._held, strict=True):
            if held:
                self._originals[copy] = next(named)
        first = next(iter(self._originals), None)
        if first is not None and files and not self._held[0]:
            self._originals[first] = files[0]  # where ssh adds a key it accepts
        return True

    def finish(self) -> Finding:
        """Wait (bounded) for ssh and read its transcript into a finding."""
        limit = self.timeout * 2 + 5
        status = bounded.wait(self._proc, max(0.1, limit - self.elapsed))
        if status is None:
            bounded.kill_group(self._proc)  # ssh, and a ProxyCommand it started
            self._proc.wait()
        elapsed = self.elapsed
        output = self._out.read_bytes().decode(errors="replace")
        # ssh names the copies ("Offending key in ...", "ssh-keygen -R ... -f ..."): the
        # transcript, its facts and the fixes must name the user's own files.
        for copy in sorted(self._originals, key=len, reverse=True):
            output = output.replace(copy, self._originals[copy])
        self._tmp.cleanup()
        result = transcript.classify(transcript.parse(output))
        if status == 0:
            summary, state = f"ssh logged in and ran `true` in {elapsed:.1f}s", "pass"
        elif status is None:
            summary, state = f"ssh did not finish within {limit:.0f}s", "fail"
        else:
            final = (
                result.decisive_lines[-1][1] if result.decisive_lines else f"exit status {status}"
            )
            summary, state = f"ssh failed (exit {status}): {final}", "fail"
        return Finding(
            step="ssh",
            check="ssh -vvv",
            status=state,
            cause_id=result.cause_id if state == "fail" else None,
            summary=summary,
            evidence=[line for _, line in result.decisive_lines],
            data={
                "transcript": output,
                "exit_status": status,
                "confidence": result.confidence,
                **result.facts,
            },
        )

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self._started

    def cancel(self) -> None:
        """Stop ssh and remove its private files (on errors in the other steps)."""
        if self._proc.poll() is None:
            bounded.kill_group(self._proc)
            self._proc.wait()
        self._tmp.cleanup()
