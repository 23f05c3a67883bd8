"""Pre-flight of an export: each image's manifest read before any run (each platform's for an index), an
artifact with a layer over 8 GB refused, foreign layers flagged (transfer/domain/preflight.py decides).

At most one manifest read per digest the export ledger does not hold: an image exported before at this
digest passed then, and a digest two tags share is read once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from transfer.domain.ports import Registry
from transfer.domain.preflight import MAX_CHILDREN, ManifestFacts, Verdict, facts
from transfer.domain.references import split_reference


class Preflight:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def __call__(self, images: Sequence[tuple[str, str]], exported: Callable[[str, str], bool]) -> Verdict:
        """The verdict on each (artifact, digest); `exported(repository, digest)` says the ledger holds it."""
        verdict = Verdict()
        read: dict[tuple[str, str], ManifestFacts | None] = {}
        for artifact, digest in images:
            repository = split_reference(artifact)[0]
            if exported(repository, digest):
                continue
            found: list[ManifestFacts] = []
            queue = [digest]
            while queue and len(found) <= MAX_CHILDREN:
                current = queue.pop(0)
                if (repository, current) not in read:
                    document = self.registry.manifest(repository, current)
                    verdict.reads += 1
                    read[(repository, current)] = facts(document) if document is not None else None
                known = read[(repository, current)]
                if known is not None:
                    found.append(known)
                    queue.extend(known.children)
            verdict.judge(artifact, found)
        return verdict
