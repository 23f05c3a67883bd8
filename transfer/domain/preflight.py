"""Pre-flight: what an image's manifest says before a run carries it. Pure.

ACR Transfer refuses an artifact with a layer over 8 GB (8 GiB, "due to technical limitations") only when
the run executes; the app reads each image's manifest first (each platform's for an index) and refuses the
artifact before any run. Foreign (non-distributable) layers are not in the registry at all: the manifest
points at URLs, which a pull on an isolated network cannot reach; such an artifact is flagged, not refused.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

LAYER_LIMIT = 8 * 1024**3  # bytes; a larger layer fails the run
INDEX_TYPES = frozenset(
    {"application/vnd.oci.image.index.v1+json", "application/vnd.docker.distribution.manifest.list.v2+json"}
)
FOREIGN_TYPES = frozenset(
    {
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
        "application/vnd.oci.image.layer.nondistributable.v1.tar",
        "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
        "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
    }
)
MAX_CHILDREN = 64  # platforms of one index read
_DIGEST = re.compile(r"^sha256:[a-f0-9]{64}$")


@dataclass(frozen=True)
class ManifestFacts:
    """What one manifest document says: an index's children, an image's large and foreign layers."""

    children: tuple[str, ...] = ()  # an index's manifests, by digest
    oversized: tuple[tuple[str, int], ...] = ()  # (layer digest, size) over LAYER_LIMIT
    foreign: tuple[str, ...] = ()  # layer digests that carry urls or a non-distributable media type


def facts(document: Mapping[str, Any]) -> ManifestFacts:
    """The facts of a manifest or index document (unknown shapes have none)."""
    if _is_index(document):
        return ManifestFacts(children=_children(document.get("manifests")))
    layers = [layer for layer in document.get("layers") or [] if isinstance(layer, Mapping)]
    return ManifestFacts(
        oversized=tuple((_digest(layer), layer["size"]) for layer in layers if _oversized(layer)),
        foreign=tuple(_digest(layer) for layer in layers if _foreign(layer)),
    )


def _is_index(document: Mapping[str, Any]) -> bool:
    if document.get("mediaType") in INDEX_TYPES:
        return True
    return isinstance(document.get("manifests"), list) and "layers" not in document


def _children(items: Any) -> tuple[str, ...]:
    digests = [item.get("digest") for item in items or [] if isinstance(item, Mapping)]
    return tuple(d for d in digests if isinstance(d, str) and _DIGEST.match(d))


def _foreign(layer: Mapping[str, Any]) -> bool:
    return bool(layer.get("urls")) or layer.get("mediaType") in FOREIGN_TYPES


def _digest(layer: Mapping[str, Any]) -> str:
    return str(layer.get("digest") or "?")


def _oversized(layer: Mapping[str, Any]) -> bool:
    size = layer.get("size")
    return isinstance(size, int) and size > LAYER_LIMIT


@dataclass
class Verdict:
    """Per artifact: why it is refused (a layer over 8 GB), or what is flagged (foreign layers)."""

    refused: dict[str, str] = field(default_factory=dict)
    flagged: dict[str, str] = field(default_factory=dict)
    reads: int = 0  # manifest documents read

    def judge(self, artifact: str, found: Sequence[ManifestFacts]) -> None:
        oversized = [item for f in found for item in f.oversized]
        foreign = [digest for f in found for digest in f.foreign]
        if oversized:
            digest, size = oversized[0]
            more = f" (and {len(oversized) - 1} more)" if len(oversized) > 1 else ""
            self.refused[artifact] = (
                f"layer {digest} is {size} bytes{more}: ACR Transfer takes layers up to 8 GB "
                f"({LAYER_LIMIT} bytes)"
            )
        if foreign:
            self.flagged[artifact] = (
                f"{len(foreign)} foreign (non-distributable) layers, e.g. {foreign[0]}: they are not "
                "exported, and a pull on an isolated network cannot fetch them from their URLs"
            )
