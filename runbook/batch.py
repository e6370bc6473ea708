"""Fleet triage: every target of an inventory, a summary, and a report per failure.

Targets are diagnosed in-process with bounded concurrency (or on a dask.distributed
cluster with ``dask=ADDRESS``); each diagnosis is bounded by its own time-out, and one
target's crash is that target's "error" row, never the others' loss. The summary
(summary.csv and the index.html dashboard) is rewritten as targets finish, so Ctrl-C
leaves a consistent summary of what finished; a rerun skips targets already done unless
``force``.
"""

from __future__ import annotations

import contextlib
import csv
import html
import io
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from runbook import sshconfig
from runbook.diagnose import diagnose
from runbook.errors import BadInput
from runbook.findings import Diagnosis
from runbook.inventory import BadLine, InventoryTarget
from runbook.report import atomic_write

__all__ = ["COLUMNS", "BatchResult", "StartLine", "run_batch", "triage"]

COLUMNS = (
    "target",
    "hostname",
    "port",
    "user",
    "verdict",
    "cause_id",
    "duration_s",
    "report",
    "tags",
    "source",
    "error",
)
Reports = Literal["failed", "all", "none"]
# The summary and dashboard are rewritten at most this often while targets finish (and
# once at the end, or on Ctrl-C): drawing them after every target would cost more CPU
# than the triage of a big fleet.
SUMMARY_EVERY = 2.0


@dataclass
class BatchResult:
    """The rows of a batch run (one per target), and what could not run."""

    rows: list[dict[str, Any]]
    bad_lines: list[BadLine] = field(default_factory=list)
    interrupted: bool = False
    out: Path | None = None

    def frame(self):  # -> pd.DataFrame
        import pandas as pd

        return pd.DataFrame(self.rows, columns=list(COLUMNS))

    @property
    def failed(self) -> int:
        return sum(r["verdict"] != "ok" for r in self.rows)

    def cause_counts(self) -> list[tuple[str, int]]:
        """Failing targets per cause, most frequent first ("(error)" for crashed ones)."""
        return Counter(
            r["cause_id"] or "(error)" for r in self.rows if r["verdict"] != "ok"
        ).most_common()


def triage(
    target: InventoryTarget,
    timeout: float,
    lang: str = "en",
    start_line: StartLine | None = None,
) -> dict[str, Any]:
    """One target's diagnosis as a plain dict (the findings.json shape), or its crash.

    Top-level and picklable: it is what runs on a dask worker too. (diagnose is imported
    with this module, not here: 200 threads importing it at once queue on the import lock
    one GIL hand-off at a time, seconds for a fleet.)
    """
    started = time.monotonic()
    crossed = start_line.crossing() if start_line is not None else None
    try:
        result = diagnose(
            target.target,
            port=target.port,
            user=target.user,
            identities=target.identity_files,
            ssh_config=target.ssh_config,
            known_hosts=target.known_hosts,
            password_env=target.password_env,
            auth_logs=target.auth_logs,
            timeout=timeout,
            lang=lang,
            quick_ok=True,  # a fleet's healthy hosts cost one ssh login, not the probes
            started=crossed,
        )
    except Exception as err:  # one target's failure is its own row
        return {
            "error": f"{type(err).__name__}: {err}".splitlines()[0][:300],
            "duration_s": time.monotonic() - started,
        }
    finally:
        if crossed is not None:
            crossed()  # a target that failed before its ssh ran holds nobody back
    data = result.to_dict()
    ssh = [f for f in result.findings if f.step == "ssh" and f.data.get("transcript")]
    data["transcript"] = ssh[-1].data["transcript"] if ssh else None
    return data


class StartLine:
    """Where a fleet's first wave waits until every target of it has its ssh running.

    Each ssh start waits for a core that the logins already under way keep busy; the
    parsing and ``ssh -G`` of targets that ended at once (refused, logged in) would take
    the cores too, and the last black hole's connect, whose time-out the whole batch
    waits out, would start later still. Held here, that work overlaps the black holes'
    wait instead. Later targets (concurrency below the fleet's size) start one by one as
    others end, and pass at once; nobody waits longer than ``patience``.
    """

    def __init__(self, wave: int, patience: float) -> None:
        self._left = wave
        self._lock = threading.Lock()
        self._open = threading.Event()
        self._patience = patience
        if wave <= 0:
            self._open.set()

    def crossing(self) -> Callable[[], None]:
        """One target's crossing: count it (once, however often called), then wait."""
        done = False

        def cross() -> None:
            nonlocal done
            if done:
                return
            done = True
            with self._lock:
                self._left -= 1
                if self._left <= 0:
                    self._open.set()
            self._open.wait(self._patience)

        return cross


def _row(target: InventoryTarget, data: dict[str, Any], report: str = "") -> dict[str, Any]:
    if "error" in data:
        return {
            "target": target.key,
            "hostname": target.target,
            "port": target.port or "",
            "user": target.user or "",
            "verdict": "error",
            "cause_id": "",
            "duration_s": round(data["duration_s"], 3),
            "report": "",
            "tags": " ".join(target.tags),
            "source": target.source,
            "error": data["error"],
        }
    root = data.get("root_cause") or {}
    return {
        "target": target.key,
        "hostname": data["target"]["hostname"],
        "port": data["target"]["port"],
        "user": data["target"]["user"],
        "verdict": data["verdict"],
        "cause_id": root.get("id", ""),
        "duration_s": data["duration_s"],
        "report": report,
        "tags": " ".join(target.tags),
        "source": target.source,
        "error": "",
    }


def render(data: dict[str, Any], out: str, lang: str = "en") -> str:
    """The incident folder of one finished diagnosis (findings, transcript, notebook report).

    Top-level and picklable: report rendering can go to dask workers (shared ``out``).
    """
    from runbook.report import render_report, write_findings

    result = Diagnosis.from_dict(data)
    if data.get("transcript"):
        from runbook.findings import Finding

        result.findings.append(
            Finding(
                "ssh",
                "transcript",
                "info",
                "the real ssh's transcript",
                data={"transcript": data["transcript"]},
            )
        )
    folder = write_findings(result, Path(out))
    result.findings = [f for f in result.findings if f.check != "transcript"]
    render_report(folder, result, lang=lang, index=False)
    return str(folder)


def _previous(out: Path) -> dict[str, dict[str, Any]]:
    summary = out / "summary.csv"
    if not summary.is_file():
        return {}
    with summary.open(newline="") as handle:
        return {row["target"]: row for row in csv.DictReader(handle)}


def run_batch(
    targets: list[InventoryTarget],
    *,
    out: Path,
    concurrency: int = 8,
    timeout: float = 10.0,
    reports: Reports = "failed",
    force: bool = False,
    lang: str = "en",
    dask: str | None = None,
    bad_lines: Iterable[BadLine] = (),
    progress: bool = True,
) -> BatchResult:
    """Triage every target; write summary.csv, index.html and the incident reports."""
    if concurrency < 1:
        raise BadInput(
            f"concurrency {concurrency} is not positive", hint="give --concurrency 1 or more"
        )
    out = out.resolve()  # absolute: nothing may depend on the process's working directory
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise BadInput(
            f"cannot write to {out}: {err.strerror}", hint="give --out a writable directory"
        ) from err
    done = {} if force else _previous(out)
    keep = [done[t.key] for t in targets if t.key in done]
    todo = [t for t in targets if t.key not in done]
    result = BatchResult(rows=list(keep), bad_lines=list(bad_lines), out=out)
    if not dask:
        _presume(todo, timeout)
    run = _executors(dask, concurrency, reports != "none")
    bar = _bar(len(todo), progress)
    pending_reports: list[tuple[int, Future[str]]] = []
    futures: dict[Future[dict[str, Any]], InventoryTarget] = {}
    written = time.monotonic()
    try:
        # In-process, the first wave starts together (see StartLine); dask's workers don't.
        line = None if dask else StartLine(min(concurrency, len(todo)), timeout)
        futures = {run.submit(triage, t, timeout, lang, line): t for t in todo}
        run.start()
        _write_summary(result)  # what a previous run finished, while these run
        for future in run.completed(futures):
            target = futures[future]
            try:
                data = future.result()
            except Exception as err:  # a worker lost: that target's error row
                data = {"error": f"{type(err).__name__}: {err}", "duration_s": 0.0}
            row = _row(target, data)
            result.rows.append(row)
            wanted = reports == "all" or (reports == "failed" and row["verdict"] != "ok")
            if wanted and "error" not in data:
                pending_reports.append(
                    (len(result.rows) - 1, run.report(render, data, str(out), lang))
                )
            bar.update(1)
            if time.monotonic() - written >= SUMMARY_EVERY:
                _write_summary(result)
                written = time.monotonic()
        for index, report_future in pending_reports:
            try:
                result.rows[index]["report"] = report_future.result()
            except Exception as err:
                result.rows[index]["error"] = f"report: {type(err).__name__}: {err}"[:300]
    except KeyboardInterrupt:
        result.interrupted = True
        for future in futures:
            future.cancel()
    finally:
        bar.close()
        run.close()
        _write_summary(result)
    return result


def _presume(targets: list[InventoryTarget], timeout: float) -> None:
    """Ask once, before the threads start, what each configuration of the fleet gives its
    hosts (sshconfig.presume): each target's early ssh then starts without waiting."""
    for ssh_config, known_hosts in dict.fromkeys((t.ssh_config, t.known_hosts) for t in targets):
        with contextlib.suppress(BadInput):  # that target's own diagnosis says what is wrong
            sshconfig.presume(ssh_config, known_hosts, timeout)


@dataclass
class _Executors:
    """Where diagnoses and reports run: ``submit`` (diagnoses), ``report``, ``completed``
    (as_completed), ``start`` (once every diagnosis is submitted) and ``close``."""

    submit: Callable[..., Any]
    report: Callable[..., Any]
    completed: Callable[..., Any]
    start: Callable[[], None]
    close: Callable[[], None]


def _executors(dask: str | None, concurrency: int, reporting: bool) -> _Executors:
    """Executors on this machine, or on the dask cluster at ``dask``."""
    if dask:
        try:
            from distributed import Client
        except ImportError as err:
            raise BadInput(
                "dask.distributed is not installed", hint="pip install distributed"
            ) from err
        try:
            client = Client(dask, timeout="10s")
        except (OSError, TimeoutError) as err:
            raise BadInput(
                f"cannot reach the dask scheduler at {dask}: {err}",
                hint="give --dask tcp://HOST:8786 of a running scheduler",
            ) from err

        def submit(fn: Callable[..., Any], *args: Any) -> Future[Any]:
            return client.submit(fn, *args, pure=False)  # type: ignore[return-value]

        from distributed import as_completed as dask_completed

        return _Executors(submit, submit, dask_completed, lambda: None, client.close)
    if reporting:
        # Import what report threads import, here and once: a module half-imported by one
        # thread can break another that peeks at it (IPython, under papermill).
        import IPython  # noqa: F401
        import papermill  # noqa: F401

    pool = ThreadPoolExecutor(concurrency, thread_name_prefix="runbook-batch")
    # Each report starts a notebook kernel: a few at a time, whatever the concurrency.
    renderers = ThreadPoolExecutor(max(1, min(4, os.cpu_count() or 1)), thread_name_prefix="report")
    # Diagnoses wait at a gate until all are submitted: the pool starts a thread per
    # submission, and each start waits for the GIL, which running diagnoses hold in turn;
    # 200 targets then started over seconds, and the last black hole ended that much later.
    gate = threading.Event()

    def submit(fn: Callable[..., Any], *args: Any) -> Future[Any]:
        return pool.submit(_gated, gate, fn, *args)

    def close() -> None:
        gate.set()
        pool.shutdown(wait=False, cancel_futures=True)
        renderers.shutdown(wait=True, cancel_futures=True)

    return _Executors(submit, renderers.submit, as_completed, gate.set, close)


def _gated(gate: threading.Event, fn: Callable[..., Any], *args: Any) -> Any:
    gate.wait()
    return fn(*args)


def _bar(total: int, progress: bool):  # -> tqdm
    from tqdm import tqdm

    return tqdm(total=total, unit="host", desc="triage", disable=not progress, leave=False)


# -- summary.csv and the dashboard -----------------------------------------------------------


def _write_summary(result: BatchResult) -> None:
    if result.out is None:
        return
    # The csv module, not pandas: the summary is rewritten while targets run.
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(result.rows)
    atomic_write(result.out / "summary.csv", text.getvalue())
    atomic_write(result.out / "index.html", _dashboard(result))


def _dashboard(result: BatchResult) -> str:
    counts = result.cause_counts()
    most = counts[0][1] if counts else 1
    # The chart is the table's own bars (plain HTML: no plotting library, drawn in no time
    # however often the dashboard is rewritten).
    cause_rows = "".join(
        f"<tr><td>{html.escape(c)}</td><td>{n}</td><td class='chart'>"
        f"<div class='bar' style='width:{100 * n / most:.0f}%'></div></td></tr>"
        for c, n in counts
    )
    rows = []
    for row in result.rows:
        colour = "#1a7f37" if row["verdict"] == "ok" else "#cf222e"
        report = row.get("report") or ""
        link = (
            f"<a href='{html.escape(os.path.relpath(report, result.out))}/report.html'>report</a>"
            if report
            else ""
        )
        rows.append(
            "<tr>"
            + "".join(
                f"<td>{html.escape(str(row.get(c, '')))}</td>"
                for c in ("target", "hostname", "port", "user")
            )
            + f"<td style='color:{colour}'>{html.escape(str(row['verdict']))}</td>"
            f"<td>{html.escape(str(row['cause_id']))}</td><td>{row['duration_s']}</td>"
            f"<td>{link}</td><td>{html.escape(str(row.get('error', '')))}</td></tr>"
        )
    state = " (interrupted: the rows show what finished)" if result.interrupted else ""
    bad = "".join(f"<li>{html.escape(str(b))}</li>" for b in result.bad_lines)
    return (
        "<!doctype html><meta charset='utf-8'><title>ssh-runbook batch</title>"
        "<style>body{font-family:sans-serif}td,th{padding:3px 10px;text-align:left}"
        ".chart{width:24em}.bar{background:#cf222e;height:0.9em}</style>"
        f"<h1>ssh-runbook batch{html.escape(state)}</h1>"
        f"<p>{len(result.rows)} target(s): {len(result.rows) - result.failed} ok, "
        f"{result.failed} failing</p>"
        f"<h2>Causes</h2><table><tr><th>cause</th><th>targets</th><th></th></tr>{cause_rows}"
        "</table>"
        + (f"<h2>Inventory lines not run</h2><ul>{bad}</ul>" if bad else "")
        + "<h2>Targets</h2><table><tr><th>target</th><th>hostname</th><th>port</th><th>user</th>"
        "<th>verdict</th><th>cause</th><th>seconds</th><th>report</th><th>error</th></tr>"
        + "".join(rows)
        + "</table>"
    )
