"""Secrets (a password, a key's passphrase) come from environment variables, never from
arguments: arguments end up in shell history, `ps`, papermill's injected parameters and
findings.json. This is the one place that reads them."""

from __future__ import annotations

import os

from runbook.errors import BadInput

__all__ = ["from_env"]


def from_env(name: str, *, hint: str) -> str:
    """The value of the environment variable ``name`` (BadInput naming it when unset)."""
    if name not in os.environ:
        raise BadInput(f"environment variable {name} is not set", hint=hint)
    return os.environ[name]
