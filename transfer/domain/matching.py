"""Which blob a source-trigger import run came from, when the run names none (all the service promises
of such a run is its `catalogDigest` and its `importedArtifacts`). Pure.

The manifests of the blobs that were in the watched container before the run started are the candidates:
the one that records the same `catalogDigest` (the export run's, the digest of the blob's catalog), else
the one whose artifacts are exactly the run's importedArtifacts, else the only smallest one that holds them
all (an import that skipped some: verification then names what is missing). Two blobs of the same content
verify the same thing, so either is right.
"""

from __future__ import annotations

from collections.abc import Sequence

from transfer.domain.manifests import Manifest


def matching_blob(
    candidates: Sequence[tuple[str, Manifest]], catalog_digest: str | None, imported: Sequence[str]
) -> str | None:
    """The manifest blob name of the candidate the run verifies against; None when none fits or the
    artifacts leave it ambiguous."""
    if catalog_digest:
        for name, manifest in candidates:
            if manifest.catalog_digest == catalog_digest:
                return name
    wanted = frozenset(imported)
    if not wanted:
        return None
    for name, manifest in candidates:
        if manifest.artifact_set == wanted:
            return name
    holding = [(name, m.artifact_set) for name, m in candidates if wanted <= m.artifact_set]
    if not holding:
        return None
    smallest = min(len(artifacts) for _, artifacts in holding)
    first = [(name, artifacts) for name, artifacts in holding if len(artifacts) == smallest]
    if any(artifacts != first[0][1] for _, artifacts in first):
        return None  # different content, equally likely: the run cannot be tied to one
    return first[0][0]
