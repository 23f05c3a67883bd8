"""Fixtures of the conformance suite: `python -m emulator` in a process of its own, as a user runs it, and
the real Azure CLI (`.venv-azcli`, made by make) registered with it and logged in once per session."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from emulator import azurite as azurite_process
from emulator.testing import EmulatorProcess, spawn_emulator

ROOT = Path(__file__).resolve().parents[2]
AZ_BIN = ROOT / ".venv-azcli" / "bin"
CLOUD = "AzureEmulator"
BASH = shutil.which("bash") or "/bin/bash"
COMMAND_TIMEOUT = 120  # seconds for one az command (they take about one)
SCRIPT_TIMEOUT = 300  # seconds for a shell block of the guide


class CommandFailed(AssertionError):
    pass


def read_env_file(path: Path) -> dict[str, str]:
    """`export KEY=VALUE` lines (shell-quoted), as the emulator writes az.env."""
    values: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        words = shlex.split(line)
        if len(words) == 2 and words[0] == "export" and "=" in words[1]:
            key, _, value = words[1].partition("=")
            values[key] = value
    return values


@dataclass
class Cli:
    """The real `az` with the environment the emulator wrote (az.env), and bash for the guide's blocks."""

    env: dict[str, str]
    emulator: EmulatorProcess
    log: list[str] = field(default_factory=list)

    def run(self, argv: list[str], *, cwd: Path | None = None, timeout: float, check: bool = True) -> Any:
        self.log.append(" ".join(argv))
        try:
            done = subprocess.run(
                argv, cwd=cwd, env=self.env, capture_output=True, text=True, timeout=timeout, check=False
            )
        except subprocess.TimeoutExpired as exc:
            raise CommandFailed(f"{argv[0]} did not finish in {timeout} s: {exc.stderr!r}") from None
        if check and done.returncode != 0:
            raise CommandFailed(
                f"{' '.join(argv)[:400]} exited {done.returncode}\n--- stdout\n{done.stdout}\n--- stderr\n"
                f"{done.stderr}"
            )
        return done

    def az(self, *args: str, cwd: Path | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.run([str(AZ_BIN / "az"), *args], cwd=cwd, timeout=COMMAND_TIMEOUT, check=check)

    def az_json(self, *args: str, cwd: Path | None = None) -> Any:
        return json.loads(self.az(*args, "--output", "json", cwd=cwd).stdout or "null")

    def shell(
        self, script: str, *, cwd: Path, variables: dict[str, str] | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """A block of shell as the guide prints it, in bash with -e -u -o pipefail."""
        env = {**self.env, **(variables or {})}
        argv = [BASH, "-euo", "pipefail", "-c", script]
        self.log.append(script)
        try:
            done = subprocess.run(
                argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=SCRIPT_TIMEOUT, check=False
            )
        except subprocess.TimeoutExpired as exc:
            raise CommandFailed(f"the block did not finish in {SCRIPT_TIMEOUT} s: {exc.stderr!r}") from None
        if check and done.returncode != 0:
            raise CommandFailed(
                f"exit {done.returncode}\n--- script\n{script}\n--- stdout\n{done.stdout}\n--- stderr\n"
                f"{done.stderr}"
            )
        return done


@pytest.fixture(scope="session")
def cli_emulator(azurite: azurite_process.Azurite) -> Iterator[EmulatorProcess]:
    """`python -m emulator` in its own process for the session (the suite resets it between tests)."""
    running = spawn_emulator(azurite.connection_string, run_seconds=0.2, trigger_interval=0.2)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="session")
def az_session(cli_emulator: EmulatorProcess) -> Cli:
    """The CLI registered with the emulator's cloud and logged in with `az login --identity`, once."""
    if not (AZ_BIN / "az").exists():
        pytest.fail(
            f"The Azure CLI is required for the conformance suite and is not installed in {AZ_BIN.parent}: "
            "run `make test` (or `make .stamps/venv-azcli`), which installs it.",
            pytrace=False,
        )
    written = read_env_file(Path(cli_emulator.printed["EMULATOR_AZ_ENV"]))
    base = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "MSI_", "IDENTITY_"))}
    for proxy in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy"):
        base.pop(proxy, None)
    env = {**base, **written, "PATH": f"{AZ_BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    cli = Cli(env, cli_emulator)
    endpoint = written["EMULATOR_ARM_ENDPOINT"]
    cli.az("cloud", "register", "--name", CLOUD, "--endpoint-resource-manager", endpoint, "--output", "none")
    cli.az("cloud", "set", "--name", CLOUD)
    cli.az("login", "--identity", "--output", "none")
    return cli


@pytest.fixture
def az(az_session: Cli) -> Cli:
    """The logged-in CLI against an emulator with no resources and its default settings."""
    az_session.emulator.reset()
    az_session.log.clear()
    return az_session
