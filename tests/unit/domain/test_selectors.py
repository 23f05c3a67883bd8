"""The selector grammar (transfer/domain/selectors.py) and where parse_artifacts accepts it."""

from __future__ import annotations

import pytest

from transfer.domain.artifacts import parse_artifacts
from transfer.domain.errors import InvalidInput, SettingsError
from transfer.domain.selectors import Selector, is_selector, matching_repositories, matching_tags, reason
from transfer.domain.settings import load_settings

BASE = {
    "AZURE_SUBSCRIPTION_ID": "00000000-0000-0000-0000-000000000001",
    "TRANSFER_RESOURCE_GROUP": "rg",
    "TRANSFER_REGISTRY": "myregistry",
    "TRANSFER_EXPORT_PIPELINE": "exportpipeline",
    "TransferState": "UseDevelopmentStorage=true",
}


@pytest.mark.parametrize("text", ["team/*:v1.*", "samples/nginx:*", "app:*", "a/**:latest", "r?po:v?", "*:*"])
def test_valid_selectors_are_kept_as_given(text: str) -> None:
    assert is_selector(text)
    assert reason(text) is None
    assert parse_artifacts(["ok", text], selectors=True) == ["ok:latest", text]


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("team/*", "needs a tag pattern"),
        ("team/*@sha256:" + "a" * 64, "not a digest"),
        ("Team/*:*", "lower-case"),
        ("myregistry.azurecr.io/team/*:*", "registry host"),
        ("localhost:5000/team/*:*", "registry host"),
        ("team/*:.*", "tag pattern must be"),
        ("team/*:-x*", "tag pattern must be"),
        ("team/***:*", "not ***"),
        ("team/*:**", "for repository patterns"),
        ("team//*:*", "lower-case"),
        ("team/*:", "tag pattern must be"),
        (" team/*:*", "surrounding spaces"),
        ("team/*:v1\n", "surrounding spaces"),
    ],
)
def test_invalid_selectors_name_the_index_and_the_reason(text: str, why: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_artifacts(["ok", text], selectors=True)
    assert caught.value.target == "artifacts[1]"
    assert why in caught.value.message


def test_selectors_are_refused_where_the_caller_does_not_allow_them() -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_artifacts(["team/*:v1.*"])
    assert caught.value.target == "artifacts[0]"
    assert "not accepted here" in caught.value.message


def test_exact_references_keep_every_rejection_with_selectors_allowed() -> None:
    for bad in (
        "Repo",
        "repo:",
        "repo@sha256:abc",
        "myregistry.azurecr.io/repo:v1",
        f"r:v1@sha256:{'a' * 64}",
    ):
        with pytest.raises(InvalidInput):
            parse_artifacts([bad], selectors=True)


def test_duplicate_selectors_are_dropped_in_order() -> None:
    assert parse_artifacts(["app:*", "b", "app:*"], selectors=True) == ["app:*", "b:latest"]


def test_repository_wildcards_stay_within_a_path_component_unless_doubled() -> None:
    one = Selector.parse("team/*:*")
    assert one.matches_repository("team/api")
    assert not one.matches_repository("team/api/v2")
    assert not one.matches_repository("teams/api")
    two = Selector.parse("team/**:*")
    assert two.matches_repository("team/api/v2")
    assert not two.matches_repository("team")
    assert Selector.parse("t?am/x:*").matches_repository("team/x")
    assert not Selector.parse("team?x:*").matches_repository("team/x")


def test_tag_patterns_match_whole_tags_with_literal_dots() -> None:
    selector = Selector.parse("app:v1.*")
    assert [selector.matches_tag(t) for t in ("v1.0", "v1.10-rc", "v1", "v10", "xv1.0")] == [
        True,
        True,
        False,
        False,
        False,
    ]
    assert Selector.parse("app:v?").matches_tag("v2")
    assert not Selector.parse("app:v?").matches_tag("v22")


def test_a_literal_repository_needs_no_catalog() -> None:
    assert Selector.parse("samples/nginx:*").literal_repository == "samples/nginx"
    assert Selector.parse("samples/*:*").literal_repository is None


def test_matches_come_by_repository_then_tag_name() -> None:
    selector = Selector.parse("team/*:v1.*")
    assert matching_repositories(selector, ["team/web", "other/x", "team/api", "team/api"]) == [
        "team/api",
        "team/web",
    ]
    matches = matching_tags(selector, "team/api", [("v2.0", "d2"), ("v1.1", "d11"), ("v1.0", "d10")])
    assert [(m.artifact, m.digest) for m in matches] == [("team/api:v1.0", "d10"), ("team/api:v1.1", "d11")]


def test_the_scheduled_export_setting_accepts_selectors() -> None:
    settings = load_settings({**BASE, "TRANSFER_EXPORT_ARTIFACTS": "team/*:v1.*, samples/hello"})
    assert settings.export_artifacts == ("team/*:v1.*", "samples/hello:latest")
    with pytest.raises(SettingsError) as caught:
        load_settings({**BASE, "TRANSFER_EXPORT_ARTIFACTS": '["team/*"]'})
    assert caught.value.problems[0].startswith("TRANSFER_EXPORT_ARTIFACTS[0]")
