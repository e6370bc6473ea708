"""The plain records every check returns, and the diagnosis they add up to.

Checks are small functions that return :class:`Finding` objects; one place
(:mod:`runbook.verdict`) turns a list of them into a :class:`Diagnosis`. The JSON shape is
the contract's ``ssh-runbook/diagnosis/v1``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["SCHEMA", "Diagnosis", "Finding", "RootCause", "Status", "Target"]

SCHEMA = "ssh-runbook/diagnosis/v1"

Status = Literal["pass", "fail", "warn", "skip", "info"]


@dataclass
class Finding:
    """What one check saw: its status, the cause it points at (if any) and the evidence."""

    step: str
    check: str
    status: Status
    summary: str
    cause_id: str | None = None
    evidence: list[str] = field(default_factory=list)
    # Extra machine-readable facts (fingerprints, algorithm lists...) for later steps.
    data: dict[str, Any] = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "check": self.check,
            "status": self.status,
            "cause_id": self.cause_id,
            "summary": self.summary,
            "evidence": list(self.evidence),
        }


@dataclass(frozen=True)
class Target:
    """Where the login goes, as OpenSSH resolves it."""

    alias: str
    hostname: str
    port: int
    user: str

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class RootCause:
    """The cause the verdict settles on, with its fix rendered for the target."""

    id: str
    title: str
    explanation: str
    fix: list[str]
    confidence: Literal["high", "medium", "low"]
    # The chain of observations that proves it, earliest first (an extension of v1).
    evidence: list[str] = field(default_factory=list)
    # The catalog's variant the fix follows ("" for the plain one; e.g. "revoked_host"): an
    # extension of v1, so that `runbook fix --from findings.json` plans what the text says.
    variant: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class Diagnosis:
    """The whole answer for one target: verdict, root cause and every finding."""

    target: Target
    verdict: Literal["ok", "failed"]
    root_cause: RootCause | None
    findings: list[Finding]
    started_at: str
    duration_s: float
    report: dict[str, str] | None = None
    # How diagnose was asked (flags, never a secret): `runbook fix` and reruns repeat it.
    parameters: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "target": self.target.to_dict(),
            "verdict": self.verdict,
            "root_cause": self.root_cause.to_dict() if self.root_cause else None,
            "findings": [f.to_dict() for f in self.findings],
            "started_at": self.started_at,
            "duration_s": round(self.duration_s, 3),
            "report": self.report,
            "parameters": self.parameters,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Diagnosis:
        """A diagnosis read back from its findings.json (the report shows that very run)."""
        if data.get("schema") != SCHEMA:
            raise ValueError(f"not a {SCHEMA} document")
        root = data.get("root_cause")
        return cls(
            target=Target(**data["target"]),
            verdict=data["verdict"],
            root_cause=RootCause(**root) if root else None,
            findings=[
                Finding(
                    step=f["step"],
                    check=f["check"],
                    status=f["status"],
                    summary=f["summary"],
                    cause_id=f.get("cause_id"),
                    evidence=list(f.get("evidence", [])),
                )
                for f in data["findings"]
            ],
            started_at=data["started_at"],
            duration_s=float(data["duration_s"]),
            report=data.get("report"),
            parameters=dict(data.get("parameters") or {}),
        )
