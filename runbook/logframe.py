"""sshd logs into one DataFrame, fast: the lines matched a batch at a time, outside the GIL.

:func:`runbook.logs.read_sshd_log` lands here. A million-line auth.log is too much for
Python's regular expressions a line at a time, so a text file is read in batches of lines,
two batches at once on two cores, by the native scanner (runbook/_scan.c): PCRE2's JIT
runs the sshd header patterns whose reading is certain, then the very patterns of
:data:`runbook.logs.MESSAGES`, tried in the order ``logs._message`` tries them; PCRE2
backtracks as ``re`` does, so it finds the same match and the same groups. The fields
come back as Arrow string views into the batch, and polars derives the columns. Where the
scanner was not built (no C compiler at install), polars' own regex reads the lines the
same way, column-wise (the patterns spelled in the dialect Python's ``re`` and Rust's
``regex`` read alike: ASCII classes, no look-arounds), about twice as slowly. Only lines
whose header neither can vouch for (a bracketed process name, a kernel prefix, an RFC 5424
stamp Python alone reads) go through ``logs._parse`` one by one. Journal exports are
first made the lines ``logs._journal_line`` makes of them (column-wise for plain records,
by that function for the others), then read the same way. What one line of a connection
lends the next (its client's address, its failed state: see ``logs._Connections``) is
done afterwards over the whole frame with numpy. The result equals
:func:`runbook.logs.iter_events`'s, event for event.
"""

from __future__ import annotations

import gc
import os
import re
import sys
import threading
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from datetime import UTC, datetime, timedelta, tzinfo
from functools import cache
from importlib import import_module
from itertools import chain, islice
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import polars as pl
import pyarrow as pa

from runbook import logs
from runbook.logs import COLUMNS, MESSAGES, LogStats, Row

if TYPE_CHECKING:
    import pandas as pd

try:
    from runbook import _scan
except ImportError:  # built without a C compiler: polars alone reads the lines
    _scan = None

__all__ = ["read"]

# Text per batch: big enough that polars' per-call costs vanish, small enough that the
# batches in flight stay a small part of the frame being built.
BATCH_BYTES = 16 * 2**20
# Batches parsed at once by default, however many cores: polars runs each batch's
# patterns outside the GIL, the rest of a batch's work holds it.
MAX_WORKERS = 8
_EVENTS = sorted({m.event for m in MESSAGES})
_OUTCOMES = ["success", "failure", "info"]
_FIELDS = ("user", "user2", "ip", "port", "method", "reason", "detail", "preauth", "code")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_CLASSES = {"d": "digit", "w": "word", "s": "space"}


def _rust(pattern: str) -> str:
    """A pattern of ours (compiled by ``re`` with ASCII classes) for Rust's ``regex``,
    which reads ``\\d``, ``\\w`` and ``\\s`` as Unicode classes: spelled as ASCII ones."""
    out, i, class_start = [], 0, None  # class_start: where the open class's items begin
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            escaped = pattern[i + 1]
            name = _CLASSES.get(escaped.lower())
            if name is None:
                out.append(pattern[i : i + 2])
            elif class_start is None:
                out.append(f"[[:{'^' if escaped.isupper() else ''}{name}:]]")
            elif escaped.isupper():
                raise ValueError(f"\\{escaped} inside a class has no ASCII spelling: {pattern}")
            else:
                out.append(f"[:{name}:]")
            i += 2
            continue
        if char == "[" and class_start is None:
            class_start = i + 2 if pattern[i + 1 : i + 2] == "^" else i + 1
        elif char == "]" and class_start is not None and i > class_start:
            class_start = None  # a "]" first in a class is a literal one
        out.append(char)
        i += 1
    return "".join(out)


_MONTH = "(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"
_BSD = rf"{_MONTH}  ?\d{{1,2}} \d\d:\d\d:\d\d"
_ISO = r"\d{4}-\d\d-\d\dT\d\d:\d\d:[0-5]\d(?:\.\d{1,6})?(?:Z|[+-]\d\d:\d\d)"


def _heads(year_host: str = "") -> list[str]:
    """The headers whose reading by logs._header is certain, as one-pass patterns in
    Python's dialect, each up to the message (the group ``head``): with a host, without,
    a bracketed name, RFC 5424. A syslog or ISO stamp, sshd's name and pid, one space, a
    Solaris "[ID 800047 auth.info]" tag or none. ``year_host`` goes before the host: a BSD
    "host" of four digits would be a year there, and such lines take the slow path."""
    return [
        rf"^(?P<head>(?:(?P<bsd>{_BSD})|(?P<iso>{_ISO})) {host}"
        r"(?P<proc>sshd(?:-session|-auth)?)\[(?P<pid>\d{1,9})\]: (?:\[ID \d+ [\w.]+\] +)?)"
        for host in (rf"{year_host}(?P<host>[^\s\[\]]+) ", "")
    ] + [
        # No host and a bracketed name without a pid ("Mar  3 00:17:22 [sshd]: ..."), as
        # logs._SYSLOG reads it: fail2ban's test logs hold such lines by the thousand.
        rf"^(?P<head>(?P<bsd>{_BSD}) \[(?P<proc>sshd(?:-session|-auth)?)\]:? )",
        # RFC 5424 (rsyslog's RSYSLOG_SyslogProtocol23Format, syslog-ng's IETF output), as
        # logs._RFC5424 reads it, for sshd's own names, an ISO stamp and a numeric or nil pid.
        rf"^(?P<head><\d{{1,3}}>1 (?P<iso>{_ISO}) (?P<host>\S+) (?P<proc>sshd(?:-session|-auth)?) "
        r'(?P<pid>\d{1,9}|-) \S+ (?:-|(?:\[(?:[^\]"]|"(?:[^"\\]|\\.)*")*\])+) ?)',
    ]


# A message starts with neither a space nor "[" (and in polars' reading, which checks the
# rest afterwards, neither with a kernel's prefix nor rsyslog's "message repeated N times:
# [ ... ]" around sshd's: logs._parse takes those off).
_MESSAGE_START = r"[^\s\[]"
_WRAPPED = r"(?!kernel|message repeated )"
_HEADERS = [_rust(head + _MESSAGE_START) for head in _heads()]
# Another program's line (cron, sudo, systemd...): logs._header returns None for these.
_OTHER_HEADER = _rust(
    rf"^(?:{_MONTH} +\d{{1,2}} \d\d:\d\d:\d\d|\d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\d\S*) "
    r"[^\s\[\]]+ ([\w./-]+)\[\d+\]: "
)
_MATCHED = "_matched"


@cache
def _rust_indexes() -> tuple[dict[str, list[tuple[int, str]]], ...]:
    """logs._message's two indexes of MESSAGES (by first word, by needle), in Rust's
    dialect, each message with its index in MESSAGES and its whole match as one more
    group (for polars' reading alone: made when first needed)."""
    return tuple(
        {
            key: [(i, f"(?P<{_MATCHED}>{_rust(MESSAGES[i].pattern)})") for i in indexes]
            for key, indexes in _candidates(index)
        }
        for index in (logs._BY_FIRST, logs._BY_NEEDLE)
    )


_HEADER_COLUMNS = ["line", "raw", "bsd", "iso", "host", "proc", "pid", "msg"]
# Each message's event and outcome, by its index in MESSAGES; and the user it names by its
# words alone (Message.user), if any.
_EVENT_CODE = np.array([_EVENTS.index(m.event) for m in MESSAGES], np.int8)
_OUTCOME_CODE = np.array([_OUTCOMES.index(m.outcome) for m in MESSAGES], np.int8)
_FIXED_USER = pl.Series([m.user for m in MESSAGES], dtype=pl.String)
_FAILURE = _OUTCOMES.index("failure")
_PREAUTH_ENDS = [_EVENTS.index(e) for e in logs._PREAUTH_FAILURES]
_SCHEMA = {
    "line": pl.Int64,
    "time": pl.Int64,  # microseconds since the epoch
    "host": pl.String,
    "process": pl.String,
    "pid": pl.Int64,
    "event": pl.Int8,
    "outcome": pl.Int8,
    "user": pl.String,
    "ip": pl.String,
    "port": pl.Int64,
    "method": pl.String,
    "reason": pl.String,
    "raw": pl.String,
}


def _micros(stamp: datetime | None) -> int | None:
    return None if stamp is None else (stamp - _EPOCH) // _MICROSECOND


def _truthy(name: str) -> pl.Expr:
    """Python's truth of an optional string field: present and not empty."""
    return pl.col(name).is_not_null() & (pl.col(name) != "")


def _messages(msg: pl.Series) -> tuple[np.ndarray, pl.DataFrame]:
    """sshd messages to (each one's index in MESSAGES, -1 for none; the fields of those
    found, in order), tried as logs._message tries them: first the messages of the line's
    first word, then those of each needle found in it, in the order found."""
    by_first, by_needle = _rust_indexes()
    found = np.full(len(msg), -1, dtype=np.int16)
    parts: list[pl.DataFrame] = []
    words = list(by_first)
    first = (
        msg.str.extract(r"^(?:error: |fatal: )?([^ ]*)", 1)
        .replace_strict(words, range(len(words)), default=len(words), return_dtype=pl.Int16)
        .to_numpy()
    )
    # The rows of each first word (the last group: no known first word), in one sort.
    order = np.argsort(first, kind="stable")
    groups = np.split(order, np.searchsorted(first[order], np.arange(1, len(words) + 1)))
    left = [_try(msg, groups[i], by_first[word], found, parts) for i, word in enumerate(words)]
    rows = np.sort(np.concatenate([*left, groups[-1]]))
    hits = msg.gather(rows).str.extract_all(logs._NEEDLES.pattern)
    rank = 0
    while True:
        more = (hits.list.len() > rank).to_numpy()  # rows with a needle left to try
        rows, hits = rows[more], hits.filter(more)
        if not len(rows):
            break
        needles = hits.list.get(rank)
        left = [
            _try(msg, rows[(needles == needle).to_numpy()], by_needle[needle], found, parts)
            for needle in needles.unique()
        ]
        kept = np.isin(rows, np.concatenate(left))
        rows, hits = rows[kept], hits.filter(kept)
        rank += 1
    if not parts:
        return found, pl.DataFrame(schema={"at": pl.Int64, "message": pl.Int16})
    return found, pl.concat(parts, how="diagonal_relaxed").sort("at")


def _try(
    msg: pl.Series,
    rows: np.ndarray,
    candidates: list[tuple[int, str]],
    found: np.ndarray,
    parts: list[pl.DataFrame],
) -> np.ndarray:
    """Messages tried in order on ``rows``: each row's first match noted in ``found``, its
    fields added to ``parts``; the rows none matched returned.

    Each pattern is wrapped in one more group, whose presence says that it matched: the
    match and its fields come from one pass (a line that does not match costs what a
    plain search costs).
    """
    for index, pattern in candidates:
        if not len(rows):
            break
        fields = msg.gather(rows).str.extract_groups(pattern).struct.unnest()
        hit = fields.get_column(_MATCHED).is_not_null().to_numpy()
        if hit.any():
            found[rows[hit]] = index
            parts.append(
                fields.filter(hit)
                .drop(_MATCHED)
                .with_columns(at=pl.Series(rows[hit]), message=pl.lit(index, pl.Int16))
            )
        rows = rows[~hit]
    return rows


def _events(events: pl.DataFrame) -> pl.DataFrame:
    """Extracted fields to the frame's columns, as logs._parse derives them."""
    for name in _FIELDS:
        if name not in events.columns:
            events = events.with_columns(pl.lit(None, pl.String).alias(name))
    codes = events.get_column("message").to_numpy()
    events = events.with_columns(
        event=pl.Series(_EVENT_CODE[codes]),
        base=pl.Series(_OUTCOME_CODE[codes]),
        fixed=_FIXED_USER.gather(codes),
    )
    event = pl.col("event")
    user = pl.coalesce("user", "user2", "fixed")
    ip = pl.when(pl.col("ip") != "").then(pl.col("ip"))
    mapped = ip.str.slice(0, 7).str.to_lowercase().eq("::ffff:") & ip.str.contains(
        ".", literal=True
    )
    port = pl.col("port").cast(pl.Int64, strict=False)
    return events.with_columns(
        outcome=pl.when(event.is_in(_PREAUTH_ENDS) & (_truthy("preauth") | user.is_not_null()))
        .then(pl.lit(_FAILURE, pl.Int8))
        .when((event == _EVENTS.index("disconnect")) & pl.col("code").is_in(["3", "14"]))
        .then(pl.lit(_FAILURE, pl.Int8))
        .otherwise("base"),
        user=user,
        ip=pl.when(mapped).then(ip.str.slice(7)).otherwise(ip),
        port=pl.when((port <= 65535) & ip.is_not_null()).then(port),
        reason=pl.when(_truthy("reason"))
        .then(pl.col("reason"))
        .when(_truthy("detail"))
        .then(pl.col("detail")),
    )


def _unvis(events: pl.DataFrame) -> pl.DataFrame:
    """User names as logs._unvis reads sshd's escapes (few rows have one: done in Python)."""
    users = events.get_column("user")
    escaped = users.str.contains("\\", literal=True).fill_null(False)
    if not escaped.any():
        return events
    rows = escaped.arg_true()
    names = pl.Series([logs._unvis(u) for u in users.gather(rows)], dtype=pl.String)
    return events.with_columns(users.scatter(rows, names))


def _times(events: pl.DataFrame, anchor: datetime, zone: tzinfo) -> pl.Series:
    """Each event's time in microseconds: syslog stamps read by logs._bsd_time (once per
    distinct stamp), ISO stamps by polars."""
    stamps = events.get_column("bsd").unique().drop_nulls().to_list()
    bsd = {s: _micros(logs._bsd_time(logs._BSD_TIME.match(s + " "), anchor, zone)) for s in stamps}
    iso = (
        events.get_column("iso")
        .str.replace("Z", "+00:00", literal=True)
        .str.to_datetime("%Y-%m-%dT%H:%M:%S%.f%:z", strict=False, time_unit="us")
        .dt.epoch("us")
    )
    return (
        events.get_column("bsd").replace_strict(bsd, default=None, return_dtype=pl.Int64)
        if bsd
        else pl.Series("time", [None] * len(events), pl.Int64)
    ).fill_null(iso)


def _batch(
    text: bytes | pa.Buffer, offsets: np.ndarray, anchor: datetime, zone: tzinfo
) -> tuple[pl.DataFrame, LogStats, list[tuple[int, str]]]:
    """One batch of lines (``text[offsets[i]:offsets[i + 1]]``) to (its events in the
    frame's columns, with their line numbers; its counts; its unrecognised sshd lines,
    numbered)."""
    stats = LogStats()
    stats.lines = len(offsets) - 1
    scanner = _scanner()
    if scanner is not None and len(text) < 2**31:  # Arrow's views reach 2 GiB
        known, unknown, rest, stats.unreadable = _scanned(scanner, text, offsets)
    else:
        known, unknown, rest, stats.unreadable = _read(_series(text, offsets))
    stats.sshd_unrecognised = len(unknown)
    examples = list(unknown.head(5).iter_rows())
    proc = rest.get_column("raw").str.extract(_OTHER_HEADER, 1)
    other = proc.is_not_null() & ~proc.str.contains("sshd", literal=True)
    stats.other = other.sum()
    rows = []
    for line, raw in rest.filter(~other).iter_rows():
        row = logs._parse(raw, anchor, zone)
        if row is None:
            stats.other += 1
        elif row is False:
            stats.sshd_unrecognised += 1
            examples.append((line, raw))
        else:
            rows.append(_coded(line, row))
    events = _unvis(_events(known))
    events = events.with_columns(
        time=_times(events, anchor, zone),
        process=pl.col("proc"),
        host=pl.when(pl.col("host") != "-").then(pl.col("host")),  # RFC 5424's nil host
        pid=pl.col("pid").cast(pl.Int64, strict=False),  # RFC 5424's nil pid "-": none
        line=pl.col("line").cast(pl.Int64),
    ).select(list(_SCHEMA))
    if rows:  # in the file's order (a sort costs a third of a merge_sorted here)
        events = pl.concat([events, pl.DataFrame(rows, schema=_SCHEMA, orient="row")]).sort("line")
    examples.sort()
    return events, stats, examples


def _read(lines: pl.Series) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame, int]:
    """A batch read by polars alone: see _scanned, whose result this is."""
    binary = lines.str.contains("\0", literal=True)
    frame = (
        pl.DataFrame([lines.alias("raw")])
        .with_row_index("line")
        .filter(~binary)
        .with_columns(pl.col("raw").str.slice(0, logs.MAX_LINE).str.strip_chars_end("\r\n"))
    )
    certain, rest = _headers(frame)
    found, fields = _messages(certain.get_column("msg"))
    known = pl.concat([certain.filter(found >= 0), fields], how="horizontal")
    unknown = certain.filter(found < 0).select("line", "raw")
    return known, unknown, rest.select("line", "raw"), binary.sum()


# The fields the native scanner cuts out of a line: its header's, then its message's.
_SLOTS = ("bsd", "iso", "host", "proc", "pid", *_FIELDS)
# Its kinds of line besides a message's index (as runbook/_scan.c names them): a certain
# sshd header with a message none reads, one for logs._parse, a binary one.
_NO_MESSAGE, _NOT_CERTAIN, _BINARY = -1, -2, -3


def _slots(pattern: str) -> list[int]:
    """For each group of ``pattern``, by number: the slot of the field it fills (-1: none)."""
    compiled = re.compile(pattern, re.ASCII)
    names = {number: name for name, number in compiled.groupindex.items()}
    return [
        _SLOTS.index(names[group]) if names.get(group) in _SLOTS else -1
        for group in range(1, compiled.groups + 1)
    ]


def _candidates(index: dict[str, list[tuple[logs.Message, re.Pattern[str]]]]) -> list:
    """One of logs._message's indexes as (key, the indexes in MESSAGES of its messages)."""
    return [(key, [MESSAGES.index(m) for m, _ in found]) for key, found in index.items()]


@cache
def _scanner() -> _scan.Scanner | None:
    """The native scanner of the patterns logs reads with (None: not built here).

    The header patterns check there what polars checks afterwards (_headers): no year
    where a BSD stamp's host would be, no kernel prefix or "message repeated" around sshd's
    message; each failed check moves the line on to the next pattern, as there.
    """
    if _scan is None:
        return None
    heads = [h + _WRAPPED + _MESSAGE_START for h in _heads(r"(?(bsd)(?![0-9]{4} ))")]
    return _scan.Scanner(
        headers=[(h, _slots(h), re.compile(h, re.ASCII).groupindex["head"]) for h in heads],
        messages=[(m.pattern, _slots(m.pattern)) for m in MESSAGES],
        words=_candidates(logs._BY_FIRST),
        needle=logs._NEEDLES.pattern,
        needles=_candidates(logs._BY_NEEDLE),
        fields=len(_SLOTS),
        max_chars=logs.MAX_LINE,
    )


def _scanned(
    scanner: _scan.Scanner, text: bytes | pa.Buffer, offsets: np.ndarray
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame, int]:
    """A batch read by the native scanner (PCRE2, outside the GIL): (the lines of a known
    message, with their header's and message's fields and the message's index in
    MESSAGES; the lines of a certain sshd header whose message none of them reads; the
    lines for logs._parse; the number of binary lines), each line with its number in the
    batch and its text, cut at logs.MAX_LINE characters and without its line end."""
    count = len(offsets) - 1
    kind = np.empty(count, np.int16)
    stops = np.empty(count, np.int64)
    spans = _spans(count)
    scanner.scan(text, offsets, kind, stops, spans)
    starts = offsets[:-1]

    def strings(begins: np.ndarray, ends: np.ndarray, rows: np.ndarray) -> pl.Series:
        if not (begins[rows] >= 0).any():  # a field no line of the batch has: no views
            return pl.repeat(None, len(rows), dtype=pl.String, eager=True)
        views, valid, nulls = _scan.views(text, begins, ends, rows)
        buffers = [pa.py_buffer(valid), pa.py_buffer(views), pa.py_buffer(text)]
        return pl.Series(pa.Array.from_buffers(pa.string_view(), len(rows), buffers, nulls))

    def lines(rows: np.ndarray) -> pl.DataFrame:
        return pl.DataFrame({"line": rows, "raw": strings(starts, stops, rows)})

    known = np.flatnonzero(kind >= 0)
    fields = [
        strings(spans[2 * i], spans[2 * i + 1], known).alias(name) for i, name in enumerate(_SLOTS)
    ]
    return (
        lines(known).with_columns(*fields, message=pl.Series(kind[known])),
        lines(np.flatnonzero(kind == _NO_MESSAGE)),
        lines(np.flatnonzero(kind == _NOT_CERTAIN)),
        int((kind == _BINARY).sum()),
    )


_SCRATCH = threading.local()


def _spans(count: int) -> np.ndarray:
    """A worker's array for the fields' spans of ``count`` lines, kept for its next batch:
    fresh, its pages would be faulted in and cleared again for every batch."""
    size = 2 * len(_SLOTS) * count
    kept = getattr(_SCRATCH, "spans", None)
    if kept is None or len(kept) < size:
        kept = _SCRATCH.spans = np.empty(size, np.int64)
    return kept[:size].reshape(2 * len(_SLOTS), count)


def _split(data: bytes) -> tuple[bytes, np.ndarray]:
    """A batch's text and where each line begins, numpy finding the newlines (each line
    keeps its own, which the reading strips); one more offset ends the last line.

    Bytes that are not UTF-8 (a binary file, a Latin-1 user name) are read as Python's
    ``errors="replace"`` reads them: that batch alone is decoded and encoded again.
    """
    if np.frombuffer(data, dtype=np.uint8).max(initial=0) >= 0x80:  # ASCII is UTF-8
        try:
            data.decode()
        except UnicodeDecodeError:
            data = data.decode(errors="replace").encode()
    ends = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == ord("\n")) + 1
    if not data.endswith(b"\n"):
        ends = np.append(ends, len(data))
    return data, np.concatenate([[0], ends]).astype(np.int64)


def _series(text: bytes | pa.Buffer, offsets: np.ndarray) -> pl.Series:
    """Lines as one string column: Arrow offsets over the batch's own bytes."""
    array = pa.LargeStringArray.from_buffers(
        len(offsets) - 1, pa.py_buffer(offsets), pa.py_buffer(text)
    )
    return pl.Series("raw", array)


def _buffers(lines: pl.Series) -> tuple[pa.Buffer, np.ndarray]:
    """A column of lines (no nulls) as the text and offsets _batch reads."""
    array = lines.to_arrow(compat_level=pl.CompatLevel.oldest()).cast(pa.large_string())
    _, offsets, text = array.buffers()
    offsets = np.frombuffer(offsets, dtype=np.int64)[array.offset : array.offset + len(array) + 1]
    return (text if text is not None else pa.py_buffer(b"")), offsets


def _headers(frame: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Lines to (those whose sshd header is certain, read; the rest), each in order."""
    found, rest = [], frame
    year = pl.col("bsd").is_not_null() & pl.col("host").str.contains(r"^[0-9]{4}$")
    for pattern in _HEADERS:
        read = (
            rest.with_columns(
                pl.lit(None, pl.String).alias(c) for c in ("bsd", "iso", "host", "pid")
            )
            .with_columns(pl.col("raw").str.extract_groups(pattern).struct.unnest())
            .with_columns(msg=pl.col("raw").str.slice(pl.col("head").str.len_chars()))
        )
        # A kernel's prefix, or rsyslog's "message repeated N times: [ ... ]" around sshd's
        # message, is for logs._parse to take off.
        wrapped = pl.col("msg").str.starts_with("kernel") | pl.col("msg").str.starts_with(
            "message repeated "
        )
        sure = (~year.fill_null(False) & ~wrapped).fill_null(False)
        found.append(read.filter(sure).select(_HEADER_COLUMNS))
        rest = read.filter(~sure).select(frame.columns)
    return pl.concat(found).sort("line"), rest


def _piece(
    data: bytes, anchor: datetime, zone: tzinfo, journal: bool
) -> tuple[pa.Table, LogStats, list[tuple[int, str]]]:
    """One batch (text lines, or journal records made lines first) to its piece of the
    frame, in a worker thread; journal records that are none are counted unreadable."""
    if journal:
        lines, bad = _journal(_series(*_split(data)), zone)
        text, offsets = _buffers(lines)
    else:
        (text, offsets), bad = _split(data), 0
    if len(offsets) > 1:
        events, stats, examples = _batch(text, offsets, anchor, zone)
    else:
        events, stats, examples = pl.DataFrame(schema=_SCHEMA), LogStats(), []
    stats.lines += bad
    stats.unreadable += bad
    return _table(events), stats, examples


# The fields of a journal record logs._journal_line makes a line of.
_JOURNAL_FIELDS = (
    "MESSAGE",
    "__REALTIME_TIMESTAMP",
    "_SOURCE_REALTIME_TIMESTAMP",
    "SYSLOG_IDENTIFIER",
    "_COMM",
    "SYSLOG_PID",
    "_PID",
    "_HOSTNAME",
)
# A record json.loads reads as a flat object whose strings hold no escape and no control
# character (journalctl's usual record, each field once): there a string field is the text
# between its quotes. Anything else (an escape, an array, a cut or garbled line) is for
# json.loads.
_WS = r"[ \t\r]*"
_STRING = r'"[^"\\\x00-\x1f]*"'
_NUMBER = r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?"
_SCALAR = rf"(?:{_STRING}|{_NUMBER}|true|false|null)"
_VALUE = rf"(?:{_SCALAR}|\[{_WS}(?:{_SCALAR}{_WS}(?:,{_WS}{_SCALAR}{_WS})*)?\])"
_MEMBER = rf"{_STRING}{_WS}:{_WS}{_VALUE}"
_FLAT = rf"^{_WS}\{{{_WS}(?:{_MEMBER}{_WS}(?:,{_WS}{_MEMBER}{_WS})*)?\}}{_WS}$"
_RECORD_KEY = rf'"(?:{"|".join(sorted(logs._JOURNAL_KEYS))})"{_WS}:'
_NOT_STRING = rf'"(?:{"|".join(_JOURNAL_FIELDS)})"{_WS}:{_WS}[^" \t\r]'


def _journal(records: pl.Series, zone: tzinfo) -> tuple[pl.Series, int]:
    """A batch of ``journalctl -o json`` records as the syslog-style lines that
    logs._journal_line makes of them, in order; with the number of records that are none
    (no JSON object, binary garbage). Usual records are read column-wise (json.loads and
    that function, record by record, took 8 us each, holding the GIL); the rest by them."""
    records = records.str.strip_suffix("\n")
    binary = records.str.contains("\0", literal=True)  # neither way: unreadable
    flat = records.str.contains(_FLAT) & ~records.str.contains(_NOT_STRING) & ~binary
    fields = pl.DataFrame(
        {name: records.str.extract(rf'"{name}"{_WS}:{_WS}"([^"]*)"', 1) for name in _JOURNAL_FIELDS}
    )
    micros = pl.when(pl.col("__REALTIME_TIMESTAMP") != "").then("__REALTIME_TIMESTAMP")
    micros = micros.otherwise("_SOURCE_REALTIME_TIMESTAMP")
    fields = fields.with_columns(micros=micros)
    # A time in digits an int64 holds, or in ASCII that is no number (no time: Python's
    # isdigit), is read here; other digits (int() reads some) and longer numbers by Python.
    time = fields.get_column("micros")
    usual_time = (
        time.str.contains(r"^[0-9]{1,18}$")
        | (time.str.contains(r"^[\x00-\x7f]*$") & ~time.str.contains(r"^[0-9]+$"))
    ).fill_null(True)
    fast = flat & usual_time & records.str.contains(_RECORD_KEY)
    lines = pl.repeat(None, len(records), dtype=pl.String, eager=True).alias("raw")
    if fast.any():
        lines = lines.scatter(fast.arg_true(), _made_lines(fields.filter(fast), zone))
    slow = (~flat | ~usual_time) & ~binary
    if slow.any():
        rows = slow.arg_true()
        made = [logs._journal_line(r, zone) for r in records.gather(rows)]
        lines = lines.scatter(rows, pl.Series(made, dtype=pl.String))
    lines = lines.drop_nulls()
    return lines, len(records) - len(lines)


def _made_lines(fields: pl.DataFrame, zone: tzinfo) -> pl.Series:
    """logs._journal_line's line of each usual record (its fields plain strings)."""
    digits = pl.col("micros").str.contains(r"^[0-9]{1,18}$").fill_null(False)
    micros = pl.when(digits).then(pl.col("micros").cast(pl.Int64))
    fields = fields.with_columns(seconds=micros // 1_000_000, fraction=micros % 1_000_000)
    # Each second's date, time and offset from Python (a busy journal repeats each second).
    seconds = fields.get_column("seconds").drop_nulls().unique().to_list()
    whole = {s: logs._journal_stamp(s * 1_000_000, zone) for s in seconds} or {0: ""}
    stamp = pl.col("seconds").replace_strict(whole, default=None, return_dtype=pl.String)
    fraction = pl.when(pl.col("fraction") > 0).then(
        pl.lit(".") + pl.col("fraction").cast(pl.String).str.zfill(6)
    )
    stamped = pl.when(stamp != "").then(
        pl.concat_str([stamp.str.slice(0, 19), fraction, stamp.str.slice(19)], ignore_nulls=True)
    )
    ident = (
        pl.when(pl.col("SYSLOG_IDENTIFIER") != "")
        .then("SYSLOG_IDENTIFIER")
        .otherwise("_COMM")
        .fill_null("?")
    )
    pid = pl.when(pl.col("SYSLOG_PID") != "").then("SYSLOG_PID").otherwise("_PID")
    tag = pl.when(pid != "").then(pl.concat_str([ident, pl.lit("["), pid, pl.lit("]")]))
    said = pl.concat_str([tag.fill_null(ident), pl.lit(": "), pl.col("MESSAGE").fill_null("")])
    host = pl.when(pl.col("_HOSTNAME") != "").then("_HOSTNAME")
    line = pl.concat_str([stamped, host, said], separator=" ", ignore_nulls=True)
    return fields.select(line.alias("raw")).get_column("raw")


def _coded(line: int, row: Row) -> tuple:
    """A row of logs._parse in _SCHEMA's terms."""
    time, host, process, pid, event, outcome, *rest = row
    return (
        line,
        _micros(time),
        host,
        process,
        pid,
        _EVENTS.index(event),
        _OUTCOMES.index(outcome),
        *rest,
    )


def _from_rows(rows: Iterator[Row], chunksize: int) -> Iterator[pl.DataFrame]:
    """Rows of logs._scan (lines given in memory) in _SCHEMA's terms."""
    with _no_gc():
        while chunk := [_coded(0, row) for row in islice(rows, chunksize)]:
            yield pl.DataFrame(chunk, schema=_SCHEMA, orient="row")


@contextmanager
def _no_gc() -> Iterator[None]:
    """Without the cyclic collector for a while: the rows hold no cycles, and the collector
    would otherwise walk the growing heap of them again and again."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _batches(path: Path, stats: LogStats) -> Iterator[bytes]:
    """The bytes of a file in batches of whole lines, about BATCH_BYTES each."""
    batch, size = [], 0
    for block in logs._blocks(path, stats):
        batch.append(block)
        size += len(block)
        if size >= BATCH_BYTES:
            yield b"".join(batch)
            batch, size = [], 0
    if batch:
        yield b"".join(batch)


def _judged_batches(batches: Iterator[bytes]) -> tuple[bool, Iterator[bytes]]:
    """Whether batches hold ``journalctl -o json`` records, judged by logs._judged on
    their first lines as logs._lines gives them (a binary line aside); and the batches,
    all of them: a file and a pipe (stdin, journalctl's output) are read once."""
    head: list[bytes] = []

    def lines() -> Iterator[str]:
        for batch in batches:  # as many as the judgment reads: most often the first
            head.append(batch)
            start = 0
            while start < len(batch):
                end = batch.find(b"\n", start)
                end = len(batch) if end < 0 else end
                line = batch[start:end].decode(errors="replace")
                if "\0" not in line:
                    yield line
                start = end + 1

    journal = logs._judged(lines())[0]
    return journal, chain(head, batches)


def _parsed(
    batches: Iterator[bytes],
    anchor: datetime,
    zone: tzinfo,
    stats: LogStats,
    workers: int,
    *,
    journal: bool,
) -> Iterator[pa.Table]:
    """A file's events, ``workers`` batches at a time (the matching lets go of the GIL),
    and one more read ahead, so that no worker waits for the file."""
    with ThreadPoolExecutor(workers) as pool:
        pending: list = []
        while True:
            while len(pending) <= workers and (data := next(batches, None)) is not None:
                pending.append(pool.submit(_piece, data, anchor, zone, journal))
            if not pending:
                return
            events, counted, examples = pending.pop(0).result()
            for name in ("lines", "sshd_unrecognised", "other", "unreadable"):
                setattr(stats, name, getattr(stats, name) + getattr(counted, name))
            room = max(0, 5 - len(stats.examples))
            stats.examples += [raw.strip()[:200] for _, raw in examples[:room]]
            yield events


def _table(frame: pl.DataFrame) -> pa.Table:
    """Events as Arrow, strings as pandas holds them (large_string, not polars' views)."""
    table = frame.drop("line").to_arrow()
    return table.cast(
        pa.schema(
            pa.field(f.name, pa.large_string())
            if pa.types.is_string_view(f.type) or pa.types.is_string(f.type)
            else f
            for f in table.schema
        )
    )


def _pandas(pieces: list[pa.Table], zone: tzinfo) -> pd.DataFrame:
    """The pieces as one frame in the contract's columns and dtypes: a zoned datetime,
    Int64 numbers, categories, and Arrow strings that stay the pieces' own buffers."""
    import pandas as pd  # the import _preload began: this waits for its end

    table = pa.concat_tables(pieces) if pieces else _table(pl.DataFrame(schema=_SCHEMA))
    nat = np.iinfo(np.int64).min
    stamps = table["time"].fill_null(nat).to_numpy().view("datetime64[us]")
    columns = {"time": pd.DatetimeIndex(stamps).tz_localize("UTC").tz_convert(zone)}
    for name in ("pid", "port"):
        values = table[name]
        columns[name] = pd.arrays.IntegerArray(
            values.fill_null(0).to_numpy().astype("int64"), values.is_null().to_numpy()
        )
    for name, categories in (("event", _EVENTS), ("outcome", _OUTCOMES)):
        codes = table[name].to_numpy().astype("int8")
        columns[name] = pd.Categorical.from_codes(codes, categories=categories)
    for name in ("process", "method"):
        encoded = table[name].combine_chunks().dictionary_encode()
        columns[name] = pd.Categorical.from_codes(
            encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype("int32"),
            categories=pd.Index(encoded.dictionary.to_pylist(), dtype="str"),
        )
    for name in ("host", "user", "ip", "reason", "raw"):
        columns[name] = pd.arrays.ArrowStringArray(table[name])
    return pd.DataFrame({name: pd.Series(columns[name]) for name in COLUMNS})


def _preload(name: str) -> None:
    """Import ``name`` in a thread of its own, unless it is imported: pandas (a third of a
    second of start-up, most of it Python) then loads while the workers parse the first
    batches outside the GIL, and is there when the frame is built. A failed import fails
    again, with its error, where the module is used."""
    if name not in sys.modules:
        threading.Thread(target=_quietly, args=(name,), daemon=True).start()


def _quietly(name: str) -> None:
    with suppress(ImportError):
        import_module(name)


def _cores() -> int:
    """The cores this process may use, at most MAX_WORKERS."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return min(cores, MAX_WORKERS)


def _latest(flags: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """For each position of key-sorted rows: the latest position at or before it, in the
    same group, whose flag is set (-1 for none)."""
    latest = np.maximum.accumulate(np.where(flags, np.arange(len(flags)), -1))
    return np.where(latest >= starts, latest, -1)


def _next(flags: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """For each position: the first position at or after it, in the same group (which
    ends at ``ends``), whose flag is set (-1 for none)."""
    size = len(flags)
    following = np.minimum.accumulate(np.where(flags, np.arange(size), size)[::-1])[::-1]
    return np.where(following <= ends, following, -1)


@cache
def _among(names: Iterable[str]) -> np.ndarray:
    """Whether each event code (an index in _EVENTS) is one of ``names``: a table to index
    with a column of codes."""
    table = np.zeros(len(_EVENTS), dtype=bool)
    table[[_EVENTS.index(name) for name in names]] = True
    return table


def _connections(key: np.ndarray, event: np.ndarray, stamps: np.ndarray) -> np.ndarray:
    """For key-sorted rows of sshd processes: where each row's connection begins (see
    ``logs._new_connection``, whose rules these are, column-wise)."""
    size = len(key)
    first = np.r_[True, key[1:] != key[:-1]]
    is_start = _among(logs._STARTS)[event]
    connection = _EVENTS.index("connection")
    timed = stamps != _NAT
    late = np.r_[False, timed[1:] & timed[:-1] & (np.diff(stamps) > _GAP_US)]
    new = (
        first
        | (is_start & ((event == connection) | ~np.r_[False, is_start[:-1]]))
        | (~is_start & late)
        | (
            ~is_start
            & np.r_[False, _among(logs._ENDS)[event[:-1]]]
            & ~_among(logs._TRAILERS)[event]
        )
    )
    return np.maximum.accumulate(np.where(new, np.arange(size), 0))


_NAT = np.iinfo(np.int64).min
_GAP_US = logs.CONNECTION_GAP // timedelta(microseconds=1)


def _carry_over(frame: pd.DataFrame) -> None:
    """What ``logs._Connections`` does line by line, for the whole frame at once.

    Within one connection of an sshd process (host, pid; see ``_connections``): a line
    without the client's address takes the address and port of the latest line that had
    one, and the latest user such lines named, else all three from the first later line
    with an address (within logs.LOOKAHEAD events); and the end of a connection that failed
    before anyone logged in is a failure. Done on the rows sorted by process (stable, so
    each process's lines keep their order), where "the latest such line" is a running
    maximum.
    """
    import pandas as pd

    events = frame["event"].cat.codes.to_numpy()
    daemon = _among(logs._DAEMON_EVENTS)[events]
    rows = np.flatnonzero(frame["pid"].notna().to_numpy() & ~daemon)
    if not len(rows):
        return
    hosts = pd.factorize(frame["host"], use_na_sentinel=False)[0][rows].astype("int64")
    pids = frame["pid"].to_numpy(dtype="int64", na_value=0)[rows]
    key = hosts * (int(pids.max()) + 1) + pids  # one number per (host, pid)
    order = np.argsort(key, kind="stable")
    rows, key = rows[order], key[order]
    stamps = frame["time"].array.asi8[rows]
    event = events[rows]
    starts = _connections(key, event, stamps)
    begins = np.flatnonzero(starts == np.arange(len(rows)))  # each connection's first row
    ends = np.r_[begins[1:] - 1, len(rows) - 1][np.cumsum(starts == np.arange(len(rows))) - 1]
    has_ip = frame["ip"].notna().to_numpy()[rows]
    before = _latest(has_ip, starts)
    after = _next(has_ip, ends)
    # A later line lends only within LOOKAHEAD events (the line reader's bound).
    after = np.where((after >= 0) & (rows[after] - rows <= logs.LOOKAHEAD), after, -1)
    source = np.where(before >= 0, before, after)
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
        # The user: the latest one lines with an address named, else the later line's.
        named = _latest(has_ip & frame["user"].notna().to_numpy()[rows], starts)
        named = np.where(before >= 0, named, after)[fill]
        lend = np.arange(len(frame))
        borrow = (named >= 0) & frame["user"].array[into].isna()
        lend[into[borrow]] = rows[named[borrow]]
        frame["user"] = frame["user"].array.take(lend)
    # The state each line finds: failed after a failure, cleared by a new connection or a
    # success; a connection's end found in the failed state concludes a failed attempt.
    outcome = frame["outcome"].cat.codes.to_numpy()[rows]
    failure, success = _OUTCOMES.index("failure"), _OUTCOMES.index("success")
    failed = outcome == failure
    marked = _latest(failed | (outcome == success) | (event == _EVENTS.index("connection")), starts)
    previous = np.r_[-1, marked[:-1]]
    previous = np.where(previous >= starts, previous, -1)
    ended = _among(logs._PREAUTH_FAILURES)[event]
    flip = ended & ~failed & (previous >= 0) & failed[np.maximum(previous, 0)]
    if flip.any():
        frame.loc[rows[flip], "outcome"] = "failure"


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
    _preload("pandas")
    stats = LogStats()
    parts: list[pa.Table] = []
    if lines is not None:
        rows = logs._scan(lines, now or datetime.now(zone), zone, stats, count=True)
        parts += map(_table, _from_rows(rows, chunksize))
    for path in logs._files(paths):
        stats.files.append(str(path))
        anchor = logs._anchor(path, now, zone)
        journal, batches = _judged_batches(_batches(path, stats))
        parts += _parsed(batches, anchor, zone, stats, workers or _cores(), journal=journal)
    frame = _pandas(parts, zone)
    del parts
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
