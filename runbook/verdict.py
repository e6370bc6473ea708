"""The one place where findings become a verdict.

Rules, in order:

1. ``ok`` exactly when a login works: the real ``ssh`` logged in and ran a command (or,
   when it did not run, the probe's session did). The real client decides because it
   is what the user runs.
2. Otherwise the earliest failing phase wins (see :data:`runbook.catalog.PHASES`): a later
   failure is usually a consequence (an ignored key with bad permissions ends in
   "Permission denied").
3. Within a phase, the cause the real ``ssh`` showed is preferred; then the order the
   checks ran in.
4. Server evidence refines: server-side proof of the attempt (the log's lines of this
   diagnosis' own connections, a server check's failure) names the cause behind the
   client-side one when it is of the same phase (an account-stage refusal the client
   could only guess at, sshd hanging up before its banner where the client saw no SSH
   server), or when ``refines`` in causes.toml says it can show as that client-side
   cause (bad modes behind a refused key; a chroot's bad modes, or OpenSSH 9.2's
   PermitRootLogin refusal, as a session that drops). Not within the auth phase (a key
   or password refused there is one of several the login may try: only ``refines``
   ties them), and not from an earlier phase unless ``refines`` says so: a client that
   got further was not stopped there (MaxStartups dropping one probe connection). The
   client's view stays in the evidence.
5. Confidence is high when the real client and a probe agree, or the evidence is a direct
   observation (an errno, a banner, a key); medium when one inference alone says so; low
   when only a warning points at the cause. The real ssh's failure whose cause its
   transcript can only guess (``confidence`` "low" in its data: a hang-up after the key
   was accepted) counts as such a warning.
"""

from __future__ import annotations

from typing import Any, Literal

from runbook import catalog
from runbook.findings import Finding, RootCause

__all__ = ["DIRECT_STEPS", "decide"]

# Steps whose failure is observed directly (a socket error, a banner), not inferred.
DIRECT_STEPS = frozenset(
    {"dns", "tcp", "banner", "kex", "proxy", "hostkey", "client", "session", "server-log", "server"}
)
# Steps that see the server's side.
SERVER_STEPS = frozenset({"server-log", "server"})


def _facts(findings: list[Finding], base: dict[str, Any], chosen: Finding) -> dict[str, Any]:
    facts = dict(base)
    for finding in [*findings, chosen]:  # the chosen finding's facts win
        facts.update(
            {
                k: v
                for k, v in finding.data.items()
                if isinstance(v, str | int) and k not in ("transcript", "confidence")
            }
        )
    return facts


def _login_works(findings: list[Finding]) -> bool:
    real = [f for f in findings if f.step == "ssh"]
    if real:
        return real[-1].status == "pass"
    return any(f.step == "session" and f.status == "pass" for f in findings)


def decide(
    findings: list[Finding], *, lang: str = "en", facts: dict[str, Any] | None = None
) -> tuple[Literal["ok", "failed"], RootCause | None]:
    """The verdict and root cause for a list of findings (see the module docstring)."""
    if _login_works(findings):
        return "ok", None
    failing = [f for f in findings if f.status == "fail" and f.cause_id and not _guess(f)]
    low = not failing
    if low:
        failing = [f for f in findings if f.status in ("warn", "fail") and f.cause_id]
    if not failing:
        return "failed", None
    client_view = {f.cause_id for f in findings if f.step == "ssh" and f.cause_id}

    def rank(item: tuple[int, Finding]) -> tuple[int, int, int]:
        order, finding = item
        cause = finding.cause_id or ""
        return (catalog.phase_rank(cause), 0 if cause in client_view else 1, order)

    # Server evidence refines what the client sees; it does not compete with it.
    client_side = [f for f in failing if f.step not in SERVER_STEPS] or failing
    _, chosen = min(enumerate(client_side), key=rank)
    seen_by_client = chosen
    explains = [f for f in failing if f.step in SERVER_STEPS and _refines(f, chosen.cause_id)]
    if explains:
        # The earliest in the login's order: a locked account before its shell.
        chosen = min(explains, key=lambda f: catalog.phase_rank(f.cause_id or ""))
    cause = chosen.cause_id or ""
    agreeing = [f for f in failing if f.cause_id == cause]
    if low:
        confidence = "low"
    elif (cause in client_view and len(agreeing) > 1) or chosen.step in DIRECT_STEPS:
        confidence = "high"
    else:
        confidence = "medium"
    root = catalog.render(
        cause, lang, confidence=confidence, **_facts(findings, facts or {}, chosen)
    )
    root.evidence = _chain(findings, chosen, cause, client_view)
    if chosen is not seen_by_client:
        root.evidence.append(
            f"the client alone sees {seen_by_client.cause_id}: {seen_by_client.summary}"
        )
    return "failed", root


def _guess(finding: Finding) -> bool:
    """The real ssh failed, and its transcript can only guess why (see rule 5)."""
    return finding.step == "ssh" and finding.data.get("confidence") == "low"


def _refines(server: Finding, client_cause: str | None) -> bool:
    """Whether the server-side finding names what the client saw as ``client_cause``
    (rule 4): by causes.toml's refines, or as proof (a failure, not a warning) of the same
    phase."""
    cause = server.cause_id
    if not cause or not client_cause or cause == client_cause:
        return False
    if client_cause in catalog.get(cause).refines:
        return True
    phase = catalog.get(cause).phase
    return server.status == "fail" and phase != "auth" and phase == catalog.get(client_cause).phase


def _chain(
    findings: list[Finding], chosen: Finding, cause: str, client_view: set[str | None]
) -> list[str]:
    """The evidence: the deciding finding, who agrees, and where the real client differs."""
    chain = [f"{chosen.step}: {chosen.summary}", *chosen.evidence]
    for finding in findings:
        if finding is chosen or finding.cause_id is None:
            continue
        if finding.cause_id == cause:
            chain.append(f"{finding.step} agrees: {finding.summary}")
        elif finding.step == "ssh" and finding.status == "fail":
            chain.append(f"the real ssh shows {finding.cause_id}: {finding.summary}")
    if cause not in client_view and not any(f.step == "ssh" for f in findings):
        chain.append("the real ssh did not run")
    return list(dict.fromkeys(chain))  # each connection of the diagnosis logs the same line
