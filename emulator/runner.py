"""Executes pipeline runs in worker threads: export writes the transfer blob, import reads it into the
registry. A run takes `config.run_seconds`; its resource moves Running -> Succeeded/Failed."""

from __future__ import annotations

import copy
import logging
import threading
from dataclasses import dataclass, field, replace
from typing import Any

from azure.core.exceptions import HttpResponseError, ResourceExistsError
from azure.storage.blob import ContainerClient, ContentSettings

from emulator import ids, network_rules, storage, transfer_blob
from emulator.acr import EXPORT_PIPELINES, Registries, login_server
from emulator.authorization import BLOB_DATA_WRITERS, RoleAssignments
from emulator.clock import Clock, iso
from emulator.faults import Faults
from emulator.identities import principals
from emulator.registry_content import Manifest
from emulator.store import Config, State
from emulator.vaults import KeyVault, SecretAccessError

log = logging.getLogger("emulator.runs")


class RunFailed(Exception):
    """The run fails; the message becomes response.pipelineRunErrorMessage."""


@dataclass
class Outcome:
    response: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Endpoint:
    """A pipeline's storage container and how to reach it."""

    uri: str
    mode: str
    key_vault_uri: str | None
    principals: list[str]
    options: list[str]
    kind: str  # "export" or "import"
    key_vault_uri_shown: bool = False  # ManagedIdentity mode answered with keyVaultUri null or ""


class Runner:
    def __init__(
        self,
        state: State,
        config: Config,
        clock: Clock,
        registries: Registries,
        keyvault: KeyVault,
        faults: Faults,
        stop: threading.Event,
        storage_accounts: storage.StorageAccounts,
        authorization: RoleAssignments,
    ) -> None:
        self.state = state
        self.config = config
        self.clock = clock
        self.registries = registries
        self.keyvault = keyvault
        self.faults = faults
        self.stop = stop
        self.storage_accounts = storage_accounts
        self.authorization = authorization

    def start(self, run_key: str, generation: int) -> None:
        threading.Thread(
            target=self._execute,
            args=(run_key, generation),
            name=f"run-{run_key.rsplit('/', 1)[-1]}",
            daemon=True,
        ).start()

    # --- the run's life

    def _current(self, run_key: str, generation: int) -> dict[str, Any] | None:
        """A copy of the run's body while this execution is still the run's latest; else None."""
        with self.state.lock:
            resource = self.state.resources.get(run_key)
            if resource is None or self.state.run_generations.get(run_key) != generation:
                return None
            return copy.deepcopy(resource.body)

    def _update(
        self, run_key: str, generation: int, response: dict[str, Any], provisioning: str | None
    ) -> None:
        with self.state.lock:
            resource = self.state.resources.get(run_key)
            if resource is None or self.state.run_generations.get(run_key) != generation:
                return
            properties = resource.body["properties"]
            properties["response"] = {**properties.get("response", {}), **response}
            if provisioning:
                properties["provisioningState"] = provisioning
            self.state.changed.notify_all()

    def _execute(self, run_key: str, generation: int) -> None:
        half = self.config.run_seconds / 2
        if self.stop.wait(half):
            return
        body = self._current(run_key, generation)
        if body is None:
            return
        self._update(run_key, generation, {"progress": {"percentage": "50"}}, None)
        try:
            outcome = self._work(body)
            status, message = "Succeeded", None
        except RunFailed as exc:
            outcome, status, message = Outcome(), "Failed", str(exc)
        except Exception as exc:  # a bug or an unexpected storage error must still end the run
            log.exception("pipeline run %s crashed", run_key)
            outcome, status, message = (
                Outcome(),
                "Failed",
                f"Internal error of the emulator: {type(exc).__name__}: {exc}",
            )
        if self.stop.wait(half):
            return
        response = {**outcome.response, "status": status, "finishTime": iso(self.clock.now())}
        response["progress"] = {
            "percentage": "100"
            if status == "Succeeded"
            else outcome.response.get("progress", {}).get("percentage", "50")
        }
        if message:
            response["pipelineRunErrorMessage"] = message
        self._update(run_key, generation, response, status)

    def _work(self, body: dict[str, Any]) -> Outcome:
        request = body["properties"]["request"]
        pipeline_id = request["pipelineResourceId"]
        injected = self.faults.take_run_failure(pipeline_id)
        if injected:
            raise RunFailed(injected)
        with self.state.lock:
            pipeline = self.state.resources.get(ids.key(pipeline_id))
            pipeline_body = copy.deepcopy(pipeline.body) if pipeline else None
        if pipeline_body is None:
            raise RunFailed(f"The pipeline '{pipeline_id}' no longer exists.")
        registry_id = pipeline_id.rsplit("/", 2)[0]
        if pipeline_body["type"].lower() == EXPORT_PIPELINES.lower():
            return self._export(body, request, pipeline_body, registry_id)
        return self._import(body, request, pipeline_body, registry_id)

    # --- storage

    def endpoint(self, pipeline_body: dict[str, Any]) -> Endpoint:
        properties = pipeline_body["properties"]
        where = properties.get("target") or properties.get("source") or {}
        return Endpoint(
            uri=where["uri"],
            mode=where.get("storageAccessMode") or "SasToken",
            key_vault_uri=where.get("keyVaultUri"),
            principals=principals(pipeline_body),
            options=list(properties.get("options") or []),
            kind="export" if "target" in properties else "import",
            key_vault_uri_shown="keyVaultUri" in where,
        )

    def container(self, endpoint: Endpoint) -> tuple[ContainerClient, storage.ContainerAddress]:
        """The container client once the pipeline's access is granted; raises RunFailed with the reason:
        SasToken mode reads the SAS with the pipeline's identity and judges it (storage.check_sas),
        ManagedIdentity mode needs a blob data role on the account (unless enforce_storage_roles is off)."""
        try:
            where = self.storage_accounts.address(endpoint.uri)
            sas = None
            if endpoint.mode == "ManagedIdentity":
                self._check_network(endpoint, where)
                self._check_role(endpoint, where)
            else:
                assert endpoint.key_vault_uri is not None
                secret = self.keyvault.read_for(endpoint.key_vault_uri, endpoint.principals)
                self._check_network(endpoint, where)  # Key Vault trusts ACR; storage does not
                sas = storage.check_sas(
                    secret,
                    needed=storage.needed_permissions(endpoint.kind, endpoint.options),
                    kind=endpoint.kind,
                    now=self.clock.now(),
                    secret_uri=endpoint.key_vault_uri,
                    where=where,
                    key=self.storage_accounts.key(where.data_account),
                    https_only=self.config.require_https_sas,
                )
            return self.storage_accounts.client(where, sas), where
        except (SecretAccessError, storage.StorageAccessError) as exc:
            raise RunFailed(str(exc)) from None

    def _check_network(self, endpoint: Endpoint, where: storage.ContainerAddress) -> None:
        restricted = network_rules.restriction(self.storage_accounts.properties(where.account))
        if restricted is None:
            return
        how = (
            "with the pipeline's managed identity"
            if endpoint.mode == "ManagedIdentity"
            else f"with the SAS token of Key Vault secret '{endpoint.key_vault_uri}'"
        )
        raise storage.StorageAccessError(
            storage.storage_error(
                f"Access to container '{where.container}' {how}",
                where.account,
                "AuthorizationFailure",
                restricted,
            ),
            "AuthorizationFailure",
        )

    def _check_role(self, endpoint: Endpoint, where: storage.ContainerAddress) -> None:
        if not self.config.enforce_storage_roles:
            return
        scope = self.storage_accounts.scope(where.account)
        if self.authorization.has_role(endpoint.principals, scope, BLOB_DATA_WRITERS):
            return
        raise storage.StorageAccessError(
            storage.storage_error(
                f"Access to container '{where.container}' with the pipeline's managed identity",
                where.account,
                "AuthorizationPermissionMismatch",
                f"The pipeline's identity (principal id {', '.join(endpoint.principals) or 'none'}) has no "
                f"Storage Blob Data Contributor role assignment on the storage account ('{scope}') or above "
                "it.",
            ),
            "AuthorizationPermissionMismatch",
        )

    @staticmethod
    def storage_failure(
        action: str, where: storage.ContainerAddress, exc: HttpResponseError, cause: str = ""
    ) -> RunFailed:
        """A storage error as the run reports it: storage's code and message, where, and why."""
        code = str(getattr(exc, "error_code", None) or "")
        if code in storage.STORAGE_MESSAGES:
            return RunFailed(storage.storage_error(action, where.account, code, cause))
        return RunFailed(
            f"{action} failed: storage account '{where.account}' answered {exc.status_code} "
            f"{code or 'Error'}. {cause}".rstrip()
        )

    # --- export

    def _export(
        self, body: dict[str, Any], request: dict[str, Any], pipeline: dict[str, Any], registry_id: str
    ) -> Outcome:
        endpoint = self.endpoint(pipeline)
        continue_on_errors = "ContinueOnErrors" in endpoint.options
        registry_name = registry_id.rsplit("/", 1)[-1]
        found: list[transfer_blob.Artifact] = []
        errors: list[str] = []
        with self.state.lock:
            content = self.registries.content(registry_id)
            for artifact in request.get("artifacts") or []:
                resolved, error = _resolve(content, artifact, login_server(registry_name))
                if resolved:
                    document = self.registries.store.document(resolved.digest)  # the blob carries it
                    if document is not None:
                        children = [
                            child
                            for entry in document.children
                            if (child := self.registries.store.document(str(entry["digest"]))) is not None
                        ]
                        resolved = replace(
                            resolved,
                            media_type=document.media_type,
                            manifest=document.data,
                            children=tuple(
                                transfer_blob.Child(c.digest, c.media_type, c.data) for c in children
                            ),
                        )
                        error = _oversized_layer(artifact, [document, *children])
                if resolved and not error:
                    found.append(resolved)
                else:
                    errors.append(error)
        if errors and not continue_on_errors:
            raise RunFailed(" ".join(errors))
        if not found:
            raise RunFailed("No artifact could be exported. " + " ".join(errors))
        blob_name = request["target"]["name"]
        data = transfer_blob.encode(login_server(registry_name), body["id"], iso(self.clock.now()), found)
        client, where = self.container(endpoint)
        overwrite = "OverwriteBlobs" in endpoint.options
        action = f"Writing blob '{blob_name}' to container '{where.container}'"
        try:
            client.upload_blob(
                blob_name,
                data,
                overwrite=overwrite,
                metadata={"category": transfer_blob.CATEGORY},
                content_settings=ContentSettings(
                    content_type=transfer_blob.CONTENT_TYPE, content_md5=bytearray(transfer_blob.md5(data))
                ),
            )
        except ResourceExistsError as exc:
            raise self.storage_failure(
                action, where, exc, "The export pipeline does not have the 'OverwriteBlobs' option."
            ) from None
        except HttpResponseError as exc:
            raise self.storage_failure(action, where, exc) from None
        response: dict[str, Any] = {
            "catalogDigest": transfer_blob.catalog_digest(data),
            "target": _endpoint_echo(endpoint, "AzureStorageBlob", blob_name, where),
        }
        return _outcome(response, errors)

    # --- import

    def _import(
        self, body: dict[str, Any], request: dict[str, Any], pipeline: dict[str, Any], registry_id: str
    ) -> Outcome:
        endpoint = self.endpoint(pipeline)
        named = (request.get("source") or {}).get("name")
        with self.state.lock:
            blob_name = named or self.state.trigger_blobs.get(ids.key(body["id"]), "")
        delete_after = "DeleteSourceBlobOnSuccess" in endpoint.options
        client, where = self.container(endpoint)
        try:
            data = client.download_blob(blob_name).readall()
        except HttpResponseError as exc:
            raise self.storage_failure(
                f"Reading blob '{blob_name}' from container '{where.container}'", where, exc
            ) from None
        try:
            _, artifacts = transfer_blob.decode(data)
        except transfer_blob.NotATransferBlob as exc:
            raise RunFailed(f"Failed to import blob '{blob_name}': {exc}.") from None
        digest = transfer_blob.catalog_digest(data)
        wanted = request.get("catalogDigest")
        if wanted and wanted != digest:
            raise RunFailed(
                f"The catalog digest of blob '{blob_name}' is '{digest}', not the requested '{wanted}'."
            )
        overwrite = "OverwriteTags" in endpoint.options
        errors: list[str] = []
        imported: list[str] = []
        with self.state.lock:
            content = self.registries.content(registry_id)
            accepted = []
            for artifact in artifacts:
                failure = self._import_failure(registry_id, artifact)
                if failure:
                    errors.append(f"Failed to import artifact '{artifact.artifact}': {failure}")
                    continue
                current = content.get(artifact.repository)
                existing = current.tags.get(artifact.tag) if current and artifact.tag else None
                if existing and existing != artifact.digest and not overwrite:
                    errors.append(
                        f"Failed to import artifact '{artifact.artifact}': the tag '{artifact.tag}' already "
                        "exists "
                        f"in repository '{artifact.repository}' with digest '{existing}' and the import "
                        "pipeline "
                        "does not have the 'OverwriteTags' option."
                    )
                else:
                    accepted.append(artifact)
            if errors and "ContinueOnErrors" not in endpoint.options:
                raise RunFailed(" ".join(errors))
            for artifact in accepted:
                for child in artifact.children:  # an index's platforms first, untagged
                    self.registries.add(
                        registry_id,
                        artifact.repository,
                        None,
                        child.digest,
                        Manifest.from_bytes(child.manifest, child.media_type),
                        via="import",
                    )
                manifest = (
                    Manifest.from_bytes(artifact.manifest, artifact.media_type) if artifact.manifest else None
                )
                self.registries.add(
                    registry_id, artifact.repository, artifact.tag, artifact.digest, manifest, via="import"
                )
                imported.append(artifact.artifact)
        if delete_after and not errors:
            try:
                client.delete_blob(blob_name)
            except HttpResponseError as exc:
                raise self.storage_failure(
                    f"Deleting blob '{blob_name}' from container '{where.container}'", where, exc
                ) from None
        response: dict[str, Any] = {"importedArtifacts": imported, "catalogDigest": digest}
        if named:  # a source-trigger run keeps the response.source it was created with
            response["source"] = _endpoint_echo(endpoint, "AzureStorageBlob", blob_name, where)
        return _outcome(response, errors)

    def _import_failure(self, registry_id: str, artifact: transfer_blob.Artifact) -> str | None:
        """Why this import cannot bring the artifact in: its manifest is unusable, or the admin API said so
        (by the name the export was asked for, `repo:tag` or `repo@digest`)."""
        documents = [(artifact.manifest, artifact.media_type)] if artifact.manifest is not None else []
        documents += [(child.manifest, child.media_type) for child in artifact.children]
        for data, media_type in documents:
            try:
                Manifest.from_bytes(data, media_type)
            except ValueError as exc:
                return f"MANIFEST_INVALID: {exc}."
        names = [artifact.artifact, f"{artifact.repository}@{artifact.digest}"]
        if artifact.tag:
            names.append(f"{artifact.repository}:{artifact.tag}")
        return self.registries.store.import_failure(ids.key(registry_id), *names)


def _outcome(response: dict[str, Any], skipped: list[str]) -> Outcome:
    """A run that finished; with ContinueOnErrors, the artifacts it skipped are named in its message."""
    if skipped:
        response["pipelineRunErrorMessage"] = "Some artifacts were skipped (ContinueOnErrors): " + " ".join(
            skipped
        )
    return Outcome(response)


def storage_echo(endpoint: Endpoint) -> dict[str, Any]:
    """A pipeline's storage as a run's response.source / response.target shows it (REST spec:
    ImportPipelineSourceProperties / ExportPipelineTargetProperties: type, uri, keyVaultUri,
    storageAccessMode; no blob name)."""
    echo: dict[str, Any] = {"type": "AzureStorageBlobContainer", "uri": endpoint.uri}
    if endpoint.mode == "SasToken" and endpoint.key_vault_uri:
        echo["keyVaultUri"] = endpoint.key_vault_uri
    elif endpoint.mode == "ManagedIdentity" and endpoint.key_vault_uri_shown:
        echo["keyVaultUri"] = endpoint.key_vault_uri  # null or "", as the pipeline answers
    echo["storageAccessMode"] = endpoint.mode
    return echo


def _endpoint_echo(
    endpoint: Endpoint, kind: str, blob_name: str, where: storage.ContainerAddress
) -> dict[str, Any]:
    """The blob a run wrote or read, as the spec's example shows it: type AzureStorageBlob, the blob's URL."""
    return {**storage_echo(endpoint), "type": kind, "uri": f"{endpoint.uri.rstrip('/')}/{blob_name}"}


def _resolve(
    content: dict[str, Any], artifact: str, server: str
) -> tuple[transfer_blob.Artifact | None, str]:
    if "@" in artifact:
        repository, digest = artifact.split("@", 1)
        repo = content.get(repository)
        if repo is None:
            return None, _unknown_repository(artifact, repository, server)
        if digest not in repo.manifests:
            return None, (
                f"Failed to export artifact '{artifact}': MANIFEST_UNKNOWN: manifest '{digest}' is not "
                "known to "
                f"repository '{repository}' of registry '{server}'."
            )
        return transfer_blob.Artifact(artifact, repository, None, digest), ""
    repository, _, tag = artifact.partition(":")
    tag = tag or "latest"
    repo = content.get(repository)
    if repo is None:
        return None, _unknown_repository(artifact, repository, server)
    if tag not in repo.tags:
        return None, (
            f"Failed to export artifact '{artifact}': MANIFEST_UNKNOWN: tag '{tag}' does not exist in "
            "repository "
            f"'{repository}' of registry '{server}'."
        )
    return transfer_blob.Artifact(artifact, repository, tag, repo.tags[tag]), ""


MAX_LAYER_BYTES = 8 * 1024**3  # "ACR Transfer supports artifacts with layer sizes up to 8 GB"


def _oversized_layer(artifact: str, manifests: list[Manifest]) -> str:
    """Why an artifact cannot be exported for a layer's size (an index: any platform's), else "". The
    service's limit is documented ("supports artifacts with layer sizes up to 8 GB due to technical
    limitations"); the run's message around it is the emulator's."""
    for manifest in manifests:
        for layer in manifest.layers:
            size = layer.get("size") if isinstance(layer, dict) else None
            if isinstance(size, int) and size > MAX_LAYER_BYTES:
                return (
                    f"Failed to export artifact '{artifact}': its layer '{layer.get('digest')}' is {size} "
                    f"bytes; ACR Transfer supports artifacts with layer sizes up to 8 GB ({MAX_LAYER_BYTES} "
                    "bytes) due to technical limitations."
                )
    return ""


def _unknown_repository(artifact: str, repository: str, server: str) -> str:
    return (
        f"Failed to export artifact '{artifact}': NAME_UNKNOWN: repository '{repository}' does not exist in "
        f"registry '{server}'."
    )
