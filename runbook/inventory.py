"""Inventories for ``runbook batch``: CSV, ssh_config, Ansible (INI, YAML), plain lists.

Told apart by content, not by name. Every target remembers where it came from
(``file:line``); a line that cannot be a target is reported with its place and reason,
and the others still run.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import shlex
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


def _delimiter(first: str) -> str | None:
    """The CSV delimiter of a header line naming ``target`` (spreadsheets in many locales
    export ``;``, and tab-separated files are CSV too), or None for no CSV header."""
    for delimiter in (",", ";", "\t"):
        if "target" in (cell.strip().strip('"') for cell in first.split(delimiter)):
            return delimiter
    return None


def _csv(text: str, name: str, delimiter: str) -> tuple[list[InventoryTarget], list[BadLine]]:
    reader = csv.DictReader(io.StringIO(text), delimiter=delimiter)
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


# Ansible's connection variables: today's names first, then the pre-2.0 ones still seen.
_ANSIBLE_VARS = {
    "host": ("ansible_host", "ansible_ssh_host"),
    "port": ("ansible_port", "ansible_ssh_port"),
    "user": ("ansible_user", "ansible_ssh_user"),
    "key": ("ansible_ssh_private_key_file", "ansible_private_key_file"),
}
# A host pattern's range: "web[01:10]", "web[01:10:2]", "db-[a:c]".
_RANGE = re.compile(r"\[([0-9]+|[a-z]):([0-9]+|[a-z])(?::([0-9]+))?\]")
MAX_RANGE = 10_000


@dataclass
class _Ansible:
    """An Ansible inventory read: its hosts (where, own variables, groups), each group's
    variables and each group's parents, for Ansible's precedence of variables."""

    hosts: dict[str, tuple[str, dict[str, str], list[str]]] = field(default_factory=dict)
    group_vars: dict[str, dict[str, str]] = field(default_factory=dict)
    parents: dict[str, set[str]] = field(default_factory=dict)

    def add_host(self, host: str, where: str, variables: dict[str, str], group: str) -> None:
        if host in self.hosts:  # a host listed in several groups is one host
            _, own, groups = self.hosts[host]
            own.update(variables)
            groups.append(group)
        else:
            self.hosts[host] = (where, dict(variables), [group])

    def lineage(self, group: str, seen: frozenset[str] = frozenset()) -> list[str]:
        """``group`` and its ancestors, the farthest first (their variables count least)."""
        if group in seen:
            return []
        out: list[str] = []
        for parent in sorted(self.parents.get(group, ())):
            out += [g for g in self.lineage(parent, seen | {group}) if g not in out]
        return [*out, group]

    def targets(self, bad: list[BadLine]) -> list[InventoryTarget]:
        found = []
        for host, (where, own, groups) in self.hosts.items():
            variables = _canonical(self.group_vars.get("all", {}))
            for group in groups:
                for name in self.lineage(group):
                    variables.update(_canonical(self.group_vars.get(name, {})))
            variables.update(_canonical(own))
            target = _ansible_host(host, variables, where, groups, bad)
            if target:
                found.append(target)
        return found


def _canonical(variables: dict[str, str]) -> dict[str, str]:
    """One level's variables with the old names under today's (today's name wins at the
    same level); precedence between levels then works on one name."""
    out = dict(variables)
    for current, *old in _ANSIBLE_VARS.values():
        for name in old:
            if name in out:
                value = out.pop(name)
                out.setdefault(current, value)
    return out


def _expand(pattern: str) -> list[str]:
    """A host pattern's names, Ansible's ranges expanded (zero padding kept)."""
    found = _RANGE.search(pattern)
    if found is None:
        return [pattern]
    start, end, step = found.group(1), found.group(2), int(found.group(3) or 1)
    if start.isdigit() and end.isdigit():
        width = len(start) if start.startswith("0") else 0
        items = [str(i).zfill(width) for i in range(int(start), int(end) + 1, max(step, 1))]
    elif start.isalpha() and end.isalpha():
        items = [chr(c) for c in range(ord(start), ord(end) + 1, max(step, 1))]
    else:
        return [pattern]
    if len(items) > MAX_RANGE:
        raise ValueError(f"the range {found.group(0)} names more than {MAX_RANGE} hosts")
    head, tail = pattern[: found.start()], pattern[found.end() :]
    return [name for item in items for name in _expand(head + item + tail)]


def _ansible_host(
    name: str, variables: dict[str, str], where: str, groups: list[str], bad: list[BadLine]
) -> InventoryTarget | None:
    def var(kind: str) -> str | None:
        value = variables.get(_ANSIBLE_VARS[kind][0])
        return None if value in (None, "") else str(value)

    port = _port(var("port") or "", where, bad)
    if port is False:
        return None
    host = var("host") or name
    if not _TARGET.match(host):
        bad.append(BadLine(where, f"host {host!r} is not a host name or address"))
        return None
    key = var("key")
    return InventoryTarget(
        host,
        where,
        port=port,  # type: ignore[arg-type]
        user=var("user"),
        identity_files=[key] if key else [],
        tags=[g for g in dict.fromkeys(groups) if g not in ("all", "ungrouped")],
    )


def _ini_words(line: str) -> list[str]:
    """A host line's words, quotes as Ansible reads them (ansible_user="ops team")."""
    try:
        return shlex.split(line)
    except ValueError:
        return line.split()


def _ansible_ini(text: str, name: str) -> tuple[list[InventoryTarget], list[BadLine]]:
    inventory, bad = _Ansible(), []
    group, kind = "ungrouped", "hosts"
    for number, raw in enumerate(text.splitlines(), 1):
        line = (
            raw.split(" #", 1)[0].split(" ;", 1)[0].strip()
            if not raw.lstrip().startswith(("#", ";"))
            else ""
        )
        if not line:
            continue
        section = re.match(r"^\[([^\]:]+)(?::(vars|children))?\]$", line)
        if section:
            group, kind = section.group(1), section.group(2) or "hosts"
            continue
        where = f"{name}:{number}"
        if kind == "vars":
            key, _, value = line.partition("=")
            words = _ini_words(value)
            inventory.group_vars.setdefault(group, {})[key.strip()] = " ".join(words)
        elif kind == "children":
            inventory.parents.setdefault(line.split()[0], set()).add(group)
        else:
            words = _ini_words(line)
            variables = dict(w.split("=", 1) for w in words[1:] if "=" in w)
            try:
                hosts = _expand(words[0])
            except ValueError as err:
                bad.append(BadLine(where, str(err)))
                continue
            for host in hosts:
                inventory.add_host(host, where, variables, group)
    return inventory.targets(bad), bad


def _ansible_yaml(text: str, name: str) -> tuple[list[InventoryTarget], list[BadLine]]:
    import yaml

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise BadInput(
            f"{name}: not valid YAML: {err}".splitlines()[0], hint="check the indentation"
        ) from err
    inventory, bad = _Ansible(), []

    def walk(group: str, node: object) -> None:
        if not isinstance(node, dict):
            return
        if isinstance(node.get("vars"), dict):
            inventory.group_vars.setdefault(group, {}).update(node["vars"])
        for pattern, variables in (node.get("hosts") or {}).items():
            where = f"{name}:{group}/{pattern}"
            try:
                hosts = _expand(str(pattern))
            except ValueError as err:
                bad.append(BadLine(where, str(err)))
                continue
            for host in hosts:
                inventory.add_host(
                    host, where, variables if isinstance(variables, dict) else {}, group
                )
        for child, sub in (node.get("children") or {}).items():
            inventory.parents.setdefault(str(child), set()).add(group)
            walk(str(child), sub)

    if isinstance(data, dict):
        for group, node in data.items():
            walk(str(group), node)
    return inventory.targets(bad), bad


def _once(
    targets: list[InventoryTarget], bad: list[BadLine]
) -> tuple[list[InventoryTarget], list[BadLine]]:
    """Each target once: a second line for the same target would log in twice and write
    two rows under one name (the summary and reruns know a target by its key)."""
    first: dict[str, str] = {}
    kept = []
    for target in targets:
        if target.key in first:
            bad.append(
                BadLine(target.source, f"{target.key} is already listed at {first[target.key]}")
            )
            continue
        first[target.key] = target.source
        kept.append(target)
    return kept, bad


def read_inventory(path: str | Path) -> tuple[list[InventoryTarget], list[BadLine]]:
    """The targets of an inventory and the lines that are not targets.

    The kind is told from the content: a CSV header naming ``target``, Ansible YAML
    (``hosts:``/``children:``), Ansible INI (``[group]`` sections or ``ansible_*=``), an
    ssh_config (``Host`` lines), else a list of ``user@host[:port]``.
    """
    file = Path(path)
    try:
        data = file.read_bytes()
    except OSError as err:
        raise BadInput(
            f"cannot read the inventory {path}: {err.strerror}",
            hint="give a CSV, ssh_config, Ansible inventory or user@host list",
        ) from err
    # A spreadsheet's export starts with a byte order mark: UTF-8's, or UTF-16's for
    # "Unicode text". Otherwise UTF-8, a Latin-1 byte showing as U+FFFD.
    utf16 = data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))
    text = data.decode("utf-16" if utf16 else "utf-8-sig", errors="replace")
    if _is_binary(text):
        raise BadInput(
            f"the inventory {path} is not text (binary data)",
            hint="give a CSV, ssh_config, Ansible inventory or user@host list",
        )
    name = file.name
    first = next((ln for ln in text.splitlines() if ln.strip() and not ln.startswith("#")), "")
    if delimiter := _delimiter(first):
        found = _csv(text, name, delimiter)
    elif re.search(r"^\s*(hosts|children)\s*:", text, re.M):
        found = _ansible_yaml(text, name)
    elif re.search(r"^\s*\[[^\]]+\]\s*$", text, re.M) or "ansible_" in text:
        found = _ansible_ini(text, name)
    elif re.search(r"^\s*Host\s+\S", text, re.M | re.I):
        found = _ssh_config(text, name, file.resolve())
    else:
        found = _plain(text, name)
    targets, bad = _once(*found)
    if not targets:
        # Nothing would run: bad input, however many lines were skipped (the first says why).
        skipped = f": {bad[0]}" if bad else ""
        if len(bad) > 1:
            skipped += f" (and {len(bad) - 1} more)"
        raise BadInput(
            f"the inventory {path} names no target{skipped}",
            hint="one target per line: user@host[:port], or a CSV with a target column",
        )
    return targets, bad


def _is_binary(text: str) -> bool:
    """A NUL, or control characters in more than one character in a hundred (an image, an
    archive, a key): no inventory format has those. Undecodable bytes alone do not count:
    a Latin-1 CSV's accents are that."""
    controls = sum(1 for c in text if c < " " and c not in "\t\n\r\f\v")
    return "\0" in text or controls > len(text) // 100
