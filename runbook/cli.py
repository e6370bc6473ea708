"""The ``runbook`` command line (contract: ../shared/CONTRACT.md).

Every command turns a :class:`~runbook.errors.RunbookError` into one line on stderr and
exit code 2, never a traceback.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from runbook.errors import BadInput, RunbookError
from runbook.tables import table


def _one_line_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except RunbookError as err:
            click.echo(f"runbook: {err.one_line()}", err=True)
            sys.exit(err.exit_code)

    return wrapper


class _Group(click.Group):
    """A click group whose usage errors also exit 2 with one line (click's own default)."""

    def invoke(self, ctx: click.Context) -> Any:
        return _one_line_errors(super().invoke)(ctx)


@click.group(cls=_Group)
@click.version_option(package_name="ssh-runbook")
def cli() -> None:
    """Find out why ssh fails, prove it, and say how to fix it."""


# -- diagnose ---------------------------------------------------------------------------
_STATUS_MARK = {"pass": "ok", "fail": "FAIL", "warn": "warn", "skip": "skip", "info": "info"}


@cli.command()
@click.argument("target")
@click.option("-p", "port", type=int, help="Port to connect to (as ssh -p).")
@click.option("-l", "user", help="User to log in as (as ssh -l).")
@click.option("-i", "identities", multiple=True, help="Identity file (as ssh -i); repeatable.")
@click.option("-F", "ssh_config", help="ssh_config file (as ssh -F).")
@click.option("-J", "jump", help="Jump host (as ssh -J).")
@click.option("--known-hosts", help="known_hosts file to check against.")
@click.option("--password-env", help="Name of an environment variable holding the password.")
@click.option(
    "--auth-log",
    "auth_logs",
    multiple=True,
    help="The server's sshd log (auth.log, secure, journal JSON, .gz); repeatable.",
)
@click.option(
    "--server",
    help="Read-only checks on the server: local, nsenter:PID (a container's or the lab's "
    "sshd) or USER@HOST[:PORT] (an account that still logs in).",
)
@click.option(
    "--server-root",
    help="A server's root filesystem mounted here: file-based checks when nobody logs in.",
)
@click.option(
    "--timeout", type=float, default=10.0, show_default=True, help="Seconds for each network step."
)
@click.option("--lang", type=click.Choice(["en", "ja"]), default="en", show_default=True)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=Path("reports"),
    show_default=True,
    help="Directory for the incident folder.",
)
@click.option(
    "--no-report", is_flag=True, help="Write nothing, only print (no incident folder, no notebook)."
)
@click.option("--json", "as_json", is_flag=True, help="Print the contract's JSON.")
def diagnose(
    target: str,
    port: int | None,
    user: str | None,
    identities: tuple[str, ...],
    ssh_config: str | None,
    jump: str | None,
    known_hosts: str | None,
    password_env: str | None,
    auth_logs: tuple[str, ...],
    server: str | None,
    server_root: str | None,
    timeout: float,
    lang: str,
    out: Path,
    no_report: bool,
    as_json: bool,
) -> None:
    """Find why `ssh TARGET` fails, with evidence and the exact fix.

    Exit status: 0 the login works, 1 it fails (a verdict was reached), 2 bad input.
    """
    import json

    from runbook.diagnose import diagnose as run
    from runbook.report import render_report, write_findings

    result = run(
        target,
        port=port,
        user=user,
        identities=identities,
        ssh_config=ssh_config,
        jump=jump,
        known_hosts=known_hosts,
        password_env=password_env,
        auth_logs=auth_logs,
        server=server,
        server_root=server_root,
        timeout=timeout,
        lang=lang,
    )
    folder = None if no_report else write_findings(result, out)
    report_error = render_report(folder, result, lang=lang) if folder else None
    if report_error:
        click.echo(f"runbook: the report notebook stopped at a step: {report_error}", err=True)
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2, ensure_ascii=False))
    else:
        _print_diagnosis(result)
        if folder is not None:
            click.echo(f"\nreport: {folder}/")
    sys.exit(0 if result.verdict == "ok" else 1)


def _print_diagnosis(result: Any) -> None:
    rows = [(f.step, _STATUS_MARK[f.status], f.summary[:120]) for f in result.findings]
    t = result.target
    click.echo(f"{t.user}@{t.hostname} port {t.port} ({t.alias})")
    click.echo(table(("step", "status", "summary"), rows))
    click.echo("")
    rc = result.root_cause
    if rc is None:
        click.echo("verdict: ok" if result.verdict == "ok" else "verdict: failed (cause unknown)")
        return
    click.echo(f"verdict: failed: {rc.id} ({rc.confidence} confidence)")
    click.echo(f"  {rc.title}")
    click.echo(f"  {rc.explanation}")
    click.echo("evidence:")
    for line in rc.evidence[:8]:
        click.echo(f"  {line[:160]}")
    click.echo("fix:")
    for step in rc.fix:
        click.echo(f"  {step}")


# -- explain -----------------------------------------------------------------------------
@cli.command()
@click.argument("source", default="-")
@click.option("--lang", type=click.Choice(["en", "ja"]), default="en", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the contract's JSON.")
def explain(source: str, lang: str, as_json: bool) -> None:
    """Read an `ssh -v/-vv/-vvv` transcript (FILE, or - for stdin) and name the cause.

    Exit status: 0 the transcript shows a working login, 1 a failure was explained or
    nothing decisive was found, 2 unreadable input or no ssh output in it.
    """
    import json

    from runbook.explain import explain_text, read_source

    result = explain_text(read_source(source), lang=lang)
    if as_json:
        click.echo(json.dumps(result, indent=2, ensure_ascii=False))
    else:
        _print_explanation(result)
    sys.exit(0 if result["verdict"] == "ok" else 1)


def _print_explanation(result: dict[str, Any]) -> None:
    versions = [
        f"client {result['client_version'] or '?'}",
        f"server {result['server_version'] or '?'}",
    ]
    click.echo(", ".join(versions))
    rows = [
        (p["name"], p["status"], ",".join(str(n) for n in p["lines"][:6])) for p in result["phases"]
    ]
    if rows:
        click.echo(table(("phase", "status", "lines"), rows))
    rc = result["root_cause"]
    click.echo("")
    if rc is None:
        click.echo(f"verdict: {result['verdict']}")
        if result.get("note"):  # what a working login's transcript shows besides
            click.echo(f"  {result['note']}")
        final = result["details"].get("final_error")
        if final:  # a failure no cause of the catalog explains: the line that says it
            click.echo(f"  no known cause fits; the last error: {final}")
        return
    click.echo(f"verdict: failed: {rc['id']} ({rc['confidence']} confidence)")
    click.echo(f"  {rc['title']}")
    click.echo(f"  {rc['explanation']}")
    click.echo("decisive lines:")
    for line in rc["evidence"]:
        click.echo(f"  {line}")
    click.echo("fix:")
    for step in rc["fix"]:
        click.echo(f"  {step}")


# -- lab ---------------------------------------------------------------------------------
_LAB_DIR = click.option(
    "--dir",
    "lab_dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Lab directory (default: $RUNBOOK_LAB_DIR or /var/tmp/ssh-runbook-lab).",
)


# -- batch ------------------------------------------------------------------------------
@cli.command()
@click.argument("inventory")
@click.option("--concurrency", type=int, default=8, show_default=True, help="Targets at a time.")
@click.option(
    "--timeout",
    type=float,
    default=10.0,
    show_default=True,
    help="Seconds for each network step of each target.",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=Path("reports/batch"),
    show_default=True,
    help="summary.csv, index.html and the incident reports.",
)
@click.option(
    "--reports",
    type=click.Choice(["failed", "all", "none"]),
    default="failed",
    show_default=True,
    help="Which targets get an incident report.",
)
@click.option("--dask", "dask_address", help="A dask.distributed scheduler (tcp://HOST:8786).")
@click.option("--force", is_flag=True, help="Diagnose again targets a previous run finished.")
@click.option("--lang", type=click.Choice(["en", "ja"]), default="en", show_default=True)
def batch(
    inventory: str,
    concurrency: int,
    timeout: float,
    out: Path,
    reports: str,
    dask_address: str | None,
    force: bool,
    lang: str,
) -> None:
    """Triage every target of an inventory (CSV, ssh_config, Ansible, user@host list).

    Exit status: 0 every target logs in, 1 some fail, 2 bad input, 130 interrupted.
    """
    from runbook.batch import run_batch
    from runbook.inventory import read_inventory

    if timeout <= 0:
        raise RunbookError(f"timeout {timeout} is not positive", hint="give --timeout seconds > 0")
    targets, bad = read_inventory(inventory)
    for line in bad:
        click.echo(f"runbook: skipped {line}", err=True)
    result = run_batch(
        targets,
        out=out,
        concurrency=concurrency,
        timeout=timeout,
        reports=reports,
        force=force,
        lang=lang,
        dask=dask_address,
        bad_lines=bad,
        progress=sys.stderr.isatty(),
    )  # type: ignore[arg-type]
    rows = [
        (r["target"], r["verdict"], r["cause_id"] or "-", "yes" if r["report"] else "")
        for r in result.rows
    ]
    click.echo(table(("target", "verdict", "cause", "report"), rows))
    total = len(result.rows)
    click.echo(
        f"\n{total} target(s): {total - result.failed} ok, {result.failed} "
        f"failing" + "".join(f"; {n} {c}" for c, n in result.cause_counts())
    )
    click.echo(f"summary: {out}/summary.csv, dashboard: {out}/index.html")
    if result.interrupted:
        click.echo("runbook: interrupted; the summary shows what finished", err=True)
        sys.exit(130)
    sys.exit(1 if result.failed else 0)


# -- fix --------------------------------------------------------------------------------
@cli.command()
@click.option(
    "--from",
    "source",
    required=True,
    help="A diagnose run's incident folder, or its findings.json.",
)
@click.option("--apply", "do_apply", is_flag=True, help="Carry the plan out (default: show it).")
@click.option(
    "--accept-hostkey",
    help="Trust the server's new key only if it has this "
    "fingerprint (SHA256:...), checked out of band.",
)
@click.option("--server", help="Where server-side fixes run: local, nsenter:PID or USER@HOST.")
def fix(source: str, do_apply: bool, accept_hostkey: str | None, server: str | None) -> None:
    """Show (and with --apply, carry out) the fix for a diagnosis, each change backed up.

    Exit status: 0 the new verdict is ok (or, without --apply, a plan was printed), 1 it
    still fails, 2 bad input.
    """
    from runbook import fix as fix_mod
    from runbook.hosts import host_for

    diagnosis = fix_mod.read_diagnosis(source)
    if accept_hostkey and not accept_hostkey.startswith("SHA256:"):
        raise RunbookError(
            f"--accept-hostkey {accept_hostkey!r} is not a SHA256: fingerprint",
            hint="copy it from ssh-keygen -lf on the server's console",
        )
    spec = server or diagnosis.parameters.get("server")
    host = host_for(spec) if spec else None
    steps = fix_mod.plan(diagnosis, accept_hostkey=accept_hostkey, server=host)
    cause = diagnosis.root_cause.id if diagnosis.root_cause else "none (the login works)"
    click.echo(f"cause: {cause}")
    if not steps:
        click.echo("no automatic fix for this cause; the report's fix commands say what to do")
        sys.exit(0 if diagnosis.verdict == "ok" else 1)
    for number, step in enumerate(steps, 1):
        click.echo(
            f"{number}. [{step.side}] {step.what}\n     {step.command}\n     why: {step.why}"
        )
    if not do_apply:
        click.echo("\ndry run: nothing changed (add --apply to carry it out)")
        return
    fix_mod.apply(steps, fix_mod.findings_file(source).parent, host)
    for number, step in enumerate(steps, 1):
        click.echo(
            f"{number}. {step.outcome}"
            + (f" (backup {', '.join(step.backups)})" if step.backups else "")
        )
    from runbook.diagnose import diagnose as run

    # The same flags as the diagnosis being fixed (its findings.json keeps them); the
    # server checks are not repeated.
    again = run(
        **{
            "target": diagnosis.target.alias,
            **diagnosis.parameters,
            "server": None,
            "server_root": None,
        }
    )
    new_cause = f": {again.root_cause.id}" if again.root_cause else ""
    click.echo(f"\ndiagnosed again: {again.verdict}{new_cause}")
    sys.exit(0 if again.verdict == "ok" else 1)


# -- logs -------------------------------------------------------------------------------
def _when(text: str | None) -> Any:
    """--since/--until: ISO-8601, or "2h" / "30m" / "7d" ago."""
    if text is None:
        return None
    from datetime import datetime, timedelta

    ago = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
    if text[:-1].isdigit() and text[-1] in ago:
        return datetime.now().astimezone() - timedelta(**{ago[text[-1]]: int(text[:-1])})
    try:
        stamp = datetime.fromisoformat(text)
    except ValueError:
        raise RunbookError(
            f"cannot read the time {text!r}", hint="give ISO-8601 (2026-11-28T10:00) or 2h, 30m, 7d"
        ) from None
    return stamp if stamp.tzinfo else stamp.astimezone()


@cli.command()
@click.argument("paths", nargs=-1)
@click.option("--since", help="Only events at or after this time (ISO-8601, or 2h, 30m, 7d ago).")
@click.option("--until", help="Only events at or before this time.")
@click.option("--journal", is_flag=True, help="Read the live journal of the ssh unit.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "csv", "jsonl"]),
    default="table",
    show_default=True,
)
def logs(
    paths: tuple[str, ...], since: str | None, until: str | None, journal: bool, fmt: str
) -> None:
    """sshd's events from auth.log / secure / journal files, .gz and directories of them."""
    import json

    from runbook import logs as logs_mod

    if not paths and not journal:
        raise RunbookError(
            "no log given", hint="give a path such as /var/log/auth.log, or --journal"
        )
    start, end = _when(since), _when(until)
    if journal:
        frame = logs_mod.read_journal(since=start, until=end)
        stats = frame.attrs["stats"]
        events = [logs_mod.LogEvent(**row) for row in _rows(frame)]
    else:
        stats = logs_mod.LogStats()
        events = list(logs_mod.iter_events(paths, since=start, until=end, stats=stats))
        if not (events or stats.sshd_unrecognised) and (stats.lines or stats.unreadable):
            garbage = [p for p in stats.files if not logs_mod.holds_log_lines(p)]
            if len(garbage) == len(stats.files):
                raise BadInput(
                    f"{', '.join(garbage)}: not a log ({stats.lines} lines, {stats.unreadable} "
                    "unreadable, none with a syslog, ISO or journal stamp)",
                    hint="give sshd's log: /var/log/auth.log, /var/log/secure, a "
                    "`journalctl -o json` export, or --journal",
                )
    if fmt == "jsonl":
        write = sys.stdout.write  # not click.echo per line: a million lines add up
        for event in events:
            write(json.dumps(event.to_dict(), ensure_ascii=False) + "\n")
    elif fmt == "csv":
        import csv

        writer = csv.DictWriter(sys.stdout, fieldnames=list(logs_mod.COLUMNS))
        writer.writeheader()
        for event in events:
            writer.writerow(event.to_dict())
    else:
        rows = [
            (
                e.time.strftime("%Y-%m-%d %H:%M:%S") if e.time else "-",
                e.event,
                e.outcome,
                e.user or "-",
                _client(e.ip, e.port),
                (e.method or e.reason or "")[:60],
            )
            for e in events
        ]
        click.echo(table(("time", "event", "outcome", "user", "client", "method/reason"), rows))
    click.echo(stats.summary(), err=True)


def _client(ip: str | None, port: int | None) -> str:
    """An address and port as ssh would write them ([2001:db8::1]:22, not 2001:db8::1:22)."""
    if not port:
        return ip or "-"
    return f"[{ip}]:{port}" if ip and ":" in ip else f"{ip}:{port}"


def _rows(frame: Any) -> list[dict[str, Any]]:
    import pandas as pd

    return [
        {
            k: (None if v is pd.NA or (isinstance(v, float) and v != v) else v)
            for k, v in row.items()
        }
        | {"time": row["time"].to_pydatetime() if not pd.isna(row["time"]) else None}
        for row in frame.to_dict("records")
    ]


@cli.group(cls=_Group)
def lab() -> None:
    """The built-in lab: real OpenSSH servers with injected faults, on loopback."""


@lab.command("list")
def lab_list() -> None:
    """List the scenarios and the cause each one produces."""
    from runbook.lab import SCENARIOS

    rows = [(s.name, s.expected or "-", s.summary) for s in SCENARIOS]
    click.echo(table(("scenario", "expected cause", "what is wrong"), rows))


@lab.command("up")
@click.argument("scenarios", nargs=-1)
@_LAB_DIR
def lab_up(scenarios: tuple[str, ...], lab_dir: Path | None) -> None:
    """Start the lab (every scenario, or the ones named)."""
    from runbook import lab as lab_mod

    started = lab_mod.up(scenarios or None, lab_dir)
    _print_status(started)


@lab.command("status")
@_LAB_DIR
def lab_status(lab_dir: Path | None) -> None:
    """Show every scenario's target, expected cause and state."""
    from runbook import lab as lab_mod

    _print_status(lab_mod.load(lab_dir))


@lab.command("down")
@_LAB_DIR
@click.option("--all", "everything", is_flag=True, help="Also remove labs whose directory is gone.")
def lab_down(lab_dir: Path | None, everything: bool) -> None:
    """Stop the lab: every process, namespace and temporary file."""
    from runbook import lab as lab_mod

    stopped = lab_mod.down(lab_dir)
    extra = lab_mod.down_all() if everything else 0
    click.echo("lab stopped" if stopped or extra else "no lab was running")


@lab.command("exec", context_settings={"ignore_unknown_options": True})
@click.argument("scenario")
@click.argument("argv", nargs=-1, required=True, type=click.UNPROCESSED)
@_LAB_DIR
def lab_exec(scenario: str, argv: tuple[str, ...], lab_dir: Path | None) -> None:
    """Run a command as SCENARIO's client (its home, keys and namespace).

    Examples: runbook lab exec hostkey-changed -- ssh -v hostkey-changed
              runbook lab exec locked -- runbook diagnose locked
    """
    import sysconfig

    from runbook import lab as lab_mod

    running = lab_mod.load(lab_dir)
    if scenario not in running.targets:
        raise RunbookError(
            f"scenario {scenario!r} is not in this lab", hint="see `runbook lab status`"
        )
    wrapped = running.client_argv(scenario, argv)
    env = running.client_env(scenario)
    # This very runbook is the client's too, its virtualenv activated or not (last on
    # PATH: the machine's ssh stays the one the client runs).
    env["PATH"] = f"{env.get('PATH', os.defpath)}:{sysconfig.get_path('scripts')}"
    os.execvpe(wrapped[0], wrapped, env)


def _print_status(running: Any) -> None:
    rows = []
    for t in running.targets.values():
        where = f"{t.user}@{t.host}:{t.port}" if t.state == "up" else "-"
        rows.append(
            (
                t.scenario,
                t.expected or "(ok)",
                t.client_sees or t.expected or "(ok)",
                where,
                t.netns or "-",
                t.state,
            )
        )
    click.echo(f"lab {running.id} in {running.dir}")
    click.echo(
        table(("scenario", "expected", "client alone sees", "target", "netns", "state"), rows)
    )


# -- demo --------------------------------------------------------------------------------
@cli.command()
@_LAB_DIR
def demo(lab_dir: Path | None) -> None:
    """Start the lab, show what goes wrong on every target, stop the lab."""
    from runbook.demo import run_demo

    run_demo(lab_dir)


def main() -> None:
    cli()
