"""Start and stop Azurite (Blob, Queue, Table) from the project's node_modules on free loopback ports."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

# Azurite's well-known development account; public by design, not a secret.
ACCOUNT = "devstoreaccount1"
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

_LISTENING = re.compile(
    r"Azurite (Blob|Queue|Table) service is successfully listening at https?://127\.0\.0\.1:(\d+)"
)
ROOT = Path(__file__).resolve().parent.parent


class AzuriteError(RuntimeError):
    pass


@dataclass(frozen=True)
class Azurite:
    pid: int
    blob_port: int
    queue_port: int
    table_port: int

    @property
    def blob_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.blob_port}/{ACCOUNT}"

    @property
    def queue_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.queue_port}/{ACCOUNT}"

    @property
    def table_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.table_port}/{ACCOUNT}"

    @property
    def connection_string(self) -> str:
        return (
            f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
            f"BlobEndpoint={self.blob_endpoint};QueueEndpoint={self.queue_endpoint};"
            f"TableEndpoint={self.table_endpoint};"
        )


def _executable() -> Path:
    binary = ROOT / "node_modules" / ".bin" / "azurite"
    if not binary.exists():
        raise AzuriteError(f"Azurite is not installed at {binary}: run `make deps` (npm ci) first")
    if shutil.which("node") is None:
        raise AzuriteError("Node.js is not on PATH: Azurite needs it")
    return binary


def _wait_tcp(port: int, deadline: float) -> None:
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            sock.settimeout(0.2)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise AzuriteError(f"Azurite port {port} did not accept connections in time")


def start(
    timeout: float = 30.0, extra_args: list[str] | None = None, env: dict[str, str] | None = None
) -> Azurite:
    """Start Azurite on ports the OS picks and return once all three services accept connections."""
    args = [
        str(_executable()),
        "--inMemoryPersistence",
        "--skipApiVersionCheck",
        "--disableTelemetry",
        "--loose",
        "--blobHost", "127.0.0.1", "--blobPort", "0",
        "--queueHost", "127.0.0.1", "--queuePort", "0",
        "--tableHost", "127.0.0.1", "--tablePort", "0",
        *(extra_args or []),
    ]  # fmt: skip
    proc = subprocess.Popen(
        args,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        start_new_session=True,
    )
    try:
        return _await_listening(proc, timeout)
    except BaseException:  # a failed start, or SIGTERM / Ctrl-C while it starts: never leave it running
        stop_pid(proc.pid)
        raise


def _await_listening(proc: subprocess.Popen[str], timeout: float) -> Azurite:
    ports: dict[str, int] = {}
    output: list[str] = []
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    while len(ports) < 3:
        line = proc.stdout.readline()
        if not line:
            if proc.poll() is not None or time.monotonic() > deadline:
                break
            continue
        output.append(line.rstrip())
        match = _LISTENING.search(line)
        if match:
            ports[match.group(1)] = int(match.group(2))
        if time.monotonic() > deadline:
            break
    if len(ports) < 3:
        tail = "\n".join(output[-20:]) or "(no output)"
        raise AzuriteError(f"Azurite did not start (exit code {proc.poll()}); its output:\n{tail}")
    # Keep draining stdout so a chatty Azurite never blocks on a full pipe.
    threading.Thread(target=proc.stdout.read, daemon=True).start()
    for port in ports.values():
        _wait_tcp(port, deadline)
    return Azurite(
        pid=proc.pid, blob_port=ports["Blob"], queue_port=ports["Queue"], table_port=ports["Table"]
    )


def stop_pid(pid: int, timeout: float = 10.0) -> None:
    """Stop the process group that `start` created, by its PID; escalate to SIGKILL if it lingers."""
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            done = pid
        if done == pid:
            return
        time.sleep(0.05)
    try:
        os.killpg(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass


def stop(azurite: Azurite) -> None:
    stop_pid(azurite.pid)
