"""Inventories for ``runbook batch``: CSV, ssh_config, Ansible (INI, YAML), plain lists.

Told apart by content, not by name. Every target remembers where it came from
(``file:line``); a line that cannot be a target is reported with its place and reason,
and the others still run.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from pathlib import Path

from runbook.errors import BadInput

__all__ = ["BadLine", "InventoryTarget", "read_inventory"]

CSV_COLUMNS = (
    "target",
    "port",
    "user",
    "identity_file",
    "known_hosts",
    "ssh_config",
    "auth_log",
    "password_env",
    "tags",
)


@dataclass
class InventoryTarget:
    """One host to triage, with what its inventory line says about it."""

    target: str
    source: str
    port: int | None = None
    user: str | None = None
    identity_files: list[str] = field(default_factory=list)
    known_hosts: str | None = None
    ssh_config: str | None = None
    auth_logs: list[str] = field(default_factory=list)
    password_env: str | None = None
    tags: list[str] = field(default_factory=list)

    @property
    def key(self) -> str:
        """What identifies the target across reruns."""
        user = f"{self.user}@" if self.user else ""
        port = f":{self.port}" if self.port else ""
        return f"{user}{self.target}{port}"


@dataclass(frozen=True)
class BadLine:
    """An inventory line that is not a target, and why."""

    source: str
    reason: str

    def __str__(self) -> str:
        return f"{self.source}: {self.reason}"


# user@host[:port], also as an ssh:// URI (what ssh itself accepts, and tools print).
_TARGET = re.compile(
    r"^(?:ssh://)?(?:(?P<user>[A-Za-z0-9._][A-Za-z0-9._-]*)@)?"
    r"(?P<host>[A-Za-z0-9._-]+|\[[0-9A-Fa-f:.]+\])(?::(?P<port>\d{1,5}))?/?$"
)


def _port(text: str, where: str, bad: list[BadLine]) -> int | bool | None:
    if not text:
        return None
    if not text.isdigit() or not 0 < int(text) < 65536:
        bad.append(BadLine(where, f"port {text!r} is not a number from 1 to 65535"))
        return False
    return int(text)


def _plain(text: str, name: str) -> tuple[list[InventoryTarget], list[BadLine]]:
    targets, bad = [], []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        where = f"{name}:{number}"
        match = _TARGET.match(line)
        if not match:
            bad.append(BadLine(where, f"{line!r} is not user@host[:port]"))
            continue
        port = _port(match.group("port") or "", where, bad)
        if port is False:
            continue
        targets.append(
            InventoryTarget(
                match.group("host").strip("[]"), where, port=port, user=match.group("user")
            )
        )  # type: ignore[arg-type]
    return targets, bad


def _csv(text: str, name: str) -> tuple[list[InventoryTarget], list[BadLine]]:
    reader = csv.DictReader(io.StringIO(text))
    fields = [f.strip() for f in reader.fieldnames or []]
    unknown = [f for f in fields if f not in CSV_COLUMNS]
    if unknown:
        raise BadInput(
            f"{name}: unknown CSV column(s) {', '.join(unknown)}",
            hint=f"use {', '.join(CSV_COLUMNS)}",
        )
    targets, bad = [], []
    for number, row in enumerate(reader, 2):
        row = {k.strip(): (v or "").strip() for k, v in row.items() if k}
        where = f"{name}:{number}"
        if not row.get("target"):
            bad.append(BadLine(where, "the target cell is empty"))
            continue
        target = row["target"]
        if not _TARGET.match(target) or (
            ":" in target.split("@")[-1] and not target.startswith("ssh://")
        ):
            bad.append(
                BadLine(
                    where,
                    f"target {target!r} is not [user@]host (the port goes in the port column)",
                )
            )
            continue
        port = _port(row.get("port", ""), where, bad)
        if port is False:
            continue
        targets.append(
            InventoryTarget(
                target,
                where,
                port=port,  # type: ignore[arg-type]
                user=row.get("user") or None,
                identity_files=[row["identity_file"]] if row.get("identity_file") else [],
                known_hosts=row.get("known_hosts") or None,
                ssh_config=row.get("ssh_config") or None,
                auth_logs=[row["auth_log"]] if row.get("auth_log") else [],
                password_env=row.get("password_env") or None,
                tags=[t for t in re.split(r"[;,\s]+", row.get("tags", "")) if t],
            )
        )
    return targets, bad


def _ssh_config(text: str, name: str, path: Path) -> tuple[list[InventoryTarget], list[BadLine]]:
    targets = []
    for number, raw in enumerate(text.splitlines(), 1):
        words = raw.split("#", 1)[0].split()
        if len(words) >= 2 and words[0].lower() == "host":
            for alias in words[1:]:
                if not any(c in alias for c in "*?!"):
                    targets.append(InventoryTarget(alias, f"{name}:{number}", ssh_config=str(path)))
    return targets, []


def _ansible_host(
    name: str, variables: dict[str, str], where: str, group: str, bad: list[BadLine]
) -> InventoryTarget | None:
    port = _port(str(variables.get("ansible_port", "")), where, bad)
    if port is False:
        return None
    host = str(variables.get("ansible_host") or name)
    if not _TARGET.match(host):
        bad.append(BadLine(where, f"host {host!r} is not a host name or address"))
        return None
    return InventoryTarget(
        host,
        where,
        port=port,  # type: ignore[arg-type]
        user=variables.get("ansible_user") or None,
        identity_files=[variables["ansible_ssh_private_key_file"]]
        if variables.get("ansible_ssh_private_key_file")
        else [],
        tags=[group] if group not in ("all", "ungrouped") else [],
    )


def _ansible_ini(text: str, name: str) -> tuple[list[InventoryTarget], list[BadLine]]:
    targets, bad = [], []
    group = "ungrouped"
    for number, raw in enumerate(text.splitlines(), 1):
        line = (
            raw.split("#", 1)[0].split(";", 1)[0].strip()
            if not raw.lstrip().startswith(("#", ";"))
            else ""
        )
        if not line:
            continue
        section = re.match(r"^\[([^\]]+)\]$", line)
        if section:
            group = section.group(1)
            continue
        if ":" in group:  # [group:vars] and [group:children] are not hosts
            continue
        words = line.split()
        variables = dict(w.split("=", 1) for w in words[1:] if "=" in w)
        host = _ansible_host(words[0], variables, f"{name}:{number}", group, bad)
        if host:
            targets.append(host)
    return targets, bad


def _ansible_yaml(text: str, name: str) -> tuple[list[InventoryTarget], list[BadLine]]:
    import yaml

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise BadInput(
            f"{name}: not valid YAML: {err}".splitlines()[0], hint="check the indentation"
        ) from err
    targets: list[InventoryTarget] = []
    bad: list[BadLine] = []

    def walk(group: str, node: object) -> None:
        if not isinstance(node, dict):
            return
        for host, variables in (node.get("hosts") or {}).items():
            host_vars = variables if isinstance(variables, dict) else {}
            found = _ansible_host(
                str(host),
                {**(node.get("vars") or {}), **host_vars},
                f"{name}:{group}/{host}",
                group,
                bad,
            )
            if found:
                targets.append(found)
        for child, sub in (node.get("children") or {}).items():
            walk(str(child), sub)

    if isinstance(data, dict):
        for group, node in data.items():
            walk(str(group), node)
    return targets, bad


def read_inventory(path: str | Path) -> tuple[list[InventoryTarget], list[BadLine]]:
    """The targets of an inventory and the lines that are not targets.

    The kind is told from the content: a CSV header naming ``target``, Ansible YAML
    (``hosts:``/``children:``), Ansible INI (``[group]`` sections or ``ansible_*=``), an
    ssh_config (``Host`` lines), else a list of ``user@host[:port]``.
    """
    file = Path(path)
    try:
        text = file.read_text(errors="replace")
    except OSError as err:
        raise BadInput(
            f"cannot read the inventory {path}: {err.strerror}",
            hint="give a CSV, ssh_config, Ansible inventory or user@host list",
        ) from err
    name = file.name
    first = next((ln for ln in text.splitlines() if ln.strip() and not ln.startswith("#")), "")
    if re.match(r"^\s*target\s*(,|$)", first) or ("," in first and "target" in first.split(",")):
        found = _csv(text, name)
    elif re.search(r"^\s*(hosts|children)\s*:", text, re.M):
        found = _ansible_yaml(text, name)
    elif re.search(r"^\s*\[[^\]]+\]\s*$", text, re.M) or "ansible_" in text:
        found = _ansible_ini(text, name)
    elif re.search(r"^\s*Host\s+\S", text, re.M | re.I):
        found = _ssh_config(text, name, file.resolve())
    else:
        found = _plain(text, name)
    targets, bad = found
    if not targets and not bad:
        raise BadInput(
            f"the inventory {path} names no target",
            hint="one target per line: user@host[:port], or a CSV with a target column",
        )
    return targets, bad
