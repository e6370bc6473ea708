"""Start and stop the lab's processes by pid, safely across crashes and pid reuse.

A pid alone can be reused after a crash; a pid with its kernel start time cannot. Each
record therefore carries both, and :func:`stop` only signals a process whose start time
still matches, together with every descendant it left (sshd's per-connection children).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

__all__ = ["ProcRecord", "alive", "descendants", "spawn", "start_time", "stop"]


@dataclass(frozen=True)
class ProcRecord:
    """A process the lab started: what it is, its pid and its kernel start time."""

    what: str
    pid: int
    start: int

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def _stat(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    return raw[raw.rindex(")") + 2 :].split()


def start_time(pid: int) -> int | None:
    fields = _stat(pid)
    return int(fields[19]) if fields else None


def _yield_cpu(pid: int) -> None:
    """Let ``pid`` and what it forks later (sshd's per-connection processes) run only on
    CPU that nothing else wants: the lab stands in for remote servers, whose work a real
    client never pays for; on a small machine the lab's logins would otherwise take the
    cores from the client under test (and from the user). Nice 19, and the same for the
    session's autogroup where the kernel schedules sessions as groups (the nice of a
    task then counts only within its session)."""
    with contextlib.suppress(OSError):  # gone already: stop() will find out
        os.setpriority(os.PRIO_PROCESS, pid, 19)
    with contextlib.suppress(OSError):  # no autogroups (off, or a kernel without them)
        Path(f"/proc/{pid}/autogroup").write_text("19")


def alive(record: ProcRecord) -> bool:
    """True when the recorded process still runs (same pid and same start time)."""
    fields = _stat(record.pid)
    return bool(fields) and int(fields[19]) == record.start and fields[0] != "Z"


def descendants(pid: int) -> list[int]:
    """Every live process below ``pid`` in the process tree."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (fields := _stat(int(entry))):
            children.setdefault(int(fields[1]), []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def spawn(what: str, argv: Sequence[str], *, log: Path) -> ProcRecord:
    """Start ``argv`` detached (own session), its output appended to ``log``, at the
    lowest CPU priority (see :func:`_yield_cpu`)."""
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    _yield_cpu(proc.pid)
    start = start_time(proc.pid)
    return ProcRecord(what, proc.pid, start if start is not None else -1)


def stop(records: Sequence[ProcRecord], *, grace: float = 3.0) -> None:
    """Terminate the recorded processes and their descendants; kill what outlives ``grace``."""
    pids: set[int] = set()
    for record in records:
        if alive(record):
            pids.add(record.pid)
            pids.update(descendants(record.pid))
    for pid in pids:
        _signal(pid, signal.SIGTERM)
        _signal(pid, signal.SIGCONT)  # a stopped process (sshd-stopped) acts on it only then
    deadline = time.monotonic() + grace
    while pids and time.monotonic() < deadline:
        _reap(pids)
        pids = {p for p in pids if _running(p)}
        time.sleep(0.05)
    for pid in pids:
        _signal(pid, signal.SIGKILL)
    _reap(pids)


def _running(pid: int) -> bool:
    fields = _stat(pid)
    return bool(fields) and fields[0] != "Z"


def _signal(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, sig)


def _reap(pids: set[int]) -> None:
    """Collect zombies that are our own children (started by this very process)."""
    for pid in pids:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
