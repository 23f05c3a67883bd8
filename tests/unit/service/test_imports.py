"""Starting a manual import of a blob."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.conftest import World, sas_copy_world
from transfer.domain.errors import (
    NotFound,
)
from transfer.domain.runs import Trigger


@pytest.fixture
def world_setup() -> Callable[[], World]:
    return sas_copy_world


# ---- imports ------------------------------------------------------------------------------------------


def test_import_of_a_missing_blob_is_404_without_arm(world: World) -> None:
    with pytest.raises(NotFound) as caught:
        world.service.start_import("nope", Trigger.HTTP)
    assert caught.value.target == "blob"
    assert world.arm.deployment_calls == []


def test_import_repeat_with_the_key_answers_even_after_the_blob_is_gone(world: World) -> None:
    world.put_blob("in1")
    first = world.service.start_import("in1", Trigger.HTTP, idempotency_key="k1")
    world.blobs.delete("in1")
    again = world.service.start_import("in1", Trigger.HTTP, idempotency_key="k1")
    assert again.repeated
    assert [r.id for r in again.runs] == [r.id for r in first.runs]
    assert len(world.arm.deployment_calls) == 1
