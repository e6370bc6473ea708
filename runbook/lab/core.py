"""Bring the lab up and down, and run a client as a scenario's user would.

The lab's state lives in ``DIR/lab.json`` and is written before anything is started, so
``down`` can remove every process (by pid and start time), network namespace and file
even after a crash. A copy of each lab's state also goes to a machine-wide index (under
/run, which a reboot clears together with the processes), so ``down --all`` finds labs
whose directory is gone. (The environment cannot mark processes: sshd's setproctitle
overwrites the environ that /proc shows.)
"""

from __future__ import annotations

import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from runbook.errors import LabError
from runbook.lab import build, netns, procs
from runbook.lab.scenarios import SCENARIOS, Scenario, by_name

__all__ = [
    "DEFAULT_DIR",
    "Lab",
    "LabTarget",
    "default_dir",
    "down",
    "down_all",
    "index_dir",
    "load",
    "up",
]

DEFAULT_DIR = "/var/tmp/ssh-runbook-lab"
PASSWORD_ENV = "RUNBOOK_LAB_PASSWORD"
NETNS_PREFIX = "rblab-"
_NODNS_HOST = "ssh.lab.invalid"
_WAIT_S = 15.0
# Mounts the lab's passwd/shadow/group and /dev (with its syslog socket) privately, then
# becomes sshd: the machine's own files are never touched.
_SSHD_WRAPPER = """set -e
mount -t overlay rblab-etc -o "lowerdir=/etc,upperdir=$1/upper,workdir=$1/work" /etc
for n in null zero full random urandom tty ptmx; do mount --bind "/dev/$n" "$2/$n"; done
mount --bind /dev/pts "$2/pts"
mount --rbind "$2" /dev
exec /usr/sbin/sshd -D -f "$3"
"""
# Shows the scenario's ~/.ssh in place of the caller's, read-only, in a private mount
# namespace: an overlay whose top layer is the scenario's home (its .ssh is opaque, so no
# real key or known_hosts shows through) over the caller's real home.
_HOME_WRAPPER = 'mount -t overlay rblab-home -o "lowerdir=$1:$2" "$2" && shift 2 && exec "$@"'


def _private_mounts(script: str, *args: str) -> list[str]:
    """argv that runs the shell ``script`` (its mounts, then exec) in a private mount
    namespace, with ``args`` as $1, $2, ...: the mounts never reach the machine's."""
    return [
        "unshare",
        "--mount",
        "--propagation",
        "private",
        "--",
        "/bin/sh",
        "-c",
        script,
        "sh",
        *args,
    ]


def index_dir() -> Path:
    """The machine-wide index of running labs (one state copy per lab id)."""
    if os.environ.get("RUNBOOK_LAB_INDEX"):
        return Path(os.environ["RUNBOOK_LAB_INDEX"])
    if os.geteuid() == 0:
        return Path("/run/ssh-runbook-lab")
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    return (
        Path(runtime, "ssh-runbook-lab")
        if runtime
        else Path(tempfile.gettempdir(), f"ssh-runbook-lab-{os.getuid()}")
    )


def default_dir() -> Path:
    """Where ``runbook lab`` keeps its lab unless told otherwise (``RUNBOOK_LAB_DIR``)."""
    return Path(os.environ.get("RUNBOOK_LAB_DIR", DEFAULT_DIR))


@dataclass
class LabTarget:
    """What a user needs to reach one scenario, and what they should find."""

    scenario: str
    expected: str | None
    client_sees: str | None
    summary: str
    state: str  # "up", or why not ("needs root")
    user: str = ""
    host: str = ""
    port: int = 0
    alias: str = ""
    home: str = ""
    ssh_config: str = ""
    known_hosts: str = ""
    identity_files: list[str] = field(default_factory=list)
    password_env: str | None = None
    netns: str | None = None
    auth_log: str | None = None
    jump: str | None = None

    @property
    def spec(self) -> Scenario:
        return by_name(self.scenario)


@dataclass
class Lab:
    """A running (or crashed) lab, as recorded in its state file."""

    dir: Path
    id: str
    netns: str | None = None
    processes: list[procs.ProcRecord] = field(default_factory=list)
    targets: dict[str, LabTarget] = field(default_factory=dict)

    # -- state ---------------------------------------------------------------------------
    @property
    def state_file(self) -> Path:
        return self.dir / "lab.json"

    def save(self) -> None:
        data = {
            "id": self.id,
            "netns": self.netns,
            "processes": [p.to_dict() for p in self.processes],
            "targets": {name: asdict(t) for name, t in self.targets.items()},
        }
        data["dir"] = str(self.dir)
        index = index_dir()
        index.mkdir(mode=0o700, parents=True, exist_ok=True)
        for path in (self.state_file, index / f"{self.id}.json"):
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(data, indent=2))
            tmp.replace(path)

    def alive(self) -> bool:
        return any(procs.alive(p) for p in self.processes)

    # -- clients -------------------------------------------------------------------------
    def client_env(self, name: str, base: dict[str, str] | None = None) -> dict[str, str]:
        """The environment a scenario's client runs with: no agent, the lab's password."""
        target = self.targets[name]
        env = dict(os.environ if base is None else base)
        env.pop("SSH_AUTH_SOCK", None)
        env["HOME"] = pwd.getpwuid(os.getuid()).pw_dir
        env["SSH_ASKPASS"] = str(self.dir / "bin" / "askpass")
        if os.geteuid() != 0:
            env["PATH"] = f"{self.dir / 'bin' / 'client'}:{env.get('PATH', os.defpath)}"
            env["RUNBOOK_LAB_SSH_CONFIG"] = target.ssh_config
        if target.password_env:
            wrong = target.spec.password == "wrong"
            env[target.password_env] = build.WRONG_PASSWORD if wrong else build.LAB_PASSWORD
        return env

    def client_argv(self, name: str, argv: Sequence[str]) -> list[str]:
        """``argv`` wrapped to run as the scenario's client: its home, its namespace."""
        target = self.targets[name]
        if target.state != "up":
            raise LabError(f"lab scenario {name} is not up ({target.state})")
        wrapped = list(argv)
        if os.geteuid() == 0:
            real_home = pwd.getpwuid(os.getuid()).pw_dir
            wrapped = _private_mounts(_HOME_WRAPPER, target.home, real_home, *wrapped)
        if target.netns:
            wrapped = ["ip", "netns", "exec", target.netns, *wrapped]
        return wrapped

    def run_client(
        self,
        name: str,
        argv: Sequence[str],
        *,
        timeout: float = 30,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` as the scenario's client and capture its output."""
        return subprocess.run(
            self.client_argv(name, argv),
            env=self.client_env(name, env),
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )

    def diagnose_argv(self, name: str, *args: str) -> list[str]:
        """``runbook diagnose`` of a scenario's alias (and its password variable, if any)."""
        target = self.targets[name]
        argv = [sys.executable, "-m", "runbook", "diagnose", target.alias, *args]
        if target.password_env:
            argv += ["--password-env", target.password_env]
        return argv

    def ssh_symptom_argv(
        self, name: str, connect_timeout: int = 3
    ) -> tuple[list[str], dict[str, str]]:
        """The real ``ssh -vvv`` that shows the scenario's symptom, and extra env for it."""
        target = self.targets[name]
        argv = ["ssh", "-vvv", "-o", f"ConnectTimeout={connect_timeout}"]
        extra: dict[str, str] = {}
        if target.password_env:
            # A password login without a terminal: ssh asks the lab's askpass helper.
            argv += ["-o", "BatchMode=no", "-o", "NumberOfPasswordPrompts=1"]
            extra["SSH_ASKPASS_REQUIRE"] = "force"
        else:
            argv += ["-o", "BatchMode=yes"]
        return [*argv, target.alias, "true"], extra


def _free_port(taken: set[int]) -> int:
    """A port nothing listens on, and not one this lab already gave out (the kernel may
    hand the same free port out twice: two servers of the lab would then collide)."""
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if port not in taken:
            taken.add(port)
            return port


def _check_dir(path: Path) -> None:
    """Lab users must be able to reach their homes under the lab directory."""
    for parent in [path, *path.parents]:
        if parent.exists() and not os.stat(parent).st_mode & 0o001:
            raise LabError(
                f"lab users cannot traverse {parent} (mode {os.stat(parent).st_mode & 0o777:o})",
                hint="choose a lab directory whose parents are world-searchable, e.g. /var/tmp/...",
            )


def load(lab_dir: Path | str | None = None) -> Lab:
    """The lab recorded in ``lab_dir`` (a lab error if there is none)."""
    path = Path(lab_dir) if lab_dir else default_dir()
    state = path / "lab.json"
    if not state.exists():
        raise LabError(f"no lab in {path}", hint="start one with `runbook lab up`")
    return _from_state(json.loads(state.read_text()), path)


def _from_state(data: dict[str, Any], path: Path) -> Lab:
    return Lab(
        dir=path,
        id=data["id"],
        netns=data.get("netns"),
        processes=[procs.ProcRecord(**p) for p in data.get("processes", [])],
        targets={n: LabTarget(**t) for n, t in data.get("targets", {}).items()},
    )


def down(lab_dir: Path | str | None = None) -> bool:
    """Stop the lab in ``lab_dir``: its processes, namespace and files. False if none."""
    try:
        lab = load(lab_dir)
    except LabError:
        return False
    _remove(lab)
    return True


def _remove(lab: Lab) -> None:
    procs.stop(lab.processes)
    if lab.netns:
        netns.delete(lab.netns)
    shutil.rmtree(lab.dir, ignore_errors=True)
    (index_dir() / f"{lab.id}.json").unlink(missing_ok=True)


def down_all() -> int:
    """Remove every lab in the machine-wide index, even those whose directory is gone.

    Each lab's namespace is recorded in the index before it is created, so none escapes.
    Returns how many labs were removed.
    """
    index = index_dir()
    entries = sorted(index.glob("*.json")) if index.exists() else []
    for entry in entries:
        data = json.loads(entry.read_text())
        _remove(_from_state(data, Path(data["dir"])))
    return len(entries)


def up(names: Iterable[str] | None = None, lab_dir: Path | str | None = None) -> Lab:
    """Start the lab's servers and write every scenario's client material.

    Scenarios that need root (lab accounts, network namespaces) are recorded as such when
    not run as root. A second ``up`` on a running lab's directory is refused.
    """
    path = Path(lab_dir) if lab_dir else default_dir()
    scenarios = [by_name(n) for n in names] if names else list(SCENARIOS)
    if (path / "lab.json").exists():
        if load(path).alive():
            raise LabError(f"a lab is already up in {path}", hint="run `runbook lab down` first")
        down(path)
    _check_dir(path.parent)
    try:
        path.mkdir(parents=True, mode=0o755, exist_ok=True)
        os.chmod(path, 0o755)
    except OSError as err:
        raise LabError(
            f"cannot make the lab directory {path}: {err.strerror}",
            hint="give --dir a directory you may create (e.g. under /var/tmp)",
        ) from err
    lab = Lab(dir=path, id=secrets.token_hex(3))
    lab.save()
    try:
        _start(lab, scenarios)
    except BaseException:
        down(path)
        raise
    return lab


def _start(lab: Lab, scenarios: list[Scenario]) -> None:
    root = os.geteuid() == 0
    keydir = lab.dir / "keys"
    keydir.mkdir(mode=0o755)
    for key, args in build.CLIENT_KEYS.items():
        build.keygen(keydir / key, args, f"ssh-runbook-lab {key}")
    runnable = [s for s in scenarios if root or s.runs_without_root]
    # Unprivileged, sshd can only log in the user it runs as: every target logs in as that.
    login = None if root else pwd.getpwuid(os.getuid()).pw_name
    for s in scenarios:
        if s not in runnable:
            lab.targets[s.name] = LabTarget(
                s.name, s.expected, s.client_sees, s.summary, state="needs root"
            )
    needs_sshd = [s for s in runnable if s.server == "sshd"]
    srv = lab.dir / "srv"
    host_key_files: list[Path] = []
    etc = None
    if needs_sshd:
        host_key_files = build.host_keys(lab.dir / "hostkeys")
        if root:
            etc = build.accounts(srv, keydir)
            Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # privilege-separation dir
        else:
            build.user_keys(srv, keydir)
    if any(s.needs_netns for s in runnable):
        lab.netns = NETNS_PREFIX + lab.id
        lab.save()
        netns.create(lab.netns)

    plan: dict[str, list] = {"syslog": [], "http": [], "ssh1": [], "hog": [], "closed": []}
    where: dict[str, tuple[str, int]] = {}
    taken: set[int] = set()
    sshd_jobs = []
    for s in runnable:
        sdir = lab.dir / "scenarios" / s.name
        sdir.mkdir(parents=True, mode=0o755)
        host, port = "127.0.0.1", _free_port(taken)
        if s.net == "noroute":
            host, port = netns.NOROUTE_HOST, 22
        elif s.net == "blackhole":
            host, port = netns.BLACKHOLE_HOST, 22
        elif s.net == "nodns":
            host, port = _NODNS_HOST, 22
        elif s.net == "firewall":
            port = netns.FIREWALLED_PORT
        elif s.net == "moved":
            host, port = netns.MOVED_HOST, 22
        where[s.name] = (host, port)
        if s.server == "none" and host == "127.0.0.1":
            plan["closed"].append(port)  # held by the supervisor: refused, and ours alone
        elif s.server == "http":
            plan["http"].append(port)
        elif s.server == "ssh1":
            plan["ssh1"].append(port)
        elif s.server == "sshd":
            log = sdir / "auth.log"
            log.touch()
            dev = layer = None
            if root:
                if s.key_options:
                    build.scenario_keys(srv, keydir, s)
                dev = build.dev_overlay(sdir)
                layer = build.etc_layer(sdir, etc)
                for name, text in s.etc_files.items():
                    path = layer / "upper" / name
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_text(text if text.endswith("\n") else text + "\n")
                plan["syslog"].append({"socket": str(dev / "log"), "log": str(log)})
            if "MaxStartups" in s.sshd_options:
                plan["hog"].append(port)
            config = sdir / "sshd_config"
            config.write_text(
                build.sshd_config(s, port=port, keys=host_key_files, srv=srv, as_user=not root)
            )
            sshd_jobs.append((s, sdir, dev, layer, config, log))

    run_dir = lab.dir / "run"
    run_dir.mkdir(mode=0o755)
    plan_file = run_dir / "plan.json"
    plan_file.write_text(json.dumps(plan))
    lab.processes.append(
        procs.spawn(
            "supervisor",
            [sys.executable, "-m", "runbook.lab.supervisor", str(plan_file)],
            log=run_dir / "supervisor.log",
        )
    )
    lab.save()
    _wait(lambda: (run_dir / "ready").exists(), "the lab supervisor", run_dir / "supervisor.log")

    for s, sdir, dev, layer, config, log in sshd_jobs:
        # Unprivileged: no private accounts or /dev, so sshd logs straight to its file.
        argv = ["/usr/sbin/sshd", "-D", "-f", str(config), "-E", str(log)]
        if root:
            argv = _private_mounts(_SSHD_WRAPPER, str(layer), str(dev), str(config))
        if s.net in ("firewall", "moved"):
            argv = ["ip", "netns", "exec", str(lab.netns), *argv]
        for attempt in (1, 2, 3):
            record = procs.spawn(f"sshd {s.name}", argv, log=sdir / "sshd.stderr")
            lab.processes.append(record)
            lab.save()
            try:
                _wait(
                    lambda log=log: b"Server listening on" in log.read_bytes(),
                    f"sshd for {s.name}",
                    sdir / "sshd.stderr",
                    record,
                )
                if s.stopped:
                    os.kill(record.pid, signal.SIGSTOP)
                break
            except LabError:
                # sshd says why it stopped through the lab's syslog server, a moment later.
                said = _said_why(log, sdir / "sshd.stderr")
                host, port = where[s.name]
                # Another program took the free port between our pick and sshd's bind:
                # pick again (ports the scenario fixes, and the hog's, stay).
                if (
                    attempt == 3
                    or b"already in use" not in said
                    or s.net != "host"
                    or (port in plan["hog"])
                ):
                    raise
                port = _free_port(taken)
                where[s.name] = (host, port)
                config.write_text(
                    build.sshd_config(s, port=port, keys=host_key_files, srv=srv, as_user=not root)
                )
    for port in plan["hog"]:
        _wait(
            lambda port=port: (run_dir / f"hog-{port}.ready").exists(),
            "the MaxStartups hog",
            run_dir / "supervisor.log",
        )

    bindir = lab.dir / "bin"
    bindir.mkdir(mode=0o755)
    askpass = bindir / "askpass"
    askpass.write_text(f'#!/bin/sh\nprintf "%s\\n" "${PASSWORD_ENV}"\n')
    os.chmod(askpass, 0o755)
    if not root:
        _user_ssh_wrapper(bindir / "client")
    for s in runnable:
        host, port = where[s.name]
        jump = f"{login or 'alice'}@127.0.0.1:{_free_port(taken)}" if s.jump else None
        material = build.client_home(
            s,
            lab.dir / "clients" / s.name / "home",
            host=host,
            port=port,
            keydir=keydir,
            host_key_files=host_key_files,
            jump=jump,
            user=login or s.user,
        )
        sdir = lab.dir / "scenarios" / s.name
        lab.targets[s.name] = LabTarget(
            s.name,
            s.expected,
            s.client_sees,
            s.summary,
            state="up",
            user=login or s.user,
            host=host,
            port=port,
            alias=s.name,
            password_env=PASSWORD_ENV if s.password != "none" else None,
            netns=lab.netns if s.needs_netns else None,
            auth_log=str(sdir / "auth.log") if s.server == "sshd" else None,
            jump=jump,
            **material,  # type: ignore[arg-type]
        )
    _write_inventory(lab)
    lab.save()


def _write_inventory(lab: Lab) -> None:
    """inventory.csv: the targets one process can triage (``runbook batch``), with -F."""
    import csv

    with (lab.dir / "inventory.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["target", "ssh_config", "password_env", "auth_log", "tags"])
        for target in lab.targets.values():
            if target.state == "up" and target.spec.batchable:
                writer.writerow(
                    [
                        target.alias,
                        target.ssh_config,
                        target.password_env or "",
                        target.auth_log or "",
                        target.spec.expected or "ok",
                    ]
                )


def _user_ssh_wrapper(bindir: Path) -> None:
    """``ssh`` that reads the scenario's config: unprivileged, no home can be shown in place
    of ~/.ssh, so clients find this first on PATH (a later ``-F`` still wins)."""
    real = shutil.which("ssh")
    if real is None:
        raise LabError("ssh is not installed", hint="install openssh-client")
    bindir.mkdir(mode=0o755)
    wrapper = bindir / "ssh"
    wrapper.write_text(f'#!/bin/sh\nexec {real} -F "$RUNBOOK_LAB_SSH_CONFIG" "$@"\n')
    os.chmod(wrapper, 0o755)


def _said_why(*logs: Path, within: float = 2.0) -> bytes:
    """What a stopped sshd logged, once its reason (a port in use, an error) has arrived."""
    deadline = time.monotonic() + within
    while True:
        said = b"".join(p.read_bytes() for p in logs if p.exists())
        if b"already in use" in said or b"error" in said.lower() or time.monotonic() > deadline:
            return said
        time.sleep(0.05)


def _wait(ready, what: str, log: Path, record: procs.ProcRecord | None = None) -> None:
    deadline = time.monotonic() + _WAIT_S
    while time.monotonic() < deadline:
        if ready():
            return
        if record is not None and not procs.alive(record):
            break
        time.sleep(0.05)
    tail = log.read_text(errors="replace").strip().splitlines()[-3:] if log.exists() else []
    raise LabError(f"{what} did not start", hint=" / ".join(tail) or f"see {log}")
