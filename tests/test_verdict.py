"""The verdict's rules on findings as the checks return them (no lab needed)."""

from __future__ import annotations

import pytest

from runbook import verdict
from runbook.findings import Finding


def _ssh(cause: str, confidence: str = "medium") -> Finding:
    return Finding(
        "ssh", "ssh -vvv", "fail", "ssh failed", cause_id=cause, data={"confidence": confidence}
    )


def _log(cause: str, **data: str) -> Finding:
    return Finding("server-log", "auth.log", "fail", f"sshd: {cause}", cause_id=cause, data=data)


@pytest.mark.parametrize(
    "client, server, named",
    [
        # Same phase: the server's proof names what the client could only guess at.
        ("proto.not_ssh", "proto.closed_early", "proto.closed_early"),
        ("account.not_allowed", "account.expired", "account.expired"),
        # A later client-side phase: only where causes.toml's refines lists it.
        ("account.nologin", "account.root_denied", "account.root_denied"),
        ("account.nologin", "server.bad_modes", "server.bad_modes"),
        ("account.nologin", "account.invalid_user", "account.nologin"),
        # A client that got further was not stopped by an earlier refusal (one probe
        # connection MaxStartups dropped).
        ("auth.key_rejected", "proto.closed_early", "auth.key_rejected"),
        # Within auth, refusals are per key or password: refines only.
        ("auth.password_rejected", "auth.key_rejected", "auth.password_rejected"),
        ("auth.key_rejected", "server.bad_modes", "server.bad_modes"),
    ],
)
def test_server_proof_refines_the_clients_cause(client: str, server: str, named: str) -> None:
    _, root = verdict.decide([_ssh(client), _log(server)])
    assert root is not None and root.id == named
    if named != client:
        assert root.confidence == "high"
        assert any(f"the client alone sees {client}" in line for line in root.evidence)


def test_the_real_ssh_guessing_does_not_outvote_a_probe_that_saw() -> None:
    """A hang-up after an accepted key, read by ssh's transcript, is a guess (low): a probe
    that saw the login succeed and the session drop decides, and the answer is the same
    whichever of the two saw what."""
    session = Finding(
        "session", "exec", "fail", "authenticated, then dropped", cause_id="account.nologin"
    )
    _, root = verdict.decide([session, _ssh("account.root_denied", "low")])
    assert root is not None and (root.id, root.confidence) == ("account.nologin", "high")
    # Alone, the guess is the answer, as unsure as it is.
    warn = Finding("auth", "account", "warn", "key taken, then closed", "account.not_allowed")
    _, root = verdict.decide([warn, _ssh("account.not_allowed", "low")])
    assert root is not None and (root.id, root.confidence) == ("account.not_allowed", "low")


def test_a_confidence_is_no_fact_of_the_fix() -> None:
    _, root = verdict.decide([_ssh("account.root_denied", "medium")], facts={"hostname": "h"})
    assert root is not None and root.confidence == "medium"


def test_a_server_warning_is_no_proof() -> None:
    """A server check's warning of the same phase (a '!' hash, which keys pass under PAM)
    does not replace the client's own view: only failures are proof."""
    warn = Finding("auth", "account", "warn", "key taken, then closed", "account.not_allowed")
    locked = Finding("server", "account", "warn", "the password is locked", "account.locked")
    _, root = verdict.decide([warn, _ssh("account.not_allowed", "low"), locked])
    assert root is not None and root.id == "account.not_allowed"
