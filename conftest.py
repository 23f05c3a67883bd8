"""Shared pytest fixtures: Azurite for every test that touches Blob, Queue or Table."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from emulator import azurite as azurite_process

if TYPE_CHECKING:
    from emulator.testing import RunningEmulator


@pytest.fixture(scope="session")
def azurite() -> Iterator[azurite_process.Azurite]:
    """Azurite on free loopback ports for the whole session; stopped by PID even when tests fail."""
    try:
        server = azurite_process.start()
    except azurite_process.AzuriteError as exc:
        pytest.fail(f"Azurite is required for this test and could not start: {exc}", pytrace=False)
    try:
        yield server
    finally:
        azurite_process.stop(server)


@pytest.fixture
def storage_connection_string(azurite: azurite_process.Azurite) -> str:
    return azurite.connection_string


# --- the ARM / ACR Transfer emulator (emulator/), on top of the session's Azurite


@pytest.fixture(scope="session")
def emulator(azurite: azurite_process.Azurite) -> Iterator[RunningEmulator]:
    """The emulator in-process on a free HTTPS port for the session (tests mark `pytest.mark.emulator`)."""
    from emulator.testing import start_emulator

    running = start_emulator(azurite.connection_string)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def emulator_reset(emulator: RunningEmulator) -> RunningEmulator:
    """The session emulator with clean state (resources, deployments, faults, clock) and default settings."""
    emulator.reset()
    return emulator
