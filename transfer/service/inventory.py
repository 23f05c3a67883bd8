"""The registry's ACR Transfer resources as ARM has them, whoever made them: every export and import
pipeline (list, delete), every pipelineRun beside the app's record of it, and what a pipeline's identity
still needs to be granted. For operators (the CLI); the timers never call it."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from transfer.domain import naming
from transfer.domain.arm_views import (
    MANAGED_IDENTITY,
    Pipeline,
    PipelineRun,
    storage_account_of,
)
from transfer.domain.errors import Conflict, InvalidInput, NotFound
from transfer.domain.ports import MAX_TOP, PipelineResources, RoleAssignments, RunStore
from transfer.domain.runs import Run
from transfer.domain.settings import ACR_NAME, Settings
from transfer.service.pipelines import Pipelines
from transfer.service.roles import STORAGE_ROLE, storage_role

log = logging.getLogger("transfer")

KINDS = ("export", "import")
PRINCIPAL_PLACEHOLDER = "<principal id>"


@dataclass(frozen=True)
class ListedPipeline:
    pipeline: Pipeline
    configured: bool  # the pipeline TRANSFER_EXPORT_PIPELINE / TRANSFER_IMPORT_PIPELINE names


@dataclass(frozen=True)
class PipelineDeletion:
    kind: str
    name: str
    id: str
    deleted: bool  # False: ARM still shows it (it deletes asynchronously); a later listing tells


@dataclass(frozen=True)
class ListedRun:
    """A pipelineRun of the registry and the app's record of it (None: the app never recorded it)."""

    pipeline_run: PipelineRun
    record: Run | None

    @property
    def owned(self) -> bool:
        """The app started it (its record says so); the source trigger's runs and strangers' are not."""
        return self.record is not None and self.record.owned

    @property
    def started_at(self) -> datetime | None:
        seen, record = self.pipeline_run, self.record
        return seen.start_time or seen.source_trigger_time or (record.created_at if record else None)


@dataclass(frozen=True)
class Grant:
    """A role the pipeline's identity still needs, where, and the command that grants it."""

    role: str
    scope: str
    command: str
    note: str = ""


@dataclass(frozen=True)
class IdentityNeeds:
    pipeline: Pipeline
    grants: tuple[Grant, ...]
    notes: tuple[str, ...] = ()  # what was found already granted, or why it could not be told


class Inventory:
    def __init__(
        self,
        settings: Settings,
        resources: PipelineResources,
        assignments: RoleAssignments,
        runs: RunStore,
        pipelines: Pipelines,
    ) -> None:
        self.settings = settings
        self.resources = resources
        self.assignments = assignments
        self.runs = runs
        self.configured = pipelines  # the pipelines this instance is configured with

    # ---- pipelines ----------------------------------------------------------------------------------

    def pipelines(self) -> list[ListedPipeline]:
        """Every export and import pipeline of the registry, by kind and name."""
        settings = self.settings
        listed = []
        for kind in KINDS:
            configured = (getattr(settings, f"{kind}_pipeline") or "").lower()
            for resource in self.resources.list_pipelines(kind):
                pipeline = Pipeline.from_arm(kind, resource)
                ours = bool(configured) and _lower(pipeline.name) == configured
                listed.append(ListedPipeline(pipeline, ours))
        return sorted(listed, key=lambda p: (p.pipeline.kind, _lower(p.pipeline.name)))

    def delete_pipeline(self, kind: str, name: str, force: bool = False) -> PipelineDeletion:
        """Delete a pipeline through ARM's generic resources. The one this instance is configured with is
        refused unless `force`: every run of that kind would fail until it is deployed again."""
        if kind not in KINDS:
            raise InvalidInput("must be export or import", target="kind")
        if not isinstance(name, str) or not ACR_NAME.fullmatch(name):
            raise InvalidInput("a pipeline name is 5-50 letters and digits", target="name")
        setting = f"TRANSFER_{kind.upper()}_PIPELINE"
        configured = (getattr(self.settings, f"{kind}_pipeline") or "").lower() == name.lower()
        if configured and not force:
            raise Conflict(
                f"this instance is configured with the {kind} pipeline {name} ({setting}): its {kind}s would "
                "fail until it is deployed again; pass --force to delete it anyway",
                target="name",
            )
        resource_id = f"{self.settings.registry_id}/{kind}Pipelines/{name}"
        arm = self.resources
        if arm.get_resource(resource_id) is None:
            raise NotFound(f"the registry has no {kind} pipeline {name}", target="name")
        arm.delete_resource(resource_id)
        deleted = arm.get_resource(resource_id) is None
        if configured:
            self.configured.forget(kind)
        log.warning(
            "%s pipeline %s %s",
            kind,
            name,
            "deleted" if deleted else "being deleted",
            extra={"pipeline": name, "kind": kind, "configured": configured},
        )
        return PipelineDeletion(kind, name, resource_id, deleted)

    def identity_needs(self, kind: str) -> IdentityNeeds:
        """The configured pipeline's identity as ARM has it now, and the roles it still needs: Storage Blob
        Data Contributor on its storage account (ManagedIdentity), secret get on its Key Vault (SasToken)."""
        self.configured.name(kind)
        pipeline = self.configured.get(kind, fresh=True)
        principal = pipeline.principal_id
        notes: list[str] = []
        if not principal:
            notes.append("ARM shows no principal id for the pipeline's identity (yet): run `pipelines show`")
        if pipeline.storage_access_mode == MANAGED_IDENTITY:
            grants, found = self._storage_grants(pipeline, principal)
        else:
            grants, found = self._key_vault_grants(pipeline, principal)
        return IdentityNeeds(pipeline, tuple(grants), tuple(notes + found))

    def _storage_grants(self, pipeline: Pipeline, principal: str | None) -> tuple[list[Grant], list[str]]:
        account = storage_account_of(pipeline.storage_uri)
        if not account:
            return [], [f"the pipeline's storage URI names no storage account: {pipeline.storage_uri}"]
        note = ""
        if principal:
            found = storage_role(self.assignments, self.settings.subscription_id, principal, account)
            if found.role:
                return [], [f"granted: {found.role} at the {found.reach} scope ({account})"]
            if found.unreadable:
                note = (
                    f"could not read its role assignments ({found.unreadable}): grant it unless it is there"
                )
        who = principal or PRINCIPAL_PLACEHOLDER
        command = (
            f"az role assignment create --assignee-object-id {who} --assignee-principal-type "
            f"ServicePrincipal --role '{STORAGE_ROLE}' "
            f"--scope $(az storage account show -n {account} --query id -o tsv)"
        )
        return [Grant(STORAGE_ROLE, f"storage account {account}", command, note)], []

    @staticmethod
    def _key_vault_grants(pipeline: Pipeline, principal: str | None) -> tuple[list[Grant], list[str]]:
        vault, secret = _vault_and_secret(pipeline.key_vault_uri)
        if not vault:
            return [], ["the pipeline is in SasToken mode but ARM shows no keyVaultUri for it"]
        who = principal or PRINCIPAL_PLACEHOLDER
        named = "://" not in vault
        where = f"Key Vault {vault}" if named else f"the Key Vault at {vault}"
        vault = vault if named else "<vault name>"
        command = f"az keyvault set-policy --name {vault} --object-id {who} --secret-permissions get"
        note = (
            "the pipeline template adds this access policy itself (keyVaultSecretAccess AccessPolicy); on a "
            "vault with the RBAC permission model grant Key Vault Secrets User instead: az role assignment "
            f"create --assignee-object-id {who} --assignee-principal-type ServicePrincipal --role "
            f"'Key Vault Secrets User' --scope $(az keyvault show -n {vault} --query id -o tsv)"
        )
        where += f" (secret {secret})" if secret else ""
        return [Grant("Key Vault secret get", where, command, note)], []

    # ---- pipelineRuns -------------------------------------------------------------------------------

    def pipeline_runs(self) -> list[ListedRun]:
        """Every pipelineRun of the registry, whoever started it, with the app's record where it has one;
        newest first. The records come from one listing of the newest runs, and by id for older ones."""
        seen = [PipelineRun.from_arm(resource) for resource in self.resources.list_pipeline_runs()]
        state = self.runs
        records = {run.id: run for run in state.list_runs(top=MAX_TOP)}
        listed = []
        for pipeline_run in seen:
            record = records.get(pipeline_run.name)
            if record is None and naming.RUN_NAME.fullmatch(pipeline_run.name):
                record = state.get_run(pipeline_run.name)
            listed.append(ListedRun(pipeline_run, record))
        listed.sort(key=lambda r: r.pipeline_run.name, reverse=True)
        listed.sort(key=lambda r: (r.started_at is not None, r.started_at or datetime.min), reverse=True)
        return listed


def _lower(text: str | None) -> str:
    return (text or "").lower()


def _vault_and_secret(secret_uri: str | None) -> tuple[str | None, str | None]:
    """(the vault, secret name) of `https://<vault>.vault.azure.net/secrets/<name>[/<version>]`: the vault's
    name when the host is a vault's (`<name>.vault.<cloud's suffix>`), else the URI's origin (a private
    endpoint or an emulator, whose host names no vault)."""
    if not secret_uri:
        return None, None
    parts = urlsplit(secret_uri)
    host = parts.hostname or ""
    name, _, rest = host.partition(".")
    vault = name if rest.startswith("vault.") else (f"{parts.scheme}://{parts.netloc}" if host else None)
    path = parts.path.strip("/").split("/")
    secret = path[1] if len(path) >= 2 and path[0] == "secrets" else None
    return vault, secret
