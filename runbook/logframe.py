"""sshd logs into one DataFrame, fast: byte ranges parsed on every core.

:func:`runbook.logs.read_sshd_log` lands here. A million-line auth.log is CPU work for
Python's regular expressions, so a big file is cut into line-aligned byte ranges that
worker processes parse at once, each returning a DataFrame piece. What one line of a
connection lends the next (its client's address, its failed state: see
``logs._Connections``) crosses those ranges, so it is done afterwards over the whole
frame with numpy; the result equals :func:`runbook.logs.iter_events`'s, event for event.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import threading
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, tzinfo
from itertools import pairwise
from operator import itemgetter
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
from pandas.api.types import union_categoricals

from runbook import logs
from runbook.logs import COLUMNS, MESSAGES, LogStats, Row

__all__ = ["read"]

# Below this many bytes, starting worker processes costs more than it saves.
INLINE_BYTES = 8 * 2**20
# A byte range per task: about a quarter of each worker's share, so that the cores finish
# together, within bounds that amortise a task and keep a worker's memory small.
MIN_RANGE, MAX_RANGE = 2**20, 8 * 2**20
# Workers by default, however many cores: past this the main process's share (merging the
# pieces, the carry-over) dominates, and a worker started clean (forkserver) costs its own
# ~100 MB of imports.
MAX_WORKERS = 8
_EVENTS = sorted({m.event for m in MESSAGES})
_OUTCOMES = ["success", "failure", "info"]


@dataclass(frozen=True)
class _Task:
    """One file's byte range (``end`` None: to the end), with what reading it needs."""

    path: str
    start: int
    end: int | None
    anchor: datetime
    zone: tzinfo
    journal: bool
    chunksize: int


def _frame(rows: list[Row], zone: tzinfo) -> pd.DataFrame:
    """Rows (a LogEvent's fields, in order) as the contract's columns with their dtypes."""
    data = {name: list(map(itemgetter(i), rows)) for i, name in enumerate(COLUMNS)}
    time = pd.to_datetime(pd.Series(data["time"], dtype=object), utc=True)
    frame = {"time": time.dt.tz_convert(zone)}
    for name in ("pid", "port"):
        values = np.array([-1 if v is None else v for v in data[name]], dtype="int64")
        frame[name] = pd.arrays.IntegerArray(values, values < 0)
    frame["event"] = pd.Categorical(data["event"], categories=_EVENTS)
    frame["outcome"] = pd.Categorical(data["outcome"], categories=_OUTCOMES)
    for name in ("process", "method"):
        frame[name] = _categorical(data[name])
    for name in ("host", "user", "ip", "reason", "raw"):
        # Straight to Arrow: pandas' own string constructor checks every value again.
        frame[name] = pd.arrays.ArrowStringArray(pa.array(data[name], type=pa.large_string()))
    return pd.DataFrame(frame, columns=list(COLUMNS))


def _categorical(values: list[str | None]) -> pd.Categorical:
    """A few distinct values (or None) as a Categorical, faster than pandas' own hashing."""
    index: dict[str, int] = {}
    codes = [-1 if v is None else index.setdefault(v, len(index)) for v in values]
    categories = pd.Index(list(index), dtype="str")  # also when empty, for union_categoricals
    return pd.Categorical.from_codes(np.array(codes, dtype="int32"), categories=categories)


def _concat(pieces: list[pd.DataFrame]) -> pd.DataFrame:
    """Pieces into one frame, categories merged (pandas alone would fall back to object)."""
    if len(pieces) == 1:
        return pieces[0]
    merged = {
        name: union_categoricals([p[name] for p in pieces], ignore_order=True)
        for name in ("process", "method")
    }
    frame = pd.concat(pieces, ignore_index=True)
    for name, values in merged.items():
        frame[name] = values
    return frame


def _collect(rows: Iterator[Row], zone: tzinfo, chunksize: int) -> pd.DataFrame:
    """Rows into one frame, built ``chunksize`` rows at a time."""
    pieces, chunk = [], []
    with _no_gc():
        for row in rows:
            chunk.append(row)
            if len(chunk) >= chunksize:
                pieces.append(_frame(chunk, zone))
                chunk = []
        if chunk or not pieces:
            pieces.append(_frame(chunk, zone))
    return _concat(pieces)


def _run(task: _Task) -> tuple[pd.DataFrame, LogStats]:
    """One byte range to a frame piece (in a worker process, or inline for small input)."""
    stats = LogStats()
    lines = logs._lines(Path(task.path), stats, task.start, task.end)
    rows = logs._scan(lines, task.anchor, task.zone, stats, journal=task.journal)
    return _collect(rows, task.zone, task.chunksize), stats


@contextmanager
def _no_gc() -> Iterator[None]:
    """Without the cyclic collector for a while: the rows hold no cycles, and the collector
    would otherwise walk the growing heap of them again and again (5% of a range's time)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _ranges(path: Path, size: int, step: int) -> list[tuple[int, int | None]]:
    """Line-aligned byte ranges of about ``step`` bytes (a gzip file is one range)."""
    if path.suffix == ".gz" or size <= step:
        return [(0, None)]
    cuts = [0]
    with path.open("rb") as handle:
        for offset in range(step, size, step):
            handle.seek(max(offset, cuts[-1]))
            handle.readline()  # to the start of the next line
            if handle.tell() >= size:
                break
            if handle.tell() > cuts[-1]:
                cuts.append(handle.tell())
    return [*pairwise(cuts), (cuts[-1], None)]


def _cores() -> int:
    """The cores this process may use, at most MAX_WORKERS."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return min(cores, MAX_WORKERS)


def _results(tasks: list[_Task], workers: int) -> Iterator[tuple[pd.DataFrame, LogStats]]:
    if workers <= 1 or len(tasks) <= 1:
        yield from map(_run, tasks)
        return
    # fork is the cheap start, but forking a process that runs other threads (a Jupyter
    # kernel) can inherit a held lock; forkserver starts clean (spawn where neither exists).
    methods = multiprocessing.get_all_start_methods()
    wanted = ["fork"] if threading.active_count() == 1 else []
    method = next(m for m in [*wanted, "forkserver", "spawn"] if m in methods)
    context = multiprocessing.get_context(method)
    with ProcessPoolExecutor(min(workers, len(tasks)), mp_context=context) as pool:
        yield from pool.map(_run, tasks)


def _latest(flags: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """For each position of key-sorted rows: the latest position at or before it, in the
    same group, whose flag is set (-1 for none)."""
    latest = np.maximum.accumulate(np.where(flags, np.arange(len(flags)), -1))
    return np.where(latest >= starts, latest, -1)


def _carry_over(frame: pd.DataFrame) -> None:
    """What ``logs._Connections`` does line by line, for the whole frame at once.

    Within one sshd process (host, pid): a line without the client's address takes the
    address and port of the latest line that had one, and the latest user such lines
    named; and the end of a connection that failed before anyone logged in is a failure.
    Done on the rows sorted by process (stable, so each process's lines keep their order),
    where "the latest such line" is a running maximum.
    """
    rows = np.flatnonzero(frame["pid"].notna().to_numpy())
    if not len(rows):
        return
    hosts = pd.factorize(frame["host"], use_na_sentinel=False)[0][rows].astype("int64")
    pids = frame["pid"].to_numpy(dtype="int64", na_value=0)[rows]
    key = hosts * (int(pids.max()) + 1) + pids  # one number per (host, pid)
    order = np.argsort(key, kind="stable")
    rows, key = rows[order], key[order]
    starts = np.maximum.accumulate(
        np.where(np.r_[True, key[1:] != key[:-1]], np.arange(len(key)), 0)
    )
    has_ip = frame["ip"].notna().to_numpy()[rows]
    source = _latest(has_ip, starts)
    fill = ~has_ip & (source >= 0)
    if fill.any():
        # Each filled value is taken from the row that lends it (Arrow's take: no copies
        # of the strings through Python objects).
        into, src = rows[fill], rows[source[fill]]
        lend = np.arange(len(frame))
        lend[into] = src
        frame["ip"] = frame["ip"].array.take(lend)
        own = into[~frame["port"].array[into].isna()]  # a line's own port stays
        lend[own] = own
        frame["port"] = frame["port"].array.take(lend)
        named = _latest(has_ip & frame["user"].notna().to_numpy()[rows], starts)[fill]
        lend = np.arange(len(frame))
        borrow = (named >= 0) & frame["user"].array[into].isna()
        lend[into[borrow]] = rows[named[borrow]]
        frame["user"] = frame["user"].array.take(lend)
    # The state each line finds: failed after a failure, cleared by a new connection or a
    # success; a connection's end found in the failed state concludes a failed attempt.
    event = frame["event"].cat.codes.to_numpy()[rows]
    outcome = frame["outcome"].cat.codes.to_numpy()[rows]
    failure, success = _OUTCOMES.index("failure"), _OUTCOMES.index("success")
    failed = outcome == failure
    marked = _latest(failed | (outcome == success) | (event == _EVENTS.index("connection")), starts)
    before = np.r_[-1, marked[:-1]]
    before = np.where(before >= starts, before, -1)
    ended = np.isin(event, [_EVENTS.index(e) for e in logs._PREAUTH_FAILURES])
    flip = ended & ~failed & (before >= 0) & failed[np.maximum(before, 0)]
    if flip.any():
        frame.loc[rows[flip], "outcome"] = "failure"


def _tasks(
    paths: Sequence[str | os.PathLike[str]],
    now: datetime | None,
    zone: tzinfo,
    chunksize: int,
    workers: int,
    stats: LogStats,
) -> tuple[list[_Task], int]:
    """The byte ranges to read, and their total size."""
    files = logs._files(paths)
    sizes = [path.stat().st_size for path in files]
    step = min(MAX_RANGE, max(MIN_RANGE, sum(sizes) // (4 * workers)))
    tasks = []
    for path, size in zip(files, sizes, strict=True):
        stats.files.append(str(path))
        anchor, journal = logs._anchor(path, now, zone), logs._is_journal(path)
        for start, end in _ranges(path, size, step):
            tasks.append(_Task(str(path), start, end, anchor, zone, journal, chunksize))
    return tasks, sum(sizes)


def read(
    paths: Sequence[str | os.PathLike[str]] = (),
    *,
    lines: Iterable[str] | None,
    since: datetime | None,
    until: datetime | None,
    zone: tzinfo,
    now: datetime | None,
    chunksize: int,
    workers: int | None,
) -> pd.DataFrame:
    """See :func:`runbook.logs.read_sshd_log`."""
    stats = LogStats()
    pieces = []
    if lines is not None:
        rows = logs._scan(lines, now or datetime.now(zone), zone, stats, count=True)
        pieces.append(_collect(rows, zone, chunksize))
    workers = workers or _cores()
    tasks, size = _tasks(paths, now, zone, chunksize, workers, stats)
    try:
        results = list(_results(tasks, workers if size > INLINE_BYTES else 1))
    except (OSError, BrokenProcessPool):
        # No worker processes here (a sandbox without fork, a worker killed for memory):
        # the same ranges on this process alone, slower but whole.
        results = [_run(task) for task in tasks]
    for piece, counted in results:
        pieces.append(piece)
        for name in ("lines", "sshd_unrecognised", "other", "unreadable"):
            setattr(stats, name, getattr(stats, name) + getattr(counted, name))
        stats.examples += counted.examples[: max(0, 5 - len(stats.examples))]
    frame = _concat(pieces) if pieces else _frame([], zone)
    _carry_over(frame)
    if since is not None or until is not None:
        time = frame["time"]
        keep = time.isna()
        keep |= (time >= since if since is not None else True) & (
            time <= until if until is not None else True
        )
        frame = frame[keep.to_numpy()].reset_index(drop=True)
    stats.events = len(frame)
    frame.attrs["stats"] = stats
    return frame
