"""A source-trigger run that names no blob is tied to a manifest (transfer/domain/matching.py): by the
catalogDigest the export recorded, else by the artifacts it imported."""

from __future__ import annotations

from datetime import UTC, datetime

from transfer.domain import manifests
from transfer.domain.matching import matching_blob

CATALOG = "sha256:" + "c" * 64


def manifest(blob: str, artifacts: list[str], catalog: str | None = None) -> tuple[str, manifests.Manifest]:
    built = manifests.build(
        run_id="r",
        pipeline_run_id=None,
        source_registry="s.azurecr.io",
        exported_at=datetime(2026, 1, 1, tzinfo=UTC),
        blob=blob,
        artifacts=artifacts,
        digests={},
        catalog_digest=catalog,
    )
    return manifests.manifest_name(blob), manifests.parse(built.encode())  # the bytes carry it


def test_the_catalog_digest_ties_a_run_to_its_blob_before_anything_else() -> None:
    candidates = [manifest("a", ["x:1"]), manifest("b", ["y:1"], CATALOG)]
    assert matching_blob(candidates, CATALOG, ["x:1"]) == "b.manifest.json"


def test_else_the_manifest_that_holds_exactly_what_was_imported() -> None:
    candidates = [manifest("a", ["x:1", "y:1"]), manifest("b", ["x:1"])]
    assert matching_blob(candidates, None, ["x:1"]) == "b.manifest.json"
    assert matching_blob(candidates, "sha256:" + "d" * 64, ["y:1", "x:1"]) == "a.manifest.json"


def test_else_the_smallest_that_holds_it_all_so_verification_names_what_was_skipped() -> None:
    candidates = [manifest("a", ["x:1", "y:1", "z:1"]), manifest("b", ["x:1", "y:1"])]
    assert matching_blob(candidates, None, ["x:1"]) == "b.manifest.json"


def test_blobs_of_the_same_content_are_harmless_others_leave_it_unknown() -> None:
    same = [manifest("a", ["x:1", "y:1"]), manifest("b", ["y:1", "x:1"])]
    assert matching_blob(same, None, ["x:1"]) in {"a.manifest.json", "b.manifest.json"}
    different = [manifest("a", ["x:1", "y:1"]), manifest("b", ["x:1", "z:1"])]
    assert matching_blob(different, None, ["x:1"]) is None
    assert matching_blob(same, None, []) is None
    assert matching_blob(same, None, ["q:1"]) is None
