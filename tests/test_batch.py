"""Fleet triage: inventories of every kind, a batch over the lab, dask, interruption."""

from __future__ import annotations

import csv
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from runbook.errors import BadInput
from runbook.inventory import read_inventory

SUBSET = ["healthy", "port-refused", "hostkey-changed", "bad-modes", "locked", "key-perms"]


def test_inventory_kinds_are_told_apart_by_content(tmp_path) -> None:
    files = {
        "hosts.csv": "target,port,user,tags\nweb1,2222,alice,web;prod\n,22,bob,\nweb2:22,,,\n",
        "hosts.ini": "[web]\nweb1 ansible_host=192.0.2.10 ansible_port=2200 ansible_user=ops\n"
        "[web:vars]\nx=1\n[db]\ndb1 ansible_port=notaport\n",
        "hosts.yml": "all:\n  children:\n    db:\n      hosts:\n        db1:\n          "
        "ansible_host: 192.0.2.20\n          ansible_user: pg\n",
        "ssh_config": "Host web1 web2\n  HostName 192.0.2.1\nHost *.internal\n  User x\n",
        "list.txt": "# fleet\nalice@192.0.2.5:2201\nbob@\nweb3\nssh://carol@[2001:db8::7]:2202/\n",
    }
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    targets, bad = read_inventory(tmp_path / "hosts.csv")
    assert [(t.target, t.port, t.user, t.tags) for t in targets] == [
        ("web1", 2222, "alice", ["web", "prod"])
    ]
    assert [b.source for b in bad] == ["hosts.csv:3", "hosts.csv:4"]
    targets, bad = read_inventory(tmp_path / "hosts.ini")
    assert [(t.target, t.port, t.user, t.tags) for t in targets] == [
        ("192.0.2.10", 2200, "ops", ["web"])
    ]
    assert [b.source for b in bad] == ["hosts.ini:6"] and "notaport" in bad[0].reason
    targets, _ = read_inventory(tmp_path / "hosts.yml")
    assert [(t.target, t.user, t.tags) for t in targets] == [("192.0.2.20", "pg", ["db"])]
    targets, _ = read_inventory(tmp_path / "ssh_config")
    assert [t.target for t in targets] == ["web1", "web2"]  # no wildcard patterns
    assert targets[0].ssh_config == str((tmp_path / "ssh_config").resolve())
    targets, bad = read_inventory(tmp_path / "list.txt")
    assert [(t.target, t.port, t.user) for t in targets] == [
        ("192.0.2.5", 2201, "alice"),
        ("web3", None, None),
        ("2001:db8::7", 2202, "carol"),
    ]
    assert [b.source for b in bad] == ["list.txt:3"]
    with pytest.raises(BadInput, match="unknown CSV column"):
        (tmp_path / "bad.csv").write_text("target,colour\nx,red\n")
        read_inventory(tmp_path / "bad.csv")


@pytest.mark.parametrize(
    "data",
    [
        b"\xef\xbb\xbftarget,port,user\r\nweb1,2222,alice\r\n",  # Excel's "CSV UTF-8"
        b"target;port;user\r\nweb1;2222;alice\r\n",  # a spreadsheet in a ';' locale
        b'"target"\t"port"\t"user"\nweb1\t2222\talice\n',  # tab-separated
    ],
)
def test_spreadsheet_exports_are_csv_inventories(tmp_path, data: bytes) -> None:
    (tmp_path / "fleet.csv").write_bytes(data)
    targets, bad = read_inventory(tmp_path / "fleet.csv")
    assert [(t.target, t.port, t.user) for t in targets] == [("web1", 2222, "alice")]
    assert bad == []


def test_a_target_listed_twice_runs_once(tmp_path) -> None:
    """The second line is reported where it is, naming the first: one login, one row."""
    (tmp_path / "list.txt").write_text("alice@web1:2222\nbob@web1\nalice@web1:2222\n")
    targets, bad = read_inventory(tmp_path / "list.txt")
    assert [t.key for t in targets] == ["alice@web1:2222", "bob@web1"]
    assert [str(b) for b in bad] == ["list.txt:3: alice@web1:2222 is already listed at list.txt:1"]


def test_ansible_variables_reach_each_host_as_ansible_applies_them(tmp_path) -> None:
    """Group variables ([g:vars], vars:), inherited through children and from all, under
    a host's own; ranges expanded; the pre-2.0 names (ansible_ssh_user...); a host in
    two groups is one target with both tags. The user a host logs in as is what Ansible
    would use: a wrong one would be diagnosed as a refused key."""
    ini = tmp_path / "hosts.ini"
    ini.write_text(
        "[all:vars]\nansible_user=deploy\nansible_port=2222\n"
        '[web]\nweb[01:03].example.org\nweb09.example.org ansible_ssh_user="ops"\n'
        "[db]\ndb1 ansible_ssh_host=192.0.2.30 ansible_ssh_port=5432\n"
        "web01.example.org\n"
        "[prod:children]\nweb\n[prod:vars]\nansible_port=22\n"
        "[huge]\nn[0:99999]\n"
    )
    targets, bad = read_inventory(ini)
    got = {t.target: (t.port, t.user, t.tags) for t in targets}
    assert got == {
        "web01.example.org": (22, "deploy", ["web", "db"]),
        "web02.example.org": (22, "deploy", ["web"]),
        "web03.example.org": (22, "deploy", ["web"]),
        "web09.example.org": (22, "ops", ["web"]),
        "192.0.2.30": (5432, "deploy", ["db"]),
    }
    assert [b.source for b in bad] == ["hosts.ini:15"] and "more than" in bad[0].reason
    yml = tmp_path / "hosts.yml"
    yml.write_text(
        "all:\n  vars:\n    ansible_user: deploy\n  children:\n    prod:\n"
        "      vars:\n        ansible_port: 2200\n      children:\n        web:\n"
        "          hosts:\n            app[a:b]:\n            legacy:\n"
        "              ansible_ssh_user: root\n"
    )
    targets, _ = read_inventory(yml)
    assert {t.target: (t.port, t.user) for t in targets} == {
        "appa": (2200, "deploy"),
        "appb": (2200, "deploy"),
        "legacy": (2200, "root"),
    }


def _batch(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in (env or os.environ).items() if k != "SSH_AUTH_SOCK"}
    return subprocess.run(
        [sys.executable, "-m", "runbook", "batch", *args],
        capture_output=True,
        text=True,
        timeout=600,
        env=full,
    )


def _subset_inventory(lab, path: Path) -> dict[str, str]:
    """The lab's inventory.csv, cut to a few targets; their expected causes."""
    with open(Path(lab.dir) / "inventory.csv", newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r["target"] in SUBSET]
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return {r["target"]: r["tags"] for r in rows}


def _summary(out: Path) -> dict[str, dict[str, str]]:
    with open(out / "summary.csv", newline="") as handle:
        return {r["target"]: r for r in csv.DictReader(handle)}


def test_batch_over_the_lab(lab, tmp_path) -> None:
    inventory = tmp_path / "inventory.csv"
    expected = _subset_inventory(lab, inventory)
    out = tmp_path / "out"
    proc = _batch(str(inventory), "--out", str(out), "--timeout", "4", "--concurrency", "3")
    assert proc.returncode == 1, proc.stderr[-2000:]
    rows = _summary(out)
    assert set(rows) == set(expected)
    for name, cause in expected.items():
        row = rows[name]
        assert (row["cause_id"] or "ok") == cause, row
        assert bool(row["report"]) == (cause != "ok")  # reports for failures only
        if row["report"]:
            assert (Path(row["report"]) / "report.html").is_file()
    dashboard = (out / "index.html").read_text()
    assert "server.bad_modes" in dashboard and "report.html" in dashboard
    # The chart of causes: the most frequent cause's bar is full width.
    assert "class='bar' style='width:100%'" in dashboard
    started = time.monotonic()
    again = _batch(str(inventory), "--out", str(out), "--timeout", "4")
    assert again.returncode == 1 and time.monotonic() - started < 15  # nothing re-run
    assert _summary(out) == rows
    forced = _batch(
        str(inventory), "--out", str(out), "--timeout", "4", "--force", "--reports", "none"
    )
    assert {k: v["cause_id"] for k, v in _summary(out).items()} == {
        k: v["cause_id"] for k, v in rows.items()
    }
    assert all(not r["report"] for r in _summary(out).values()) and forced.returncode == 1


def test_one_target_crashing_never_loses_the_others(lab, tmp_path) -> None:
    inventory = tmp_path / "mixed.csv"
    config = lab.targets["healthy"].ssh_config
    inventory.write_text(f"target,ssh_config\nhealthy,{config}\nhealthy2,/no/such/config\n")
    out = tmp_path / "out"
    proc = _batch(str(inventory), "--out", str(out), "--timeout", "4", "--reports", "none")
    rows = _summary(out)
    assert rows["healthy"]["verdict"] == "ok"
    assert rows["healthy2"]["verdict"] == "error" and "/no/such/config" in rows["healthy2"]["error"]
    assert proc.returncode == 1


def test_bad_inventory_is_one_line_exit_2(tmp_path) -> None:
    """A missing, empty, binary or all-bad inventory: one line saying why, exit 2, and
    nothing written."""
    (tmp_path / "empty.txt").write_text("# nothing\n")
    (tmp_path / "bad.csv").write_text("target,port\nweb1,22x\nweb2,0\n")
    (tmp_path / "random.bin").write_bytes(random.Random(7).randbytes(4096))
    (tmp_path / "key").write_bytes(b"\x00\x00\x00\x0bssh-ed25519" + bytes(range(256)) * 4)
    expected = {
        "empty.txt": "names no target",
        "missing.csv": "No such file",
        "bad.csv": "names no target: bad.csv:2: port '22x' is not a number from 1 to 65535 "
        "(and 1 more)",
        "random.bin": "is not text",
        "key": "is not text",
    }
    for name, why in expected.items():
        proc = _batch(str(tmp_path / name), "--out", str(tmp_path / "o"))
        assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
        assert why in proc.stderr, proc.stderr
        assert not (tmp_path / "o").exists()


def test_spreadsheet_text_exports_are_inventories(tmp_path) -> None:
    """A spreadsheet's CSV export in Latin-1 (accented tags), and its "Unicode text" export
    (UTF-16 with a byte order mark, tab-separated), are inventories, not binary data."""
    path = tmp_path / "hosts.txt"
    path.write_bytes("target\tport\ttags\nweb1\t22\tcaf\u00e9\n".encode("utf-16"))
    targets, bad = read_inventory(path)
    assert [(t.target, t.port, t.tags) for t in targets] == [("web1", 22, ["caf\u00e9"])]
    assert not bad
    path = tmp_path / "hosts.csv"
    path.write_bytes(
        "target,port,tags\nweb1,22,caf\xe9 m\xfcnchen\nweb2,2222,d\xe9p\xf4t\n".encode("latin-1")
    )
    targets, bad = read_inventory(path)
    assert [t.target for t in targets] == ["web1", "web2"] and not bad


def test_interrupt_leaves_a_consistent_summary(tmp_path) -> None:
    """Ctrl-C in the middle: the summary holds exactly the targets that finished."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    port = listener.getsockname()[1]
    held = []
    threading.Thread(
        target=lambda: [held.append(listener.accept()) for _ in range(64)], daemon=True
    ).start()
    inventory = tmp_path / "silent.txt"  # a port that accepts and never speaks: slow targets
    inventory.write_text("".join(f"u{i}@127.0.0.1:{port}\n" for i in range(8)))
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "runbook",
            "batch",
            str(inventory),
            "--out",
            str(out),
            "--timeout",
            "1",
            "--concurrency",
            "1",
            "--reports",
            "none",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if (out / "summary.csv").is_file() and len(_summary(out)) >= 1:
            break
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    listener.close()
    assert proc.returncode == 130, err
    rows = _summary(out)
    assert 1 <= len(rows) < 8
    assert all(r["verdict"] == "failed" and r["cause_id"] for r in rows.values())
    assert "interrupted" in (out / "index.html").read_text()


def test_dask_cluster_gives_the_local_results(lab, tmp_path) -> None:
    from distributed import LocalCluster

    from runbook.batch import run_batch

    inventory = tmp_path / "inventory.csv"
    _subset_inventory(lab, inventory)
    targets, _ = read_inventory(inventory)
    local = run_batch(targets, out=tmp_path / "local", timeout=4, reports="none", progress=False)
    with LocalCluster(
        n_workers=2, threads_per_worker=2, processes=True, dashboard_address=None
    ) as cluster:
        remote = run_batch(
            targets,
            out=tmp_path / "dask",
            timeout=4,
            reports="failed",
            dask=cluster.scheduler_address,
            progress=False,
        )
    key = lambda r: (r["target"], r["verdict"], r["cause_id"])  # noqa: E731
    assert sorted(map(key, remote.rows)) == sorted(map(key, local.rows))
    assert all(
        Path(r["report"], "report.html").is_file() for r in remote.rows if r["verdict"] != "ok"
    )


_OWN_FILES = """
import json, sys
from runbook.diagnose import diagnose
r = diagnose(sys.argv[1], ssh_config=sys.argv[2], timeout=5, quick_ok=True)
ssh = next(f for f in r.findings if f.step == "ssh")
print(json.dumps({"cause": r.root_cause.id if r.root_cause else None, "evidence": ssh.evidence}))
"""


def _own_files_config(lab, name: str, tmp_path: Path, mine: str, everyone: str) -> Path:
    """An ssh_config whose Host block gives the scenario's host a known_hosts file of its
    own (holding ``mine``), before a ``Host *`` that gives every other host another one."""
    target = lab.targets[name]
    (tmp_path / "mine").write_text(mine)
    (tmp_path / "everyone").write_text(everyone)
    config = tmp_path / "config"
    config.write_text(
        f"Host own\n  HostName {target.host}\n  Port {target.port}\n  User {target.user}\n"
        f"  IdentitiesOnly yes\n  IdentityFile {target.identity_files[0]}\n"
        f"  UserKnownHostsFile {tmp_path / 'mine'}\n"
        f"Host *\n  UserKnownHostsFile {tmp_path / 'everyone'}\n"
    )
    return config


def test_fleet_target_with_its_own_known_hosts_gets_its_own_verdict(lab, tmp_path) -> None:
    """A fleet starts each ssh before `ssh -G` answers, on what the configuration gives
    every host; a host its Host block gives another known_hosts (the only one with its
    key) still logs in, and neither file changes."""
    known = Path(lab.targets["healthy"].known_hosts).read_text()
    config = _own_files_config(lab, "healthy", tmp_path, mine=known, everyone="")
    proc = lab.run_client("healthy", [sys.executable, "-c", _OWN_FILES, "own", str(config)])
    assert proc.returncode == 0, proc.stderr[-1500:]
    assert json.loads(proc.stdout)["cause"] is None
    assert (tmp_path / "mine").read_text() == known and (tmp_path / "everyone").read_text() == ""


def test_fleet_transcript_names_the_targets_own_known_hosts(lab, tmp_path) -> None:
    """When the file the configuration gives every host holds the same keys as the
    target's own, the early ssh is the target's, and its warning names the target's file
    (the one to fix), not the other."""
    stale = Path(lab.targets["hostkey-changed"].known_hosts).read_text()
    config = _own_files_config(lab, "hostkey-changed", tmp_path, mine=stale, everyone=stale)
    proc = lab.run_client("hostkey-changed", [sys.executable, "-c", _OWN_FILES, "own", str(config)])
    assert proc.returncode == 0, proc.stderr[-1500:]
    got = json.loads(proc.stdout)
    assert got["cause"] == "hostkey.changed"
    offending = [e for e in got["evidence"] if "Offending" in e]
    assert offending and all(f"{tmp_path / 'mine'}:1" in e for e in offending), got["evidence"]
