"""sshd logs into events: fail2ban's own annotated sample logs are the oracle.

Every line fail2ban's sshd filter counts must be a failure event with the same client
address (and user where the annotation names one); lines it does not count must not be
failures. Where our reading differs on purpose, the line is listed in EXCEPTIONS with why.
"""

from __future__ import annotations

import bz2
import gzip
import json
import lzma
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runbook import logframe, logs
from runbook.errors import BadInput

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpora" / "fail2ban"
# fail2ban's test clock: 2005-08-14 12:00 in Europe/Zurich (see the corpus README).
ZURICH = ZoneInfo("Europe/Zurich")
F2B_NOW = datetime.fromtimestamp(1124013600, ZURICH)

# Lines where fail2ban's ban counting and "does this line show a failed attempt" differ.
EXCEPTIONS = [
    (
        r"not allowed because account is locked|input_userauth_request: invalid user",
        "a refusal whose line has no address: fail2ban counts it on a later line of the same "
        "process; the line itself shows the refusal",
    ),
    (
        r"Failed publickey for git ",
        "a user trying several keys (fail2ban gh-1263 ignores them): each refused key is a "
        "refused attempt, which is what auth.key_rejected and MaxAuthTries need",
    ),
    (
        r"pam_unix\(sshd:auth\): authentication failure",
        "fail2ban waits for the connection's next line to count a PAM failure; the line "
        "itself shows the failed password",
    ),
    (
        r"Disconnecting(?: invalid user \S+ \S+ port \d+)?: Too many authentication failures"
        r"|Disconnected from authenticating user",
        "fail2ban counts the connection once, on another of its lines (no double counting)",
    ),
    (
        r"sshd\[\d+\]: Connection (?:closed|reset) by [\d.]+",
        "the end of a connection that failed (or never authenticated): fail2ban's mode for "
        "that block does not count it",
    ),
    (
        r"kex_exchange_identification: (?:banner line too long|Connection closed by remote host)",
        "fail2ban counts this banner failure on the connection's closing line instead",
    ),
    (
        r"Accepted password for known from",
        "fail2ban flushes the connection's pending failures on its success line; the line "
        "itself is a successful login",
    ),
]


def _records(path: Path):
    modes, file_options, pending = [{}], {}, []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        directive = re.match(r"^#+ ?(failJSON|fileOptions|filterOptions|addFILE):(.+)$", line)
        if directive:
            kind, body = directive.groups()
            if kind == "failJSON":
                pending.append(json.loads(body))
            elif kind == "filterOptions":
                value = json.loads(body)
                modes = value if isinstance(value, list) else [value]
            elif kind == "fileOptions":
                file_options = json.loads(body)
            continue
        if line.startswith("#") or not line.strip():
            continue
        yield line, pending, [{**file_options, **m} for m in modes]
        pending = []


def _expected(records: list[dict], modes: list[dict]) -> dict:
    """The annotation that applies: a match in any of the block's modes counts."""
    fallback = {"match": False}
    for options in modes:
        for record in records:
            constraint = record.get("constraint")
            if constraint and not eval(constraint, {"name": "sshd", "opts": options}):
                continue
            if record.get("match"):
                return record
            fallback = record
    return fallback


def _oracle():
    if not CORPUS.is_dir():
        pytest.skip(f"the fail2ban corpus is not beside this checkout ({CORPUS})")
    results = []
    for name in ("sshd", "sshd-journal"):
        connections = logs._Connections()
        for line, records, modes in _records(CORPUS / name):
            event = logs.parse_line(line, now=F2B_NOW, tz=ZURICH)
            if event:
                list(connections.feed(event))  # completed in place, now or by a later line
            results.append((line, _expected(records, modes), event or None))
        list(connections.flush())
    return results


def test_fail2ban_corpus_precision_and_recall(capsys) -> None:
    tp = fp = fn = tn = 0
    unexplained, explained = [], []
    for line, expected, event in _oracle():
        failure = event is not None and event.outcome == "failure"
        if expected.get("match"):
            host, user = expected.get("host"), expected.get("user")
            good = (
                failure
                and (host is None or event.ip == host)
                and ("user" not in expected or event.user == user)
            )
            if good and "time" in expected:
                local = event.time.astimezone(ZURICH).replace(tzinfo=None, microsecond=0)
                good = local.isoformat() == expected["time"]
            tp, fn = tp + good, fn + (not good)
        else:
            good = not failure
            tn, fp = tn + good, fp + (not good)
        if not good:
            reason = next((why for rx, why in EXCEPTIONS if re.search(rx, line)), None)
            (explained if reason else unexplained).append((line, expected, event))
    with capsys.disabled():
        print(
            f"\nfail2ban corpus: {tp + fn} counted lines, {fp + tn} not counted; "
            f"precision {tp / (tp + fp):.3f}, recall {tp / (tp + fn):.3f} "
            f"({len(explained)} documented differences, each in EXCEPTIONS)"
        )
    assert not unexplained, "\n".join(
        f"{line}\n  expected {exp}\n  got {ev}" for line, exp, ev in unexplained
    )
    assert tp >= 190 and tp / (tp + fn) >= 0.97


def test_attacker_controlled_user_names_do_not_move_the_address() -> None:
    cases = {
        "Failed password for invalid user test from 10.10.1.2 port 55555 ssh2 from 127.0.0.1 "
        "port 58946 ssh2": ("127.0.0.1", "test from 10.10.1.2 port 55555 ssh2"),
        "Failed password for user from 127.0.0.1 port 20000 ssh1: ruser from 1.2.3.4": (
            "127.0.0.1",
            "user",
        ),
        "Connection closed by authenticating user test 127.0.0.1 port 12345 192.0.2.11 port "
        "46039 [preauth]": ("192.0.2.11", "test 127.0.0.1 port 12345"),
    }
    for message, (ip, user) in cases.items():
        event = logs.parse_line(f"Nov 28 10:00:00 srv sshd[1]: {message}")
        assert (event.ip, event.user, event.outcome) == (ip, user, "failure"), message


def test_framings_and_years(tmp_path) -> None:
    now = datetime(2026, 1, 2, 12, 0, tzinfo=ZURICH)
    bsd = logs.parse_line(
        "Dec 31 23:59:58 h sshd[7]: Invalid user bob from 192.0.2.9 port 4", now=now, tz=ZURICH
    )
    assert bsd.time == datetime(2025, 12, 31, 23, 59, 58, tzinfo=ZURICH)  # last year's
    iso = logs.parse_line(
        "2026-11-24T22:24:55.984841+00:00 lab sshd-session[5104]: Accepted "
        "publickey for alice from 127.0.0.1 port 40000 ssh2: ED25519 SHA256:x"
    )
    assert (iso.process, iso.outcome, iso.method, iso.time.microsecond) == (
        "sshd-session",
        "success",
        "publickey",
        984841,
    )
    rfc = logs.parse_line(
        "<38>1 2026-01-02T03:04:05.1-04:00 web.example.com sshd 42 - "
        '[meta x="a]b"] Failed password for root from 192.0.2.1 port 2 ssh2'
    )
    assert (rfc.host, rfc.pid, rfc.ip) == ("web.example.com", 42, "192.0.2.1")
    for other in ("CRON 7 - - (root) CMD (run-parts)", "dovecot - - - Failed password for root"):
        # Another program in RFC 5424 is not sshd, whatever its message says.
        assert logs.parse_line(f"<38>1 2026-01-02T03:04:05Z h {other} from 192.0.2.1") is None
    bare = logs.parse_line("Authentication refused: bad ownership or modes for directory /home/b")
    assert (bare.event, bare.reason) == ("bad_modes", "/home/b")
    busybox = logs.parse_line(  # Alpine's syslogd: facility.level after the host
        "Nov 28 10:00:00 h auth.info sshd[9]: Failed password for root from 192.0.2.3 port 2 ssh2"
    )
    assert (busybox.host, busybox.process, busybox.pid, busybox.ip) == ("h", "sshd", 9, "192.0.2.3")
    dated = logs.parse_line(  # a template that writes the year before the time, or after it
        "Dec 31 2024 23:59:58 h sshd[7]: Invalid user bob from 192.0.2.9 port 4", now=now, tz=ZURICH
    )
    assert (dated.time.year, dated.host, dated.ip) == (2024, "h", "192.0.2.9")
    after = logs.parse_line("Dec 31 23:59:58 2024 h sshd[7]: Invalid user bob from 192.0.2.9")
    assert (after.time.year, after.host) == (2024, "h")
    raw = logs.parse_line("<38>Nov 28 10:00:00 h sshd[9]: Invalid user x from 192.0.2.4 port 1")
    assert (raw.host, raw.event, raw.ip) == ("h", "invalid_user", "192.0.2.4")
    assert logs.parse_line("<1>" * 3000) is None  # priorities without a message: no sshd line
    assert logs.parse_line("Nov 28 10:00:00 h CRON[1]: session opened for user root") is None
    assert logs.parse_line("Nov 28 10:00:00 h sshd[1]: something sshd never said") is False


def test_files_gzip_directories_journal_and_garbage(tmp_path) -> None:
    line = "Nov 28 10:00:0{} h sshd[{}]: Failed password for root from 192.0.2.{} port 22 ssh2\n"
    (tmp_path / "auth.log").write_text(line.format(3, 3, 3))
    (tmp_path / "auth.log.1").write_text(line.format(2, 2, 2))
    with gzip.open(tmp_path / "auth.log.2.gz", "wt") as handle:
        handle.write(line.format(1, 1, 1))
    (tmp_path / "binary.log").write_bytes(b"\x00\x01\x02garbage\n" + line.format(4, 4, 4).encode())
    (tmp_path / "cut.log.3.gz").write_bytes(gzip.compress(line.format(5, 5, 5).encode())[:20])
    stats = logs.LogStats()
    events = list(logs.iter_events([tmp_path], stats=stats))
    assert [e.ip for e in events][:3] == ["192.0.2.1", "192.0.2.2", "192.0.2.3"]  # oldest first
    assert "192.0.2.4" in {e.ip for e in events}
    assert stats.unreadable == 2 and stats.events == 4
    record = {
        "MESSAGE": "Invalid user eve from 192.0.2.7 port 9",
        "SYSLOG_IDENTIFIER": "sshd",
        "_PID": "77",
        "_HOSTNAME": "srv",
        "__REALTIME_TIMESTAMP": "1764324000000000",
    }
    journal = tmp_path / "journal.json"
    journal.write_text(
        json.dumps(record)
        + "\n"
        + json.dumps(
            {**record, "MESSAGE": list(b"Failed password for eve from 192.0.2.7 port 9 ssh2")}
        )
        + "\n"
    )
    got = list(logs.iter_events([journal]))
    assert [(e.event, e.pid, e.ip) for e in got] == [
        ("invalid_user", 77, "192.0.2.7"),
        ("failed", 77, "192.0.2.7"),
    ]
    assert got[0].time == datetime.fromtimestamp(1764324000, got[0].time.tzinfo)


def test_a_directory_of_rotated_logs_reads_oldest_first(tmp_path) -> None:
    """logrotate's dateext names (RHEL: secure-20261101) and numbers (Debian: auth.log.1,
    auth.log.2.gz) both read oldest first, the live file last: a connection's lines across
    a rotation stay in order."""
    lines = {
        "secure-20261101": "Oct 31 10:00:00 h sshd[1]: Invalid user a from 192.0.2.1 port 1",
        "secure-20261108": "Nov  7 10:00:00 h sshd[2]: Invalid user b from 192.0.2.2 port 2",
        "secure": "Nov 20 10:00:00 h sshd[3]: Invalid user c from 192.0.2.3 port 3",
        "auth.log.2.gz": "Nov 1 10:00:00 h sshd[4]: Invalid user d from 192.0.2.4 port 4",
        "auth.log.1": "Nov 8 10:00:00 h sshd[5]: Invalid user e from 192.0.2.5 port 5",
        "auth.log": "Nov 21 10:00:00 h sshd[6]: Invalid user f from 192.0.2.6 port 6",
    }
    for name, line in lines.items():
        data = (line + "\n").encode()
        (tmp_path / name).write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
        os.utime(tmp_path / name, (1796083200, 1796083200))  # 2026-12-01: one year for all
    users = list(logs.read_sshd_log([tmp_path])["user"])
    assert users == ["d", "e", "f", "a", "b", "c"]


@pytest.mark.parametrize("suffix", [".gz", ".xz", ".bz2"])
def test_compressed_rotations_are_read(tmp_path, suffix: str) -> None:
    """gzip (Debian, RHEL), xz (SUSE's logrotate) and bzip2 rotations read like the live
    file; a truncated one is counted as unreadable, and the run goes on."""
    line = b"Nov 20 10:00:00 h sshd[3]: Invalid user c from 192.0.2.3 port 3\n"
    pack = {".gz": gzip.compress, ".xz": lzma.compress, ".bz2": bz2.compress}[suffix]
    (tmp_path / f"messages-20261101{suffix}").write_bytes(pack(line))
    (tmp_path / f"messages-20261108{suffix}").write_bytes(pack(line * 50)[:40])
    frame = logs.read_sshd_log([tmp_path])
    assert list(frame["ip"]) == ["192.0.2.3"]
    assert frame.attrs["stats"].unreadable == 1


def test_address_carried_from_the_same_process() -> None:
    lines = [
        "Nov 28 10:00:00 h sshd[9]: Connection from 192.0.2.50 port 5555 on 10.0.0.1 port 22",
        "Nov 28 10:00:01 h sshd[9]: Authentication refused: bad ownership or modes for "
        "directory /home/bob",
        "Nov 28 10:00:02 h sshd[9]: Connection closed by authenticating user bob 192.0.2.50 "
        "port 5555 [preauth]",
    ]
    events = list(logs.iter_events(lines=lines))
    assert [(e.event, e.ip, e.port) for e in events] == [
        ("connection", "192.0.2.50", 5555),
        ("bad_modes", "192.0.2.50", 5555),
        ("closed", "192.0.2.50", 5555),
    ]
    assert events[1].reason == "/home/bob" and events[2].outcome == "failure"


def test_dataframe_dtypes_and_summaries() -> None:
    base = datetime(2026, 11, 28, 10, 0, tzinfo=ZURICH)
    lines = [
        f"{(base + timedelta(seconds=i)).isoformat()} h sshd[{i}]: Failed password for root "
        f"from 203.0.113.5 port {1000 + i} ssh2"
        for i in range(12)
    ] + [
        f"{(base + timedelta(minutes=5)).isoformat()} h sshd[99]: Accepted password for root "
        "from 203.0.113.5 port 2000 ssh2",
        f"{(base + timedelta(minutes=6)).isoformat()} h sshd[98]: Invalid user x from "
        "198.51.100.1 port 3",
    ]
    frame = logs.read_sshd_log(lines=lines, tz="Europe/Zurich", chunksize=5)
    assert isinstance(frame["time"].dtype, pd.DatetimeTZDtype)
    assert str(frame["time"].dtype.tz) == "Europe/Zurich"
    assert str(frame["port"].dtype) == "Int64" and str(frame["pid"].dtype) == "Int64"
    assert str(frame["event"].dtype) == "category" and str(frame["outcome"].dtype) == "category"
    assert len(frame) == 14 and frame.attrs["stats"].events == 14
    brute = logs.brute_force_sources(frame, min_failures=10)
    assert list(brute.index) == ["203.0.113.5"] and brute.iloc[0]["failures"] == 12
    assert brute.iloc[0]["connections"] == 12  # one sshd process each
    risky = logs.accepted_after_failures(frame, min_failures=10)
    assert list(risky["ip"]) == ["203.0.113.5"] and risky.iloc[0]["failures_before"] == 12
    assert logs.failures_by(frame, "user").to_dict() == {"root": 12, "x": 1}
    series = logs.timeseries(frame, "1min")
    assert series["failure"].sum() == 13 and series["success"].sum() == 1


def test_logs_command_formats_and_bad_input(tmp_path) -> None:
    log = tmp_path / "auth.log"
    log.write_text(
        "Nov 28 10:00:00 h sshd[1]: Invalid user zed from 192.0.2.8 port 7\n"
        "Nov 28 10:00:01 h kernel: something else\n"
    )

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "runbook", "logs", *args],
            capture_output=True,
            text=True,
            timeout=60,
        )

    out = run(str(log), "--format", "jsonl")
    record = json.loads(out.stdout.splitlines()[0])
    assert set(record) == {
        "time",
        "host",
        "process",
        "pid",
        "event",
        "outcome",
        "user",
        "ip",
        "port",
        "method",
        "reason",
        "raw",
    }
    assert (record["outcome"], record["ip"], record["user"]) == ("failure", "192.0.2.8", "zed")
    assert "2 lines" in out.stderr and "1 from other programs" in out.stderr
    assert "zed" in run(str(log)).stdout and "192.0.2.8" in run(str(log), "--format", "csv").stdout
    missing = run(str(tmp_path / "nope.log"))
    assert missing.returncode == 2 and len(missing.stderr.strip().splitlines()) == 1
    bad_time = run(str(log), "--since", "yesterday-ish")
    assert bad_time.returncode == 2 and "time" in bad_time.stderr


def test_logs_command_refuses_what_is_no_log(tmp_path) -> None:
    """A binary, a README or a broken .gz is bad input (one line, exit 2); a real log without
    sshd lines (cron only) is an answer: no events, its lines counted, exit 0."""
    (tmp_path / "photo.jpg").write_bytes(bytes(range(256)) * 40)
    (tmp_path / "README").write_text("How to deploy\n\nRun make.\n")
    (tmp_path / "auth.log.gz").write_bytes(b"\x1f\x8b\x08\x00 truncated")
    (tmp_path / "cron.log").write_text("Nov 28 10:00:00 h CRON[12]: (root) CMD (true)\n")

    def run(*names: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "runbook", "logs", *(str(tmp_path / n) for n in names)],
            capture_output=True,
            text=True,
            timeout=60,
        )

    for name in ("photo.jpg", "README", "auth.log.gz"):
        refused = run(name)
        assert refused.returncode == 2, refused.stderr
        assert "not a log" in refused.stderr and refused.stderr.count("\n") == 1
        assert not refused.stdout and "Traceback" not in refused.stderr
    cron = run("cron.log")
    assert cron.returncode == 0 and "1 from other programs" in cron.stderr
    assert run("photo.jpg", "cron.log").returncode == 0  # one real log among them


_FAILED = "Failed password for root from 192.0.2.1 port 40001 ssh2"


@pytest.mark.parametrize(
    ("line", "when"),
    [
        (f"Sat 2026-11-28 10:00:01 UTC h sshd[3]: {_FAILED}", "2026-11-28T10:00:01+00:00"),
        (f"Sat 2026-11-28 10:00:01 +0100 h sshd[3]: {_FAILED}", "2026-11-28T09:00:01+00:00"),
        (f"1795860002.5 h sshd[3]: {_FAILED}", "2026-11-28T10:00:02.500000+00:00"),
        (f"2026/11/28 10:00:20 h sshd[3]: {_FAILED}", "2026-11-28T10:00:20+00:00"),
        (f"Sat Nov 28 10:00:24 2026 h sshd[3]: {_FAILED}", "2026-11-28T10:00:24+00:00"),
        (f"28 Nov 10:00:19 h sshd[3]: {_FAILED}", "2026-11-28T10:00:19+00:00"),
        (f"[  123.456789] h sshd[3]: {_FAILED}", None),  # short-monotonic: no clock
        (f"Feb 29 10:00:00 h sshd[3]: {_FAILED}", "2024-02-29T10:00:00+00:00"),
        (f"Feb 30 10:00:00 h sshd[3]: {_FAILED}", None),  # no year has it
    ],
)
def test_other_timestamp_framings(tmp_path, line: str, when: str | None) -> None:
    """journalctl's short-full, -unix and -monotonic, slashed and day-first dates, ctime:
    each an sshd event at its own time (or none), in both readers."""
    path = tmp_path / "auth.log"
    path.write_text(f"{line}\nNov 28 10:00:00 h CRON[9]: (root) CMD (true)\n")
    now = datetime(2026, 11, 28, 12, tzinfo=UTC)
    frame = logs.read_sshd_log([path], now=now, tz=UTC)
    stats = logs.LogStats()
    events = list(logs.iter_events([path], now=now, tz=UTC, stats=stats))
    _read_alike(frame, events, stats)
    assert [(e.event, e.ip, e.pid) for e in events] == [("failed", "192.0.2.1", 3)]
    assert (events[0].time.astimezone(UTC).isoformat() if events[0].time else None) == when
    assert stats.other == 1 and logs.holds_log_lines(path)


def test_escaped_user_names_read_as_sent(tmp_path) -> None:
    """sshd logs a name's non-ASCII bytes as octal escapes, PAM as they are: one name."""
    path = tmp_path / "auth.log"
    path.write_text(
        "Nov 28 10:00:00 h sshd[5]: Invalid user j\\303\\266rg from 192.0.2.1 port 7\n"
        "Nov 28 10:00:01 h sshd[5]: pam_unix(sshd:auth): authentication failure; logname= "
        "uid=0 euid=0 tty=ssh ruser= rhost=192.0.2.1  user=jörg\n"
        "Nov 28 10:00:02 h sshd[6]: Invalid user a\\\\b from 192.0.2.2 port 8\n"
    )
    now = datetime(2026, 11, 28, 12, tzinfo=UTC)
    stats = logs.LogStats()
    events = list(logs.iter_events([path], now=now, tz=UTC, stats=stats))
    _read_alike(logs.read_sshd_log([path], now=now, tz=UTC), events, stats)
    assert [e.user for e in events] == ["jörg", "jörg", "a\\b"]


def test_a_pid_no_kernel_has_is_none(tmp_path) -> None:
    path = tmp_path / "auth.log"
    path.write_text(f"Nov 28 10:00:00 h sshd[99999999999999999999]: {_FAILED}\n")
    frame = logs.read_sshd_log([path], now=datetime(2026, 11, 28, 12, tzinfo=UTC))
    assert frame["pid"].isna().all() and frame["ip"].tolist() == ["192.0.2.1"]


def _journal_json(**fields) -> str:
    record = {"_HOSTNAME": "h", "SYSLOG_IDENTIFIER": "sshd", "_PID": "7", "MESSAGE": _FAILED}
    return json.dumps({k: v for k, v in (record | fields).items() if v is not None})


@pytest.mark.parametrize(
    ("text", "events", "unreadable"),
    [
        # journalctl's hint (run as a user, 2>&1), a blank line, a BOM: still a journal.
        (
            "Hint: You are currently not seeing messages from other users.\n\n"
            + "\n".join(
                _journal_json(__REALTIME_TIMESTAMP=str(1795860000000000 + i)) for i in range(3)
            ),
            3,
            2,
        ),
        ("\ufeff" + _journal_json(__REALTIME_TIMESTAMP="1795860000000000"), 1, 0),
        # A damaged record's time is none; the record is still read.
        (_journal_json(__REALTIME_TIMESTAMP="99999999999999999999"), 1, 0),
        # Fields as journalctl writes odd values: an array (given twice), null (too long).
        (
            _journal_json(__REALTIME_TIMESTAMP="1795860000000000", SYSLOG_IDENTIFIER=["sshd", "x"]),
            1,
            0,
        ),
        (_journal_json(_SOURCE_REALTIME_TIMESTAMP="1795860000000000", _HOSTNAME=None), 1, 0),
        # An application's JSON line first does not make a syslog file a journal.
        (
            '{"level": "info", "msg": "app started"}\n'
            + "\n".join(f"Nov 28 10:00:0{i} h sshd[7]: {_FAILED}" for i in range(3)),
            3,
            0,
        ),
    ],
)
def test_journal_exports_as_found(tmp_path, text: str, events: int, unreadable: int) -> None:
    path = tmp_path / "sshd.json"
    path.write_text(text + "\n", encoding="utf-8")
    now = datetime(2026, 11, 28, 12, tzinfo=UTC)
    frame = logs.read_sshd_log([path], now=now, tz=UTC)
    stats = logs.LogStats()
    read = list(logs.iter_events([path], now=now, tz=UTC, stats=stats))
    _read_alike(frame, read, stats)
    assert [(e.event, e.ip) for e in read] == [("failed", "192.0.2.1")] * events
    assert stats.unreadable == unreadable
    assert all(e.host in ("h", None) for e in read)


def test_logs_read_what_sshd_servers_hand_over(tmp_path) -> None:
    """A truncated .gz gives the lines before the cut (zcat's); a UTF-16 export (PowerShell's
    `>`) and a pipe (`runbook logs <(ssh srv cat auth.log)`, or -) are read; an empty
    directory and JSON that is no journal are bad input; IPv6 clients print as [addr]:port."""
    text = "".join(
        f"Nov 28 10:{i // 60 % 60:02d}:{i % 60:02d} h sshd[{i}]: Failed password for root "
        f"from 2001:db8::{i % 250:x} port {1000 + i} ssh2\n"
        for i in range(30000)
    ).encode()
    packed = gzip.compress(text)
    (tmp_path / "auth.log.2.gz").write_bytes(packed[: len(packed) * 2 // 3])
    whole = subprocess.run(
        ["zcat"], input=packed[: len(packed) * 2 // 3], capture_output=True, check=False
    ).stdout.count(b"\n")
    frame = logs.read_sshd_log([tmp_path / "auth.log.2.gz"])
    assert whole > 10000 and len(frame) in (whole, whole + 1)  # + the cut line's head
    assert frame.attrs["stats"].unreadable == 1  # the cut, counted
    (tmp_path / "win.log").write_bytes(text[:2000].decode().replace("\n", "\r\n").encode("utf-16"))
    assert len(logs.read_sshd_log([tmp_path / "win.log"])) == text[:2000].count(b"\n")

    def run(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "runbook", "logs", *args],
            input=stdin.decode(),
            capture_output=True,
            text=True,
            timeout=120,
        )

    piped = run("-", stdin=text[:5000])
    lines = text[:5000].count(b"\n")
    assert piped.returncode == 0 and f"{lines} sshd events" in piped.stderr
    assert "[2001:db8::1]:1001" in piped.stdout
    (tmp_path / "empty").mkdir()
    (tmp_path / "app.json").write_text('{"a": 1}\n{"b": 2}\n')
    for bad in (str(tmp_path / "empty"), str(tmp_path / "app.json")):
        refused = run(bad)
        assert refused.returncode == 2 and refused.stderr.count("\n") == 1, refused.stderr


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.text(max_size=120),
            st.builds(
                lambda m, t: f"Nov 28 10:00:00 h sshd[1]: {m.needle}{t}",
                st.sampled_from(logs.MESSAGES),
                st.text(max_size=80),
            ),
        ),
        max_size=40,
    )
)
def test_fuzz_never_raises(lines: list[str]) -> None:
    stats = logs.LogStats()
    for event in logs.iter_events(lines=lines, stats=stats):
        assert event.outcome in ("success", "failure", "info")
    assert stats.lines == len(lines)


def _read_alike(frame: pd.DataFrame, events: list, stats: logs.LogStats) -> None:
    """The bulk reader's frame and counts equal the streaming reader's events and counts."""
    assert _records_of(frame) == _records_of_events(events)
    got = frame.attrs["stats"]
    assert (got.lines, got.other, got.unreadable, got.sshd_unrecognised) == (
        stats.lines,
        stats.other,
        stats.unreadable,
        stats.sshd_unrecognised,
    )


def _records_of(frame: pd.DataFrame) -> list[tuple]:
    """The frame's rows in LogEvent's terms (None for missing, datetimes for times)."""
    rows = []
    for record in frame.to_dict("records"):
        rows.append(
            tuple(
                None
                if pd.isna(value)
                else value.to_pydatetime()
                if isinstance(value, pd.Timestamp)
                else value
                for value in record.values()
            )
        )
    return rows


ENGINES = ("pcre2", "polars")


@contextmanager
def _engine(name: str) -> Iterator[None]:
    """The bulk reader matching lines with ``name``: PCRE2 in the native scanner
    (runbook/_scan.c, built by the install; CI must have it), or polars' regex alone, the
    reading of a machine without a C compiler."""
    if name == "polars":
        saved = logframe._scanner
        logframe._scanner = lambda: None
        try:
            yield
        finally:
            logframe._scanner = saved
        return
    if logframe._scanner() is None:
        if os.environ.get("CI"):
            pytest.fail("runbook._scan was not built: `make setup` compiles it (gcc, pcre2)")
        pytest.skip("runbook._scan is not built here (no C compiler at install)")
    yield


def test_the_native_scanner_is_built_and_refuses_bad_buffers() -> None:
    """The install builds runbook._scan (CI fails without it: the bulk reader would fall
    back to polars' regex, twice as slow); it checks what it is handed."""
    with _engine("pcre2"):
        import numpy as np

        scanner = logframe._scanner()
        offsets = np.array([0, 5, 99], np.int64)  # beyond the text
        kind, stops = np.empty(2, np.int16), np.empty(2, np.int64)
        spans = np.empty((2 * len(logframe._SLOTS), 2), np.int64)
        with pytest.raises(ValueError, match="rise within data"):
            scanner.scan(b"hello world", offsets, kind, stops, spans)
        with pytest.raises(ValueError, match="holds"):
            scanner.scan(b"hello world", offsets[:2], kind, stops, spans)


def _records_of_events(events) -> list[tuple]:
    return [tuple(getattr(e, name) for name in logs.COLUMNS) for e in events]


@pytest.mark.parametrize("engine", ENGINES)
def test_bulk_reader_equals_the_streaming_one_across_batches(
    tmp_path, monkeypatch, engine: str
) -> None:
    """read_sshd_log parses text files column-wise in batches, two at once, and does the
    per-connection carry-over afterwards: the result must be iter_events', line for line,
    even when every batch boundary cuts through connections (with either engine)."""
    if not CORPUS.is_dir():
        pytest.skip(f"the fail2ban corpus is not beside this checkout ({CORPUS})")
    logs_dir = tmp_path / "logs"
    logs_dir.mkdir()
    text = (CORPUS / "sshd").read_text(errors="replace")
    (logs_dir / "auth.log").write_text(text)
    with gzip.open(logs_dir / "auth.log.1.gz", "wt") as handle:
        handle.write(text[: len(text) // 3])
    (logs_dir / "journal.json").write_text((CORPUS / "sshd-journal").read_text(errors="replace"))
    monkeypatch.setattr(logframe, "BATCH_BYTES", 700)
    monkeypatch.setattr(logs, "_BLOCK", 300)
    since = datetime(2005, 1, 1, tzinfo=ZURICH)
    with _engine(engine):
        frame = logs.read_sshd_log([logs_dir], now=F2B_NOW, tz=ZURICH, since=since, workers=2)
    stats = logs.LogStats()
    events = list(logs.iter_events([logs_dir], now=F2B_NOW, tz=ZURICH, since=since, stats=stats))
    assert len(events) > 200
    _read_alike(frame, events, stats)
    assert frame.attrs["stats"].events == stats.events


def _corpus_messages() -> list[str]:
    """The messages of the corpus's lines (what follows "sshd[pid]: "), as templates."""
    if not CORPUS.is_dir():
        return [f"{m.needle}x" for m in logs.MESSAGES]
    text = (CORPUS / "sshd").read_text(errors="replace").splitlines()
    return [line.split("]: ", 1)[1] for line in text if "sshd[" in line and "]: " in line]


_HEADERS = [
    "Nov 28 10:00:{s:02d} {h} sshd[{p}]: ",
    "Feb  7 01:02:{s:02d} {h} sshd-session[{p}]: ",
    "Feb 7 01:02:{s:02d} {h} sshd[{p}]: ",
    "Nov 28 10:00:{s:02d} sshd[{p}]: ",
    "Nov 28 10:00:{s:02d} 2024 sshd[{p}]: ",
    "Nov 28 10:00:{s:02d}.123 {h} sshd[{p}]: ",
    "2026-11-28T10:00:{s:02d}.{p}+01:00 {h} sshd[{p}]: ",
    "2026-11-28T10:00:{s:02d}Z {h} sshd-auth[{p}]: ",
    "2026-02-30T10:00:{s:02d}+01:00 {h} sshd[{p}]: ",
    "2026-11-28T10:00:{s:02d} {h} sshd[{p}]: ",
    "<38>1 2026-11-28T10:00:{s:02d}-04:00 {h} sshd {p} - - ",
    '<38>1 2026-11-28T10:00:{s:02d}.5Z {h} sshd-session - - [a b="]"] ',
    "<38>1 2026-11-28T10:00:{s:02d}Z {h} CRON {p} - - ",
    "<38>1 2026-11-28 10:00:{s:02d} {h} sshd {p} - - ",
    "Nov 28 10:00:{s:02d} {h} sshd[{p}]: [ID 800047 auth.info] ",
    "Nov 28 10:00:{s:02d} {h} sshd[{p}]:  ",
    "Nov 28 10:00:{s:02d} {h} sshd[{p}]: kernel: [ 9.5]: ",
    "Nov 28 10:00:{s:02d} {h} CRON[{p}]: ",
    "Nov 28 10:00:{s:02d} {h} /usr/sbin/sshd[{p}]: ",
    "Nov 28 10:00:{s:02d} {h} auth.info sshd[{p}]: ",
    "<38>Nov 28 10:00:{s:02d} {h} sshd[{p}]: ",
    "",
]
_PIECES = [
    " from ",
    " port ",
    "192.0.2.7",
    "::ffff:10.0.0.1",
    "2001:db8::1",
    "host.example",
    ": ",
    " ssh2",
    " [preauth]",
    " [postauth]",
    "invalid user ",
    "é",
    "\t",
    "  ",
    "999999999",
    "3: ",
    "14: ",
    "\x00",
    "\r",
    "root",
    "ROOT LOGIN REFUSED FROM ",
    "error: ",
    "fatal: ",
    "1.2.3",
    "a.b-1",
]


@st.composite
def _mutated_line(draw) -> str:
    header = draw(st.sampled_from(_HEADERS)).format(
        s=draw(st.integers(0, 59)),
        h=draw(st.sampled_from(["h1", "h.example", "2024", "x[y"])),
        p=draw(st.integers(1, 4)),
    )
    message = draw(st.sampled_from(_corpus_messages()))
    for _ in range(draw(st.integers(0, 3))):
        at = draw(st.integers(0, len(message)))
        cut = draw(st.integers(0, 12))
        piece = draw(st.one_of(st.sampled_from(_PIECES), st.text(max_size=6)))
        message = message[:at] + piece + message[at + cut :]
    return header + message


# Lines at the edges of how logs._parse derives a field, each read by both readers.
_EDGE_LINES = [
    "Received disconnect from 192.0.2.1 port 1684:14: No supported authentication methods",
    "Received disconnect from 192.0.2.1 port 1684:3: com.jcraft.jsch.JSchException: Auth fail",
    "Received disconnect from 192.0.2.1 port 1684:11: Bye Bye",
    "Failed password for root from 192.0.2.1 port 99999 ssh2",
    "Failed password for root from 192.0.2.1 port 123456789012345678901234 ssh2",
    "Failed password for root from ::FFFF:192.0.2.9 port 22 ssh2",
    "Failed password for root from ::ffff:abcd port 22 ssh2",
    "Connection closed by authenticating user  192.0.2.1 port 22",
    "Connection closed by 192.0.2.1 port 22 [preauth]",
    "Connection closed by 192.0.2.1 port 22 [postauth]",
    "Disconnected from 192.0.2.1 port 22",
    "Disconnecting: Too many authentication failures for admin [preauth]",
    "Failed publickey for git from 192.0.2.1 port 1 ssh2: ",
    "Failed publickey for git from 192.0.2.1 port 1 ssh2: RSA SHA256:abc",
    "User bob not allowed because account is locked",
    "Accepted publickey for alice from host-1.example.org port 5 ssh2: ED25519 SHA256:x",
    "error: kex_exchange_identification: Connection closed by remote host",
    "fatal: Timeout before authentication for 192.0.2.1 port 7",
    "User child is on pid 24443",
]
# What Linux PAM stacks and older or vendor sshd log for the account causes.
_ACCOUNT_LINES = {
    "User bob not allowed because not listed in AllowUsers": (
        "not_allowed",
        "bob",
        None,
        "not listed in AllowUsers",
    ),
    # sshd's own nologin check (UsePAM no): not an AllowUsers refusal.
    "User bob not allowed because /etc/nologin exists": (
        "nologin_refused",
        "bob",
        None,
        "/etc/nologin",
    ),
    "pam_access(sshd:account): access denied for user `bob' from `192.0.2.5'": (
        "not_allowed",
        "bob",
        "192.0.2.5",
        "access denied",
    ),
    "pam_unix(sshd:account): account eve has expired (account expired)": (
        "account_expired",
        "eve",
        None,
        "account expired",
    ),
    "pam_unix(sshd:account): expired password for user eve (password aged)": (
        "password_expired",
        "eve",
        None,
        "password aged",
    ),
    "error: PAM: User account has expired for eve from 192.0.2.6": (
        "account_expired",
        "eve",
        "192.0.2.6",
        "User account has expired",
    ),
    'fatal: bad ownership or modes for chroot directory component "/srv/" [postauth]': (
        "chroot_refused",
        None,
        None,
        "/srv/",
    ),
    "error: Could not load host key: /etc/ssh/ssh_host_ed25519_key": (
        "hostkey_missing",
        None,
        None,
        "/etc/ssh/ssh_host_ed25519_key",
    ),
    # Sessions refused after the login (PAM, MaxSessions 0, ChrootDirectory).
    "error: PAM: pam_open_session(): Permission denied": (
        "session_refused",
        None,
        None,
        "Permission denied",
    ),
    "error: no more sessions": ("session_refused", None, None, "no more sessions"),
    'fatal: safely_chroot: stat("/srv/x"): No such file or directory': (
        "session_refused",
        None,
        None,
        'stat("/srv/x"): No such file or directory',
    ),
    # SSSD (AD, LDAP) users: the failure, and the access provider's refusal.
    "pam_sss(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= "
    "rhost=192.0.2.8 user=al": ("pam_failure", "al", "192.0.2.8", None),
    "pam_sss(sshd:account): Access denied for user al: 6 (Permission denied)": (
        "pam_account",
        "al",
        None,
        "Access denied",
    ),
    # AuthorizedKeysCommand: it failed, or its path is unsafe (StrictModes' rule).
    "error: AuthorizedKeysCommand /usr/local/bin/keys al returned status 1": (
        "keys_command_failed",
        None,
        None,
        "AuthorizedKeysCommand /usr/local/bin/keys al returned status 1",
    ),
    'error: Unsafe AuthorizedKeysCommand "/opt/k/keys": bad ownership or modes for directory '
    "/opt/k": ("bad_modes", None, None, "/opt/k"),
}
# sshd's own words for refusals (OpenSSH's reference table), and the lines of a session.
_REFERENCE_LINES = {
    "Authentication refused for al: bad owner or modes for /home/al/.ssh/known_hosts": (
        "bad_modes",
        "failure",
    ),
    "userauth_pubkey: unsupported public key algorithm: ssh-dss [preauth]": (
        "sig_alg_refused",
        "failure",
    ),
    "/home/al/.ssh/authorized_keys:1: Authentication tried for al with correct key but not "
    "from a permitted host (host=h, ip=192.0.2.7, required=10.0.0.0/8).": (
        "key_from_refused",
        "failure",
    ),
    "error: Authentication key ED25519 SHA256:abc revoked by file /etc/ssh/revoked": (
        "key_revoked",
        "failure",
    ),
    "error: Certificate invalid: expired": ("cert_refused", "failure"),
    'Refusing certificate ID "al" serial=5 signed by ED25519 CA SHA256:x via /etc/ssh/ca: '
    "Certificate does not contain an authorized principal": ("cert_refused", "failure"),
    "administratively prohibited connection for al from 192.0.2.7 port 5": (
        "not_allowed",
        "failure",
    ),
    "no hostkeys available -- exiting.": ("sshd_failed", "info"),
    # One address sshd cannot listen on: it may serve on the others.
    "error: Bind to port 22 on 0.0.0.0 failed: Address already in use.": ("bind_failed", "info"),
    'Unable to load host key "/etc/ssh/ssh_host_rsa_key": invalid format': (
        "hostkey_missing",
        "info",
    ),
    "Accepted key ED25519 SHA256:x found at /home/al/.ssh/authorized_keys:1": ("key_found", "info"),
    "Starting session: command for al from 192.0.2.7 port 5 id 0": ("session_start", "info"),
    "Close session: user al from 192.0.2.7 port 5 id 0": ("session_close", "info"),
    "Transferred: sent 2616, received 2520 bytes": ("transferred", "info"),
    "Closing connection to 192.0.2.7 port 5": ("closing", "info"),
    "Disconnected from user al 192.0.2.7 port 5": ("logout", "info"),  # not a failed attempt
    "Disconnected from authenticating user al 192.0.2.7 port 5 [preauth]": (
        "disconnected",
        "failure",
    ),
    # RHEL's secure: PAM's policy line and count, the reverse lookup, session set-up
    'pam_succeed_if(sshd:auth): requirement "uid >= 1000" not met by user "root"': (
        "pam_policy",
        "info",
    ),
    "PAM 2 more authentication failures; logname= uid=0 euid=0 tty=ssh ruser= "
    "rhost=192.0.2.7  user=root": ("pam_repeat", "info"),  # each failure has its own line
    "reverse mapping checking getaddrinfo for x.example [192.0.2.7] failed - POSSIBLE "
    "BREAK-IN ATTEMPT!": ("reverse_dns", "info"),
    "error: Protocol major versions differ: 2 vs. 1": ("banner_error", "failure"),
    "subsystem request for sftp by user al": ("subsystem", "info"),
    "pam_systemd(sshd:session): Failed to create session: Connection timed out": (
        "session_setup",
        "info",
    ),
    "Set /proc/self/oom_score_adj to 0": ("daemon", "info"),
    "Received SIGHUP; restarting.": ("daemon", "info"),
    "exited MaxStartups throttling after 00:01:02, 21 connections dropped": (
        "maxstartups",
        "info",
    ),
    "error: kex_protocol_error: type 20 seq 2 [preauth]": ("protocol_error", "info"),
    # A sandboxed pre-auth child killed (seccomp): the client sees its connection closed.
    "fatal: privsep_preauth: preauth child terminated by signal 31": (
        "protocol_error",
        "failure",
    ),
    "Read error from remote host 192.0.2.7 port 5: Connection reset by peer [preauth]": (
        "reset",
        "failure",
    ),
    "error: connect_to db.example port 5432: failed.": ("forward_failed", "info"),
    "pam_sss(sshd:auth): received for user al: 7 (Authentication failure)": (
        "pam_detail",
        "info",
    ),
    "pam_unix(sshd:auth): check pass; user unknown": ("pam_detail", "info"),
    "error: key_cert_check_authority: invalid certificate": ("cert_refused", "failure"),
    'Accepted certificate ID "al" (serial 1) signed by ED25519 CA SHA256:x via /etc/ssh/ca': (
        "key_found",
        "info",
    ),
    # rsyslog's repeated-message reduction (Debian's and Ubuntu's default)
    "message repeated 2 times: [ Failed password for root from 192.0.2.7 port 22 ssh2]": (
        "failed",
        "failure",
    ),
    "message repeated 3 times: [ Connection closed by authenticating user al 192.0.2.7 "
    "port 5 [preauth]]": ("closed", "failure"),
}
# Real lines of sshd (7.4 to 10.x) and of the PAM modules under its name, each read into
# (event, outcome, user, ip, port, reason) alike by both readers.
# fmt: off
_MESSAGE_LINES = {
    # PAM knows no such user (an NSS/LDAP account not there yet): an invalid user. A client
    # that gave up and said why: its own limit of tries, or no method the server allows.
    "error: PAM: User not known to the underlying authentication module for illegal user bob "
    "from 192.0.2.7":
        ("invalid_user", "failure", "bob", "192.0.2.7", None,
         "User not known to the underlying authentication module"),
    "Received disconnect from 192.0.2.1 port 1684:2: Too many authentication failures [preauth]":
        ("too_many_failures", "failure", None, "192.0.2.1", 1684,
         "Too many authentication failures"),
    "Received disconnect from 192.0.2.1 port 1684:14: No supported authentication methods "
    "available [preauth]":
        ("no_method", "failure", None, "192.0.2.1", 1684,
         "No supported authentication methods available"),
    # The account's own refusals in the form that names the client.
    "User sh2 from 192.0.2.5 not allowed because shell /bin/nope does not exist":
        ("shell_refused", "failure", "sh2", "192.0.2.5", None, "shell /bin/nope does not exist"),
    "User dave from 192.0.2.5 not allowed because account is locked":
        ("account_locked", "failure", "dave", "192.0.2.5", None, None),
    # Addresses: a scoped link-local one as sshd wrote it; sshd -i on a pipe has none.
    "Failed password for root from fe80::1%eth0 port 40025 ssh2":
        ("failed", "failure", "root", "fe80::1%eth0", 40025, None),
    "Failed password for root from UNKNOWN port 65535 ssh2":
        ("failed", "failure", "root", None, None, None),
    "Connection closed by UNKNOWN port 65535 [preauth]":
        ("closed", "failure", None, None, None, None),
    "Connection closed by authenticating user root UNKNOWN port 65535 [preauth]":
        ("closed", "failure", "root", None, None, None),
    # Root's lines name root by their words alone.
    "ROOT LOGIN REFUSED FROM 192.0.2.90 port 22222":
        ("root_refused", "failure", "root", "192.0.2.90", 22222, None),
    "ROOT LOGIN REFUSED FROM 2001:db8::7 port 40007 [preauth]":
        ("root_refused", "failure", "root", "2001:db8::7", 40007, None),
    "ROOT LOGIN REFUSED FROM ::ffff:192.0.2.8":
        ("root_refused", "failure", "root", "192.0.2.8", None, None),
    "Root login accepted for forced command.":
        ("root_forced_command", "info", "root", None, None, None),
    # An invalid user's postponed or partial method: the user is the name it sent.
    "Postponed keyboard-interactive for invalid user bob from 192.0.2.1 port 40001 ssh2 [preauth]":
        ("partial", "info", "bob", "192.0.2.1", 40001, None),
    "Partial publickey for invalid user carol from 192.0.2.9 port 40009 ssh2: ED25519 SHA256:b":
        ("partial", "info", "carol", "192.0.2.9", 40009, "ED25519 SHA256:b"),
    "Postponed keyboard-interactive/pam for bob from 192.0.2.30 port 40023 ssh2 [preauth]":
        ("partial", "info", "bob", "192.0.2.30", 40023, None),
    # A subsystem sshd has no Subsystem line for, or cannot run.
    "subsystem request for sftp by user bob failed, subsystem not found":
        ("subsystem", "failure", "bob", None, None, "subsystem not found"),
    "subsystem request for sftp by user bob failed, execution failed":
        ("subsystem", "failure", "bob", None, None, "execution failed"),
    # sshd's "PAM: <PAM's words> for USER from HOST": Linux-PAM's and OpenPAM's words, and
    # a bare host name with UseDNS yes.
    "error: PAM: Have exhausted maximum number of retries for service for bob from 192.0.2.120":
        ("max_auth_tries", "failure", "bob", "192.0.2.120", None,
         "Have exhausted maximum number of retries for service"),
    "error: PAM: maximum number of tries exceeded for bob from 192.0.2.4":
        ("max_auth_tries", "failure", "bob", "192.0.2.4", None,
         "maximum number of tries exceeded"),
    "error: PAM: user account has expired for bob from 192.0.2.3":
        ("account_expired", "failure", "bob", "192.0.2.3", None, "user account has expired"),
    "error: PAM: Authentication failure for root from localhost":
        ("pam_failure", "failure", "root", "localhost", None, "Authentication failure"),
    "error: PAM: Authentication failure for root from buildbox":
        ("pam_failure", "failure", "root", "buildbox", None, "Authentication failure"),
    "error: PAM: Authentication failure for illegal user a from 1.2.3.4 from buildbox":
        ("pam_failure", "failure", "a from 1.2.3.4", "buildbox", None, "Authentication failure"),
    # PAM modules under sshd's name: a locked account, a refused session, what PAM could
    # not check, a password about to expire, SSSD's success, a user name with a space.
    "pam_faillock(sshd:auth): User unknown":
        ("pam_detail", "info", None, None, None, "User unknown"),
    "pam_faillock(sshd:auth): User unknown: zork":
        ("pam_detail", "info", "zork", None, None, "User unknown"),
    "pam_tally2(sshd:auth): user bob (1001) has time limit [587s left] since last failure.":
        ("account_locked", "failure", "bob", None, None,
         "user bob (1001) has time limit [587s left] since last failure."),
    "pam_limits(sshd:session): Too many logins (max 2) for bob":
        ("session_refused", "failure", "bob", None, None, "Too many logins (max 2)"),
    "pam_unix(sshd:auth): check pass; user (zork) unknown":
        ("pam_detail", "info", "zork", None, None, "user (zork) unknown"),
    "pam_unix(sshd:auth): bad username [ ]":
        ("pam_detail", "info", " ", None, None, "bad username"),
    "pam_unix(sshd:auth): auth could not identify password for [bob]":
        ("pam_detail", "info", "bob", None, None, "could not identify password"),
    "pam_unix(sshd:account): password for user bob will expire in 3 days":
        ("password_expiring", "info", "bob", None, None,
         "password for user bob will expire in 3 days"),
    "pam_sss(sshd:auth): authentication success; logname= uid=0 euid=0 tty=ssh ruser= "
    "rhost=192.0.2.105 user=jdoe":
        ("pam_success", "success", "jdoe", "192.0.2.105", None, None),
    "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= "
    "rhost=192.0.2.122  user=bob smith":
        ("pam_failure", "failure", "bob smith", "192.0.2.122", None, None),
    "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= "
    "rhost=192.0.2.107  user=bob [preauth]":
        ("pam_failure", "failure", "bob", "192.0.2.107", None, None),
    "PAM service(sshd) ignoring max retries; 5 > 3":
        ("pam_repeat", "info", None, None, None, "ignoring max retries; 5 > 3"),
    # A name with a space (SSSD's, AD's), whole: Linux-PAM's pam_unix_sess.c (1.5+ writes
    # "U(uid=N) by L(uid=N)", 1.3 "U by L(uid=N)"), pam_faillock.c, SSSD's pam_sss.c.
    "pam_unix(sshd:session): session opened for user bob smith(uid=1001) by (uid=0)":
        ("session_opened", "success", "bob smith", None, None, None),
    "pam_unix(sshd:session): session opened for user bob smith by (uid=0)":
        ("session_opened", "success", "bob smith", None, None, None),
    "pam_unix(sshd:session): session closed for user bob smith":
        ("session_closed", "info", "bob smith", None, None, None),
    "pam_faillock(sshd:auth): Consecutive login failures for user bob smith account temporarily "
    "locked":
        ("account_locked", "failure", "bob smith", None, None,
         "Consecutive login failures for user bob smith account temporarily locked"),
    "pam_sss(sshd:auth): received for user bob smith: 7 (Authentication failure)":
        ("pam_detail", "info", "bob smith", None, None, "7 (Authentication failure)"),
    "Starting session: shell on pts/0 for bob smith from 192.0.2.7 port 5 id 0":
        ("session_start", "info", "bob smith", "192.0.2.7", 5, "shell on pts/0"),
    "Starting session: forced-command (key-option) 'for h in a b; do x; done' for al from "
    "192.0.2.7 port 5 id 0":
        ("session_start", "info", "al", "192.0.2.7", 5,
         "forced-command (key-option) 'for h in a b; do x; done'"),
    "pam_sss(sshd:account): Access denied for user bob smith: 6 (Permission denied)":
        ("pam_account", "failure", "bob smith", None, None, "Access denied"),
    # sshd cannot start: upstream's words (logit's "sshd: " prefix, the capital P, the host
    # key path without quotes, the count of bad options).
    "sshd: no hostkeys available -- exiting.":
        ("sshd_failed", "info", None, None, None, "no hostkeys available"),
    "Privilege separation user sshd does not exist":
        ("sshd_failed", "info", None, None, None, "Privilege separation user sshd does not exist"),
    "Unable to load host key: /etc/ssh/ssh_host_rsa_key":
        ("hostkey_missing", "info", None, None, None, "/etc/ssh/ssh_host_rsa_key"),
    "/etc/ssh/sshd_config: terminating, 1 bad configuration options":
        ("sshd_failed", "info", None, None, None,
         "/etc/ssh/sshd_config: terminating, 1 bad configuration options"),
    # The 9.8+ listener: penalties, its rate-limited drop lines, its crashed children.
    "srclimit_penalise: 198.51.100.15/32: activating ipv4 penalty of 45.000 seconds for "
    "penalty: attempted authentication by invalid user":
        ("penalty", "info", None, "198.51.100.15", None,
         "activating ipv4 penalty of 45.000 seconds for penalty: attempted authentication by "
         "invalid user"),
    "PerSourcePenalties logging rate-limited: additional 17 connections dropped":
        ("maxstartups", "info", None, None, None,
         "PerSourcePenalties logging rate-limited: additional 17 connections dropped"),
    "Maxstartups logging rate-limited: additional 3 connections dropped":
        ("maxstartups", "info", None, None, None,
         "Maxstartups logging rate-limited: additional 3 connections dropped"),
    "error: session process 5012 for connection from 198.51.100.18 to 192.0.2.1 killed by "
    "signal 11":
        ("session_crash", "info", None, "198.51.100.18", None, "killed by signal 11"),
    "Session process 5013 unpriv child crash for connection from 198.51.100.19 to 192.0.2.1":
        ("session_crash", "info", None, "198.51.100.19", None, "unpriv child crash"),
    # That connection's own line (9.8's monitor, 10.x's), read as 7.4's privsep_preauth one.
    "error: mm_reap: preauth child terminated by signal 31":
        ("protocol_error", "failure", None, None, None, "preauth child terminated by signal 31"),
    "fatal: monitor_child_preauth: preauth child 5014 terminated by signal 31":
        ("protocol_error", "failure", None, None, None,
         "preauth child 5014 terminated by signal 31"),
    # Older releases (RHEL 7's 7.4 among them), and refusals of a connection or a key.
    "ssh_dispatch_run_fatal: Connection from authenticating user root 45.33.1.14 port 50011: "
    "Connection corrupted [preauth]":
        ("protocol_error", "failure", "root", "45.33.1.14", 50011, "Connection corrupted"),
    "ssh_dispatch_run_fatal: Connection from invalid user a b 45.33.1.15 port 50012: "
    "message authentication code incorrect [preauth]":
        ("protocol_error", "failure", "a b", "45.33.1.15", 50012,
         "message authentication code incorrect"),
    # sshd hangs up (packet.c 8.0+, ssh_packet_disconnect: "Disconnecting %s: %.100s", the
    # client named with auth2.c's preamble): before login a refusal, after it ("user U") not;
    # the reasons with their own event keep it.
    "Disconnecting authenticating user root 192.0.2.4 port 5022: no authentication methods "
    "enabled [preauth]":
        ("disconnecting", "failure", "root", "192.0.2.4", 5022,
         "no authentication methods enabled"),
    "Disconnecting 2001:db8::5 port 50022: bad service request ssh-foo [preauth]":
        ("disconnecting", "failure", None, "2001:db8::5", 50022, "bad service request ssh-foo"),
    "Disconnecting user bob smith 2001:db8::5 port 50022: Possible attack: attempt to open a "
    "session after additional sessions disabled":
        ("disconnecting", "info", "bob smith", "2001:db8::5", 50022,
         "Possible attack: attempt to open a session after additional sessions disabled"),
    "Disconnecting invalid user bob smith 2001:db8::5 port 50022: Too many authentication "
    "failures [preauth]":
        ("too_many_failures", "failure", "bob smith", "2001:db8::5", 50022, None),
    # packet.c 8.0+, sshpkt_vfatal: "%s%sConnection %s %s" and its ssh_err (auth2.c's
    # userauth_finish, serverloop.c's server_input_channel_req), a time-out, and a close or a
    # reset after login ("user U"): no failed attempt.
    "userauth_finish: send PAM banner: Connection from authenticating user bob 192.0.2.4 port "
    "5022: Broken pipe [preauth]":
        ("protocol_error", "failure", "bob", "192.0.2.4", 5022, "Broken pipe"),
    "server_input_channel_req: send reply: Connection from user bob smith 2001:db8::5 port "
    "50022: Broken pipe":
        ("protocol_error", "info", "bob smith", "2001:db8::5", 50022, "Broken pipe"),
    "Connection from user bob smith 2001:db8::5 port 50022 timed out":
        ("client_timeout", "info", "bob smith", "2001:db8::5", 50022, None),
    "Connection closed by user bob 192.0.2.4 port 5022":
        ("logout", "info", "bob", "192.0.2.4", 5022, None),
    "Connection reset by user bob 192.0.2.4 port 5022":
        ("logout", "info", "bob", "192.0.2.4", 5022, None),
    "Disconnected from user bob smith 2001:db8::5 port 50022":
        ("logout", "info", "bob smith", "2001:db8::5", 50022, None),
    # UnusedConnectionTimeout (serverloop.c 9.2+).
    "terminating inactive connection from user bob 192.0.2.4 port 5022":
        ("client_timeout", "info", "bob", "192.0.2.4", 5022, None),
    # Keys and certificates sshd refuses: auth.c's auth_openfile (7.4-8.9) and
    # auth2-pubkeyfile.c's (9.2+), auth-options.c (7.4) and auth2-pubkeyfile.c (9.2+) from=
    # and source-address, monitor.c's FIDO checks (8.2+), auth2-pubkey.c and
    # auth2-hostbased.c's algorithm checks (RequiredRSASize: 9.2+), AuthorizedKeysCommand
    # and AuthorizedPrincipalsCommand (auth2-pubkey.c, misc.c), auth.c's revoked key.
    "User 'bob smith' authorized keys '/home/bob smith/.ssh/authorized_keys' is not a regular "
    "file":
        ("keys_unreadable", "failure", "bob smith", None, None,
         "/home/bob smith/.ssh/authorized_keys"),
    "User bob authorized keys /home/bob/.ssh/authorized_keys is not a regular file":
        ("keys_unreadable", "failure", "bob", None, None, "/home/bob/.ssh/authorized_keys"),
    "Could not open user 'bob' authorized principals '/etc/ssh/principals/bob': Permission "
    "denied":
        ("keys_unreadable", "failure", "bob", None, None, "/etc/ssh/principals/bob"),
    "Authentication tried for bob with correct key but not from a permitted host "
    "(host=c.example, ip=192.0.2.4).":
        ("key_from_refused", "failure", "bob", "192.0.2.4", None,
         "not from a permitted host (host=c.example, ip=192.0.2.4)"),
    "/home/bob/.ssh/authorized_keys:2: Authentication tried for bob with valid certificate "
    "but not from a permitted source address (2001:db8::5).":
        ("key_from_refused", "failure", "bob", "2001:db8::5", None,
         "not from a permitted source address (2001:db8::5)"),
    "error: public key ECDSA-SK SHA256:abc signature for invalid user bob smith from "
    "2001:db8::5 port 50022 rejected: user verification requirement not met ":
        ("key_refused", "failure", "bob smith", "2001:db8::5", 50022,
         "user verification requirement not met"),
    "userauth_pubkey: refusing RSA key: Invalid key length [preauth]":
        ("sig_alg_refused", "failure", None, None, None, "Invalid key length"),
    "userauth_pubkey: certificate signature algorithm ssh-rsa: signature algorithm not "
    "supported [preauth]":
        ("sig_alg_refused", "failure", None, None, None, "signature algorithm not supported"),
    "userauth_hostbased: signature algorithm ssh-rsa not in HostbasedAcceptedAlgorithms "
    "[preauth]":
        ("sig_alg_refused", "failure", None, None, None, "HostbasedAcceptedAlgorithms"),
    "Accepted ED25519 public key SHA256:x from bob@client.example":
        ("key_found", "info", None, None, None, "bob@client.example"),
    'error: AuthorizedKeysCommandUser "keys" not found: No such file or directory':
        ("keys_command_failed", "failure", None, None, None,
         'AuthorizedKeysCommandUser "keys" not found: No such file or directory'),
    "error: AuthorizedPrincipalsCommand /usr/local/bin/p bob failed, status 1":
        ("keys_command_failed", "failure", None, None, None,
         "AuthorizedPrincipalsCommand /usr/local/bin/p bob failed, status 1"),
    'error: Unsafe AuthorizedPrincipalsCommand "/opt/p": bad ownership or modes for '
    "directory /opt":
        ("bad_modes", "failure", None, None, None, "/opt"),
    "error: WARNING: revoked key for bob attempted authentication":
        ("key_revoked", "failure", "bob", None, None, "revoked key"),
    # Refused before the key exchange: kex.c (8.0+) on a banner that is no SSH one and on
    # scanners and probers it drops, 7.4's sshd.c on its own banner and on SSH-1 era clients.
    "error: Bad remote protocol version identification: 'SSH-2.0'":
        ("banner_error", "failure", None, None, None, "SSH-2.0"),
    "scanned from 2001:db8::5 port 50022 with SSH-2.0-Nmap-SSH2-Hostkey.  Don't panic.":
        ("banner_error", "failure", None, "2001:db8::5", 50022, "SSH-2.0-Nmap-SSH2-Hostkey"),
    "Could not write ident string to 192.0.2.4 port 5022":
        ("banner_error", "failure", None, "192.0.2.4", 5022, None),
    'fatal: Client version "OpenSSH_2.5.1" uses unsafe key agreement; refusing connection':
        ("kex_failed", "failure", None, None, None,
         'Client version "OpenSSH_2.5.1" uses unsafe key agreement'),
    # auth-pam.c's fatal ends of a login: credentials, an expired password it could not
    # change (7.4-9.7 "(unable to change with privsep)", 9.8-10.2 bare), a name too long.
    "fatal: PAM: pam_setcred(): Failure setting user credentials":
        ("session_refused", "failure", None, None, None, "Failure setting user credentials"),
    "fatal: PAM: pam_chauthtok(): Authentication token manipulation error":
        ("password_expired", "failure", None, None, None,
         "Authentication token manipulation error"),
    "fatal: Password expired (unable to change with privsep)":
        ("password_expired", "failure", None, None, None,
         "Password expired (unable to change with privsep)"),
    "fatal: Password expired":
        ("password_expired", "failure", None, None, None, "Password expired"),
    "fatal: Username too long from 2001:db8::5 port 50022":
        ("invalid_user", "failure", None, "2001:db8::5", 50022, "Username too long"),
    # sshd.c's checks at its start (it exits: nothing listens), and a host key pair that
    # does not match (9.2+ too).
    "fatal: /var/empty must be owned by root and not group or world-writable.":
        ("sshd_failed", "info", None, None, None,
         "/var/empty must be owned by root and not group or world-writable"),
    "fatal: /usr/libexec/openssh/sshd-session does not exist or is not executable":
        ("sshd_failed", "info", None, None, None,
         "/usr/libexec/openssh/sshd-session does not exist or is not executable"),
    "fatal: sshd re-exec requires execution with an absolute path":
        ("sshd_failed", "info", None, None, None,
         "sshd re-exec requires execution with an absolute path"),
    "fatal: AuthenticationMethods cannot be satisfied by enabled authentication methods":
        ("sshd_failed", "info", None, None, None,
         "AuthenticationMethods cannot be satisfied by enabled authentication methods"),
    "fatal: AuthorizedKeysCommand set without AuthorizedKeysCommandUser":
        ("sshd_failed", "info", None, None, None,
         "AuthorizedKeysCommand set without AuthorizedKeysCommandUser"),
    "error: Public key for /etc/ssh/ssh_host_rsa_key does not match private key":
        ("hostkey_missing", "info", None, None, None, "/etc/ssh/ssh_host_rsa_key"),
    # The listener's throttling (sshd.c 8.9-9.9), dispatch.c's unexpected messages, and
    # serverloop.c's refused forwardings.
    "error: in MaxStartups throttling for 00:00:30, 10 connections dropped":
        ("throttling", "info", None, None, None,
         "in MaxStartups throttling for 00:00:30, 10 connections dropped"),
    "dispatch_protocol_error: type 20 seq 3 [preauth]":
        ("protocol_error", "info", None, None, None, "type 20 seq 3"),
    "refused local port forward: originator 127.0.0.1 port 40000, target db.example port 5432":
        ("forward_failed", "info", None, None, None,
         "refused local port forward: originator 127.0.0.1 port 40000, target db.example port "
         "5432"),
    # pam_tally2.c's unknown user (Linux-PAM 1.1-1.4), pam_sss.c's system info and the
    # messages it shows the user.
    "pam_tally2(sshd:auth): pam_get_uid; no such user admin":
        ("pam_detail", "info", "admin", None, None, "no such user"),
    "pam_sss(sshd:auth): system info: [Cannot read password]":
        ("pam_detail", "info", None, None, None, "Cannot read password"),
    "pam_sss(sshd:auth): User info message: Your password will expire in 3 days":
        ("pam_detail", "info", None, None, None,
         "User info message: Your password will expire in 3 days"),
    "refusing previously-used ED25519 key [preauth]":
        ("key_reused", "failure", None, None, None, None),
    "error: Could not get shadow information for NOUSER":
        ("invalid_user", "failure", None, None, None,
         "Could not get shadow information for NOUSER"),
    "Bad packet length 1349676916. [preauth]":
        ("protocol_error", "failure", None, None, None, "Bad packet length 1349676916"),
    "Corrupted MAC on input. [preauth]":
        ("protocol_error", "failure", None, None, None, "Corrupted MAC on input"),
    "Disconnecting: Packet corrupt [preauth]":
        ("protocol_error", "failure", None, None, None, "Packet corrupt"),
    "Timeout, client not responding from user bob 192.0.2.11 port 40011":
        ("client_timeout", "info", "bob", "192.0.2.11", 40011, None),
    "Timeout, client not responding.":
        ("client_timeout", "info", None, None, None, None),
    "error: Connection from 192.0.2.7: refusing non-sftp session":
        ("session_refused", "failure", None, "192.0.2.7", None, "refusing non-sftp session"),
    "error: Connection from user bob 192.0.2.7 port 40006: refusing non-sftp session":
        ("session_refused", "failure", "bob", "192.0.2.7", 40006, "refusing non-sftp session"),
    # UseDNS yes, upstream's words since 7.4 (auth.c, 9.8+ packet.c): no "POSSIBLE BREAK-IN".
    "reverse mapping checking getaddrinfo for c.example [2001:db8::5] failed.":
        ("reverse_dns", "info", None, "2001:db8::5", None, "c.example"),
    "Address 192.0.2.4 maps to c.example, but this does not map back to the address.":
        ("reverse_dns", "info", None, "192.0.2.4", None,
         "c.example, but this does not map back to the address."),
    'Nasty PTR record "1.2.3.4" is set up for 192.0.2.12, ignoring':
        ("reverse_dns", "info", None, "192.0.2.12", None, "1.2.3.4"),
}
# fmt: on
_EDGE_LINES += [*_ACCOUNT_LINES, *_REFERENCE_LINES, *_MESSAGE_LINES]


@pytest.mark.parametrize("message", list(_MESSAGE_LINES))
def test_sshd_and_pam_messages_read_alike(tmp_path, message: str) -> None:
    """Each line's event, outcome, user, address, port and reason, the same from both
    readers (the polars one runs the patterns in Rust's regex engine)."""
    path = tmp_path / "auth.log"
    path.write_text(f"Nov 28 10:00:00 h sshd[1]: {message}\n")
    now = datetime(2026, 11, 28, 12, tzinfo=ZURICH)
    frame = logs.read_sshd_log([path], now=now, tz=ZURICH)
    stats = logs.LogStats()
    events = list(logs.iter_events([path], now=now, tz=ZURICH, stats=stats))
    _read_alike(frame, events, stats)
    [e] = events
    assert (e.event, e.outcome, e.user, e.ip, e.port, e.reason) == _MESSAGE_LINES[message]


def test_sshd_refusals_and_session_lines_of_the_reference() -> None:
    """Every refusal OpenSSH logs has its event (a normal logout is no failure), so a real
    auth.log leaves few "sshd lines not recognised"."""
    got = {
        m: (e.event, e.outcome)
        for m in _REFERENCE_LINES
        if (e := logs.parse_line(f"Nov 28 10:00:00 h sshd[1]: {m}"))
    }
    assert got == _REFERENCE_LINES


def test_server_side_messages_of_pam_and_older_sshd() -> None:
    """Each read as the event whose cause `diagnose --auth-log` names."""
    got = {
        m: (e.event, e.user, e.ip, e.reason)
        for m in _ACCOUNT_LINES
        if (e := logs.parse_line(f"Nov 28 10:00:00 h sshd[1]: {m}"))
    }
    assert got == _ACCOUNT_LINES


@pytest.mark.parametrize("engine", ENGINES)
def test_bulk_reader_edge_lines(tmp_path, engine: str) -> None:
    """Outcome rules (preauth ends, disconnect codes 3 and 14), ports that are no TCP
    port, mapped addresses, empty details: both readers derive the fields alike."""
    lines = [
        f"Nov 28 10:{i // 60:02d}:{i % 60:02d} h sshd[{i % 3}]: {m}"
        for i, m in enumerate(_EDGE_LINES)
    ]
    path = tmp_path / "auth.log"
    path.write_text("\n".join(lines) + "\n")
    now = datetime(2026, 11, 28, 12, tzinfo=ZURICH)
    with _engine(engine):
        frame = logs.read_sshd_log([path], now=now, tz=ZURICH)
    events = list(logs.iter_events([path], now=now, tz=ZURICH))
    assert len(events) == len(lines)
    assert _records_of(frame) == _records_of_events(events)
    by_line = {e.raw.split(": ", 1)[1]: e for e in events}
    assert by_line[_EDGE_LINES[0]].outcome == "failure"  # code 14: no methods left
    assert by_line[_EDGE_LINES[2]].outcome == "info"
    assert by_line[_EDGE_LINES[4]].port is None and by_line[_EDGE_LINES[5]].ip == "192.0.2.9"


@pytest.mark.parametrize("engine", ENGINES)
def test_long_multibyte_and_odd_lines_read_alike(tmp_path, engine: str) -> None:
    """Lines are cut at logs.MAX_LINE characters, not bytes (a multibyte user name past
    the cut), CR and LF are stripped off their ends only, a NUL makes a line unreadable,
    a message that no pattern reads is counted with its example, and the framings the
    native scanner reads (or leaves to Python) around a bracketed name: both readers
    alike."""
    cut = logs.MAX_LINE
    head = "Nov 28 10:00:00 h sshd[7]: "
    lines = [
        f"{head}Failed password for {'é' * cut} from 192.0.2.1 port 22 ssh2",
        f"{head}Invalid user {'ü' * (cut - len(head) - 40)} from 192.0.2.2 port 23",
        f"{head}Invalid user {'x' * (cut - len(head) - 41)} from 192.0.2.3 port 24",
        f"{head}Failed password for bob from 192.0.2.4 port 25 ssh2\r\r",
        f"{head}Failed password for bob\r from 192.0.2.5 port 26 ssh2",
        f"{head}Failed password for b\0b from 192.0.2.6 port 27 ssh2",
        f"{head}Something sshd never said",
        "Nov 28 10:00:00 2024 sshd[8]: Failed password for eve from 192.0.2.7 port 28 ssh2",
        "Nov 28 10:00:00 h sshd[9]: message repeated 2 times: [ Failed password for eve "
        "from 192.0.2.8 port 29 ssh2]",
        "Nov 28 10:00:00 h kernel: [ 1.0] sshd[10]: Failed password for eve from 192.0.2.9 "
        "port 30 ssh2",
        # Bracketed names without a host (fail2ban's test logs), their variants.
        "Mar  3 00:17:22 [sshd]: User root from 192.0.2.10 not allowed because not listed "
        "in AllowUsers",
        "Jun 25 23:53:34 [sshd] Failed password for eve from 192.0.2.11 port 31 ssh2",
        "Jun 25 23:53:34 [sshd-session]:  Failed password for eve from 192.0.2.12 port 32 ssh2",
        "Jun 25 23:53:34 [sshd][77]: Failed password for eve from 192.0.2.13 port 33 ssh2",
        "Jun 25 23:53:34.5 [sshd]: Failed password for eve from 192.0.2.14 port 34 ssh2",
        "Jun 25 23:53:34 [sshd]: [ID 800047 auth.info] Failed password for eve from "
        "192.0.2.15 port 35 ssh2",
    ]
    path = tmp_path / "auth.log"
    path.write_text("\n".join(lines) + "\n")
    now = datetime(2026, 11, 28, 12, tzinfo=ZURICH)
    with _engine(engine):
        frame = logs.read_sshd_log([path], now=now, tz=ZURICH)
    stats = logs.LogStats()
    events = list(logs.iter_events([path], now=now, tz=ZURICH, stats=stats))
    _read_alike(frame, events, stats)
    assert stats.unreadable == 1 and stats.sshd_unrecognised >= 1
    ips = set(frame["ip"].dropna())
    # Cut past its address; within the limit in characters (not in bytes); CRs; the NUL.
    assert "192.0.2.1" not in ips and {"192.0.2.2", "192.0.2.4", "192.0.2.5"} <= ips
    assert "192.0.2.6" not in ips
    assert {f"192.0.2.{n}" for n in range(10, 16)} <= ips
    assert frame.loc[frame["ip"] == "192.0.2.2", "user"].iloc[0] == "ü" * (cut - len(head) - 40)


@settings(max_examples=200, deadline=None)
@given(st.lists(_mutated_line(), min_size=1, max_size=30))
def test_fuzz_bulk_reader_equals_the_streaming_one(lines: list[str]) -> None:
    """The bulk reader runs the message patterns in PCRE2 (or Rust's regex engine, through
    polars), the streaming one in Python's: on mutated corpus lines (every framing,
    injected addresses, odd characters, garbage) all must read every line alike."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "auth.log"
        path.write_bytes("\n".join(lines).encode("utf-8", "surrogatepass") + b"\n")
        now = datetime(2026, 11, 28, 12, tzinfo=ZURICH)
        stats = logs.LogStats()
        events = list(logs.iter_events([path], now=now, tz=ZURICH, stats=stats))
        for engine in ENGINES:
            with _engine(engine):
                frame = logs.read_sshd_log([path], now=now, tz=ZURICH)
            _read_alike(frame, events, stats)


_LIFECYCLE = [
    "Connection from {ip} port {port} on 10.0.0.1 port 22",
    "Failed password for {user} from {ip} port {port} ssh2",
    "Accepted publickey for {user} from {ip} port {port} ssh2",
    "Authentication refused: bad ownership or modes for directory /home/{user}",
    "User {user} not allowed because account is locked",
    "Connection closed by {ip} port {port}",
    "Connection closed by authenticating user {user} {ip} port {port} [preauth]",
    "Received disconnect from {ip} port {port}:11: Bye Bye",
    "Disconnected from {ip} port {port}",
    "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= "
    "rhost={ip}  user={user}",
    "error: kex_exchange_identification: Connection closed by remote host",
    "pam_unix(sshd:session): session closed for user {user}",
    "Disconnected from user {user} {ip} port {port}",
    "Transferred: sent 3, received 2 bytes",
    "Received signal 15; terminating.",
    "drop connection #0 from [{ip}]:{port} on [10.0.0.1]:22 past MaxStartups",
]


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(_LIFECYCLE),
            st.sampled_from(["h1", "h2", None]),
            st.one_of(st.none(), st.integers(1, 4)),
            st.sampled_from(["192.0.2.1", "192.0.2.2", "2001:db8::7"]),
            st.sampled_from(["alice", "bob"]),
            st.integers(1000, 1003),
            st.sampled_from([0, 1, 7, 11]),  # minutes since the line before
        ),
        max_size=40,
    )
)
def test_fuzz_carry_over_equals_the_line_by_line_one(lines: list[tuple]) -> None:
    text = []
    clock = datetime(2026, 11, 28, 1, 0)
    for message, host, pid, ip, user, port, minutes in lines:
        clock += timedelta(minutes=minutes)
        tag = f"sshd[{pid}]" if pid else "sshd"
        prefix = f"{clock:%b %d %H:%M:%S} {host} " if host else ""
        text.append(prefix + f"{tag}: " + message.format(ip=ip, user=user, port=port))
    now = datetime(2026, 11, 28, 12, tzinfo=ZURICH)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(logs, "LOOKAHEAD", 6)  # the look-ahead's bound, met in 40 lines
        frame = logs.read_sshd_log(lines=text, now=now, tz=ZURICH)
        events = list(logs.iter_events(lines=text, now=now, tz=ZURICH))
    assert _records_of(frame) == _records_of_events(events)


_REUSED_PIDS = [
    ("Nov 20 09:00:00", 4242, "Accepted publickey for alice from 203.0.113.50 port 50000 ssh2"),
    ("Nov 20 09:00:00", 4242, "pam_unix(sshd:session): session opened for user alice(uid=1000)"),
    ("Nov 28 18:00:00", 4242, "Authentication refused: bad ownership or modes for directory /h/b"),
    (
        "Nov 28 18:00:01",
        4242,
        "Connection closed by authenticating user bob 192.0.2.77 port 4 [preauth]",
    ),
    ("Nov 28 18:01:00", 4300, "Accepted password for carol from 192.0.2.60 port 41100 ssh2"),
    ("Nov 28 18:05:00", 4300, "pam_unix(sshd:session): session closed for user carol"),
    (
        "Nov 28 18:05:30",
        4300,
        "error: kex_exchange_identification: Connection closed by remote host",
    ),
    ("Nov 28 18:05:30", 4300, "Connection closed by 198.51.100.99 port 41200"),
    ("Nov 28 18:06:00", 4301, "User dave not allowed because account is locked"),
    ("Nov 28 18:06:00", 4301, "Connection closed by invalid user dave 192.0.2.88 port 5 [preauth]"),
    (
        "Nov 28 18:07:00",
        800,
        "drop connection #0 from [2001:db8::17]:50014 on [2001:db8::1]:22 "
        "penalty: failed authentication",
    ),
    ("Nov 28 18:07:01", 800, "beginning MaxStartups throttling"),
    ("Nov 28 18:07:02", 800, "Received signal 15; terminating."),
    (
        "Nov 28 18:08:00",
        4302,
        "error: kex_exchange_identification: Connection closed by remote host",
    ),
]


def test_a_line_without_address_takes_its_own_connections(tmp_path) -> None:
    """A reused process id's old connection lends nothing: a line without the client's
    address takes it from its own connection's lines, earlier or (sshd names the client
    when the connection closes) later; the listener's lines take none."""
    path = tmp_path / "auth.log"
    path.write_text("".join(f"{t} web1 sshd[{pid}]: {m}\n" for t, pid, m in _REUSED_PIDS))
    now = datetime(2026, 11, 28, 19, tzinfo=UTC)
    frame = logs.read_sshd_log([path], now=now, tz=UTC)
    stats = logs.LogStats()
    events = list(logs.iter_events([path], now=now, tz=UTC, stats=stats))
    _read_alike(frame, events, stats)
    got = {(e.event, e.pid): (e.user, e.ip) for e in events}
    assert got[("bad_modes", 4242)] == ("bob", "192.0.2.77")
    assert got[("banner_error", 4300)] == (None, "198.51.100.99")
    assert got[("account_locked", 4301)] == ("dave", "192.0.2.88")
    assert got[("throttling", 800)] == (None, None)
    assert got[("stopped", 800)] == (None, None)
    assert got[("banner_error", 4302)] == (None, None)  # no line of its own names the client
    assert got[("session_closed", 4300)] == ("carol", "192.0.2.60")
    assert "203.0.113.50" not in logs.brute_force_sources(frame, min_failures=1).index


def test_carry_over_alike_when_the_clock_jumps(tmp_path) -> None:
    """Lines out of time order (a stamp with another year among them) change neither
    reader's grouping: the look-ahead counts events, not seconds."""
    failure = "error: PAM: Authentication failure for amy from 192.0.2.6"
    lines = [
        f"Nov 28 10:00:00 h1 sshd[1]: {failure}",
        "Nov 28 10:00:00 2024 sshd[4]: error: kex_exchange_identification: Connection closed",
        f"Nov 28 10:00:00 h1 sshd[1]: {failure}",
        f"Nov 28 10:00:00 2024 sshd[4]: {failure}",
    ]
    path = tmp_path / "auth.log"
    path.write_text("\n".join(lines) + "\n")
    now = datetime(2026, 11, 28, 12, tzinfo=UTC)
    stats = logs.LogStats()
    events = list(logs.iter_events([path], now=now, tz=UTC, stats=stats))
    _read_alike(logs.read_sshd_log([path], now=now, tz=UTC), events, stats)
    assert events[1].ip == "192.0.2.6"


def write_sshd_lines(path: Path, host: str, lines: list[tuple[int, str]]) -> datetime:
    """sshd's (pid, message) lines as ``host`` logs them with RFC 3339 stamps one
    microsecond apart; returns the stamps' second (one attempt's since= and until=)."""
    when = datetime(2026, 11, 28, 13, 5, 42, tzinfo=UTC)
    stamp = "2026-11-28T13:05:42.{:06d}+00:00 {} sshd[{}]: {}"
    path.write_text("".join(stamp.format(i, host, p, m) + "\n" for i, (p, m) in enumerate(lines)))
    return when


def test_session_child_lines_belong_to_the_attempt(tmp_path) -> None:
    """A ChrootDirectory refused in the session's own process ("User child is on pid N",
    no address on its lines) still proves server.bad_modes for this attempt, naming the
    directory; another connection's child does not."""
    from runbook import serverlog

    log = tmp_path / "auth.log"
    when = write_sshd_lines(
        log,
        "srv",
        [
            (24439, 'Connection from 192.0.2.7 port 40104 on 192.0.2.1 port 22 rdomain ""'),
            (
                24439,
                "Accepted publickey for alice from 192.0.2.7 port 40104 ssh2: ED25519 SHA256:x",
            ),
            (24439, "User child is on pid 24443"),
            (24443, 'fatal: bad ownership or modes for chroot directory "/srv/sftp/alice"'),
            (
                25000,
                "Accepted publickey for alice from 198.51.100.9 port 5 ssh2: ED25519 SHA256:y",
            ),
            (25000, "User child is on pid 25001"),
            (25001, 'fatal: bad ownership or modes for chroot directory "/srv/other"'),
        ],
    )
    findings = serverlog.check_auth_log(
        [str(log)], user="alice", client="192.0.2.7", since=when, until=when, settle=0
    )
    proved = [f for f in findings if f.cause_id]
    assert [(f.cause_id, f.data.get("chroot_dir")) for f in proved] == [
        ("server.bad_modes", "/srv/sftp/alice")
    ]
    assert proved[0].data["bad_path"] == "/srv/sftp/alice"


def test_a_refused_user_is_no_invalid_user(tmp_path) -> None:
    """sshd calls a user AllowUsers refuses "invalid" too (7.4: input_userauth_request,
    the stand-in account's missing shadow entry): the cause stays account.not_allowed; a
    connection that logged no refusal of its user proves account.invalid_user."""
    from runbook import serverlog

    log = tmp_path / "secure"
    when = write_sshd_lines(
        log,
        "c7",
        [
            (5033, "User root from 192.0.2.33 not allowed because not listed in AllowUsers"),
            (5033, "input_userauth_request: invalid user root [preauth]"),
            (5033, "error: Could not get shadow information for NOUSER"),
            (5033, "Failed password for invalid user root from 192.0.2.33 port 40033 ssh2"),
            (5033, "Connection closed by 192.0.2.33 port 40033 [preauth]"),
            (5040, "Invalid user ghost from 192.0.2.33 port 40040"),
            (5040, "input_userauth_request: invalid user ghost [preauth]"),
            (5040, "Failed password for invalid user ghost from 192.0.2.33 port 40040 ssh2"),
        ],
    )

    def causes(user: str) -> set[str | None]:
        found = serverlog.check_auth_log(
            [str(log)], user=user, client="192.0.2.33", since=when, until=when, settle=0
        )
        return {f.cause_id for f in found if f.cause_id}

    assert causes("root") == {"account.not_allowed"}
    assert causes("ghost") == {"account.invalid_user"}


def test_what_the_client_or_pam_said_names_the_cause(tmp_path) -> None:
    """A password asked through PAM's conversation (keyboard-interactive/pam) is a rejected
    password; PAM's unknown user an invalid user; a client that gave up for its own limit
    of tries, or for no method the server allows, says which."""
    from runbook import serverlog

    log = tmp_path / "secure"
    when = write_sshd_lines(
        log,
        "c8",
        [
            (6001, "Failed keyboard-interactive/pam for alice from 192.0.2.41 port 40041 ssh2"),
            (
                6002,
                "error: PAM: User not known to the underlying authentication module for "
                "illegal user ghost from 192.0.2.42",
            ),
            (
                6003,
                "Received disconnect from 192.0.2.43 port 40043:2: Too many authentication "
                "failures [preauth]",
            ),
            (
                6004,
                "Received disconnect from 192.0.2.44 port 40044:14: No supported "
                "authentication methods available [preauth]",
            ),
        ],
    )

    def causes(user: str, client: str) -> set[str | None]:
        found = serverlog.check_auth_log(
            [str(log)], user=user, client=client, since=when, until=when, settle=0
        )
        return {f.cause_id for f in found if f.cause_id}

    assert causes("alice", "192.0.2.41") == {"auth.password_rejected"}
    assert causes("ghost", "192.0.2.42") == {"account.invalid_user"}
    assert causes("carol", "192.0.2.43") == {"auth.too_many_failures"}
    assert causes("carol", "192.0.2.44") == {"auth.no_method"}


def test_sshd_that_could_not_start_is_sshd_down(tmp_path) -> None:
    """sshd's own exit at start proves server.sshd_down (through a jump host, where the
    client's address is unknown, every line of the time counts); an address it could not
    bind, with others serving, does not."""
    from runbook import serverlog

    log = tmp_path / "auth.log"
    when = write_sshd_lines(
        log,
        "srv",
        [
            (4000, "error: Bind to port 22 on :: failed: Address already in use."),
            (4001, "/etc/ssh/sshd_config line 42: Bad configuration option: RSAAuthentication"),
            (4001, "/etc/ssh/sshd_config: terminating, 1 bad configuration options"),
        ],
    )
    found = serverlog.check_auth_log(
        [str(log)], user="alice", client=None, since=when, until=when, settle=0
    )
    proved = [(f.cause_id, f.evidence[0].rsplit(": ", 1)[-1]) for f in found if f.cause_id]
    assert proved == [
        ("server.sshd_down", "RSAAuthentication"),
        ("server.sshd_down", "terminating, 1 bad configuration options"),
    ]


def _journal_record(i: int, **fields) -> str:
    record = {
        "__REALTIME_TIMESTAMP": str(1764324000000000 + i * 1500001),
        "_HOSTNAME": "web1",
        "SYSLOG_IDENTIFIER": "sshd",
        "_PID": str(4000 + i % 3),
        "MESSAGE": f"Failed password for root from 192.0.2.{i % 9} port {1000 + i} ssh2",
    }
    record.update(fields)
    return json.dumps({k: v for k, v in record.items() if v is not ...})


_JOURNAL_EDGES = [
    _journal_record(0),
    _journal_record(
        1,
        SYSLOG_IDENTIFIER="sshd-session",
        MESSAGE="Accepted publickey for al from 192.0.2.1 port 22 ssh2: ED25519 SHA256:x",
    ),
    _journal_record(2, MESSAGE=list(b"Invalid user \xff from 192.0.2.2 port 3")),  # bytes
    _journal_record(3, MESSAGE=None),
    _journal_record(4, MESSAGE=...),  # no MESSAGE at all
    _journal_record(5, SYSLOG_IDENTIFIER="CRON", MESSAGE="(root) CMD (true)"),
    _journal_record(6, SYSLOG_IDENTIFIER=..., _COMM="sshd"),
    _journal_record(7, _PID=...),
    _journal_record(8, __REALTIME_TIMESTAMP=...),
    _journal_record(
        9,
        MESSAGE="Connection closed by authenticating user root 192.0.2.3 "
        "port 5 [preauth]\nsecond line",
    ),
    _journal_record(10, MESSAGE="Invalid user a\x00b from 192.0.2.4 port 6"),
    _journal_record(11, _HOSTNAME=""),
    "not json at all",
    "[1, 2, 3]",
    "",
    '{"MESSAGE": "Failed password for root from 192.0.2.5 port 7 ssh2", "_PID": 12}',
    # What the column-wise reading of plain records must leave to json.loads, or read alike:
    # journalctl's own spacing, an escape, a value json.loads refuses (a leading zero, a raw
    # tab), a nested object, empty names, times that are no int64 or other digits.
    '{ "__CURSOR" : "s=1", "__REALTIME_TIMESTAMP" : "1795860000000000", "_HOSTNAME" : "h", '
    '"SYSLOG_IDENTIFIER" : "sshd", "SYSLOG_PID" : "8", "_PID" : "9", "MESSAGE" : "Failed '
    'password for root from 192.0.2.6 port 8 ssh2" }',
    '{"MESSAGE": "Failed password for r\\u00f6t from 192.0.2.7 port 9 ssh2", "_PID": "10"}',
    '{"MESSAGE": "Failed password for root from 192.0.2.8 port 10 ssh2", "n": 012}',
    '{"MESSAGE": "Failed password for\troot from 192.0.2.9 port 11 ssh2"}',
    '{"MESSAGE": "Failed password for root from 192.0.2.10 port 12 ssh2", "o": {"a": "b"}}',
    '{"MESSAGE": "Failed password for root from 192.0.2.11 port 13 ssh2", '
    '"SYSLOG_IDENTIFIER": "", "_COMM": "", "SYSLOG_PID": "", "_PID": ""}',
    '{"MESSAGE": "Failed password for root from 192.0.2.12 port 14 ssh2", '
    '"__REALTIME_TIMESTAMP": "", "_SOURCE_REALTIME_TIMESTAMP": "1795860000000001"}',
    '{"MESSAGE": "Failed password for root from 192.0.2.13 port 15 ssh2", '
    '"__REALTIME_TIMESTAMP": "17958600000000000000"}',
    '{"MESSAGE": "Failed password for root from 192.0.2.14 port 16 ssh2", '
    '"__REALTIME_TIMESTAMP": "\u0661\u0662"}',
    '{"MESSAGE": "Failed password for root from 192.0.2.15 port 17 ssh2", '
    '"__REALTIME_TIMESTAMP": "1795860000000000", "x": [1, "a", null], "y": -0.5e3}',
]


def test_journal_records_read_alike_by_both_readers(tmp_path) -> None:
    """journalctl -o json records go through the column-wise parse as the lines
    logs._journal_line makes of them: every odd record (bytes, no message, no pid, no
    stamp, another program, a line break or a NUL inside, no JSON) reads as the streaming
    reader reads it, across batch boundaries."""
    path = tmp_path / "journal.json"
    path.write_text("\n".join(_JOURNAL_EDGES * 3) + "\n")
    now = datetime(2026, 11, 28, 12, tzinfo=ZURICH)
    for batch, engine in ((300, "pcre2"), (1 << 20, "pcre2"), (1 << 20, "polars")):
        logframe.BATCH_BYTES, saved = batch, logframe.BATCH_BYTES
        try:
            with _engine(engine):
                frame = logs.read_sshd_log([path], now=now, tz=ZURICH, workers=2)
        finally:
            logframe.BATCH_BYTES = saved
        stats = logs.LogStats()
        events = list(logs.iter_events([path], now=now, tz=ZURICH, stats=stats))
        assert len(events) > 20
        _read_alike(frame, events, stats)


@pytest.mark.parametrize("name", ["sshd", "sshd-journal"])
def test_a_pipe_is_read_in_batches_like_its_file(tmp_path, monkeypatch, name: str) -> None:
    """A pipe (`zcat auth.log.*.gz | runbook logs -`, journalctl's output) is read once, in
    batches, judged text or journal by its first batch: the frame equals its file's (it
    took the line-by-line reader, five times slower)."""
    import threading

    if not CORPUS.is_dir():
        pytest.skip(f"the fail2ban corpus is not beside this checkout ({CORPUS})")
    data = (CORPUS / name).read_bytes() * 3
    path = tmp_path / "log"
    path.write_bytes(data)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    monkeypatch.setattr(logframe, "BATCH_BYTES", 2000)  # many batches through the pipe
    writer = threading.Thread(target=lambda: fifo.write_bytes(data), daemon=True)
    writer.start()
    piped = logs.read_sshd_log([fifo], now=F2B_NOW, tz=ZURICH, workers=2)
    writer.join(10)
    read = logs.read_sshd_log([path], now=F2B_NOW, tz=ZURICH, workers=2)
    assert len(read) > 100
    pd.testing.assert_frame_equal(piped, read)
    got, want = piped.attrs["stats"], read.attrs["stats"]
    assert (got.lines, got.other, got.unreadable, got.sshd_unrecognised) == (
        want.lines,
        want.other,
        want.unreadable,
        want.sshd_unrecognised,
    )


def test_the_live_journal_is_read_as_a_stream_within_its_time_limit() -> None:
    """read_journal (`runbook logs --journal`) streams the real journalctl's output into
    the batched reader: a journal without sshd entries is an empty frame that names the
    command it ran; a journalctl that does not end in time is bad input with a hint."""
    import shutil

    if shutil.which("journalctl") is None:
        pytest.skip("journalctl is not installed here")
    frame = logs.read_journal(timeout=30)
    assert list(frame.columns) == list(logs.COLUMNS)
    assert frame.attrs["stats"].files[0].startswith("journalctl -o json --no-pager -u ssh")
    with pytest.raises(BadInput, match="did not answer within") as caught:
        logs.read_journal(timeout=1e-6)
    assert "--since" in caught.value.hint
