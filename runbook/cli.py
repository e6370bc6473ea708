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

from runbook.errors import RunbookError


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


# -- lab ---------------------------------------------------------------------------------
_LAB_DIR = click.option(
    "--dir",
    "lab_dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Lab directory (default: $RUNBOOK_LAB_DIR or /var/tmp/ssh-runbook-lab).",
)


@cli.group(cls=_Group)
def lab() -> None:
    """The built-in lab: real OpenSSH servers with injected faults, on loopback."""


@lab.command("list")
def lab_list() -> None:
    """List the scenarios and the cause each one produces."""
    from runbook.lab import SCENARIOS

    rows = [(s.name, s.expected or "-", s.summary) for s in SCENARIOS]
    click.echo(_table(("scenario", "expected cause", "what is wrong"), rows))


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

    Example: runbook lab exec hostkey-changed -- ssh -v hostkey-changed
    """
    from runbook import lab as lab_mod

    running = lab_mod.load(lab_dir)
    if scenario not in running.targets:
        raise RunbookError(
            f"scenario {scenario!r} is not in this lab", hint="see `runbook lab status`"
        )
    wrapped = running.client_argv(scenario, argv)
    os.execvpe(wrapped[0], wrapped, running.client_env(scenario))


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
        _table(("scenario", "expected", "client alone sees", "target", "netns", "state"), rows)
    )


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=False)]
    lines = [
        "  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        for row in (header, *rows)
    ]
    return "\n".join(lines)


# -- demo --------------------------------------------------------------------------------
@cli.command()
@_LAB_DIR
def demo(lab_dir: Path | None) -> None:
    """Start the lab, show what goes wrong on every target, stop the lab."""
    from runbook.demo import run_demo

    run_demo(lab_dir)


def main() -> None:
    cli()
