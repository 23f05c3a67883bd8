"""Referrer discovery: what finding each image's referrers costs an export, against listing the images.

The source registry gets IMAGES repositories `chain/svcNN` with one image `v1` each, and each image a
signature, an SBOM and a signature of the SBOM (3 referrers, one of them a referrer of a referrer). On the
source side, with the registry's ListReferrers limits lifted (the app keeps under them on its own; here
they would only add waits):

    baseline:  the bare listing: the catalog and every matching repository's tags, through
               azure-containerregistry's ContainerRegistryClient against the emulator's registry endpoint.
    none:      the service's selection of `chain/*:v1` with TRANSFER_EXPORT_REFERRERS=none (the expansion
               and the pre-flight's manifest reads).
    all:       the same with TRANSFER_EXPORT_REFERRERS=all: the discovery added.
Timed interleaved, REPEAT each, medians compared; the registry requests of each are counted (by the
adapter's calls and by HTTP requests). The discovery's cost per image is (all - none) / IMAGES.

    .venv/bin/python -m bench.referrers [--images 50] [--repeat 5]   # about 40 s
"""

from __future__ import annotations

import argparse
from collections import Counter
from typing import Any

from bench.common import Bench, Results, bench_stack, by_service, header, median, ms, timed
from bench.incremental import registry_client
from demo import stack as demo_stack

SELECTOR = "chain/*:v1"
SIGNATURE = "application/vnd.cncf.notary.signature"
SBOM = "application/spdx+json"
REFERRERS_PER_IMAGE = 3


class Counting:
    """The registry adapter, its calls counted by method."""

    def __init__(self, registry: Any) -> None:
        self.registry = registry
        self.calls: Counter[str] = Counter()

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.registry, name)

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] += 1
            return method(*args, **kwargs)

        return counted


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    header(f"referrer discovery: {args.images} images with {REFERRERS_PER_IMAGE} referrers each")
    results = Results("referrers")
    with bench_stack(run_seconds=0.2) as bench:
        bench.quiet_source_trigger()
        measure(bench, results, args.images, args.repeat)
    results.summary()


def seed(bench: Bench, images: int) -> None:
    admin, registry = bench.admin, demo_stack.SOURCE_REGISTRY
    admin.set_referrer_limits(registry, per_registry=None, per_identity=None)
    for index in range(images):
        repository = f"chain/svc{index:03d}"
        digest = admin.add_image(registry, repository, "v1", [2048, 4096])["digest"]
        admin.attach_referrer(registry, repository, digest, SIGNATURE, payload="sig")
        sbom = admin.attach_referrer(registry, repository, digest, SBOM, payload="{}")["digest"]
        admin.attach_referrer(registry, repository, sbom, SIGNATURE, payload="sig of sbom")


def measure(bench: Bench, results: Results, images: int, repeat: int) -> None:
    from transfer.adapters.registry import PAGE_SIZE
    from transfer.domain.artifacts import parse_artifacts
    from transfer.service.selecting import Selecting

    seed(bench, images)
    client = registry_client(bench)

    def listing() -> int:
        names = [
            n for n in client.list_repository_names(results_per_page=PAGE_SIZE) if n.startswith("chain/")
        ]
        return sum(1 for name in names for _ in client.list_tag_properties(name, results_per_page=PAGE_SIZE))

    assert listing() == images  # warm: the token exchange done once
    items = parse_artifacts([SELECTOR], selectors=True)
    sides = {kind: bench.side("source", TRANSFER_EXPORT_REFERRERS=kind) for kind in ("none", "all")}
    counting = {kind: Counting(side.ports.registry) for kind, side in sides.items()}
    chosen: dict[str, int] = {}

    def selecting(kind: str) -> Any:
        side = sides[kind]
        selection = Selecting(side.settings, counting[kind], side.ports.state).select(
            items, incremental=False, strict=True
        )
        chosen[kind] = len(selection.artifacts)

    selecting("none")  # warm
    selecting("all")
    for registry in counting.values():
        registry.calls.clear()
    samples: dict[str, list[float]] = {"listing": [], "none": [], "all": []}
    requests: dict[str, int] = {}
    for _ in range(repeat):  # interleaved: a busy moment of the machine hits all three alike
        for name, call in (
            ("listing", listing),
            ("none", lambda: selecting("none")),
            ("all", lambda: selecting("all")),
        ):
            with bench.traffic.window() as traffic:
                samples[name] += timed(call, 1)
            requests[name] = by_service(traffic, "registry")
    baseline, bare, full = (median(samples[k]) for k in ("listing", "none", "all"))
    per_image = (full - bare) / images
    calls = {kind: {m: n // repeat for m, n in registry.calls.items()} for kind, registry in counting.items()}
    results.info(f"baseline: {images} tags listed in {ms(baseline)}; {requests['listing']} registry requests")
    results.info(
        f"selection without referrers: {chosen['none']} artifacts in {ms(bare)}; "
        f"{requests['none']} registry requests; adapter calls {calls['none']}"
    )
    results.info(
        f"selection with referrers: {chosen['all']} artifacts in {ms(full)}; "
        f"{requests['all']} registry requests; adapter calls {calls['all']}"
    )
    results.info(
        f"discovery per image: {ms(per_image)}, {(requests['all'] - requests['none']) / images:.1f} registry "
        f"requests ({REFERRERS_PER_IMAGE} referrers each, one of them a referrer of a referrer)"
    )
    results.info(f"with referrers / bare listing: x{full / baseline:.2f}; without: x{bare / baseline:.2f}")
    results.budget(
        "artifacts chosen with referrers", chosen["all"], images * (1 + REFERRERS_PER_IMAGE), unit=""
    )
    results.budget(
        "ListReferrers calls per image (one per subject: the image and each referrer)",
        calls["all"].get("referrers", 0) / images,
        1 + REFERRERS_PER_IMAGE,
        unit="",
    )


if __name__ == "__main__":
    main()
