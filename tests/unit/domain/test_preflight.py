"""Pre-flight, pure (transfer/domain/preflight.py): what a manifest says about its layers and platforms."""

from __future__ import annotations

from transfer.domain.preflight import LAYER_LIMIT, ManifestFacts, Verdict, facts

D1, D2 = "sha256:" + "1" * 64, "sha256:" + "2" * 64


def test_a_layer_over_8_gb_and_foreign_layers_are_found() -> None:
    found = facts(
        {
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "layers": [
                {"digest": D1, "size": LAYER_LIMIT},  # exactly 8 GiB is allowed
                {"digest": D2, "size": LAYER_LIMIT + 1},
                {"digest": D1, "size": 10, "urls": ["https://mcr.microsoft.com/x"]},
                {
                    "digest": D2,
                    "size": 10,
                    "mediaType": "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
                },
            ],
        }
    )
    assert found == ManifestFacts(oversized=((D2, LAYER_LIMIT + 1),), foreign=(D1, D2))


def test_an_index_names_its_platforms() -> None:
    index = {"mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [{"digest": D1}, {"x": 1}]}
    assert facts(index) == ManifestFacts(children=(D1,))
    assert facts({"manifests": [{"digest": D2}]}) == ManifestFacts(children=(D2,))  # no mediaType
    assert facts({}) == ManifestFacts()


def test_the_verdict_refuses_naming_the_layer_and_flags_foreign_layers() -> None:
    verdict = Verdict()
    verdict.judge("big:v1", [ManifestFacts(oversized=((D1, 9 * 10**9),))])
    verdict.judge("win:v1", [ManifestFacts(foreign=(D2,))])
    verdict.judge("ok:v1", [ManifestFacts()])
    assert verdict.refused == {
        "big:v1": f"layer {D1} is 9000000000 bytes: ACR Transfer takes layers up to 8 GB "
        f"({LAYER_LIMIT} bytes)"
    }
    assert list(verdict.flagged) == ["win:v1"]
    assert "foreign (non-distributable)" in verdict.flagged["win:v1"]
