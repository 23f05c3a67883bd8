from datetime import UTC, datetime, timedelta, timezone

import pytest

from transfer.domain import naming
from transfer.domain.errors import InvalidInput
from transfer.domain.runs import RunKind

NOW = datetime(2026, 11, 26, 23, 30, 0, 123456, tzinfo=UTC)


def test_run_ids_fit_acr_rules_and_sort_by_time() -> None:
    first = naming.run_id(RunKind.EXPORT, NOW, "zz9999")
    later = naming.run_id(RunKind.IMPORT, NOW + timedelta(milliseconds=1), "000000")
    assert first == "20261126233000123ezz9999"
    assert naming.RUN_ID.match(first)
    assert 5 <= len(first) <= 50
    assert first < later


def test_run_ids_use_utc_whatever_the_clock_zone() -> None:
    local = NOW.astimezone(timezone(timedelta(hours=5)))
    assert naming.run_id(RunKind.EXPORT, local, "abcdef") == naming.run_id(RunKind.EXPORT, NOW, "abcdef")


def test_run_id_token_is_checked() -> None:
    with pytest.raises(ValueError, match="token"):
        naming.run_id(RunKind.EXPORT, NOW, "BAD-TOKEN")


@pytest.mark.parametrize(
    "bad", ["", "../x", "a/b", "a#b", "a?b", "-lead", "a b", "x\ny", "abcde\n", "a" * 129, 7, None]
)
def test_check_run_id_rejects(bad: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        naming.check_run_id(bad)
    assert caught.value.target == "run_id"


@pytest.mark.parametrize(
    "name", ["b1c2-d3e4-f5a6", "importpipeline-20261126T120000Z", "run_1", "abc", "a" * 51]
)
def test_names_the_service_gives_its_own_runs_are_run_ids(name: str) -> None:
    assert naming.check_run_id(name) == name  # the source trigger's runs: nothing public fixes their format
    assert not naming.RUN_ID.match(name)  # and none of them is a name the app would give


def test_deployment_names_are_ours_and_valid() -> None:
    name = naming.deployment_name("20261126233000123ezz9999")
    assert name == "acrtransfer-20261126233000123ezz9999"
    assert len(name) <= 64
    assert naming.is_ours(name)
    assert not naming.is_ours("exportPipelineRun")


def test_export_blob_names_carry_the_run() -> None:
    assert naming.export_blob_name(None, "run12345") == "export-run12345"
    assert naming.export_blob_name("nightly.v1", "run12345") == "nightly.v1-run12345"


@pytest.mark.parametrize("bad", ["", "-x", "a/b", "a" * 101, "sp ace", 5])
def test_target_name_prefix_is_checked(bad: object) -> None:
    with pytest.raises(InvalidInput) as caught:
        naming.check_target_name(bad)
    assert caught.value.target == "targetName"


@pytest.mark.parametrize("bad", ["", None, "x\n", "a\\b", "dir/", "x" * 1025, 7])
def test_blob_names_are_checked(bad: object) -> None:
    with pytest.raises(InvalidInput):
        naming.check_blob_name(bad)


@pytest.mark.parametrize(
    ("bad", "why"),
    [
        ("../x", "'.' or '..' path segments"),
        ("a/./b", "'.' or '..' path segments"),
        ("a/..", "'.' or '..' path segments"),
        ("/x", "must not start with '/'"),
        ("https://acct.blob.core.windows.net/c/x", "not its URL"),
        ("a\x85b", "control characters"),
        ("a\ud800", "invalid unicode"),
        ("..\\x", "backslash"),
    ],
)
def test_blob_names_that_climb_or_are_urls_are_refused_before_storage_sees_them(bad: str, why: str) -> None:
    with pytest.raises(InvalidInput, match=why) as caught:
        naming.check_blob_name(bad, target="name")
    assert caught.value.target == "name"


def test_blob_names_allow_paths_and_unicode() -> None:
    assert naming.check_blob_name("exports/2026/ünïcode#1?.blob") == "exports/2026/ünïcode#1?.blob"
    for name in ("a..b/...c", "...x", "日" * 1024, "%2e%2e/x"):
        assert naming.check_blob_name(name) == name


def test_idempotency_keys() -> None:
    assert naming.check_idempotency_key("job-42:attempt") == "job-42:attempt"
    for bad in ["", "has space", "x" * 201, "tab\t"]:
        with pytest.raises(InvalidInput):
            naming.check_idempotency_key(bad)


def test_force_update_tag_is_stable_per_run_and_unique_across_runs() -> None:
    assert naming.force_update_tag("runa12345") == naming.force_update_tag("runa12345")
    assert naming.force_update_tag("runa12345") != naming.force_update_tag("runb12345")


def test_fingerprint_ignores_key_order() -> None:
    assert naming.fingerprint({"a": 1, "b": [1, 2]}) == naming.fingerprint({"b": [1, 2], "a": 1})
    assert naming.fingerprint({"a": 1}) != naming.fingerprint({"a": 2})
