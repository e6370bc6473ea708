"""Quick network checks, the first steps of the flow: DNS, ping, TCP, banner and KEX offer.

Each check is bounded by a time-out and tells the failure modes apart the way the kernel
reports them (refused, no route, unreachable, timed out), because each has another fix.
The banner and the server's KEXINIT are read on one raw connection: the server's
algorithm lists are data paramiko's :class:`~paramiko.message.Message` parses, and one
connection less keeps the diagnosis light on servers that penalise failed connections.
"""

from __future__ import annotations

import errno
import re
import shutil
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import paramiko

from runbook import bounded
from runbook.errors import RunbookError
from runbook.findings import Finding
from runbook.sshconfig import Settings, is_address

__all__ = [
    "OTHER_PORTS",
    "Background",
    "ServerOffer",
    "check_banner",
    "check_dns",
    "check_kex",
    "check_ping",
    "check_proxy",
    "check_tcp",
    "read_offer",
    "real_algorithms",
    "scan_other_ports",
]

# Where sshd is often moved to when it is not on 22 (and 22 itself, when it was moved away).
OTHER_PORTS = (22, 2222, 22222, 10022, 8022, 222, 2022, 922)
CLIENT_BANNER = b"SSH-2.0-ssh_runbook_probe\r\n"

_ERRNO_CAUSE = {
    errno.ECONNREFUSED: ("port.refused", "Connection refused"),
    errno.EHOSTUNREACH: ("net.no_route", "No route to host"),
    errno.ENETUNREACH: ("net.no_route", "Network is unreachable"),
    errno.ETIMEDOUT: ("net.timeout", "Connection timed out"),
    errno.ECONNRESET: ("port.refused", "Connection reset"),
    errno.EHOSTDOWN: ("net.no_route", "Host is down"),
    # Refused on this machine before anything left: its own firewall's output rules (a
    # cgroup BPF filter such as systemd's IPAddressDeny=) or a security policy (SELinux).
    errno.EPERM: ("net.no_route", "Operation not permitted (refused on this machine)"),
    errno.EACCES: ("net.no_route", "Permission denied (refused on this machine)"),
}


# -- DNS ---------------------------------------------------------------------------------
def _family(settings: Settings | None) -> int:
    family = (settings.options.get("addressfamily", ["any"])[0] if settings else "any").lower()
    return {"inet": socket.AF_INET, "inet6": socket.AF_INET6}.get(family, socket.AF_UNSPEC)


def check_dns(
    hostname: str, timeout: float, settings: Settings | None = None
) -> tuple[Finding, list[str]]:
    """Resolve ``hostname`` as ssh would (every address), within ``timeout`` seconds.

    getaddrinfo cannot be cancelled, so it runs in a daemon thread we stop waiting for.
    """
    if is_address(hostname):
        return Finding("dns", "address", "pass", f"{hostname} is an address"), [hostname]
    result: dict[str, object] = {}

    def lookup() -> None:
        try:
            infos = socket.getaddrinfo(hostname, None, _family(settings), socket.SOCK_STREAM)
            result["addresses"] = list(dict.fromkeys(str(i[4][0]) for i in infos))
        except OSError as err:
            result["error"] = err

    started = time.monotonic()
    worker = threading.Thread(target=lookup, daemon=True)
    worker.start()
    worker.join(timeout)
    took = time.monotonic() - started
    if "addresses" in result:
        addresses = result["addresses"]
        assert isinstance(addresses, list)
        return Finding(
            "dns",
            "getaddrinfo",
            "pass",
            f"{hostname} resolves to {', '.join(addresses)}",
            evidence=[f"{hostname} -> {a}" for a in addresses],
            data={"address": addresses[0]},
        ), addresses
    error = result.get("error")
    if error is None:
        why = f"no answer from the resolver within {timeout:g}s"
    elif isinstance(error, socket.gaierror) and error.errno == socket.EAI_AGAIN:
        why = f"{error.strerror} (the resolver is not reachable: network, VPN or resolv.conf)"
    elif isinstance(error, socket.gaierror) and error.errno == socket.EAI_NONAME:
        why = f"{error.strerror} (the name does not exist: spelling, DNS record or /etc/hosts)"
    else:
        why = str(getattr(error, "strerror", None) or error)
    if hostname.startswith("[") and hostname.endswith("]") and is_address(hostname[1:-1]):
        why += f"; ssh takes an IPv6 address without brackets: {hostname[1:-1]}"
    return Finding(
        "dns",
        "getaddrinfo",
        "fail",
        f"Could not resolve hostname {hostname}: {why}",
        cause_id="dns.unresolved",
        evidence=[f"getaddrinfo({hostname!r}) failed after {took:.1f}s: {why}"],
    ), []


# -- ping --------------------------------------------------------------------------------
def check_ping(address: str, timeout: float) -> Finding:
    """One ICMP echo: information only, many hosts drop ICMP and still run sshd."""
    ping = shutil.which("ping")
    if ping is None:
        return Finding("ping", "ping", "skip", "not checked: no ping binary on this machine")
    argv = [ping, "-n", "-c", "1", "-W", str(max(1, round(timeout))), address]
    if ":" in address:
        argv.insert(1, "-6")
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout + 2)
    except subprocess.TimeoutExpired:
        return Finding("ping", "ping", "info", f"{address} does not answer ping", data={"ping": 0})
    if proc.returncode == 0:
        rtt = next((ln for ln in proc.stdout.splitlines() if "time=" in ln), "").strip()
        return Finding(
            "ping", "ping", "info", f"{address} answers ping", evidence=[rtt], data={"ping": 1}
        )
    last = (proc.stdout + proc.stderr).strip().splitlines()
    return Finding(
        "ping",
        "ping",
        "info",
        f"{address} does not answer ping",
        evidence=last[-2:],
        data={"ping": 0},
    )


class Background:
    """A check running in a daemon thread while the next step goes on (ping during TCP)."""

    def __init__(self, func: Callable[..., Finding], *args: object) -> None:
        self._result: list[Finding] = []
        self._thread = threading.Thread(
            target=lambda: self._result.append(func(*args)), daemon=True
        )
        self._thread.start()

    def result(self, timeout: float) -> Finding | None:
        """The finding, or None when it is not done within ``timeout`` seconds."""
        self._thread.join(timeout)
        return self._result[0] if self._result else None


# -- TCP ---------------------------------------------------------------------------------
def _connect(address: str, port: int, timeout: float) -> socket.socket:
    return socket.create_connection((address, port), timeout=timeout)


def _errno_of(err: OSError) -> int:
    if isinstance(err, TimeoutError | socket.timeout):
        return errno.ETIMEDOUT
    return err.errno or 0


def check_tcp(addresses: Sequence[str], port: int, timeout: float) -> tuple[Finding, str | None]:
    """Connect to each address in turn like ssh; say how each one failed.

    The whole step stays within twice the time-out however many addresses there are.
    """
    evidence: list[str] = []
    causes: list[str] = []
    deadline = time.monotonic() + 2 * timeout
    for address in addresses:
        left = deadline - time.monotonic()
        if left <= 0:
            evidence.append(f"{address}: not tried, the time budget is spent")
            break
        started = time.monotonic()
        try:
            sock = _connect(address, port, min(timeout, left))
        except OSError as err:
            code = _errno_of(err)
            cause, text = _ERRNO_CAUSE.get(code, (None, err.strerror or str(err)))
            took = time.monotonic() - started
            evidence.append(f"connect to address {address} port {port}: {text} ({took:.1f}s)")
            if cause:
                causes.append(cause)
            continue
        sock.close()
        took = time.monotonic() - started
        evidence.append(f"connect to address {address} port {port}: established ({took:.3f}s)")
        return Finding(
            "tcp",
            "connect",
            "pass",
            f"{address} port {port} accepts TCP",
            evidence=evidence,
            data={"address": address},
        ), address
    # ssh reports the last address's error; the most telling one is the first cause seen.
    cause = causes[0] if causes else None
    last = evidence[-1].split(": ", 1)[-1] if evidence else "no address"
    return Finding(
        "tcp",
        "connect",
        "fail",
        f"connect to host {addresses[0] if addresses else '?'} port {port}: {last}",
        cause_id=cause,
        evidence=evidence,
        data={"address": addresses[0]} if addresses else {},
    ), None


def scan_other_ports(
    address: str, timeout: float, skip: int | None = None, ports: Sequence[int] = OTHER_PORTS
) -> Finding | None:
    """Look for an SSH banner on the usual other ports, all at once, within ``timeout``."""
    found: dict[int, str] = {}

    def probe(port: int) -> None:
        try:
            with _connect(address, port, timeout) as sock:
                sock.settimeout(timeout)
                sock.sendall(CLIENT_BANNER)
                line = sock.recv(256).split(b"\n", 1)[0].strip()
        except OSError:
            return
        if line.startswith(b"SSH-"):
            found[port] = line.decode(errors="replace")

    threads = [threading.Thread(target=probe, args=(p,), daemon=True) for p in ports if p != skip]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + timeout + 0.5
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    if not found:
        return Finding(
            "other-ports",
            "scan",
            "info",
            f"no SSH server on the usual other ports of {address}",
            evidence=[f"tried {', '.join(str(p) for p in ports if p != skip)}"],
        )
    port = min(found)
    return Finding(
        "other-ports",
        "scan",
        "info",
        f"an SSH server answers on port {port}: {found[port]}",
        evidence=[f"{address} port {p}: {banner}" for p, banner in sorted(found.items())],
        data={"other_port": port},
    )


# -- banner and KEXINIT --------------------------------------------------------------------
_KEX_FIELDS = (
    "kex",
    "hostkey",
    "cipher_c2s",
    "cipher_s2c",
    "mac_c2s",
    "mac_s2c",
    "compression_c2s",
    "compression_s2c",
)


@dataclass
class ServerOffer:
    """What the server said before any authentication: its banner and algorithm lists."""

    banner: str | None = None
    pre_banner: list[str] = field(default_factory=list)
    lists: dict[str, list[str]] = field(default_factory=dict)
    error: str | None = None  # "closed", "reset", "timeout", "garbage" or an errno text
    elapsed: float = 0.0


def _read_line(sock: socket.socket, buf: bytearray) -> bytes | None:
    while b"\n" not in buf:
        chunk = sock.recv(4096)
        if not chunk:
            return None
        buf += chunk
        if len(buf) > 8192:
            raise ValueError("banner line too long")
    line, _, rest = bytes(buf).partition(b"\n")
    buf[:] = rest
    return line.rstrip(b"\r")


def _read_packet(sock: socket.socket, buf: bytearray) -> bytes:
    def need(n: int) -> None:
        while len(buf) < n:
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionResetError("closed during KEXINIT")
            buf.extend(chunk)

    need(5)
    length, padding = struct.unpack(">IB", bytes(buf[:5]))
    if not 5 <= length <= 256 * 1024:
        raise ValueError(f"bad packet length {length}")
    need(4 + length)
    payload = bytes(buf[5 : 4 + length - padding])
    del buf[: 4 + length]
    return payload


def read_offer(address: str, port: int, timeout: float, sock: object | None = None) -> ServerOffer:
    """Read the server's identification line and its KEXINIT, then hang up."""
    offer = ServerOffer()
    started = time.monotonic()
    buf = bytearray()
    try:
        conn = sock if isinstance(sock, socket.socket) else _connect(address, port, timeout)
        with conn:
            conn.settimeout(timeout)
            conn.sendall(CLIENT_BANNER)
            for _ in range(50):
                line = _read_line(conn, buf)
                if line is None:
                    offer.error = "closed"
                    break
                text = line.decode("utf-8", errors="replace")
                if text.startswith("SSH-"):
                    offer.banner = text
                    break
                offer.pre_banner.append(text[:200])
            else:
                offer.error = "garbage"
            if offer.banner and offer.banner.split("-")[1] in ("2.0", "1.99"):
                payload = _read_packet(conn, buf)
                message = paramiko.Message(payload)
                if message.get_byte() == bytes([20]):  # SSH_MSG_KEXINIT
                    message.get_bytes(16)
                    offer.lists = {name: message.get_list() for name in _KEX_FIELDS}
    except TimeoutError:
        offer.error = offer.error or "timeout"
    except ConnectionResetError:
        offer.error = offer.error or "reset"
    except ValueError as err:
        offer.error = offer.error or f"garbage: {err}"
    except OSError as err:
        offer.error = offer.error or (err.strerror or str(err))
    offer.elapsed = time.monotonic() - started
    return offer


def check_banner(offer: ServerOffer, port: int) -> Finding:
    """Tell SSH-2 from SSH-1, from another service and from a server that hangs up."""
    banner = offer.banner
    evidence = [f"server says: {line}" for line in offer.pre_banner[:3]]
    if banner:
        evidence.append(f"remote version: {banner}")
        version = banner.split("-")[1] if banner.count("-") >= 2 else ""
        if version in ("2.0", "1.99"):
            return Finding(
                "banner",
                "identification",
                "pass",
                f"SSH-2 server: {banner}",
                evidence=evidence,
                data={"server_version": banner},
            )
        if version.startswith("1."):
            return Finding(
                "banner",
                "identification",
                "fail",
                f"the server speaks only SSH protocol 1 ({banner}): "
                "Protocol major versions differ: 2 vs. 1",
                cause_id="proto.ssh1",
                evidence=evidence,
                data={"server_version": banner},
            )
    refusal = next((ln for ln in offer.pre_banner if _SSHD_REFUSAL.search(ln)), None)
    if refusal and offer.error in ("closed", "reset"):
        return Finding(
            "banner",
            "identification",
            "fail",
            f"kex_exchange_identification: the server refuses the connection before its "
            f"banner: {refusal}",
            cause_id="proto.closed_early",
            evidence=[*evidence, f"connection {offer.error} after: {refusal}"],
        )
    if offer.pre_banner or (offer.error or "").startswith("garbage"):
        what = offer.pre_banner[0] if offer.pre_banner else offer.error
        return Finding(
            "banner",
            "identification",
            "fail",
            f"port {port} answers, but not as an SSH server: {what}",
            cause_id="proto.not_ssh",
            evidence=evidence,
        )
    if offer.error == "timeout":
        # Silence proves less than a wrong answer: a warning, so that the verdict's
        # confidence stays below "high" unless something else agrees.
        return Finding(
            "banner",
            "identification",
            "warn",
            f"port {port} accepts TCP but sends no SSH identification "
            f"within {offer.elapsed:.1f}s: a service that waits for the client to speak "
            "first, a stuck proxy, or an sshd that is stopped or hung; or sshd refusing "
            "through TCP wrappers (/etc/hosts.deny), which closes only after 5 s",
            cause_id="proto.not_ssh",
            evidence=evidence,
        )
    how = "reset" if offer.error == "reset" else "closed"
    return Finding(
        "banner",
        "identification",
        "fail",
        f"kex_exchange_identification: connection {how} by the server before its banner "
        f"(after {offer.elapsed:.1f}s)",
        cause_id="proto.closed_early",
        evidence=[*evidence, f"connection {how} before any SSH identification line"],
    )


# What sshd (or a throttle in front of it) says before hanging up on a connection.
_SSHD_REFUSAL = re.compile(
    r"Exceeded MaxStartups|Not allowed at this time|too many|"
    r"refused|penalty|blocked|denied",
    re.I,
)


# -- KEX ------------------------------------------------------------------------------------
_PSEUDO = ("ext-info-", "kex-strict-")
_CATEGORIES = (
    ("key exchange", "kex_algorithms", "kex", "KexAlgorithms", "key exchange method"),
    ("host key", "host_key_algorithms", "hostkey", "HostKeyAlgorithms", "host key type"),
    ("cipher", "ciphers", "cipher_c2s", "Ciphers", "cipher"),
    ("MAC", "macs", "mac_c2s", "MACs", "MAC"),
)
_AEAD = ("chacha20-poly1305@openssh.com", "aes128-gcm@openssh.com", "aes256-gcm@openssh.com")


def real_algorithms(names: Sequence[str]) -> list[str]:
    """Algorithm names without the pseudo-algorithms (ext-info, strict KEX markers)."""
    return [n for n in names if n and not n.startswith(_PSEUDO)]


def check_kex(offer: ServerOffer, settings: Settings) -> Finding:
    """Compare the server's algorithm lists with the client's (``ssh -G``), per category."""
    if not offer.lists:
        return Finding(
            "kex",
            "KEXINIT",
            "skip",
            f"not checked: no KEXINIT from the server ({offer.error or 'none'})",
        )
    evidence = []
    agreed: dict[str, str] = {}
    for category, attr, field_name, option, message in _CATEGORIES:
        client = list(getattr(settings, attr))
        server = real_algorithms(offer.lists.get(field_name, []))
        if not client:
            continue
        common = [a for a in client if a in server]
        if category == "MAC" and agreed.get("cipher") in _AEAD:
            continue  # an AEAD cipher carries its own integrity: no MAC is negotiated
        if not common:
            their = ",".join(server)
            return Finding(
                "kex",
                "KEXINIT",
                "fail",
                f"Unable to negotiate: no matching {message} found. Their offer: {their}",
                cause_id="kex.no_common_alg",
                evidence=[f"server {option}: {their}", f"client {option}: {','.join(client)}"],
                data={
                    "category": category,
                    "server_offer": their,
                    "algorithm": server[0] if server else "",
                    "option": option,
                },
            )
        agreed[category] = common[0]
        evidence.append(f"{category}: {common[0]}")
    return Finding(
        "kex",
        "KEXINIT",
        "pass",
        "algorithms agree: " + ", ".join(f"{k} {v}" for k, v in agreed.items()),
        evidence=evidence,
        data={
            "server_host_key_algorithms": ",".join(real_algorithms(offer.lists.get("hostkey", [])))
        },
    )


# -- jump hosts ----------------------------------------------------------------------------
def _first_hop(jump: str) -> tuple[str | None, str, int | None]:
    hop = jump.split(",")[0].strip()
    if hop.startswith("ssh://"):
        hop = hop[6:]
    user, _, hostport = hop.rpartition("@")
    host, port = hostport, None
    if hostport.startswith("["):
        host, _, rest = hostport[1:].partition("]")
        port = int(rest[1:]) if rest.startswith(":") and rest[1:].isdigit() else None
    elif hostport.count(":") == 1:
        host, _, text = hostport.partition(":")
        port = int(text) if text.isdigit() else None
    return user or None, host, port


def check_proxy(settings: Settings, timeout: float) -> Finding | None:
    """Check the first hop before the target: the hop's failure is the root cause.

    ProxyJump: the hop as ``ssh -G`` resolves it, then DNS, TCP and its SSH banner.
    ProxyCommand: the command itself (as ssh would run it) must yield an SSH banner.
    """
    if settings.proxy_jump:
        from runbook import sshconfig

        user, host, port = _first_hop(settings.proxy_jump)
        try:
            hop = sshconfig.resolve(
                host, port=port, user=user, ssh_config=settings.ssh_config, timeout=timeout
            )
        except (RunbookError, OSError, subprocess.SubprocessError) as err:
            return _proxy_fail(settings.proxy_jump, f"cannot resolve the jump host: {err}")
        dns, addresses = check_dns(hop.hostname, timeout, hop)
        if not addresses:
            return _proxy_fail(settings.proxy_jump, dns.summary, dns.evidence)
        tcp, address = check_tcp(addresses, hop.port, timeout)
        if address is None:
            return _proxy_fail(settings.proxy_jump, tcp.summary, tcp.evidence)
        banner = check_banner(read_offer(address, hop.port, timeout), hop.port)
        if banner.status == "fail":
            return _proxy_fail(settings.proxy_jump, banner.summary, banner.evidence)
        return Finding(
            "proxy",
            "ProxyJump",
            "pass",
            f"jump host {hop.user}@{hop.hostname}:{hop.port} answers: "
            f"{banner.data.get('server_version')}",
            evidence=[*tcp.evidence, *banner.evidence],
            data={"jump": settings.proxy_jump},
        )
    if settings.proxy_command:
        return _check_proxy_command(settings, timeout)
    return None


def _proxy_fail(jump: str, why: str, evidence: Sequence[str] = ()) -> Finding:
    return Finding(
        "proxy",
        "jump host",
        "fail",
        f"the jump host {jump} fails: {why}",
        cause_id="proxy.failed",
        evidence=list(evidence),
        data={"jump": jump},
    )


def _check_proxy_command(settings: Settings, timeout: float) -> Finding:
    command = settings.proxy_command or ""
    tokens = {
        "%h": settings.hostname,
        "%p": str(settings.port),
        "%r": settings.user,
        "%n": settings.alias,
        "%%": "%",
    }
    for token, value in tokens.items():
        command = command.replace(token, value)
    try:
        proc = subprocess.Popen(
            ["/bin/sh", "-c", f"exec {command}"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
    except OSError as err:
        return _proxy_fail(command, f"cannot start the ProxyCommand: {err}")
    try:
        first = _first_line(proc, timeout)
    finally:
        bounded.kill_group(proc)  # the command and whatever it started
        _, err_text = proc.communicate()
    errors = err_text.decode(errors="replace").strip().splitlines()[-3:]
    if first.startswith("SSH-"):
        return Finding(
            "proxy",
            "ProxyCommand",
            "pass",
            f"the ProxyCommand reaches {first}",
            data={"jump": command},
        )
    why = first or (errors[-1] if errors else "no SSH banner through it")
    return _proxy_fail(command, why, errors)


def _first_line(proc: subprocess.Popen[bytes], timeout: float) -> str:
    line: list[bytes] = []

    def read() -> None:
        assert proc.stdout is not None
        line.append(proc.stdout.readline(512))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout)
    return line[0].decode(errors="replace").strip() if line else ""
