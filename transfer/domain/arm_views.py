"""Typed views of ARM's JSON for pipelines, pipelineRuns and deployments: the one module that knows their
field names, nesting and defaults. Pure: the adapters hand over JSON (or SDK objects reduced to plain
values), everything else reads these views.

The REST spec and the live service disagree with intuition in places (docs/service-facts.md):
`storageAccessMode` is absent before 2025-06-01-preview and means SasToken then; `keyVaultUri` may be null
or empty in ManagedIdentity mode; `response.status` is a free string; `progress.percentage` is a string;
identity types come back as `systemAssigned`. Each such rule is written once, here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote, urlsplit

SAS_TOKEN = "SasToken"  # noqa: S105 (a storage access mode, not a secret)
MANAGED_IDENTITY = "ManagedIdentity"
STORAGE_ACCESS_MODES = (SAS_TOKEN, MANAGED_IDENTITY)
EXPORT_OPTIONS = ("OverwriteBlobs", "ContinueOnErrors")
IMPORT_OPTIONS = ("OverwriteTags", "DeleteSourceBlobOnSuccess", "ContinueOnErrors")
# The templates the app deploys (templates/<name>/azuredeploy.json); their parameters are built below.
EXPORT_PIPELINE = "export-pipeline"
IMPORT_PIPELINE = "import-pipeline"
EXPORT_RUN = "pipelinerun-export"
IMPORT_RUN = "pipelinerun-import"


def _dict(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _text(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None


def parse_time(value: Any) -> datetime | None:
    """An ARM timestamp (ISO 8601, `Z` or offset, naive meaning UTC); None when absent or unreadable."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def ids_equal(a: str | None, b: str | None) -> bool:
    """ARM ids compare case-insensitively (the service may answer `resourcegroups`)."""
    return (a or "").lower() == (b or "").lower()


@dataclass(frozen=True)
class Pipeline:
    """An export or import pipeline. `kind` says which side of storage it uses (target or source)."""

    kind: str
    id: str | None
    name: str | None
    provisioning_state: str | None
    storage_uri: str | None
    storage_access_mode: str
    key_vault_uri: str | None
    options: tuple[str, ...]
    identity_type: str | None
    principal_id: str | None
    source_trigger_status: str | None  # import pipelines only
    resource: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)  # as ARM sent it

    @classmethod
    def from_arm(cls, kind: str, resource: Mapping[str, Any]) -> Pipeline:
        props = _dict(resource.get("properties"))
        storage = _dict(props.get("target" if kind == "export" else "source"))
        identity = _dict(resource.get("identity"))
        trigger = _dict(_dict(props.get("trigger")).get("sourceTrigger"))
        principal = identity.get("principalId")
        if not principal:  # a user-assigned identity may leave the top-level principalId null
            users = [_dict(u) for u in _dict(identity.get("userAssignedIdentities")).values()]
            principal = next((u.get("principalId") for u in users if u.get("principalId")), None)
        return cls(
            kind=kind,
            id=_text(resource.get("id")),
            name=_text(resource.get("name")),
            provisioning_state=_text(props.get("provisioningState")),
            storage_uri=_text(storage.get("uri")),
            storage_access_mode=_text(storage.get("storageAccessMode")) or SAS_TOKEN,
            key_vault_uri=_text(storage.get("keyVaultUri")),
            options=tuple(str(o) for o in props.get("options") or ()),
            identity_type=_text(identity.get("type")),
            principal_id=_text(principal),
            source_trigger_status=(_text(trigger.get("status")) or "Enabled") if kind == "import" else None,
            resource=resource,
        )

    @property
    def uses_sas(self) -> bool:
        return self.storage_access_mode == SAS_TOKEN

    @property
    def succeeded(self) -> bool:
        return (self.provisioning_state or "Succeeded") == "Succeeded"

    @property
    def source_trigger_enabled(self) -> bool:
        return (self.source_trigger_status or "").lower() == "enabled"


def storage_account_of(container_uri: str | None) -> str | None:
    """The storage account of a container URL: `https://<account>.blob.<suffix>/<container>`, or a local
    emulator's `http://127.0.0.1:<port>/<account>/<container>`."""
    if not container_uri:
        return None
    parts = urlsplit(container_uri)
    host = (parts.hostname or "").lower()
    if ".blob." in host:
        return host.split(".", 1)[0]
    first = parts.path.strip("/").split("/", 1)[0]
    return first or None


# Built-in roles whose data actions let a pipeline's identity read and write blobs (ManagedIdentity mode).
STORAGE_DATA_ROLES = {
    "ba92f5b4-2d11-453d-a403-e96b0029c9fe": "Storage Blob Data Contributor",
    "b7e6dc6d-f1e8-4753-8033-0f276bb0955b": "Storage Blob Data Owner",
}


@dataclass(frozen=True)
class RoleAssignment:
    role_definition: str  # the role definition's GUID, lower-case
    scope: str

    @classmethod
    def from_arm(cls, resource: Mapping[str, Any]) -> RoleAssignment:
        props = _dict(resource.get("properties"))
        definition = str(props.get("roleDefinitionId") or "").rstrip("/").rsplit("/", 1)[-1].lower()
        scope = str(props.get("scope") or "")
        if not scope:  # older answers: the assignment's own id up to /providers/Microsoft.Authorization
            scope = str(resource.get("id") or "").split("/providers/Microsoft.Authorization/")[0]
        return cls(definition, scope)

    @property
    def role_name(self) -> str | None:
        return STORAGE_DATA_ROLES.get(self.role_definition)

    def covers_account(self, subscription_id: str, account: str) -> str | None:
        """How this assignment reaches the storage account: 'account', 'container', 'resource group',
        'subscription', or None when it does not (a group or subscription is taken on trust: the app does
        not know which group holds the account)."""
        scope = self.scope.lower().rstrip("/")
        marker = f"/providers/microsoft.storage/storageaccounts/{account.lower()}"
        if scope.endswith(marker):
            return "account"
        if marker + "/blobservices/" in scope:
            return "container"
        subscription = f"/subscriptions/{subscription_id.lower()}"
        if scope == subscription:
            return "subscription"
        if scope.startswith(subscription + "/resourcegroups/") and scope.count("/") == 4:
            return "resource group"
        return None


@dataclass(frozen=True)
class PipelineRun:
    """A pipelineRun as ARM returns it."""

    id: str | None
    name: str
    pipeline_resource_id: str | None
    provisioning_state: str | None
    status: str | None  # response.status: a free string in the spec
    progress: str | None
    error: str | None
    imported_artifacts: tuple[str, ...]
    artifacts: tuple[str, ...]
    request_source_name: str | None
    response_source_uri: str | None
    source_trigger_time: datetime | None
    started_by_source_trigger: bool
    start_time: datetime | None = None  # response.startTime
    finish_time: datetime | None = None  # response.finishTime

    @classmethod
    def from_arm(cls, resource: Mapping[str, Any]) -> PipelineRun:
        props = _dict(resource.get("properties"))
        request = _dict(props.get("request"))
        response = _dict(props.get("response"))
        source_trigger = _dict(response.get("trigger")).get("sourceTrigger")
        progress = _dict(response.get("progress")).get("percentage")
        return cls(
            id=_text(resource.get("id")),
            name=str(resource.get("name") or ""),
            pipeline_resource_id=_text(request.get("pipelineResourceId")),
            provisioning_state=_text(props.get("provisioningState")),
            status=_text(response.get("status")),
            progress=str(progress) if progress is not None else None,
            error=_text(response.get("pipelineRunErrorMessage")),
            imported_artifacts=tuple(str(a) for a in response.get("importedArtifacts") or ()),
            artifacts=tuple(str(a) for a in request.get("artifacts") or ()),
            request_source_name=_text(_dict(request.get("source")).get("name")),
            response_source_uri=_text(_dict(response.get("source")).get("uri")),
            source_trigger_time=parse_time(_dict(source_trigger).get("timestamp")),
            started_by_source_trigger=bool(source_trigger),
            start_time=parse_time(response.get("startTime")),
            finish_time=parse_time(response.get("finishTime")),
        )

    @property
    def pipeline_kind(self) -> str | None:
        """export or import, from the pipeline the run names; None when it names none."""
        return _pipeline_path(self.pipeline_resource_id)[0]

    @property
    def pipeline_name(self) -> str | None:
        return _pipeline_path(self.pipeline_resource_id)[1]

    def blob_in(self, container_uri: str | None) -> str | None:
        """The blob this run names: `request.source.name`, else `response.source.uri` where it is the URL
        of a blob inside the pipeline's container; None where ARM names none (all the spec promises)."""
        if self.request_source_name:
            return self.request_source_name
        uri = (self.response_source_uri or "").split("?", 1)[0]
        base = (container_uri or "").split("?", 1)[0].rstrip("/")
        if base and uri.lower().startswith(base.lower() + "/"):
            return unquote(uri[len(base) + 1 :]) or None
        return None


def _pipeline_path(resource_id: str | None) -> tuple[str | None, str | None]:
    """(kind, name) of `.../registries/<r>/exportPipelines/<name>` (any casing), or (None, None)."""
    parts = (resource_id or "").rstrip("/").split("/")
    if len(parts) >= 2:
        kind = {"exportpipelines": "export", "importpipelines": "import"}.get(parts[-2].lower())
        if kind is not None and parts[-1]:
            return kind, parts[-1]
    return None, None


def _errors(error: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The error and every detail below it, depth first."""
    found = [error]
    for detail in error.get("details") or ():
        if isinstance(detail, Mapping):
            found.extend(_errors(detail))
    return found


def error_message(error: Mapping[str, Any] | None) -> str | None:
    """ARM's nested error as one line of its innermost errors (the leaves), each "code: message".

    A preflight rejection says "see inner errors" at the top and carries the provider's reason one or
    two levels down (docs/service-facts.md): the leaves are what a person needs. An error without details
    is its own leaf."""
    if not error:
        return None
    parts: list[str] = []
    for item in _errors(error):
        if any(isinstance(d, Mapping) for d in item.get("details") or ()):
            continue
        code, message = item.get("code"), item.get("message")
        text = f"{code}: {message}" if code and message else str(message or code or "")
        if text and text not in parts:
            parts.append(text)
    return "; ".join(parts) if parts else None


def error_codes(error: Mapping[str, Any] | None) -> tuple[str, ...]:
    """Every code of a nested ARM error, outermost first (causes are matched on any of them)."""
    if not error:
        return ()
    return tuple(dict.fromkeys(str(e["code"]) for e in _errors(error) if e.get("code")))


@dataclass(frozen=True)
class DeploymentState:
    name: str
    provisioning_state: str
    outputs: Mapping[str, Any] = field(default_factory=dict)
    output_resource_ids: tuple[str, ...] = ()
    error: str | None = None
    error_codes: tuple[str, ...] = ()
    correlation_id: str | None = None

    @classmethod
    def from_arm(cls, name: str, body: Mapping[str, Any]) -> DeploymentState:
        props = _dict(body.get("properties"))
        outputs = {
            key: (value.get("value") if isinstance(value, Mapping) else value)
            for key, value in _dict(props.get("outputs")).items()
        }
        resources = tuple(
            str(item["id"])
            for item in (props.get("outputResources") or ())
            if isinstance(item, Mapping) and item.get("id")
        )
        error = props.get("error")
        nested = error if isinstance(error, Mapping) else None
        return cls(
            name=str(body.get("name") or name),
            provisioning_state=str(props.get("provisioningState") or "Unknown"),
            outputs=outputs,
            output_resource_ids=resources,
            error=error_message(nested),
            error_codes=error_codes(nested),
            correlation_id=_text(props.get("correlationId")),
        )


def pipeline_parameters(
    kind: str,
    *,
    registry: str,
    pipeline: str,
    storage_uri: str,
    storage_access_mode: str,
    key_vault_name: str,
    sas_secret_name: str,
    options: tuple[str, ...],
    user_assigned_identity: str,
    source_trigger: bool,
    grant_storage_role: bool = False,
    key_vault_access: str = "AccessPolicy",
) -> dict[str, Any]:
    """The parameters of templates/export-pipeline and templates/import-pipeline."""
    parameters: dict[str, Any] = {
        "registryName": registry,
        f"{kind}PipelineName": pipeline,
        "targetUri" if kind == "export" else "sourceUri": storage_uri.rstrip("/"),
        "storageAccessMode": storage_access_mode,
        "keyVaultName": key_vault_name,
        "sasTokenSecretName": sas_secret_name,
        "options": list(dict.fromkeys(options)),
        "userAssignedIdentity": user_assigned_identity,
        "grantStorageRole": grant_storage_role,
        "keyVaultSecretAccess": key_vault_access,
    }
    if grant_storage_role:  # named, not derived from the URI's host (a path-style URL has the account later)
        parameters["storageAccountName"] = storage_account_of(storage_uri) or ""
    if kind == "import":
        parameters["sourceTriggerStatus"] = "Enabled" if source_trigger else "Disabled"
    return parameters


def run_parameters(
    kind: str,
    *,
    registry: str,
    run_name: str,
    pipeline_id: str,
    force_update_tag: str,
    artifacts: tuple[str, ...] = (),
    blob: str | None = None,
) -> dict[str, Any]:
    """The parameters of templates/pipelinerun-export and templates/pipelinerun-import."""
    common = {
        "registryName": registry,
        "pipelineRunName": run_name,
        "pipelineResourceId": pipeline_id,
        "forceUpdateTag": force_update_tag,
    }
    if kind == "export":
        return {**common, "artifacts": list(artifacts), "targetName": blob}
    return {**common, "sourceName": blob}
