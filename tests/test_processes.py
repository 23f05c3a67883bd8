"""`python -m emulator`, `python -m demo serve` and `make serve` stop everything they started on SIGTERM and
on Ctrl-C alike (Azurite included, though it runs in a session of its own), and leave no folder or settings
file behind; what they print lets a shell or a CLI use the stack."""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from emulator.testing import start_emulator
from tests.doc_blocks import block

ROOT = Path(__file__).resolve().parents[1]
MAKE = shutil.which("make")
SH = shutil.which("sh") or "/bin/sh"
STARTUP_SECONDS = 120  # Azurite, the emulator and (serve) both sides' pipelines, on a busy machine
STOP_SECONDS = 45


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def parents() -> dict[int, int]:
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            found[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    return found


def descendants(pid: int) -> set[int]:
    tree = parents()
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in tree.items() if parent in frontier} - found
        found |= frontier
    return found


def running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return "?"


@dataclass
class Started:
    process: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)
    _queue: queue.Queue[str | None] = field(default_factory=queue.Queue)

    def read_until(self, marker: str) -> list[str]:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            try:
                line = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                pytest.fail(f"no {marker!r} within {STARTUP_SECONDS} s; printed:\n{''.join(self.lines)}")
            if line is None:
                pytest.fail(
                    f"exited ({self.process.wait()}) before {marker!r}; printed:\n{''.join(self.lines)}"
                )
            self.lines.append(line)
            if line.startswith(marker):
                return self.lines

    def rest(self) -> str:
        """What it printed after the marker, once it exited."""
        while (line := self._queue.get(timeout=10)) is not None:
            self.lines.append(line)
        return "".join(self.lines)


def start(command: list[str], tmp: Path) -> Started:
    """The command in a process group of its own (what a terminal gives a job), its temporary folder `tmp`."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        env={**env, "TMPDIR": str(tmp), "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    started = Started(process)

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            started._queue.put(line)
        started._queue.put(None)

    threading.Thread(target=pump, daemon=True).start()
    return started


@pytest.fixture
def tmp(tmp_path: Path) -> Path:
    """The processes' TMPDIR: empty to begin with, and it must be empty again once they stopped."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    return folder


def stop_and_check(started: Started, how: str, tmp: Path) -> int:
    """Sends SIGTERM to the process (what `kill` or a service manager does) or SIGINT to its group (what a
    terminal's Ctrl-C does); then nothing it started may run, and its temporary folder must be empty."""
    process = started.process
    children = descendants(process.pid)
    assert any("azurite" in command_line(pid) for pid in children), {p: command_line(p) for p in children}
    if how == "SIGTERM":
        process.send_signal(signal.SIGTERM)
    else:
        os.killpg(process.pid, signal.SIGINT)
    try:
        code = process.wait(timeout=STOP_SECONDS)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        pytest.fail(f"still running {STOP_SECONDS} s after {how}")
    deadline = time.monotonic() + 10
    while (left := {pid for pid in children if running(pid)}) and time.monotonic() < deadline:
        time.sleep(0.1)
    for pid in left:  # do not leave them to the next test either
        os.kill(pid, signal.SIGKILL)
    assert not left, f"left running after {how}: {[command_line(pid) for pid in left]}"
    assert sorted(p.name for p in tmp.iterdir()) == [], "left in the temporary folder"
    return code


@pytest.mark.parametrize("how", ["SIGTERM", "SIGINT"])
def test_python_m_emulator_stops_azurite_and_removes_its_folder(tmp: Path, how: str) -> None:
    started = start([sys.executable, "-m", "emulator", "--with-azurite"], tmp)
    started.read_until("# serving until")
    (state,) = tmp.glob("acr-emulator-*")
    assert (state / "emulator-server.key").stat().st_mode & 0o077 == 0
    assert stop_and_check(started, how, tmp) == 0


def test_python_m_emulator_prints_settings_sh_can_source(tmp: Path, tmp_path: Path) -> None:
    started = start([sys.executable, "-m", "emulator", "--with-azurite"], tmp)
    try:
        env_file = tmp_path / "emulator.env"
        env_file.write_text("".join(started.read_until("# serving until")))
        # The connection string holds `;`: sourced, it arrives whole, and the SDK uses it; the identity
        # endpoint, header and CA bundle give a token, as on App Service.
        probe = (
            "import os\n"
            "from azure.data.tables import TableServiceClient\n"
            "from azure.identity import ManagedIdentityCredential\n"
            "tables = TableServiceClient.from_connection_string(os.environ['AZURITE_CONNECTION_STRING'])\n"
            "tables.create_table('sourced')\n"
            "print([t.name for t in tables.list_tables()])\n"
            "scope = os.environ['EMULATOR_ARM_ENDPOINT'] + '/.default'\n"
            "print(bool(ManagedIdentityCredential().get_token(scope).token))\n"
        )
        done = subprocess.run(
            [
                SH,
                "-c",
                f'set -a; . "$1"; set +a; exec "{sys.executable}" -c "$2"',
                "sh",
                str(env_file),
                probe,
            ],
            env={"PATH": os.environ["PATH"], "HOME": str(tmp_path)},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines() == ["['sourced']", "True"]
        assert "AccountKey=" in env_file.read_text()
    finally:
        assert stop_and_check(started, "SIGTERM", tmp) == 0


def serve_command(make: bool, settings: Path) -> list[str]:
    args = [
        "--source-port",
        str(free_port()),
        "--target-port",
        str(free_port()),
        "--settings-dir",
        str(settings),
    ]
    if not make:
        return [sys.executable, "-m", "demo", "serve", *args]
    # -o: the environments exist already (make pytest made them); make must not rebuild them here
    return [str(MAKE), "--no-print-directory", "-o", ".stamps/venv", "-o", ".stamps/npm", "serve",
            f"SERVE_ARGS={' '.join(args)}"]  # fmt: skip


SERVING = "Ctrl-C or SIGTERM stops everything."


@pytest.mark.parametrize("how", ["SIGTERM", "SIGINT"])
@pytest.mark.parametrize("make", [False, True], ids=["python -m demo serve", "make serve"])
def test_serve_stops_the_stack_and_removes_its_settings_files(
    tmp: Path, tmp_path: Path, how: str, make: bool
) -> None:
    if make and MAKE is None:
        pytest.skip("make is not installed")
    settings = tmp_path / "serve"
    started = start(serve_command(make, settings), tmp)
    started.read_until(SERVING)
    assert sorted(p.name for p in settings.iterdir()) == ["source.settings.json", "target.settings.json"]
    code = stop_and_check(started, how, tmp)
    # make reports its child's signal as its own exit; the server itself exits 0 after a clean stop
    assert code in ((0, 2, -signal.SIGTERM, -signal.SIGINT) if make else (0,)), started.rest()
    assert not settings.exists()
    assert "\nstopping\n" in started.rest()


def test_the_served_settings_files_point_a_cli_at_each_side(tmp: Path, tmp_path: Path) -> None:
    settings = tmp_path / ".serve"
    started = start(serve_command(False, settings), tmp)
    try:
        printed = "".join(started.read_until(SERVING))
        for side, kind in (("source", "export"), ("target", "import")):
            pipeline = f"TRANSFER_{kind.upper()}_PIPELINE"
            path = settings / f"{side}.settings.json"
            assert str(path) in printed
            assert path.stat().st_mode & 0o077 == 0
            document = json.loads(path.read_text(encoding="utf-8"))
            assert document["IsEncrypted"] is False
            values = document["Values"]
            assert all(isinstance(v, str) for v in values.values())
            assert values[pipeline]
            assert values["TRANSFER_ARM_ENDPOINT"].startswith("https://127.0.0.1:")
            assert Path(values["REQUESTS_CA_BUNDLE"]).is_file()
            assert {"IDENTITY_ENDPOINT", "IDENTITY_HEADER", "TransferState"} <= values.keys()
            # the CLI reads the file itself (--settings), with nothing of the stack in its environment
            env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path)}
            for argv in (["pipelines", "show", kind], ["runs"]):
                done = subprocess.run(
                    [sys.executable, "-m", "transfer", "--settings", str(path), *argv, "--output", "json"],
                    cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
                )  # fmt: skip
                assert done.returncode == 0, done.stdout + done.stderr
                answer = json.loads(done.stdout)
                if argv[0] == "pipelines":
                    assert answer["name"] == values[pipeline]
                else:
                    assert isinstance(answer["runs"], list)
        # README's block, as written, from the folder holding .serve/
        readme = block("README.md", "python -m transfer --settings .serve/")
        path = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
        done = subprocess.run(
            [SH, "-e", "-c", readme.text], cwd=tmp_path, capture_output=True, text=True, timeout=240,
            env={**env, "PATH": path, "PYTHONPATH": str(ROOT)},
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        assert done.stdout.startswith("no runs")  # the source side has started none yet
        assert "healthy" in done.stdout
    finally:
        stop_and_check(started, "SIGTERM", tmp)


@pytest.mark.azurite
def test_an_emulator_started_in_process_removes_its_folder_when_stopped(
    azurite: object, tmp_path: Path
) -> None:
    connection_string = azurite.connection_string  # type: ignore[attr-defined]
    owned = start_emulator(connection_string)
    state = owned.emulator.state_dir
    assert state.name.startswith("acr-emulator-")
    assert (state / "emulator-server.key").exists()
    owned.stop()
    assert not state.exists()
    given = tmp_path / "given"
    chosen = start_emulator(connection_string, state_dir=given)
    chosen.stop()
    assert given.is_dir()  # a folder the caller chose stays, without the server's key
    names = {p.name for p in given.iterdir()}
    assert {"emulator-ca.pem", "emulator-server.pem"} <= names  # what a client needs to trust it
    assert not [name for name in names if name.endswith(".key")]  # az.env may stay (no key)
