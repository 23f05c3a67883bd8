"""Validation of ACR Transfer request bodies: the shape the official management SDK's models give
(resource_models), then the service's own rules that no model states (the REST spec and the troubleshooting
guide: names, options per kind, the artifact grammar, limits, SasToken needs a vault). Pure functions;
existence checks live in acr.py."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from emulator import resource_models, resource_types
from emulator.arm_errors import bad_request
from emulator.resource_models import EXPORT_PIPELINES, IMPORT_PIPELINES, PIPELINE_RUNS

EXPORT_OPTIONS = ("OverwriteBlobs", "ContinueOnErrors")
IMPORT_OPTIONS = ("OverwriteTags", "DeleteSourceBlobOnSuccess", "ContinueOnErrors")
STORAGE_ACCESS_MODES = ("SasToken", "ManagedIdentity")
FIRST_STORAGE_ACCESS_MODE_VERSION = "2025-06-01-preview"
MAX_ARTIFACTS = 50

NAME = re.compile(r"^[a-zA-Z0-9]{5,50}$")
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
ARTIFACT = re.compile(
    rf"^{_COMPONENT}(?:/{_COMPONENT})*(?::[A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}}|@sha256:[0-9a-f]{{64}})?$"
)
CATALOG_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


# The versions the live service answers pipeline requests with (header api-supported-versions, April 2026).
SUPPORTED_API_VERSIONS = (
    "2025-06-01-preview",
    "2025-12-01-preview",
    "2026-01-01-preview",
    "2026-03-01-preview",
)


def check_api_version(
    resource_type: str,
    api_version: str,
    supported: Sequence[str] = SUPPORTED_API_VERSIONS,
    location: str = "global",
) -> None:
    """Only the versions the service supports (an emulator setting): ARM answers 400
    InvalidApiVersionParameter for a malformed version and NoRegisteredProviderFound for one the provider
    does not register (resource_types says it for every type)."""
    resource_types.check(resource_type, api_version, supported, location)


def check_shape(resource_type: str, body: dict[str, Any]) -> None:
    """Refuse what the provider's deserializer refuses (the SDK's models: resource_models), naming the
    first offending member."""
    found = resource_models.problems(resource_type, body)
    if found:
        first = found[0]
        raise bad_request(
            f"The request content was invalid and could not be deserialized: {first.message}. "
            f"Path '{first.path}'.",
            code="InvalidRequestContent",
            target=first.path,
        )


def check_name(kind: str, name: str) -> None:
    if not NAME.match(name):
        raise bad_request(
            f"The {kind} name '{name}' is invalid. It must be 5-50 characters long and contain only letters "
            "and "
            "digits (^[a-zA-Z0-9]*$).",
            code="InvalidParameter" if kind != "registry" else "InvalidRegistryName",
            target="name",
        )


def _options(properties: dict[str, Any], allowed: tuple[str, ...], kind: str) -> None:
    options = properties.get("options") or []
    for option in options:
        if option not in allowed:
            raise bad_request(
                f"The option '{option}' is not valid for an {kind} pipeline. Allowed options: "
                f"{', '.join(allowed)}.",
                target="properties.options",
            )
    if len(set(options)) != len(options):
        raise bad_request("The pipeline options must not repeat.", target="properties.options")


def _storage(endpoint: dict[str, Any], api_version: str, where: str) -> dict[str, Any]:
    """Check a pipeline's target/source; the version the service stores (ManagedIdentity drops
    keyVaultUri)."""
    stored = dict(endpoint)
    if endpoint.get("type") != "AzureStorageBlobContainer":
        raise bad_request(
            f"The {where} type '{endpoint.get('type')}' is not supported: use 'AzureStorageBlobContainer'.",
            target=f"properties.{where}.type",
        )
    uri = endpoint.get("uri")
    if not isinstance(uri, str) or not re.match(r"^https?://[^/]+/.+", uri):
        raise bad_request(
            f"The {where} uri '{uri}' is not the URL of a storage container "
            "(https://<account>.blob.core.windows.net/<container>).",
            target=f"properties.{where}.uri",
        )
    mode = endpoint.get("storageAccessMode")
    if mode is not None and api_version < FIRST_STORAGE_ACCESS_MODE_VERSION:
        raise bad_request(
            f"The property 'storageAccessMode' is not supported in API version '{api_version}'; it needs "
            f"'{FIRST_STORAGE_ACCESS_MODE_VERSION}' or later.",
            code="InvalidRequestContent",
            target=f"properties.{where}.storageAccessMode",
        )
    mode = mode or "SasToken"
    if mode not in STORAGE_ACCESS_MODES:
        raise bad_request(
            f"The storageAccessMode '{mode}' is not valid: use SasToken or ManagedIdentity.",
            target=f"properties.{where}.storageAccessMode",
        )
    if mode == "SasToken":
        vault_uri = endpoint.get("keyVaultUri")
        if not isinstance(vault_uri, str) or not re.match(r"^https://[^/]+/secrets/[^/]+/?", vault_uri):
            raise bad_request(
                f"The property 'keyVaultUri' of the {where} is required in SasToken storage access mode and "
                "must "
                f"be a Key Vault secret URI (https://<vault>/secrets/<name>); got '{vault_uri}'.",
                target=f"properties.{where}.keyVaultUri",
            )
    else:
        stored.pop("keyVaultUri", None)  # ignored and not echoed in ManagedIdentity mode
    if api_version >= FIRST_STORAGE_ACCESS_MODE_VERSION:
        stored["storageAccessMode"] = mode
    return stored


def _identity(body: dict[str, Any]) -> None:
    identity = body.get("identity")
    kind = str((identity or {}).get("type", "None")).replace(" ", "").lower()
    if kind in ("", "none"):
        raise bad_request(
            "The pipeline needs a managed identity (SystemAssigned or UserAssigned): it reads the SAS token "
            "from "
            "Key Vault or reaches the storage account with it.",
            target="identity",
        )
    if "userassigned" in kind and not (identity or {}).get("userAssignedIdentities"):
        raise bad_request(
            "The identity type 'UserAssigned' requires 'userAssignedIdentities'.", target="identity"
        )


def export_pipeline(
    name: str,
    api_version: str,
    body: dict[str, Any],
    supported: Sequence[str] = SUPPORTED_API_VERSIONS,
) -> dict[str, Any]:
    """Validate an export pipeline PUT; returns the properties the service stores."""
    check_api_version(EXPORT_PIPELINES, api_version, supported)
    check_name("export pipeline", name)
    check_shape(EXPORT_PIPELINES, body)
    properties = body["properties"]
    _identity(body)
    _options(properties, EXPORT_OPTIONS, "export")
    return _without_empty_options(
        {**properties, "target": _storage(properties["target"], api_version, "target")}
    )


def import_pipeline(
    name: str,
    api_version: str,
    body: dict[str, Any],
    supported: Sequence[str] = SUPPORTED_API_VERSIONS,
) -> dict[str, Any]:
    check_api_version(IMPORT_PIPELINES, api_version, supported)
    check_name("import pipeline", name)
    check_shape(IMPORT_PIPELINES, body)
    properties = body["properties"]
    if "source" not in properties:
        raise bad_request(
            "The property 'source' is required for an import pipeline.", target="properties.source"
        )
    _identity(body)
    _options(properties, IMPORT_OPTIONS, "import")
    status = ((properties.get("trigger") or {}).get("sourceTrigger") or {}).get("status", "Enabled")
    return _without_empty_options(
        {
            **properties,
            "source": _storage(properties["source"], api_version, "source"),
            "trigger": {"sourceTrigger": {"status": status}},
        }
    )


def _without_empty_options(properties: dict[str, Any]) -> dict[str, Any]:
    """The live service omits `options` when none were sent (recorded); an empty list (the official
    templates' default) is taken as none: a guess, README says so."""
    options = list(properties.pop("options", None) or [])
    return {**properties, "options": options} if options else properties


def given(endpoint: Any) -> bool:
    """A run's `source` / `target` that names something. The official PipelineRun templates always send both
    sides, the one a run does not use as {"type": "", "name": ""}, and the service accepts that: an empty
    side counts as not given."""
    return isinstance(endpoint, dict) and bool(endpoint.get("type") or endpoint.get("name"))


def _as_judged(body: dict[str, Any]) -> dict[str, Any]:
    """The run body as the provider's model reads it: without ARM's envelope member `location` (the official
    templates set it on a run; a PipelineRun has none and the service ignores it) and without empty sides."""
    judged = {key: value for key, value in body.items() if key != "location"}
    request = (body.get("properties") or {}).get("request")
    if isinstance(request, dict):
        sides = ("source", "target")
        kept = {key: value for key, value in request.items() if key not in sides or given(value)}
        judged["properties"] = {**body["properties"], "request": kept}
    return judged


def pipeline_run(
    name: str,
    api_version: str,
    body: dict[str, Any],
    supported: Sequence[str] = SUPPORTED_API_VERSIONS,
) -> dict[str, Any]:
    """Validate a pipeline run PUT (shape only; the pipeline's existence is checked by the caller). Returns
    the properties as sent (an empty unused side included: the service echoes its request)."""
    check_api_version(PIPELINE_RUNS, api_version, supported)
    check_name("pipeline run", name)
    judged = _as_judged(body)
    check_shape(PIPELINE_RUNS, judged)
    properties = judged.get("properties") or {}
    request = properties.get("request")
    if not isinstance(request, dict) or not request.get("pipelineResourceId"):
        raise bad_request(
            "The property 'request.pipelineResourceId' is required.",
            target="properties.request.pipelineResourceId",
        )
    artifacts = request.get("artifacts")
    if artifacts is not None:
        if len(artifacts) > MAX_ARTIFACTS:
            raise bad_request(
                f"A pipeline run can transfer at most {MAX_ARTIFACTS} artifacts; the request has "
                f"{len(artifacts)}.",
                target="properties.request.artifacts",
            )
        for index, artifact in enumerate(artifacts):
            if not ARTIFACT.match(artifact):
                raise bad_request(
                    f"The artifact '{artifact}' is not valid: use 'repository', 'repository:tag' or "
                    "'repository@sha256:<64 hex digits>' (lower-case repository).",
                    target=f"properties.request.artifacts[{index}]",
                )
    digest = request.get("catalogDigest")
    if digest and not CATALOG_DIGEST.match(digest):
        raise bad_request(
            f"The catalogDigest '{digest}' is not valid: use 'sha256:<64 hex digits>'.",
            target="properties.request.catalogDigest",
        )
    for key in ("source", "target"):
        endpoint = request.get(key)
        if endpoint is not None and (
            endpoint.get("type", "AzureStorageBlob") != "AzureStorageBlob" or not endpoint.get("name")
        ):
            raise bad_request(
                f"The run's {key} must be {{'type': 'AzureStorageBlob', 'name': '<blob name>'}}.",
                target=f"properties.request.{key}",
            )
    return body.get("properties") or {}


def run_matches_pipeline(pipeline_type: str, request: dict[str, Any]) -> None:
    """Export runs name artifacts and a target; import runs name a source (an empty side is not given)."""
    if pipeline_type.lower() == EXPORT_PIPELINES.lower():
        if not request.get("artifacts"):
            raise bad_request(
                "An export pipeline run needs 'request.artifacts' (1 to 50 artifacts).",
                target="properties.request.artifacts",
            )
        if not given(request.get("target")):
            raise bad_request(
                "An export pipeline run needs 'request.target'.", target="properties.request.target"
            )
        if given(request.get("source")):
            raise bad_request(
                "An export pipeline run takes a 'target', not a 'source'.", target="properties.request.source"
            )
    else:
        if not given(request.get("source")):
            raise bad_request(
                "An import pipeline run needs 'request.source'.", target="properties.request.source"
            )
        if given(request.get("target")):
            raise bad_request(
                "An import pipeline run takes a 'source', not a 'target'.", target="properties.request.target"
            )
