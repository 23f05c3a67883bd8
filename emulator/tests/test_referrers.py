"""OCI referrers on the registry data plane: pushed through the data plane with the real
`ContainerRegistryClient` (upload_blob, set_manifest) or seeded through the admin API, listed by the referrers
API (filter, paging), the fallback tag scheme of a registry without the API, and referrers carried through
ACR Transfer by digest with their subject."""

from __future__ import annotations

import hashlib
import io
import json
from typing import Any
from urllib.parse import parse_qsl

import pytest
from azure.core.exceptions import HttpResponseError

from emulator.testing import RunningEmulator
from emulator.tests.helpers import new_container, state
from emulator.tests.registry_helpers import client, referrers
from emulator.tests.test_transfer import export_pipeline, export_run, import_pipeline, import_run, output

pytestmark = [pytest.mark.emulator, pytest.mark.azurite]

NOTATION = "application/vnd.cncf.notary.signature"
SPDX = "application/spdx+json"
INTOTO = "application/vnd.in-toto+json"
EMPTY = b"{}"


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.fixture
def registry(emulator_reset: RunningEmulator) -> RunningEmulator:
    emulator_reset.admin.create_registry("sourceregistry", {"samples/hello": ["v1", "v2"]})
    return emulator_reset


def _image(emulator: RunningEmulator, tag: str = "v1") -> str:
    return str(emulator.admin.registry_content("sourceregistry")["samples/hello"]["tags"][tag])


def push_signature(emulator: RunningEmulator, subject: str, payload: bytes = b"jws") -> tuple[str, Any]:
    """What notation does: the empty config and the signature envelope as blobs, then the artifact manifest
    whose subject is the image. Returns (digest, the answer's headers)."""
    acr = client(emulator, "sourceregistry")
    acr.upload_blob("samples/hello", io.BytesIO(EMPTY))
    acr.upload_blob("samples/hello", io.BytesIO(payload))
    subject_manifest = acr.get_manifest("samples/hello", subject)
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": NOTATION,
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": _digest(EMPTY), "size": 2},
        "layers": [{"mediaType": "application/jose+json", "digest": _digest(payload), "size": len(payload)}],
        "subject": {
            "mediaType": subject_manifest.media_type,
            "digest": subject,
            "size": len(json.dumps(subject_manifest.manifest)),
        },
        "annotations": {"io.cncf.notary.x509chain.thumbprint#S256": '["abc"]'},
    }
    headers: dict[str, str] = {}
    digest = acr.set_manifest(
        "samples/hello",
        manifest,
        raw_response_hook=lambda response: headers.update(response.http_response.headers),
    )
    return digest, headers


def test_a_signature_pushed_through_the_data_plane_is_listed_by_the_referrers_api(
    registry: RunningEmulator,
) -> None:
    image = _image(registry)
    signature, headers = push_signature(registry, image)
    assert headers["OCI-Subject"] == image  # the registry has the API: the client keeps no fallback tag
    answer = referrers(registry, "sourceregistry", "samples/hello", image)
    assert answer.status_code == 200
    assert answer.headers["Content-Type"] == "application/vnd.oci.image.index.v1+json"
    index = answer.json()
    assert index["schemaVersion"] == 2
    assert index["mediaType"] == "application/vnd.oci.image.index.v1+json"
    (entry,) = index["manifests"]
    assert entry["digest"] == signature
    assert entry["artifactType"] == NOTATION
    assert entry["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert entry["annotations"] == {"io.cncf.notary.x509chain.thumbprint#S256": '["abc"]'}
    pushed = client(registry, "sourceregistry").get_manifest("samples/hello", signature)
    assert entry["size"] == len(json.dumps(pushed.manifest))  # what set_manifest sent: its exact bytes
    # nothing refers to the signature, nor to the other image: 200 and an empty list
    assert referrers(registry, "sourceregistry", "samples/hello", signature).json()["manifests"] == []
    other = referrers(registry, "sourceregistry", "samples/hello", _image(registry, "v2"))
    assert other.json()["manifests"] == []


def test_artifact_type_filter_and_recursion(registry: RunningEmulator) -> None:
    image = _image(registry)
    admin = registry.admin
    signature = admin.attach_referrer("sourceregistry", "samples/hello", "v1", NOTATION)
    sbom = admin.attach_referrer(
        "sourceregistry", "samples/hello", image, SPDX, annotations={"org.example.sbom": "spdx"}
    )
    provenance = admin.attach_referrer("sourceregistry", "samples/hello", image, INTOTO)
    sbom_signature = admin.attach_referrer("sourceregistry", "samples/hello", sbom["digest"], NOTATION)

    listed = referrers(registry, "sourceregistry", "samples/hello", image).json()["manifests"]
    assert [e["digest"] for e in listed] == [signature["digest"], sbom["digest"], provenance["digest"]]
    assert listed[1]["annotations"] == {"org.example.sbom": "spdx"}

    filtered = referrers(registry, "sourceregistry", "samples/hello", image, params={"artifactType": SPDX})
    assert filtered.headers["OCI-Filters-Applied"] == "artifactType"
    assert [e["digest"] for e in filtered.json()["manifests"]] == [sbom["digest"]]
    # a signature of the SBOM: a referrer of a referrer
    nested = referrers(registry, "sourceregistry", "samples/hello", sbom["digest"]).json()["manifests"]
    assert [e["digest"] for e in nested] == [sbom_signature["digest"]]
    # referrers are manifests of the repository like any other: untagged, listed by the SDK
    properties = client(registry, "sourceregistry").get_manifest_properties("samples/hello", sbom["digest"])
    assert properties.tags == []


def test_referrers_pages_follow_the_link_header(registry: RunningEmulator) -> None:
    image = _image(registry)
    admin = registry.admin
    pushed = [
        admin.attach_referrer("sourceregistry", "samples/hello", image, INTOTO, payload=str(i))["digest"]
        for i in range(5)
    ]
    registry.admin.set_referrers_api("sourceregistry", True, page_size=2)
    seen: list[str] = []
    params: dict[str, str] | None = None
    pages = 0
    while True:
        answer = referrers(registry, "sourceregistry", "samples/hello", image, params=params)
        seen += [e["digest"] for e in answer.json()["manifests"]]
        pages += 1
        link = answer.headers.get("Link")
        if not link:
            break
        params = dict(parse_qsl(link[link.index("?") + 1 : link.index(">")]))
    assert (seen, pages) == (pushed, 3)


def test_a_registry_without_the_referrers_api_answers_404_and_clients_use_the_fallback_tag(
    registry: RunningEmulator,
) -> None:
    image = _image(registry)
    before = registry.admin.attach_referrer("sourceregistry", "samples/hello", image, NOTATION)
    switched = registry.admin.set_referrers_api("sourceregistry", False)
    tag = "sha256-" + image.removeprefix("sha256:")
    assert switched["fallbackTagsWritten"] == [f"samples/hello:{tag}"]
    answer = referrers(registry, "sourceregistry", "samples/hello", image)
    assert answer.status_code == 404
    # a referrer pushed now: no OCI-Subject in the answer, so the client must keep the tag (the admin API
    # does it, as such a client would)
    signature, headers = push_signature(registry, image, b"second")
    assert "OCI-Subject" not in headers
    later = registry.admin.attach_referrer("sourceregistry", "samples/hello", image, SPDX)
    fallback = client(registry, "sourceregistry").get_manifest("samples/hello", tag)
    assert fallback.media_type == "application/vnd.oci.image.index.v1+json"
    listed = {e["digest"]: e["artifactType"] for e in fallback.manifest["manifests"]}
    # the data-plane push without the tag update is not there, as with a careless client
    assert listed == {before["digest"]: NOTATION, later["digest"]: SPDX}
    assert signature not in listed


def test_pushes_need_their_blobs_and_digests(registry: RunningEmulator) -> None:
    acr = client(registry, "sourceregistry")
    payload = b"not uploaded"
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": SPDX,
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": _digest(EMPTY), "size": 2},
        "layers": [{"mediaType": SPDX, "digest": _digest(payload), "size": len(payload)}],
    }
    with pytest.raises(HttpResponseError) as raised:
        acr.set_manifest("samples/hello", manifest)
    assert raised.value.status_code == 400
    assert "MANIFEST_BLOB_UNKNOWN" in str(raised.value)
    digest, size = acr.upload_blob("samples/hello", io.BytesIO(payload))
    assert (digest, size) == (_digest(payload), len(payload))
    acr.upload_blob("samples/hello", io.BytesIO(EMPTY))
    pushed = acr.set_manifest("samples/hello", manifest, tag="sbom")
    assert acr.get_tag_properties("samples/hello", "sbom").digest == pushed
    assert b"".join(acr.download_blob("samples/hello", digest)) == payload
    acr.delete_manifest("samples/hello", "sbom")
    assert "sbom" not in {t.name for t in acr.list_tag_properties("samples/hello")}


def test_indexes_foreign_layers_and_declared_large_layers(registry: RunningEmulator) -> None:
    admin = registry.admin
    index = admin.add_index(
        "sourceregistry",
        "samples/multi",
        "v1",
        [
            {"os": "linux", "architecture": "amd64", "layerSizes": [1000, 2000]},
            {"os": "linux", "architecture": "arm64", "layerSizes": [9_000_000_000]},
            {"os": "windows", "architecture": "amd64", "layers": [
                {"size": 300, "mediaType": "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"},
                {"size": 400},
            ]},
        ],
        media_type="docker",
    )  # fmt: skip
    acr = client(registry, "sourceregistry")
    listed = acr.get_manifest("samples/multi", "v1")
    assert listed.digest == index["digest"]
    assert listed.media_type == "application/vnd.docker.distribution.manifest.list.v2+json"
    platforms = [(m["platform"]["os"], m["platform"]["architecture"]) for m in listed.manifest["manifests"]]
    assert platforms == [("linux", "amd64"), ("linux", "arm64"), ("windows", "amd64")]
    arm = acr.get_manifest("samples/multi", index["manifests"][1]["digest"])
    assert arm.media_type == "application/vnd.docker.distribution.manifest.v2+json"
    assert arm.manifest["layers"][0]["size"] == 9_000_000_000
    windows = acr.get_manifest("samples/multi", index["manifests"][2]["digest"]).manifest
    foreign = windows["layers"][0]
    assert foreign["mediaType"] == "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
    assert foreign["urls"][0].startswith("https://")
    assert {t.name for t in acr.list_tag_properties("samples/multi")} == {"v1"}  # platforms untagged

    oci = admin.add_image(
        "sourceregistry",
        "samples/win",
        "ltsc",
        layers=[
            {"size": 100, "mediaType": "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
             "urls": ["https://example.invalid/layer"]},
        ],
    )  # fmt: skip
    layer = acr.get_manifest("samples/win", "ltsc").manifest["layers"][0]
    assert layer["urls"] == ["https://example.invalid/layer"]
    assert oci["mediaType"] == "application/vnd.oci.image.manifest.v1+json"

    # a client may push a manifest with a foreign layer without uploading it (its bytes live at its urls)
    acr.upload_blob("samples/win", io.BytesIO(b'{"os":"windows"}'))
    pushed = acr.set_manifest(
        "samples/win",
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": _digest(b'{"os":"windows"}'), "size": 16},
            "layers": [layer],
        },
        tag="pushed",
    )  # fmt: skip
    assert acr.get_tag_properties("samples/win", "pushed").digest == pushed


def test_referrers_travel_by_digest_with_their_subject(registry: RunningEmulator) -> None:
    registry.admin.create_registry("targetregistry", {})
    image = _image(registry)
    signature = registry.admin.attach_referrer("sourceregistry", "samples/hello", image, NOTATION)
    sbom = registry.admin.attach_referrer("sourceregistry", "samples/hello", image, SPDX)
    nested = registry.admin.attach_referrer("sourceregistry", "samples/hello", sbom["digest"], NOTATION)
    multi = registry.admin.add_index(
        "sourceregistry",
        "samples/multi",
        "v1",
        [{"os": "linux", "architecture": "amd64", "layerSizes": [10]},
         {"os": "linux", "architecture": "arm64", "layerSizes": [20]}],
    )  # fmt: skip
    _, url = new_container(registry)
    exported = export_pipeline(registry, "sourceregistry", url)
    imported = import_pipeline(registry, "targetregistry", url, trigger="Disabled")
    artifacts = [
        "samples/hello:v1",
        *(f"samples/hello@{r['digest']}" for r in (signature, sbom, nested)),
        "samples/multi:v1",
    ]
    run = export_run(registry, "sourceregistry", output(exported, "pipelineResourceId"), artifacts, "signed")
    assert state(run) == "Succeeded", run.properties.error
    run = import_run(registry, "targetregistry", output(imported, "pipelineResourceId"), "signed")
    assert state(run) == "Succeeded", run.properties.error

    listed = referrers(registry, "targetregistry", "samples/hello", image).json()["manifests"]
    assert [(e["digest"], e["artifactType"]) for e in listed] == [
        (signature["digest"], NOTATION),
        (sbom["digest"], SPDX),
    ]
    below = referrers(registry, "targetregistry", "samples/hello", sbom["digest"]).json()["manifests"]
    assert [e["digest"] for e in below] == [nested["digest"]]
    target = client(registry, "targetregistry")
    assert {t.name for t in target.list_tag_properties("samples/hello")} == {"v1"}  # digests arrive untagged
    assert target.get_manifest("samples/hello", signature["digest"]).manifest["subject"]["digest"] == image
    # the index arrives with its platforms
    assert target.get_manifest("samples/multi", "v1").digest == multi["digest"]
    for platform in multi["manifests"]:
        assert target.get_manifest("samples/multi", platform["digest"]).digest == platform["digest"]


def test_export_refuses_an_index_with_a_platform_layer_over_8_gb(registry: RunningEmulator) -> None:
    registry.admin.add_index(
        "sourceregistry",
        "samples/huge",
        "v1",
        [{"os": "linux", "architecture": "amd64", "layerSizes": [10]},
         {"os": "linux", "architecture": "arm64", "layerSizes": [8 * 1024**3 + 1]}],
    )  # fmt: skip
    _, url = new_container(registry)
    exported = export_pipeline(registry, "sourceregistry", url)
    run = export_run(
        registry, "sourceregistry", output(exported, "pipelineResourceId"), ["samples/huge:v1"], "huge"
    )
    assert state(run) == "Failed"
    message = run.properties.error.details[0].details[0].message
    assert "Failed to export artifact 'samples/huge:v1'" in message
    assert f"is {8 * 1024**3 + 1} bytes; ACR Transfer supports artifacts with layer sizes up to 8 GB" in (
        message
    )
