"""The lab's helper process: syslog for the sshds, and the servers that are not sshd.

Run as ``python -m runbook.lab.supervisor PLAN.json``. It serves:

* one syslog socket per sshd (bind-mounted over /dev/log in that sshd's private mount
  namespace), written to the scenario's auth.log in rsyslog's high-precision format,
  so each line keeps sshd's own pid and the time it arrived;
* an HTTP server (the standard library's) where a port belongs to another service;
* an SSH-1-only device banner;
* a "hog" connection that keeps one unauthenticated connection open to an sshd with
  ``MaxStartups 1``, so every other connection is dropped before the banner;
* the closed ports ("nothing listens"): bound without listening, so a connection is
  refused and no other program on the machine (a test's dask cluster, say) can take the
  port while the lab runs.

It writes ``ready`` next to the plan once everything listens, and runs until SIGTERM.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import sys
import threading
import time
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from socketserver import StreamRequestHandler, ThreadingTCPServer

SSH1_BANNER = b"SSH-1.5-Cisco-1.25\r\n"
# glibc's syslog(3) datagram: "<PRI>Mmm dd hh:mm:ss tag[pid]: message"
_SYSLOG = re.compile(rb"^<\d+>(?:\w{3} [ \d]\d \d\d:\d\d:\d\d )?(?P<rest>.*)$", re.S)


def _serve_syslog(sock_path: str, log_path: str, hostname: str) -> None:
    if os.path.exists(sock_path):
        os.unlink(sock_path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(sock_path)
    os.chmod(sock_path, 0o666)  # sshd's session processes log as the lab user

    def loop() -> None:
        with open(log_path, "ab", buffering=0) as log:
            while True:
                data = sock.recv(65536)
                match = _SYSLOG.match(data)
                rest = (match.group("rest") if match else data).rstrip(b"\n\x00")
                stamp = datetime.now().astimezone().isoformat(timespec="microseconds")
                log.write(stamp.encode() + b" " + hostname.encode() + b" " + rest + b"\n")

    threading.Thread(target=loop, daemon=True).start()


class _Ssh1Handler(StreamRequestHandler):
    def handle(self) -> None:
        self.wfile.write(SSH1_BANNER)
        self.request.settimeout(10)
        with contextlib.suppress(OSError):
            self.rfile.readline(256)


class _HttpHandler(BaseHTTPRequestHandler):
    server_version = "nginx/1.22.1"
    sys_version = ""

    def do_GET(self) -> None:
        self.send_error(404)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the lab's log is for sshd."""


def _tcp_server(port: int, handler: type) -> None:
    server_cls = ThreadingHTTPServer if handler is _HttpHandler else ThreadingTCPServer
    server_cls.allow_reuse_address = True
    server_cls.daemon_threads = True
    server = server_cls(("127.0.0.1", port), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()


def _hog(port: int, ready: Path) -> None:
    """Hold one pre-authentication connection open for ever (reconnecting if dropped)."""

    def loop() -> None:
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
                    if conn.recv(256).startswith(b"SSH-"):
                        ready.touch()
                        conn.settimeout(None)
                        while conn.recv(4096):
                            pass
            except OSError:
                pass
            time.sleep(0.2)

    threading.Thread(target=loop, daemon=True).start()


def _closed(port: int) -> socket.socket:
    """The port, held without listening: connecting to it is refused (the kernel answers
    with a reset), and nobody else can bind it."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", port))
    return sock


def main(plan_path: str) -> None:
    plan = json.loads(Path(plan_path).read_text())
    run_dir = Path(plan_path).parent
    held = [_closed(port) for port in plan.get("closed", [])]  # kept open until SIGTERM
    for entry in plan.get("syslog", []):
        _serve_syslog(entry["socket"], entry["log"], plan.get("hostname", "lab"))
    for port in plan.get("http", []):
        _tcp_server(port, _HttpHandler)
    for port in plan.get("ssh1", []):
        _tcp_server(port, _Ssh1Handler)
    for port in plan.get("hog", []):
        _hog(port, run_dir / f"hog-{port}.ready")
    (run_dir / "ready").touch()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    for sock in held:
        sock.close()


if __name__ == "__main__":
    main(sys.argv[1])
