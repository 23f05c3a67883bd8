"""The pure side of export on push: events read, pushes selected, batches and the window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from transfer.domain.pushes import (
    Push,
    batches,
    due,
    held_until,
    orphans,
    read_event,
    ready,
    run_digests,
    selected,
)

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
DIGEST = "sha256:" + "a" * 64


def event(**target: object) -> dict[str, object]:
    return {
        "id": "e1",
        "eventType": "Microsoft.ContainerRegistry.ImagePushed",
        "data": {"target": {"repository": "team/api", "tag": "v1", "digest": DIGEST, **target}},
    }


def push(artifact: str, seconds: int = 0, digest: str = DIGEST, run_id: str | None = None) -> Push:
    repository, tag = artifact.split(":")
    return Push(repository, tag, digest, NOW + timedelta(seconds=seconds), run_id=run_id)


def test_an_image_pushed_event_is_a_push_of_its_repository_tag_and_digest() -> None:
    reading = read_event(event(), NOW)
    assert reading.push == Push("team/api", "v1", DIGEST, NOW, "e1")


@pytest.mark.parametrize(
    ("changed", "reason"),
    [
        ({"eventType": "Microsoft.ContainerRegistry.ImageDeleted"}, "is not"),
        ({"eventType": "Microsoft.ContainerRegistry.ChartPushed"}, "is not"),
        ({"data": None}, "no data.target"),
        ({"data": {"target": {"repository": "team/api", "digest": DIGEST}}}, "without a tag"),
        ({"data": {"target": {"repository": "team/api", "tag": "", "digest": DIGEST}}}, "without a tag"),
        ({"data": {"target": {"repository": "Team/Api", "tag": "v1", "digest": DIGEST}}}, "not a valid"),
        ({"data": {"target": {"repository": "team/api", "tag": "v1", "digest": "md5:x"}}}, "not a sha256"),
        ({"data": {"target": {"tag": "v1", "digest": DIGEST}}}, "no repository"),
    ],
)
def test_anything_else_is_ignored_with_its_reason(changed: dict[str, object], reason: str) -> None:
    reading = read_event({**event(), **changed}, NOW)
    assert reading.push is None
    assert reason in reading.reason


@pytest.mark.parametrize(
    ("selectors", "kept"),
    [
        (["team/*:v*"], True),
        (["team/*:v2*"], False),
        (["**:*"], True),
        (["team/api:v1"], True),
        (["team/api"], False),  # a bare repository is its latest tag
        ([f"team/api@{DIGEST}"], True),
        (["other/*:*", "team/api:v1"], True),
        ([], False),
    ],
)
def test_the_export_selectors_decide_which_pushes_are_kept(selectors: list[str], kept: bool) -> None:
    assert selected(push("team/api:v1"), selectors) is kept


def test_a_batch_is_due_once_the_window_passed_since_its_first_waiting_push() -> None:
    window = timedelta(seconds=60)
    waiting = [push("a/b:1", 0), push("a/b:2", 50)]
    assert not due(waiting, NOW + timedelta(seconds=59), window)
    assert due(waiting, NOW + timedelta(seconds=60), window)
    assert not due([push("a/b:1", 0, run_id="taken")], NOW + timedelta(hours=1), window)
    assert not due([], NOW, window)


def test_batches_hold_at_most_50_artifacts_in_push_order() -> None:
    pushes = [push(f"a/b:{i}", i) for i in range(101)]
    assert [len(batch) for batch in batches(pushes)] == [50, 50, 1]
    assert batches(pushes)[0][0].tag == "0"


def test_a_tag_pushed_at_two_digests_is_one_artifact_at_its_newest_digest() -> None:
    older, newer = push("a/b:1", 0, "sha256:" + "1" * 64), push("a/b:1", 5, "sha256:" + "2" * 64)
    [batch] = batches([newer, older])
    assert batch == (older, newer)
    assert run_digests(batch) == (("a/b:1", "sha256:" + "2" * 64),)


def test_taken_pushes_are_orphans_only_after_the_grace() -> None:
    taken = Push("a/b", "1", DIGEST, NOW, run_id="r1", taken_at=NOW)
    assert orphans([taken], NOW + timedelta(minutes=1)) == {}
    assert orphans([taken, push("a/b:2")], NOW + timedelta(minutes=3)) == {"r1": [taken]}


def test_a_push_key_is_its_tag_and_digest_not_its_event() -> None:
    assert Push("a/b", "1", DIGEST, NOW, "e1").key == Push("a/b", "1", DIGEST, NOW, "e2").key
    assert Push("a/b", "1", DIGEST, NOW).key != Push("a/b", "2", DIGEST, NOW).key


def test_ready_starts_full_runs_at_once_and_holds_a_partial_one_while_pushes_come() -> None:
    window = timedelta(seconds=60)
    waiting = [push(f"a/b:{i}", i) for i in range(120)]  # one push a second for two minutes
    at_70 = ready(waiting[:71], NOW + timedelta(seconds=70), window)
    assert [len(batch) for batch in at_70] == [50]  # the other 21: the last push came 0 s ago
    assert held_until(waiting[50:71], window) == NOW + timedelta(seconds=130)  # a window after the last
    quiet = ready(waiting[:71], NOW + timedelta(seconds=130), window)
    assert [len(batch) for batch in quiet] == [50, 21]
    assert ready(waiting[:10], NOW + timedelta(seconds=59), window) == []
