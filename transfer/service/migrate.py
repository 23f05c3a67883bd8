"""`python -m transfer pipelines migrate KIND --to ManagedIdentity`: move the configured pipeline from
SasToken to ManagedIdentity under the same name.

The REST spec defines no update of a pipeline (no PATCH; its PUT is "Creates an ... pipeline") and does not
say whether a PUT may change `storageAccessMode` of an existing one, so the move deletes the pipeline and
creates it again from templates/ with the same name, URI, options and identity: that works whether or not the
service accepts the change in place. Everything that could refuse the new pipeline is checked first (the
template's parameters, the tenant's readiness), and no run of the pipeline may be active. A pipeline already
in ManagedIdentity mode is left as it is: the command is idempotent."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from transfer.domain.arm_views import MANAGED_IDENTITY, Pipeline, PipelineRun, ids_equal
from transfer.domain.errors import Conflict, InvalidInput, NotFound, Unavailable
from transfer.domain.ports import Deployments, PipelineResources, RunIndex
from transfer.domain.settings import Settings
from transfer.service.pipeline_admin import PipelineAdmin, PipelineSpec, pipeline_deployment
from transfer.service.pipelines import Pipelines
from transfer.service.readiness import Readiness

log = logging.getLogger("transfer")

DELETE_POLLS = 30  # a 202 delete is read again this many times, a second apart, before giving up
ACTIVE_ARM_STATES = {"running", "inprogress", "started", "queued", "creating", "updating"}


@dataclass(frozen=True)
class Migration:
    kind: str
    name: str
    outcome: str  # "migrated" (deployment started), "already" (nothing to do)
    deployment: str | None
    storage_role: str  # how the new identity gets its storage role, or why the app could not grant it
    left: tuple[str, ...]  # what a person still has to do


class MigratePipeline:
    def __init__(
        self,
        settings: Settings,
        resources: PipelineResources,
        deployments: Deployments,
        index: RunIndex,
        pipelines: Pipelines,
        admin: PipelineAdmin,
        tenant: Readiness | None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = settings
        self.resources = resources
        self.deployments = deployments
        self.index = index
        self.pipelines = pipelines
        self.admin = admin
        self.tenant = tenant
        self.sleep = sleep

    def __call__(self, kind: str, to: str = MANAGED_IDENTITY) -> Migration:
        if to != MANAGED_IDENTITY:
            raise InvalidInput("pipelines move to ManagedIdentity only", target="to")
        name = self.pipelines.name(kind)
        try:
            pipeline = self.pipelines.get(kind, fresh=True)
        except NotFound:
            return self._resumed(kind, name)
        if pipeline.storage_access_mode == MANAGED_IDENTITY:
            how = f"health's {kind}StorageRole check says whether its identity holds it"
            return Migration(kind, name, "already", None, how, ())
        self._refuse_while_active(kind, pipeline)
        may_grant, how = (
            self.tenant.may_grant_storage_role(pipeline.storage_uri)
            if self.tenant is not None
            else (False, "the storage account was not read")
        )
        spec = PipelineSpec(
            storage_uri=pipeline.storage_uri or "",
            storage_access_mode=MANAGED_IDENTITY,
            options=pipeline.options,
            source_trigger=pipeline.source_trigger_enabled if kind == "import" else True,
            user_assigned_identity=_user_assigned(pipeline),
            grant_storage_role=may_grant,
        )
        parameters = self.admin.prepare(kind, spec)  # refuses before anything is deleted
        self._delete(pipeline)
        deployment = self.admin.begin(kind, parameters)
        log.warning("%s pipeline %s: recreated in ManagedIdentity mode (%s)", kind, name, deployment)
        left = self._left(pipeline, None if may_grant else how)
        return Migration(kind, name, "migrated", deployment, how, left)

    def _refuse_while_active(self, kind: str, pipeline: Pipeline) -> None:
        recorded = [
            run.id for run in self.index.active_runs() if run.kind.value == kind and not run.status.terminal
        ]
        in_arm = [
            run.name
            for run in (PipelineRun.from_arm(r) for r in self.resources.list_pipeline_runs())
            if ids_equal(run.pipeline_resource_id, pipeline.id)
            and ((run.status or run.provisioning_state or "").lower() in ACTIVE_ARM_STATES)
        ]
        active = list(dict.fromkeys([*recorded, *in_arm]))
        if active:
            shown = ", ".join(active[:5]) + (f" and {len(active) - 5} more" if len(active) > 5 else "")
            raise Conflict(
                f"{len(active)} runs of the {kind} pipeline are active ({shown}): migrate it once they have "
                "finished (deleting it would fail them)",
                target=kind,
            )

    def _delete(self, pipeline: Pipeline) -> None:
        resource_id = pipeline.id or self.settings.pipeline_id(pipeline.kind)
        if self.resources.delete_resource(resource_id):
            return
        for _ in range(DELETE_POLLS):
            self.sleep(1.0)
            if self.resources.get_resource(resource_id) is None:
                return
        raise Unavailable(f"ARM is still deleting {resource_id}: run the command again to recreate it")

    def _resumed(self, kind: str, name: str) -> Migration:
        """The pipeline is gone: a migration that deleted it and started its deployment is under way."""
        deployment = pipeline_deployment(kind, name)
        state = self.deployments.get_deployment(deployment)
        if state is None or state.provisioning_state not in ("Accepted", "Running", "Created", "Creating"):
            raise NotFound(
                f"the {kind} pipeline {name} does not exist and is not being deployed: deploy it with "
                f"`python -m transfer pipelines deploy {kind} --mode ManagedIdentity --storage-uri URL`",
                target=kind,
            )
        return Migration(kind, name, "migrated", deployment, "see the deployment", ())

    def _left(self, old: Pipeline, storage_role: str | None = None) -> tuple[str, ...]:
        left = []
        if storage_role is not None:
            left.append(
                f"grant the new pipeline identity Storage Blob Data Contributor on its storage account "
                f"({storage_role}): `python -m transfer pipelines deploy {old.kind} --wait` and "
                "health's storage role check print its principal id"
            )
        if old.key_vault_uri:
            left.append(
                f"the Key Vault secret {old.key_vault_uri.split('?')[0]} and the old identity's access to it "
                "are no longer used by this pipeline: remove them once nothing else needs them"
            )
        if old.kind == "export":
            left.append(
                "the app's own identity writes the manifests and signs the copy's user delegation SAS now: "
                "it needs Storage Blob Data Contributor on the export account"
            )
        if not _user_assigned(old):
            left.append("the pipeline's system-assigned identity is new: its principal id changed")
        return tuple(left)


def _user_assigned(pipeline: Pipeline) -> str:
    identity = pipeline.resource.get("identity")
    users = identity.get("userAssignedIdentities") if isinstance(identity, dict) else None
    return next(iter(users), "") if isinstance(users, dict) and users else ""
