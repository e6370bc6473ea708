"""ssh-runbook: find out why ``ssh user@host`` fails, prove it, and say how to fix it."""

from __future__ import annotations

from runbook.errors import BadInput, LabError, MissingTool, RunbookError
from runbook.findings import Diagnosis, Finding, RootCause, Target

__all__ = [
    "BadInput",
    "Diagnosis",
    "Finding",
    "LabError",
    "MissingTool",
    "RootCause",
    "RunbookError",
    "Target",
]

__version__ = "0.1.0"
