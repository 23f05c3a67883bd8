"""The randomized fault soak at the size CI runs (tests/soak.py; bench/soak.py runs it large)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from demo.stack import Stack
from tests.integration.reliability_stack import started_stack
from tests.soak import repositories, soak

pytestmark = [pytest.mark.azurite, pytest.mark.emulator]

EXPORTS = 80


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    with started_stack(repositories=repositories(EXPORTS)) as started:
        yield started


def test_a_randomized_fault_soak_loses_nothing_duplicates_nothing_and_leaves_nothing_stuck(
    stack: Stack,
) -> None:
    figures = soak(stack, seed=20, exports=EXPORTS, rate=0.1, ticks=10)
    print("\n".join(figures.lines()))
    assert sum(figures.faults.values()) > 0
    assert figures.problems == []
