"""Programs run with a time limit that holds for everything they start.

``subprocess.run(timeout=...)`` kills the program it started, then waits for its output
pipes to close; a grandchild that keeps them open (a ``Match exec`` or ProxyCommand's
shell, a daemon a check starts) makes that wait endless, and outlives the run. Here each
program leads its own process group, and the whole group is killed at the deadline.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
from collections.abc import Sequence

__all__ = ["kill_group", "run", "wait"]


def kill_group(proc: subprocess.Popen) -> None:
    """Kill a program started with ``start_new_session=True`` and all it started."""
    with contextlib.suppress(ProcessLookupError):  # already gone, with its group
        os.killpg(proc.pid, signal.SIGKILL)


def wait(proc: subprocess.Popen, timeout: float) -> int | None:
    """``proc``'s exit status, or None while it still runs after ``timeout`` seconds.

    One blocking poll on a pidfd where Linux has them: ``Popen.wait(timeout)`` polls with
    sleeps instead, and a fleet's hundreds of waiting threads then wake thousands of times
    a second, each taking the GIL from the threads that work.
    """
    if proc.returncode is None and hasattr(os, "pidfd_open"):
        try:
            fd = os.pidfd_open(proc.pid)
        except OSError:  # gone already (reaped below), or a kernel before 5.3
            pass
        else:
            try:
                poller = select.poll()
                poller.register(fd, select.POLLIN)
                if not poller.poll(max(0.0, timeout) * 1000):
                    return None
            finally:
                os.close(fd)
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        return None


def run(argv: Sequence[str], timeout: float) -> subprocess.CompletedProcess[str] | None:
    """``argv``'s exit status and text output, or None when it ran past ``timeout``."""
    with subprocess.Popen(
        list(argv),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        errors="replace",
        start_new_session=True,
    ) as proc:
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            kill_group(proc)
            proc.communicate()
            return None
    return subprocess.CompletedProcess(list(argv), proc.returncode, out, err)
