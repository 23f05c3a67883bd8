"""Bad input through every HTTP function, as the host calls them: a 4xx that names the problem (`target`),
nothing recorded, no ARM call, never a 500. "Nothing recorded, nothing called" is read from the fakes'
call history: a refused request must not even read (no Table, Blob, registry or ARM call at all).

The valid-but-awkward inputs sit beside them: names Table keys cannot hold as they are (encoded by
transfer/adapters/entities.py), the longest names, unicode, and 51+ artifacts after de-duplication (split into
runs, never refused).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

import function_app
from tests.conftest import World
from tests.functions.test_http import call, export, get_blob, start_import
from transfer.entrypoints import http_api

JSON = {"Content-Type": "application/json"}
RESOURCE_ID = (
    "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/transfer-rg/providers"
    "/Microsoft.ContainerRegistry/registries/myregistry/exportPipelines/exportpipeline"
)
DIGEST = "sha256:" + "a" * 64


def calls(world: World) -> dict[str, list[tuple[str, Any]]]:
    """Every call the service made to the outside world, by port (reads included)."""
    return {
        "arm": world.arm.history,
        "state": world.state.history,
        "blobs": world.blobs.history,
        "registry": world.registry.history,
        "copier": world.copier.history,
        "secrets": world.secrets.history,
        "writer": world.writer.history,
    }


def assert_nothing_happened(world: World) -> None:
    assert all(history == [] for history in calls(world).values()), calls(world)
    assert world.stored_runs() == []
    assert (world.state.requests, world.state.blobs, world.state.ledger) == ({}, {}, {})


def assert_refused(status: int, body: Any, expected: int, target: str | None, code: str) -> None:
    assert status == expected, body
    assert set(body) == {"error"}
    assert (body["error"]["code"], body["error"]["target"]) == (code, target)
    assert body["error"]["message"]
    assert "Traceback" not in json.dumps(body)


# ---- artifact references ---------------------------------------------------------------------------

BAD_REFERENCES = [
    pytest.param("Samples/hello:v1", id="upper-case-repository"),
    pytest.param("samples/HELLO", id="upper-case-component"),
    pytest.param("samples/../hello:v1", id="dot-dot-segment"),
    pytest.param("../hello:v1", id="leading-dot-dot"),
    pytest.param("samples/./hello:v1", id="dot-segment"),
    pytest.param("samples//hello:v1", id="empty-segment"),
    pytest.param("/samples/hello:v1", id="leading-slash"),
    pytest.param("samples/hello/", id="trailing-slash"),
    pytest.param("samples/hello:", id="empty-tag"),
    pytest.param("samples/hello:.v1", id="tag-starting-with-dot"),
    pytest.param("samples/hello:" + "t" * 129, id="tag-too-long"),
    pytest.param("r" * 256 + ":v1", id="repository-too-long"),
    pytest.param("samples/hello@sha256:abc", id="digest-too-short"),
    pytest.param("samples/hello@sha256:" + "a" * 65, id="digest-too-long"),
    pytest.param("samples/hello@sha512:" + "a" * 128, id="digest-algorithm-sha512"),
    pytest.param("samples/hello@md5:" + "a" * 32, id="digest-algorithm-md5"),
    pytest.param("samples/hello@SHA256:" + "a" * 64, id="digest-algorithm-upper-case"),
    pytest.param("samples/hello@sha256:" + "A" * 64, id="digest-upper-case-hex"),
    pytest.param("samples/hello@sha256:" + "g" * 64, id="digest-not-hex"),
    pytest.param("samples/hello@", id="digest-empty"),
    pytest.param("samples/hello:v1@" + DIGEST, id="tag-and-digest"),
    pytest.param("samples/hello:v1\n", id="trailing-newline"),
    pytest.param("samples/hel\nlo:v1", id="newline-in-repository"),
    pytest.param("samples/hello:v\n1", id="newline-in-tag"),
    pytest.param("samples/hello:v1\r\nX-Injected: 1", id="crlf"),
    pytest.param("samples/hello:v1\x00", id="nul"),
    pytest.param("samples/hello:v1;rm -rf /", id="semicolon-in-tag"),
    pytest.param("samples;hello:v1", id="semicolon-in-repository"),
    pytest.param("[concat('samples/', 'hello')]", id="arm-expression"),
    pytest.param("samples/hello:[parameters('tag')]", id="arm-expression-in-tag"),
    pytest.param("[[samples/hello:v1", id="escaped-arm-expression"),
    pytest.param("samples/hello:v1 ", id="trailing-space"),
    pytest.param(" samples/hello:v1", id="leading-space"),
    pytest.param("", id="empty-string"),
    pytest.param("sämples/hello:v1", id="unicode-repository"),
    pytest.param("samples/hello:v\u00e9", id="unicode-tag"),
    pytest.param("\ud800", id="lone-surrogate"),
    pytest.param("myregistry.azurecr.io/samples/hello:v1", id="registry-host"),
    pytest.param("localhost:5000/samples/hello:v1", id="registry-host-with-port"),
    pytest.param("https://myregistry.azurecr.io/samples/hello:v1", id="url"),
    pytest.param(RESOURCE_ID, id="arm-resource-id"),
    pytest.param("samples/*", id="selector-without-tag-pattern"),
    pytest.param(7, id="integer"),
    pytest.param(None, id="null"),
    pytest.param(True, id="boolean"),
    pytest.param(["samples/hello:v1"], id="nested-list"),
    pytest.param({"repository": "samples/hello"}, id="object"),
]


@pytest.mark.parametrize("reference", BAD_REFERENCES)
def test_every_malformed_artifact_reference_is_400_naming_its_index(world: World, reference: Any) -> None:
    status, body, _ = export({"artifacts": ["samples/ok:v1", reference]})
    assert_refused(status, body, 400, "artifacts[1]", "InvalidInput")
    assert_nothing_happened(world)


@pytest.mark.parametrize(
    ("artifacts", "why"),
    [
        pytest.param([], "give at least one", id="empty-list"),
        pytest.param("samples/ok:v1", "must be a list", id="a-string"),
        pytest.param({"0": "samples/ok:v1"}, "must be a list", id="an-object"),
        pytest.param(None, "must be a list", id="null"),
        pytest.param([f"r{i}:v1" for i in range(1001)], "at most 1000", id="over-1000"),
    ],
)
def test_an_artifact_list_that_is_not_one_is_400(world: World, artifacts: Any, why: str) -> None:
    status, body, _ = export({"artifacts": artifacts})
    assert_refused(status, body, 400, "artifacts", "InvalidInput")
    assert why in body["error"]["message"]
    assert_nothing_happened(world)


def test_51_or_more_artifacts_after_dedupe_are_split_into_runs_not_refused(world: World) -> None:
    unique = [f"team/app{i}:v1" for i in range(60)]
    repeated = unique[:30] + [a.removesuffix(":v1") + ":v1" for a in unique] + unique[10:40]
    status, body, _ = export({"artifacts": repeated})
    assert status == 202
    assert [len(run["artifacts"]) for run in body["runs"]] == [50, 10]
    assert [a for run in body["runs"] for a in run["artifacts"]] == unique  # first-seen order
    assert len(world.deployments_started()) == 2


def test_duplicates_that_leave_50_make_one_run(world: World) -> None:
    fifty = [f"team/app{i}" for i in range(50)]
    status, body, _ = export({"artifacts": [*fifty, "team/app0:latest", "team/app49"]})
    assert status == 202
    [run] = body["runs"]
    assert run["artifacts"] == [f"{a}:latest" for a in fifty]


# ---- the body and its headers --------------------------------------------------------------------------

BAD_EXPORT_BODIES = [
    pytest.param({"artifacts": ["ok:v1"], "pipelineResourceId": RESOURCE_ID}, "pipelineResourceId", id="id"),
    pytest.param({"artifacts": ["ok:v1"], "registry": "/subscriptions/x"}, "registry", id="registry"),
    pytest.param(
        {"artifacts": ["ok:v1"], "storageUri": "https://evil.blob.core.windows.net/c"}, "storageUri", id="uri"
    ),
    pytest.param({"artifacts": ["ok:v1"], "Artifacts": ["x:v1"]}, "Artifacts", id="field-case"),
    pytest.param({"artifacts": ["ok:v1"], "targetName": "https://evil.example/x"}, "targetName", id="url"),
    pytest.param({"artifacts": ["ok:v1"], "targetName": RESOURCE_ID}, "targetName", id="resource-id"),
    pytest.param({"artifacts": ["ok:v1"], "targetName": "../x"}, "targetName", id="dot-dot"),
    pytest.param({"artifacts": ["ok:v1"], "targetName": "a/b"}, "targetName", id="slash"),
    pytest.param({"artifacts": ["ok:v1"], "targetName": "x" * 101}, "targetName", id="too-long"),
    pytest.param({"artifacts": ["ok:v1"], "targetName": "nächtlich"}, "targetName", id="unicode"),
    pytest.param({"artifacts": ["ok:v1"], "targetName": "x\n"}, "targetName", id="newline"),
    pytest.param({"artifacts": ["ok:v1"], "targetName": "x;y"}, "targetName", id="semicolon"),
    pytest.param({"artifacts": ["ok:v1"], "targetName": "[concat('a')]"}, "targetName", id="arm-expr"),
    pytest.param({"artifacts": ["ok:v1"], "targetName": ""}, "targetName", id="empty"),
    pytest.param({"artifacts": ["ok:v1"], "targetName": 5}, "targetName", id="integer"),
    pytest.param({"artifacts": ["ok:v1"], "incremental": "true"}, "incremental", id="incremental-string"),
    pytest.param({"artifacts": ["ok:v1"], "incremental": 1}, "incremental", id="incremental-integer"),
    pytest.param(b'{"artifacts": ["ok:v1"],}', "body", id="trailing-comma"),
    pytest.param(b"{'artifacts': ['ok:v1']}", "body", id="single-quotes"),
    pytest.param(b'{"artifacts": ["ok:v1"]} {}', "body", id="two-documents"),
    pytest.param(b'{"artifacts": Infinity}', "body", id="infinity"),
    pytest.param(b'"artifacts"', "body", id="a-string"),
    pytest.param(b"null", "body", id="null"),
    pytest.param(b"\xef\xbb\xbf" + b'{"artifacts": ["ok:v1"]}', "body", id="utf8-bom"),
    pytest.param(b'{"artifacts": ["ok:v1"]}'.decode().encode("utf-16"), "body", id="utf-16"),
    pytest.param(b'{"artifacts": ["ok:\xc3\x28"]}', "body", id="invalid-utf8"),
    pytest.param(b'{"artifacts": ["ok:\xed\xa0\x80"]}', "body", id="utf8-encoded-surrogate"),
    pytest.param(b'{"artifacts": ["ok:v1"], "artifacts": ["ok:v1"]}', "artifacts", id="duplicate-key"),
    pytest.param(b"[" * 100_000 + b"]" * 100_000, "body", id="deep-nesting"),
]


@pytest.mark.parametrize(("body", "target"), BAD_EXPORT_BODIES)
def test_bad_export_bodies_are_400_naming_the_field(world: World, body: Any, target: str) -> None:
    status, answer, _ = export(body, headers=JSON)
    assert_refused(status, answer, 400, target, "InvalidInput")
    assert_nothing_happened(world)


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "text/plain",
        "text/json",
        "application/jsonx",
        "multipart/form-data; boundary=x",
        "application/json; charset=iso-8859-1",
        "application/json; charset=utf-16",
    ],
)
@pytest.mark.parametrize("function", [function_app.start_export, function_app.start_import])
def test_a_wrong_content_type_is_415(world: World, function: Any, content_type: str | None) -> None:
    headers = {"Content-Type": content_type} if content_type is not None else {}
    body = b'{"artifacts": ["ok:v1"]}' if function is function_app.start_export else b'{"blob": "x"}'
    status, answer, _ = call(function, "POST", "x", body, headers=headers)
    assert_refused(status, answer, 415, None, "UnsupportedMediaType")
    assert "application/json" in answer["error"]["message"]
    assert_nothing_happened(world)


@pytest.mark.parametrize("function", [function_app.start_export, function_app.start_import])
def test_a_body_over_the_limit_is_413_whatever_content_length_says(world: World, function: Any) -> None:
    field = "artifacts" if function is function_app.start_export else "blob"
    big = json.dumps({field: "x" * http_api.MAX_BODY_BYTES}).encode()
    for headers in (JSON, {**JSON, "Content-Length": "12"}):
        status, answer, _ = call(function, "POST", "x", big, headers=headers)
        assert_refused(status, answer, 413, None, "PayloadTooLarge")
        assert "256 KiB" in answer["error"]["message"]
    declared = {**JSON, "Content-Length": str(http_api.MAX_BODY_BYTES + 1)}
    status, answer, _ = call(function, "POST", "x", b'{"blob": "x"}', headers=declared)
    assert_refused(status, answer, 413, None, "PayloadTooLarge")
    assert_nothing_happened(world)


def test_a_body_just_under_the_limit_is_read(world: World) -> None:
    artifacts = [f"team/app{i}:v1" for i in range(1000)]
    raw = json.dumps({"artifacts": artifacts}).encode()
    padded = raw[:-1] + b" " * (http_api.MAX_BODY_BYTES - len(raw)) + b"}"
    assert len(padded) == http_api.MAX_BODY_BYTES
    status, body, _ = export(padded, headers=JSON)
    assert status == 202
    assert len(body["runs"]) == 20


@pytest.mark.parametrize(
    "key",
    ["has space", "x" * 201, "ключ", "tab\tkey", "new\nline", "", "   "],
)
def test_a_malformed_idempotency_key_is_400(world: World, key: str) -> None:
    status, body, _ = export({"artifacts": ["ok:v1"]}, headers={"Idempotency-Key": key})
    assert_refused(status, body, 400, "Idempotency-Key", "InvalidInput")
    world.add_blob("x")
    world.blobs.history.clear()
    status, body, _ = start_import({"blob": "x"}, headers={"Idempotency-Key": key})
    assert_refused(status, body, 400, "Idempotency-Key", "InvalidInput")
    assert_nothing_happened(world)


# ---- blob names ------------------------------------------------------------------------------------------

BAD_BLOB_NAMES = [
    pytest.param("../x", id="leading-dot-dot"),
    pytest.param("a/../x", id="dot-dot-segment"),
    pytest.param("a/..", id="trailing-dot-dot"),
    pytest.param("..", id="dot-dot"),
    pytest.param("./x", id="leading-dot"),
    pytest.param("a/./x", id="dot-segment"),
    pytest.param(".", id="dot"),
    pytest.param("/x", id="leading-slash"),
    pytest.param(RESOURCE_ID, id="arm-resource-id"),
    pytest.param("https://targetacct.blob.core.windows.net/transfer/x", id="blob-url"),
    pytest.param("https://targetacct.blob.core.windows.net/transfer/x?sv=1&sig=abc", id="blob-url-with-sas"),
    pytest.param("a\\b", id="backslash"),
    pytest.param("..\\x", id="backslash-dot-dot"),
    pytest.param("a\x00b", id="nul"),
    pytest.param("a\tb", id="tab"),
    pytest.param("a\nb", id="newline"),
    pytest.param("x\r\n", id="crlf"),
    pytest.param("a\x7fb", id="del"),
    pytest.param("a\x85b", id="c1-control"),
    pytest.param("a\ud800b", id="lone-surrogate"),
    pytest.param("x" * 1025, id="1025-characters"),
    pytest.param("日" * 1025, id="1025-unicode-characters"),
    pytest.param("dir/", id="trailing-slash"),
    pytest.param("x.", id="trailing-dot"),
    pytest.param("", id="empty"),
]


@pytest.mark.parametrize("name", BAD_BLOB_NAMES)
def test_a_bad_blob_name_to_import_is_400_naming_blob(world: World, name: str) -> None:
    status, body, _ = start_import({"blob": name})
    assert_refused(status, body, 400, "blob", "InvalidInput")
    assert_nothing_happened(world)


@pytest.mark.parametrize("name", [3, None, True, ["x"], {"name": "x"}])
def test_a_blob_that_is_not_a_string_is_400(world: World, name: Any) -> None:
    status, body, _ = start_import({"blob": name})
    assert_refused(status, body, 400, "blob", "InvalidInput")
    assert_nothing_happened(world)


@pytest.mark.parametrize(
    ("body", "target"),
    [
        ({"blob": "x", "pipelineResourceId": RESOURCE_ID}, "pipelineResourceId"),
        ({"blob": "x", "sourceUri": "https://evil.blob.core.windows.net/c/x"}, "sourceUri"),
        ({"blob": "x", "artifacts": ["ok:v1"]}, "artifacts"),
        ({"name": "x"}, "name"),
        ({}, "blob"),
        ({"blob": "x.manifest.json"}, "blob"),
        (b'{"blob": "x"', "body"),
        (b'{"blob": "\xff"}', "body"),
        (b"[]", "body"),
    ],
)
def test_bad_import_bodies_are_400_naming_the_field(world: World, body: Any, target: str) -> None:
    world.add_blob("x")
    world.add_blob("x.manifest.json")
    world.blobs.history.clear()
    status, answer, _ = start_import(body, headers=JSON)
    assert_refused(status, answer, 400, target, "InvalidInput")
    assert_nothing_happened(world)


@pytest.mark.parametrize("name", BAD_BLOB_NAMES)
def test_a_bad_blob_name_to_diagnose_is_400_naming_name(world: World, name: str) -> None:
    status, body, _ = get_blob(name)
    assert_refused(status, body, 400, "name", "InvalidInput")
    assert_nothing_happened(world)


def test_a_diagnosis_takes_no_body_and_an_unknown_blob_is_404(world: World) -> None:
    status, body, _ = call(
        function_app.get_blob, "GET", "blobs/x", b"{}", headers=JSON, route_params={"name": "x"}
    )
    assert_refused(status, body, 400, "body", "InvalidInput")
    assert_nothing_happened(world)
    status, body, _ = get_blob("nosuchblob")
    assert_refused(status, body, 404, "name", "NotFound")
    assert world.arm_writes() == []
    assert world.state.blobs == {}


AWKWARD_NAMES = [
    pytest.param("exports/2026/a#b?c=d&e", id="table-key-reserved-characters"),
    pytest.param("dir/sub dir/blob name", id="spaces"),
    pytest.param("données/日本語/ü-ß", id="unicode"),
    pytest.param("x" * 1024, id="1024-characters"),
    pytest.param("日" * 1024, id="1024-unicode-characters"),
    pytest.param("a.b..c/d...e", id="dots-inside-segments"),
    pytest.param("...x", id="leading-dots-in-a-name"),
    pytest.param("'; DROP TABLE runs; --", id="sql-ish"),
    pytest.param("%2e%2e/x", id="percent-encoded"),
]


@pytest.mark.parametrize("name", AWKWARD_NAMES)
def test_awkward_but_valid_blob_names_are_imported_and_recorded_once(world: World, name: str) -> None:
    world.add_blob(name, category=False)  # only a manual import brings it in
    status, body, _ = get_blob(name)
    assert (status, body["name"], body["decision"]) == (200, name, "import")
    status, body, _ = start_import({"blob": name}, headers={"Idempotency-Key": "awkward-1"})
    assert status == 202, body
    [run] = body["runs"]
    assert run["blob"] == name
    status, again, _ = start_import({"blob": name}, headers={"Idempotency-Key": "awkward-1"})
    assert (status, again["runs"][0]["id"]) == (202, run["id"])
    assert len(world.deployments_started()) == 1
    result = world.service.handle_blob(name)  # the blob trigger's record is keyed by the name too
    assert result.run is not None
    assert world.state.blob_records(name)[0].name == name
    assert world.service.handle_blob(name).outcome.value == "nothing"
