"""PushLedger contract: the same tests against FakeStateStore and TableStateStore on Azurite."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from transfer.domain.ports import StateStore
from transfer.domain.pushes import Push

T0 = datetime(2026, 11, 26, 12, 0, 0, tzinfo=UTC)


def push(tag: str, seconds: int = 0, digest: str = "a") -> Push:
    return Push("team/api", tag, "sha256:" + digest * 64, T0 + timedelta(seconds=seconds), f"evt-{tag}")


def test_a_push_is_recorded_once_and_waits_until_released(state_store: StateStore) -> None:
    assert state_store.record_push(push("v1", 5))
    assert not state_store.record_push(push("v1", 9))  # the same tag at the same digest
    assert state_store.record_push(push("v0", 1))
    assert state_store.record_push(push("v1", 9, digest="b"))  # another digest: another push
    pending = state_store.pending_pushes()
    assert [(p.tag, p.received_at) for p in pending] == [
        ("v0", T0 + timedelta(seconds=1)),
        ("v1", T0 + timedelta(seconds=5)),
        ("v1", T0 + timedelta(seconds=9)),
    ]
    assert pending[1].event_id == "evt-v1"
    assert all(p.run_id is None and p.etag for p in pending)
    state_store.release_pushes(pending[:2])
    state_store.release_pushes(pending[:2])  # a repeat is fine
    assert [p.key for p in state_store.pending_pushes()] == [pending[2].key]
    assert not state_store.record_push(push("v1", 20))  # released, still known


def test_taking_is_all_or_none_and_only_from_what_was_read(state_store: StateStore) -> None:
    for i in range(3):
        state_store.record_push(push(f"v{i}", i))
    read = state_store.pending_pushes()
    assert state_store.take_pushes(read[:2], "run1", T0 + timedelta(minutes=1))
    assert not state_store.take_pushes(read, "run2", T0 + timedelta(minutes=1))  # two changed since read
    after = {p.tag: p for p in state_store.pending_pushes()}
    assert (after["v0"].run_id, after["v1"].run_id, after["v2"].run_id) == ("run1", "run1", None)
    assert after["v0"].taken_at == T0 + timedelta(minutes=1)
    state_store.release_pushes([read[0]])
    assert not state_store.take_pushes([after["v0"]], "run3", T0)  # gone


def test_of_two_workers_taking_the_same_pushes_one_wins(state_store: StateStore) -> None:
    for i in range(50):
        state_store.record_push(push(f"v{i}", i))
    read = state_store.pending_pushes()
    results: dict[str, bool] = {}
    barrier = threading.Barrier(2)

    def take(run_id: str) -> None:
        barrier.wait()
        results[run_id] = state_store.take_pushes(read, run_id, T0)

    threads = [threading.Thread(target=take, args=(name,)) for name in ("runa", "runb")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results.values()) == [False, True]
    [winner] = [run_id for run_id, won in results.items() if won]
    assert {p.run_id for p in state_store.pending_pushes()} == {winner}
