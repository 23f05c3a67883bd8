"""Shared pytest fixtures: Azurite for every test that touches Blob, Queue or Table."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from emulator import azurite as azurite_process


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
