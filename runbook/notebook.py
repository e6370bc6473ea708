"""What the runbook notebooks call: parameters checked, one diagnosis per incident, views.

The notebook's cells stay thin (``rb.incident(globals()).show("quick")``); this module
does the work. The diagnosis runs once per incident, however the cells are run (in order,
again, or out of order after the parameters cell): the report shows the very attempt the
verdict is based on, and a second round of probes would only add failures to the
server's counters. Given ``findings`` (a findings.json of ``runbook diagnose``), nothing
is probed at all: the report renders that run.
"""

from __future__ import annotations

import difflib
import html
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runbook import catalog
from runbook.errors import BadInput
from runbook.findings import Diagnosis, Finding

__all__ = [
    "FLEET_PARAMETERS",
    "LOG_PARAMETERS",
    "PARAMETERS",
    "Fleet",
    "Incident",
    "LogReview",
    "check_parameters",
    "fleet",
    "incident",
    "log_review",
]

# The ssh_triage notebook's parameters: name -> (type, default). Keep in step with its
# parameters cell (a test compares them).
PARAMETERS: dict[str, tuple[Any, Any]] = {
    "target": (str, ""),
    "port": (int | None, None),
    "user": (str | None, None),
    "identity_files": (list[str], []),
    "ssh_config": (str | None, None),
    "known_hosts": (str | None, None),
    "auth_logs": (list[str], []),
    "server": (str | None, None),
    "password_env": (str | None, None),
    "timeout": (float, 10.0),
    "lang": (str, "en"),
    "incident_id": (str, ""),
    "findings": (str, ""),
    "apply_fixes": (bool, False),
}
LOG_PARAMETERS: dict[str, tuple[Any, Any]] = {
    "log_paths": (list[str], []),
    "journal": (bool, False),
    "since": (str, ""),
    "until": (str, ""),
    "lang": (str, "en"),
}
# Names IPython itself puts into a notebook's globals.
_IPYTHON = {"In", "Out", "get_ipython", "exit", "quit", "open"}

# The sections of the seed article's flow, and the steps each shows.
SECTIONS: dict[str, tuple[str, ...]] = {
    "target": ("target",),
    "quick": ("proxy", "dns", "ping", "tcp", "other-ports"),
    "protocol": ("banner", "kex"),
    "hostkey": ("hostkey",),
    "client": ("client",),
    "auth": ("auth", "session"),
    "server": ("server-log", "server"),
}
_COLOURS = {
    "pass": "#1a7f37",
    "fail": "#cf222e",
    "warn": "#9a6700",
    "skip": "#6e7781",
    "info": "#0969da",
}
_LABELS = {
    "en": {
        "step": "step",
        "status": "status",
        "summary": "what was seen",
        "none": "Nothing was checked in this section for this target.",
        "ok": "The login works.",
        "failed": "The login fails",
        "fix": "Fix",
        "evidence": "Evidence",
        "confidence": "confidence",
    },
    "ja": {
        "step": "手順",
        "status": "結果",
        "summary": "確認した内容",
        "none": "この対象ではこの節の確認は行っていません。",
        "ok": "ログインできます。",
        "failed": "ログインできません",
        "fix": "対処",
        "evidence": "根拠",
        "confidence": "確信度",
    },
}


def _accepts(kind: Any, value: Any) -> bool:
    if kind is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    origin = typing.get_origin(kind)
    if origin in (types.UnionType, typing.Union):
        return any(_accepts(k, value) for k in typing.get_args(kind))
    if origin is list:
        (item,) = typing.get_args(kind)
        return isinstance(value, list | tuple) and all(_accepts(item, v) for v in value)
    if kind is type(None):
        return value is None
    return isinstance(value, kind)


def check_parameters(
    namespace: dict[str, Any], spec: dict[str, tuple[Any, Any]] | None = None
) -> dict[str, Any]:
    """Run right after the parameters: a misspelt parameter is an error naming the right
    spelling (papermill itself only warns), a mistyped one says what it should be."""
    spec = spec or PARAMETERS
    unknown = [
        name
        for name in namespace
        if not name.startswith("_")
        and name not in spec
        and name not in _IPYTHON
        and not isinstance(namespace[name], types.ModuleType | types.FunctionType | type)
    ]
    for name in unknown:
        close = difflib.get_close_matches(name, spec, n=1)
        hint = f": did you mean {close[0]!r}?" if close else f"; known: {', '.join(spec)}"
        raise BadInput(f"unknown parameter {name!r}{hint}")
    return _validate(namespace, spec)


def _validate(namespace: dict[str, Any], spec: dict[str, tuple[Any, Any]]) -> dict[str, Any]:
    """The known parameters' values, each of the right type (others are the user's own)."""
    values = {}
    for name, (kind, default) in spec.items():
        value = namespace.get(name, default)
        if not _accepts(kind, value):
            raise BadInput(f"parameter {name} = {value!r} is not {_type_name(kind)}")
        values[name] = value
    return values


def _type_name(kind: Any) -> str:
    return getattr(kind, "__name__", None) or str(kind).replace("typing.", "")


@dataclass
class Incident:
    """One incident: its parameters, its one diagnosis, and the views of it."""

    params: dict[str, Any]
    diagnosis: Diagnosis | None = None
    transcript: str | None = None
    errors: list[str] = field(default_factory=list)

    @property
    def lang(self) -> str:
        return self.params.get("lang") or "en"

    def run(self) -> Diagnosis:
        """The diagnosis: read from ``findings`` when given, else run once."""
        if self.diagnosis is not None:
            return self.diagnosis
        p = self.params
        if p["findings"]:
            path = Path(p["findings"])
            try:
                self.diagnosis = Diagnosis.from_dict(json.loads(path.read_text()))
            except (OSError, ValueError, KeyError, TypeError) as err:
                raise BadInput(
                    f"cannot read {path}: {err}",
                    hint="give the findings.json of a runbook diagnose run",
                ) from err
            saved = path.with_name("ssh-vvv.txt")
            self.transcript = saved.read_text(errors="replace") if saved.is_file() else None
            return self.diagnosis
        from runbook.diagnose import diagnose

        self.diagnosis = diagnose(
            p["target"],
            port=p["port"],
            user=p["user"],
            identities=p["identity_files"],
            ssh_config=p["ssh_config"],
            known_hosts=p["known_hosts"],
            password_env=p["password_env"],
            auth_logs=p["auth_logs"],
            server=p["server"],
            timeout=p["timeout"],
            lang=self.lang,
        )
        ssh = [f for f in self.diagnosis.findings if f.step == "ssh"]
        self.transcript = ssh[-1].data.get("transcript") if ssh else None
        return self.diagnosis

    # -- views -------------------------------------------------------------------------
    def header(self):  # -> IPython.display.HTML
        """One line: who, where, when, and the verdict in a word."""
        from IPython.display import HTML

        d = self.run()
        t = d.target
        colour = _COLOURS["pass"] if d.verdict == "ok" else _COLOURS["fail"]
        cause = f" · {d.root_cause.id}" if d.root_cause else ""
        ticket = f" · {self.params['incident_id']}" if self.params.get("incident_id") else ""
        return HTML(
            f"<p><b>{html.escape(f'{t.user}@{t.hostname}:{t.port}')}</b> "
            f"({html.escape(t.alias)}){html.escape(ticket)} · {html.escape(d.started_at)} · "
            f"<span style='color:{colour};font-weight:bold'>{html.escape(d.verdict)}"
            f"{html.escape(cause)}</span></p>"
        )

    def show(self, section: str):  # -> IPython.display.HTML
        """The findings of one section of the flow as a coloured table."""
        from IPython.display import HTML

        try:
            steps = SECTIONS[section]
            findings = [f for f in self.run().findings if f.step in steps]
            return HTML(_table(findings, self.lang))
        except Exception as err:  # a failing step is shown, never aborts the report
            return HTML(_failure(section, err))

    def ssh_transcript(self):  # -> IPython.display.HTML
        """The real ``ssh -vvv`` of this attempt, its decisive lines marked."""
        from IPython.display import HTML

        try:
            diagnosis = self.run()
            ssh = [f for f in diagnosis.findings if f.step == "ssh"]
            table = _table(ssh, self.lang)
            if not self.transcript:
                return HTML(table)
            from runbook.explain import explain_text, highlight_html

            return HTML(
                table
                + highlight_html(self.transcript, explain_text(self.transcript, lang=self.lang))
            )
        except Exception as err:
            return HTML(_failure("ssh", err))

    def verdict(self):  # -> IPython.display.HTML
        """The verdict card: the cause, why, the evidence chain and the fix commands."""
        from IPython.display import HTML

        try:
            return HTML(_card(self.run(), self.lang, self.params.get("incident_id", "")))
        except Exception as err:
            return HTML(_failure("verdict", err))

    def fix(self):  # -> IPython.display.HTML
        """The fix plan (runbook.fix); carried out, with backups, only when apply_fixes."""
        from IPython.display import HTML

        try:
            from runbook import fix as fix_mod

            diagnosis = self.run()
            steps = fix_mod.plan(diagnosis)
            if not steps:
                return HTML(
                    "<p><i>No automatic fix for this cause: see the fix commands above.</i></p>"
                )
            if self.params.get("apply_fixes"):
                folder = (
                    Path(self.params["findings"]).parent
                    if self.params["findings"]
                    else (Path.cwd())
                )
                fix_mod.apply(steps, folder)
            rows = "".join(
                f"<tr><td>{html.escape(s.what)}</td><td><code>{html.escape(s.command)}</code></td>"
                f"<td>{html.escape(s.why)}</td><td>{html.escape(s.outcome)}</td></tr>"
                for s in steps
            )
            return HTML(
                "<table><tr><th>change</th><th>command</th><th>why</th><th>outcome</th>"
                f"</tr>{rows}</table>"
            )
        except Exception as err:
            return HTML(_failure("fix", err))

    def tips(self):  # -> IPython.display.Markdown
        """The article's tips for this target: a Host block, ssh-copy-id, ProxyJump."""
        from IPython.display import Markdown

        try:
            return Markdown(_tips(self.run(), self.params))
        except Exception as err:
            return Markdown(f"tips unavailable: {err}")


_INCIDENTS: dict[str, Incident] = {}


def incident(namespace: dict[str, Any]) -> Incident:
    """The notebook's incident, validated from its globals; the same one on every call
    with the same parameters (so the server is probed once)."""
    params = _validate(namespace, PARAMETERS)
    if not params["target"] and not params["findings"]:
        raise BadInput("no target", hint="set target = 'user@host' (or findings = a findings.json)")
    key = json.dumps(params, sort_keys=True, default=str)
    return _INCIDENTS.setdefault(key, Incident(params))


# -- HTML -----------------------------------------------------------------------------------


def _table(findings: list[Finding], lang: str) -> str:
    labels = _LABELS.get(lang, _LABELS["en"])
    if not findings:
        return f"<p><i>{html.escape(labels['none'])}</i></p>"
    rows = []
    for f in findings:
        colour = _COLOURS.get(f.status, "#000")
        cause = f" <code>{html.escape(f.cause_id)}</code>" if f.cause_id else ""
        evidence = "".join(
            f"<div style='color:#57606a;font-size:90%'>{html.escape(e)}</div>"
            for e in f.evidence[:6]
        )
        rows.append(
            f"<tr><td>{html.escape(f.step)}</td>"
            f"<td style='color:white;background:{colour};text-align:center;font-weight:bold'>"
            f"{html.escape(f.status)}</td><td>{html.escape(f.summary)}{cause}{evidence}</td></tr>"
        )
    head = "".join(
        f"<th style='text-align:left'>{labels[k]}</th>" for k in ("step", "status", "summary")
    )
    return f"<table style='border-collapse:collapse'><tr>{head}</tr>{''.join(rows)}</table>"


def _card(diagnosis: Diagnosis, lang: str, incident_id: str) -> str:
    labels = _LABELS.get(lang, _LABELS["en"])
    target = diagnosis.target
    where = html.escape(f"{target.user}@{target.hostname}:{target.port} ({target.alias})")
    ticket = f" · {html.escape(incident_id)}" if incident_id else ""
    if diagnosis.verdict == "ok" or diagnosis.root_cause is None:
        colour, title, body = (
            "#1a7f37",
            labels["ok"] if diagnosis.verdict == "ok" else (labels["failed"]),
            "",
        )
    else:
        root = diagnosis.root_cause
        colour = "#cf222e"
        title = f"{labels['failed']}: {html.escape(root.title)}"
        evidence = "".join(f"<li>{html.escape(e)}</li>" for e in root.evidence)
        fix = html.escape("\n".join(root.fix))
        body = (
            f"<p>{html.escape(root.explanation)}</p>"
            f"<p><code>{html.escape(root.id)}</code> · {labels['confidence']}: "
            f"{html.escape(root.confidence)}</p>"
            f"<b>{labels['evidence']}</b><ul>{evidence}</ul>"
            f"<b>{labels['fix']}</b><pre style='background:#f6f8fa;padding:8px'>{fix}</pre>"
        )
    return (
        f"<div style='border-left:8px solid {colour};padding:8px 16px;margin:8px 0'>"
        f"<div style='color:#57606a'>{where}{ticket} · {html.escape(diagnosis.started_at)}</div>"
        f"<h3 style='color:{colour};margin:4px 0'>{title}</h3>{body}</div>"
    )


def _failure(section: str, err: Exception) -> str:
    return (
        f"<div style='border-left:8px solid #cf222e;padding:8px'><b>{html.escape(section)}"
        f"</b>: this step failed: {html.escape(f'{type(err).__name__}: {err}')}</div>"
    )


def _tips(diagnosis: Diagnosis, params: dict[str, Any]) -> str:
    t = diagnosis.target
    identity = (params.get("identity_files") or ["~/.ssh/id_ed25519"])[0]
    port = f" -p {t.port}" if t.port != 22 else ""
    lines = [
        "A Host block in `~/.ssh/config`, so that `ssh " + t.alias + "` is all you type:",
        "```",
        f"Host {t.alias}",
        f"    HostName {t.hostname}",
        f"    User {t.user}",
        f"    Port {t.port}",
        f"    IdentityFile {identity}",
        "    IdentitiesOnly yes",
        "```",
        "Install your public key once (ssh-copy-id appends it to authorized_keys with the right "
        "modes):",
        "```",
        f"ssh-copy-id -i {identity}.pub{port} {t.user}@{t.hostname}",
        "```",
        "Through a bastion, let ssh do the hop (`ProxyJump`), instead of logging in twice:",
        "```",
        f"ssh -J admin@bastion.example.com{port} {t.user}@{t.hostname}",
        "```",
    ]
    if diagnosis.root_cause:
        lines.append(f"See also the cause's fix above ({catalog.get(diagnosis.root_cause.id).id}).")
    return "\n".join(lines)


# -- the auth log review notebook --------------------------------------------------------------


@dataclass
class LogReview:
    """The auth_log_review notebook's data: the events, and the summaries as tables/charts."""

    params: dict[str, Any]
    frame: Any = None

    def load(self):  # -> pd.DataFrame
        if self.frame is None:
            from runbook import logs
            from runbook.cli import _when

            since, until = _when(self.params["since"] or None), _when(self.params["until"] or None)
            if self.params["journal"]:
                self.frame = logs.read_journal(since=since, until=until)
            else:
                self.frame = logs.read_sshd_log(self.params["log_paths"], since=since, until=until)
        return self.frame

    def summary(self):  # -> IPython.display.HTML
        from IPython.display import HTML

        frame = self.load()
        stats = frame.attrs.get("stats")
        failed = int((frame["outcome"] == "failure").sum())
        accepted = int((frame["event"] == "accepted").sum())
        return HTML(
            f"<p>{html.escape(stats.summary() if stats else '')}</p>"
            f"<p><b>{failed}</b> failures, <b>{accepted}</b> accepted logins</p>"
        )

    def failures(self, by: str):  # -> pd.DataFrame
        from runbook import logs

        return logs.failures_by(self.load(), by).head(15).to_frame("failures")

    def brute_force(self, min_failures: int = 10):
        from runbook import logs

        return logs.brute_force_sources(self.load(), min_failures=min_failures)

    def accepted_after_failures(self, min_failures: int = 5):
        from runbook import logs

        return logs.accepted_after_failures(self.load(), min_failures=min_failures)

    def lockouts(self):
        frame = self.load()
        events = ("account_locked", "max_auth_tries", "too_many_failures")
        return frame[frame["event"].isin(events)][["time", "event", "user", "ip", "reason"]]

    def plot(self, freq: str = "1h"):
        """Failures and successes over time (matplotlib, embedded in the report)."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        from runbook import logs

        series = logs.timeseries(self.load(), freq)
        figure, axes = plt.subplots(figsize=(9, 3))
        if series.empty:
            axes.text(0.5, 0.5, "no timed events", ha="center", va="center")
        else:
            series.plot(ax=axes, drawstyle="steps-post")
        axes.set_ylabel(f"events per {freq}")
        figure.tight_layout()
        return figure


_REVIEWS: dict[str, LogReview] = {}


def log_review(namespace: dict[str, Any]) -> LogReview:
    """The auth_log_review notebook's data, validated from its globals, read once."""
    params = _validate(namespace, LOG_PARAMETERS)
    if not params["log_paths"] and not params["journal"]:
        raise BadInput("no log", hint="set log_paths = ['/var/log/auth.log'] or journal = True")
    key = json.dumps(params, sort_keys=True)
    return _REVIEWS.setdefault(key, LogReview(params))


# -- the fleet triage notebook ----------------------------------------------------------------

FLEET_PARAMETERS: dict[str, tuple[Any, Any]] = {
    "inventory": (str, ""),
    "concurrency": (int, 8),
    "timeout": (float, 10.0),
    "out": (str, "reports/fleet"),
    "reports": (str, "failed"),
    "lang": (str, "en"),
}


@dataclass
class Fleet:
    """The fleet_triage notebook's run: one batch, then its views."""

    params: dict[str, Any]
    result: Any = None

    def run(self):  # -> runbook.batch.BatchResult
        if self.result is None:
            from runbook.batch import run_batch
            from runbook.inventory import read_inventory

            targets, bad = read_inventory(self.params["inventory"])
            self.result = run_batch(
                targets,
                out=Path(self.params["out"]),
                concurrency=self.params["concurrency"],
                timeout=self.params["timeout"],
                reports=self.params["reports"],
                lang=self.params["lang"],
                bad_lines=bad,
                progress=True,
            )
        return self.result

    def summary(self):  # -> pd.DataFrame
        return self.run().frame()[["target", "verdict", "cause_id", "duration_s", "report"]]

    def causes(self):
        """Targets per cause, as a bar chart."""
        import matplotlib.pyplot as plt

        frame = self.run().frame()
        counts = frame[frame["verdict"] != "ok"]["cause_id"].replace("", "(error)").value_counts()
        figure, axes = plt.subplots(figsize=(8, 0.4 * max(len(counts), 1) + 1))
        if counts.empty:
            axes.text(0.5, 0.5, "every target logs in", ha="center", va="center")
        else:
            counts.sort_values().plot.barh(ax=axes, color="#cf222e")
        axes.set_xlabel("targets")
        figure.tight_layout()
        return figure

    def skipped(self) -> list[str]:
        return [str(b) for b in self.run().bad_lines]


_FLEETS: dict[str, Fleet] = {}


def fleet(namespace: dict[str, Any]) -> Fleet:
    """The fleet_triage notebook's batch, validated from its globals, run once."""
    params = _validate(namespace, FLEET_PARAMETERS)
    if not params["inventory"]:
        raise BadInput("no inventory", hint="set inventory = 'hosts.csv'")
    if params["reports"] not in ("failed", "all", "none"):
        raise BadInput(f"reports = {params['reports']!r}", hint="failed, all or none")
    key = json.dumps(params, sort_keys=True)
    return _FLEETS.setdefault(key, Fleet(params))
