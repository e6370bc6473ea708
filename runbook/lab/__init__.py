"""A lab of real OpenSSH servers with injected faults, on loopback and in namespaces.

``up()`` starts one real ``/usr/sbin/sshd`` per scenario (or an HTTP server, an SSH-1
device, or nothing, where that is the fault), each with its own port, config, private
account database and auth.log; ``down()`` removes it all. See :mod:`runbook.lab.scenarios`.
"""

from __future__ import annotations

from runbook.lab.core import DEFAULT_DIR, Lab, LabTarget, default_dir, down, down_all, load, up
from runbook.lab.scenarios import SCENARIOS, Scenario, by_name

__all__ = [
    "DEFAULT_DIR",
    "SCENARIOS",
    "Lab",
    "LabTarget",
    "Scenario",
    "by_name",
    "default_dir",
    "down",
    "down_all",
    "load",
    "up",
]
