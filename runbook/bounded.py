"""Programs run with a time limit that holds for everything they start.

``subprocess.run(timeout=...)`` kills the program it started, then waits for its output
pipes to close; a grandchild that keeps them open (a ``Match exec`` or ProxyCommand's
shell, a daemon a check starts) makes that wait endless, and outlives the run. Here each
program leads its own process group, and the whole group is killed at the deadline.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Sequence

__all__ = ["kill_group", "run"]


def kill_group(proc: subprocess.Popen) -> None:
    """Kill a program started with ``start_new_session=True`` and all it started."""
    with contextlib.suppress(ProcessLookupError):  # already gone, with its group
        os.killpg(proc.pid, signal.SIGKILL)


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
