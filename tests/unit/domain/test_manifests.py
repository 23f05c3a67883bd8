"""The manifest beside each transfer blob and the verification of an import against it (pure)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from transfer.domain import manifests
from transfer.domain.manifests import Verification, build, is_manifest, manifest_name, parse, verify

D1, D2, D3 = ("sha256:" + c * 64 for c in "123")
AT = datetime(2026, 11, 26, 12, 0, 5, 123000, tzinfo=UTC)


def sample() -> manifests.Manifest:
    return build(
        run_id="20261126120000000e000001",
        pipeline_run_id="/subscriptions/x/pipelineRuns/20261126120000000e000001",
        source_registry="myregistry.azurecr.io",
        exported_at=AT,
        blob="nightly-20261126120000000e000001",
        artifacts=["team/api:v1.0", "team/web:v1.0", f"base@{D3}"],
        digests={"team/api:v1.0": D1},
    )


def test_names() -> None:
    assert manifest_name("nightly-1") == "nightly-1.manifest.json"
    assert is_manifest("dir/nightly-1.manifest.json")
    assert not is_manifest("nightly-1")
    assert not is_manifest(".manifest.json")


def test_build_encode_and_parse_round_trip() -> None:
    manifest = sample()
    body = json.loads(manifest.encode())
    assert body["format"] == manifests.FORMAT
    assert body["runId"] == "20261126120000000e000001"
    assert body["sourceRegistry"] == "myregistry.azurecr.io"
    assert body["exportedAt"] == "2026-11-26T12:00:05Z"
    assert body["artifacts"] == [
        {"artifact": "team/api:v1.0", "repository": "team/api", "tag": "v1.0", "digest": D1},
        {"artifact": "team/web:v1.0", "repository": "team/web", "tag": "v1.0", "digest": None},
        {"artifact": f"base@{D3}", "repository": "base", "tag": None, "digest": D3},
    ]
    again = parse(manifest.encode())
    assert again == manifests.Manifest(
        manifest.run_id,
        manifest.source_registry,
        AT.replace(microsecond=0),
        manifest.blob,
        manifest.artifacts,
        manifest.pipeline_run_id,
    )


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"\xff", "not UTF-8 JSON"),
        (b"[]", "not a JSON object"),
        (b'{"format": "other"}', "format"),
        (json.dumps({"format": manifests.FORMAT, "exportedAt": "yesterday"}).encode(), "ISO 8601"),
        (b"x" * (manifests.MAX_BYTES + 1), "larger than"),
    ],
)
def test_parse_says_what_is_wrong(data: bytes, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        parse(data)


def test_parse_checks_each_artifact() -> None:
    body = json.loads(sample().encode())
    body["artifacts"][1]["digest"] = "sha256:short"
    with pytest.raises(ValueError, match=r"artifacts\[1\]: digest"):
        parse(json.dumps(body).encode())
    body["artifacts"][1] = {"artifact": "x:v1"}
    with pytest.raises(ValueError, match=r"artifacts\[1\]: repository"):
        parse(json.dumps(body).encode())


def test_an_import_of_everything_at_the_manifests_digests_passes() -> None:
    manifest = sample()
    imported = ["team/api:v1.0", "team/web:v1.0", f"base@{D3}"]
    outcome = verify(manifest, imported, {"team/api:v1.0": D1})
    assert outcome.verification is Verification.PASSED
    assert outcome.skipped == ()
    assert outcome.detail == "all 3 artifacts imported; 1 tag at the manifest's digest"  # web: no digest


def test_the_detail_of_one_artifact_speaks_of_one() -> None:
    manifest = build(
        run_id="20261126120000000e000001",
        pipeline_run_id="/subscriptions/x/pipelineRuns/20261126120000000e000001",
        source_registry="myregistry.azurecr.io",
        exported_at=AT,
        blob="nightly-20261126120000000e000001",
        artifacts=["team/api:v1.0"],
        digests={"team/api:v1.0": D1},
    )
    passed = verify(manifest, ["team/api:v1.0"], {"team/api:v1.0": D1})
    assert passed.detail == "the 1 artifact imported; 1 tag at the manifest's digest"
    unread = verify(manifest, ["team/api:v1.0"], None)
    assert unread.detail.startswith("the 1 artifact imported, but the target registry could not be read")


def test_an_artifact_not_imported_fails_and_is_named() -> None:
    outcome = verify(sample(), ["team/api:v1.0", f"base@{D3}"], {"team/api:v1.0": D1})
    assert outcome.verification is Verification.FAILED
    assert outcome.skipped == ("team/web:v1.0",)
    assert "not imported: team/web:v1.0" in outcome.detail


def test_a_tag_at_another_digest_or_missing_fails() -> None:
    imported = ["team/api:v1.0", "team/web:v1.0", f"base@{D3}"]
    differs = verify(sample(), imported, {"team/api:v1.0": D2})
    assert differs.verification is Verification.FAILED
    assert f"team/api:v1.0 is {D2}, the manifest has {D1}" in differs.detail
    missing = verify(sample(), imported, {"team/api:v1.0": None})
    assert missing.verification is Verification.FAILED
    assert "not in the target registry: team/api:v1.0" in missing.detail


def test_an_unreadable_target_registry_leaves_a_complete_import_unavailable() -> None:
    imported = ["team/api:v1.0", "team/web:v1.0", f"base@{D3}"]
    outcome = verify(sample(), imported, None, unreadable="not authorized (403): AcrPull")
    assert outcome.verification is Verification.UNAVAILABLE
    assert "AcrPull" in outcome.detail
    incomplete = verify(sample(), imported[:1], None, unreadable="403")
    assert incomplete.verification is Verification.FAILED
    assert incomplete.skipped == ("team/web:v1.0", f"base@{D3}")
