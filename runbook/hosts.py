"""Where server checks run: this machine, another process's namespaces, or over SSH.

Shaped like pytest-testinfra's backends: a :class:`Host` whose ``run(cmd, *args)``
shell-quotes its arguments and returns a :class:`CommandResult`. Every command a check
runs is recorded (``host.history``) so the report can show exactly what was run; the
checks only read, never write.
"""

from __future__ import annotations

import base64
import binascii
import os
import shlex
import time
from dataclasses import dataclass, field
from pathlib import Path

from runbook import bounded
from runbook.errors import BadInput

__all__ = [
    "CommandResult",
    "Host",
    "LocalHost",
    "NsenterHost",
    "RootedHost",
    "SshHost",
    "host_for",
]


@dataclass(frozen=True)
class CommandResult:
    """One command and what it returned."""

    command: str
    rc: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.rc == 0


@dataclass
class Host:
    """A machine the checks read from; subclasses say how a command reaches it."""

    name: str
    timeout: float = 10.0
    history: list[str] = field(default_factory=list)

    def run(self, command: str, *args: object) -> CommandResult:
        """Run ``command`` with each of ``args`` shell-quoted in (testinfra's shape)."""
        line = " ".join([command, *(shlex.quote(str(a)) for a in args)])
        self.history.append(line)
        return self._execute(line)

    def _execute(self, line: str) -> CommandResult:
        raise NotImplementedError

    def read(self, path: str) -> str | None:
        """A file's text, or None when it is missing or unreadable."""
        result = self.run("cat --", path)
        return result.stdout if result.ok else None

    def exists(self, command: str) -> bool:
        return self.run("command -v", command).ok

    # What the account and file checks need, as commands here and as files offline.
    offline = False

    def passwd(self, user: str) -> list[str] | None:
        """The user's passwd fields, or None when there is no such user."""
        result = self.run("getent passwd --", user)
        return result.stdout.strip().split(":") if result.ok and result.stdout.strip() else None

    def shadow(self, user: str) -> list[str] | None:
        """The user's shadow fields, or None when shadow cannot be read here."""
        result = self.run("getent shadow --", user)
        return result.stdout.strip().split(":") if result.ok and result.stdout.strip() else None

    def groups(self, user: str) -> list[str]:
        result = self.run("id -Gn --", user)
        return result.stdout.split() if result.ok else []

    def stat(self, paths: list[str]) -> list[tuple[str, str, str]]:
        """(owner uid, octal mode, path) of each existing path, symlinks followed."""
        result = self.run("stat -L -c '%u %a %n' --", *paths)
        return [tuple(line.split(" ", 2)) for line in result.stdout.splitlines()]  # type: ignore[misc]

    def executable(self, path: str) -> bool:
        return self.run("test -x", path).ok

    def read_bytes(self, path: str) -> bytes | None:
        """A binary file (a pam_faillock tally), or None when missing or unreadable."""
        result = self.run("base64 --", path)
        if not result.ok:
            return None
        try:
            return base64.b64decode("".join(result.stdout.split()))
        except (binascii.Error, ValueError):
            return None

    def group_ids(self, paths: list[str]) -> dict[str, str]:
        """The group (gid) owning each existing path, symlinks followed."""
        result = self.run("stat -L -c '%g %n' --", *paths)
        return {n: g for g, _, n in (ln.partition(" ") for ln in result.stdout.splitlines())}

    def group_entry(self, gid: str) -> list[str] | None:
        """The group's fields (name, password, gid, members), or None."""
        result = self.run("getent group --", gid)
        return result.stdout.strip().split(":") if result.ok and result.stdout.strip() else None

    def passwd_entries(self) -> list[list[str]]:
        """Every passwd entry (sshd's getpwent: what NSS enumerates)."""
        result = self.run("getent passwd")
        return [ln.split(":") for ln in result.stdout.splitlines() if ln.count(":") >= 6]

    def listdir(self, directory: str, suffix: str = "") -> list[str]:
        """Paths in a directory whose names end with ``suffix``, sorted."""
        result = self.run("find", directory, "-maxdepth", "1", "-name", f"*{suffix}")
        found = [ln for ln in result.stdout.splitlines() if ln != directory]
        return sorted(found)

    def now(self) -> float:
        """The server's clock (expiry days, faillock's unlock time)."""
        result = self.run("date +%s")
        stamp = result.stdout.strip()
        return float(stamp) if result.ok and stamp.isdigit() else time.time()


@dataclass
class LocalHost(Host):
    """This machine (``--server local``): the notebook runs on the server itself."""

    prefix: tuple[str, ...] = ()

    def _execute(self, line: str) -> CommandResult:
        done = bounded.run([*self.prefix, "/bin/sh", "-c", line], self.timeout)
        if done is None:
            return CommandResult(line, 124, "", f"timed out after {self.timeout:.0f}s")
        return CommandResult(line, done.returncode, done.stdout, done.stderr)


@dataclass
class RootedHost(Host):
    """A server's root filesystem mounted elsewhere (``--server-root``): files only.

    Nothing runs there; the account and file checks read its /etc and its homes. Paths
    are always taken inside the root, also after ``..``.
    """

    root: Path = Path("/")
    offline = True

    def _inside(self, path: str) -> Path:
        return self.root / os.path.normpath("/" + path).lstrip("/")

    def _execute(self, line: str) -> CommandResult:
        return CommandResult(line, 127, "", "offline: nothing runs on a mounted root")

    def read(self, path: str) -> str | None:
        self.history.append(f"read {self._inside(path)}")
        try:
            return self._inside(path).read_text(errors="replace")
        except OSError:
            return None

    def _table(self, name: str, key: str) -> list[str] | None:
        text = self.read(f"/etc/{name}") or ""
        return next((ln.split(":") for ln in text.splitlines() if ln.split(":")[0] == key), None)

    def passwd(self, user: str) -> list[str] | None:
        return self._table("passwd", user)

    def shadow(self, user: str) -> list[str] | None:
        return self._table("shadow", user)

    def groups(self, user: str) -> list[str]:
        entry = self.passwd(user)
        gid = entry[3] if entry and len(entry) > 3 else None
        found = []
        for line in (self.read("/etc/group") or "").splitlines():
            fields = line.split(":")
            if len(fields) >= 4 and (fields[2] == gid or user in fields[3].split(",")):
                found.append(fields[0])
        return found

    def stat(self, paths: list[str]) -> list[tuple[str, str, str]]:
        out = []
        for path in paths:
            self.history.append(f"stat {self._inside(path)}")
            try:
                info = self._inside(path).stat()
            except OSError:
                continue
            out.append((str(info.st_uid), f"{info.st_mode & 0o7777:o}", path))
        return out

    def executable(self, path: str) -> bool:
        target = self._inside(path)
        return target.is_file() and os.access(target, os.X_OK)

    def read_bytes(self, path: str) -> bytes | None:
        self.history.append(f"read {self._inside(path)}")
        try:
            return self._inside(path).read_bytes()
        except OSError:
            return None

    def group_ids(self, paths: list[str]) -> dict[str, str]:
        found = {}
        for path in paths:
            try:
                found[path] = str(self._inside(path).stat().st_gid)
            except OSError:
                continue
        return found

    def group_entry(self, gid: str) -> list[str] | None:
        text = self.read("/etc/group") or ""
        return next(
            (f for ln in text.splitlines() if len(f := ln.split(":")) >= 4 and f[2] == gid), None
        )

    def passwd_entries(self) -> list[list[str]]:
        text = self.read("/etc/passwd") or ""
        return [ln.split(":") for ln in text.splitlines() if ln.count(":") >= 6]

    def listdir(self, directory: str, suffix: str = "") -> list[str]:
        self.history.append(f"list {self._inside(directory)}")
        try:
            names = os.listdir(self._inside(directory))
        except OSError:
            return []
        return sorted(f"{directory.rstrip('/')}/{n}" for n in names if n.endswith(suffix))

    def now(self) -> float:
        return time.time()


@dataclass
class NsenterHost(LocalHost):
    """The mount and network namespaces of a process (a container's or the lab's sshd)."""

    pid: int = 0


@dataclass
class SshHost(Host):
    """Another machine reached with an admin account that still gets in (paramiko)."""

    user: str = ""
    hostname: str = ""
    port: int = 22
    # A password login (ssh-copy-id before any key works): read from the environment by
    # the caller, never shown; and the known_hosts files that must already hold the key.
    password: str | None = field(default=None, repr=False)
    known_hosts: tuple[str, ...] = ()
    _client: object | None = None

    def _connect(self):  # -> paramiko.SSHClient
        import paramiko

        if self._client is None:
            client = paramiko.SSHClient()
            client.load_system_host_keys()
            for known in self.known_hosts:
                if os.path.exists(known):
                    client.load_host_keys(known)
            client.set_missing_host_key_policy(paramiko.RejectPolicy())  # never accept blindly
            try:
                client.connect(
                    self.hostname,
                    self.port,
                    self.user,
                    password=self.password,
                    allow_agent=self.password is None,
                    look_for_keys=self.password is None,
                    timeout=self.timeout,
                    banner_timeout=self.timeout,
                    auth_timeout=self.timeout,
                )
            except (paramiko.SSHException, OSError) as err:
                raise BadInput(
                    f"cannot reach the server as {self.user}@{self.hostname}:{self.port}: {err}",
                    hint="--server needs an account that still logs in with a known host key",
                ) from err
            self._client = client
        return self._client

    def _execute(self, line: str) -> CommandResult:
        client = self._connect()
        try:
            _, out, err = client.exec_command(line, timeout=self.timeout)  # type: ignore[attr-defined]
            rc = out.channel.recv_exit_status()
            return CommandResult(
                line, rc, out.read().decode(errors="replace"), err.read().decode(errors="replace")
            )
        except OSError as failure:
            return CommandResult(line, 124, "", str(failure))


def host_for(spec: str, *, timeout: float = 10.0) -> Host:
    """``local``, ``nsenter:PID`` or ``USER@HOST[:PORT]`` as a :class:`Host`."""
    if spec == "local":
        return LocalHost("local", timeout)
    if spec.startswith("nsenter:"):
        pid = spec.split(":", 1)[1]
        if not pid.isdigit():
            raise BadInput(f"--server {spec}: the pid is not a number", hint="nsenter:1234")
        prefix = ("nsenter", "-t", pid, "-m", "-n", "--")
        return NsenterHost(spec, timeout, prefix=prefix, pid=int(pid))
    user, at, rest = spec.rpartition("@")
    if not at or not user or not rest:
        raise BadInput(
            f"--server {spec!r} is not local, nsenter:PID or USER@HOST[:PORT]",
            hint="e.g. --server local or --server admin@web1:22",
        )
    host, _, port = rest.partition(":")
    if port and not port.isdigit():
        raise BadInput(f"--server {spec!r}: the port is not a number", hint="admin@web1:2222")
    return SshHost(spec, timeout, user=user, hostname=host, port=int(port or 22))
