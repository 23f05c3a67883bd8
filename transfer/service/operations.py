"""Reads and operations: runs by id or filter, health, and deploying the pipelines from templates/."""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from typing import Any

from transfer.domain import naming
from transfer.domain.arm_views import (
    EXPORT_OPTIONS,
    EXPORT_PIPELINE,
    IMPORT_OPTIONS,
    IMPORT_PIPELINE,
    STORAGE_ACCESS_MODES,
    DeploymentState,
    Pipeline,
    RoleAssignment,
    pipeline_parameters,
    storage_account_of,
)
from transfer.domain.errors import AccessDenied, InvalidInput, NotFound, TransferError
from transfer.domain.runs import Run, RunKind, RunStatus
from transfer.service.context import Context

log = logging.getLogger("transfer")

SAS_WARNING = timedelta(days=14)
DEPLOYMENT_WARNING = 700  # above this, ARM starts deleting the group's oldest deployments
HEALTH_PROBE_BLOB = "acr-transfer-health-probe"  # read by health, never written: absent is fine
HEALTH_PROBES = 8  # at most this many checks at once
RECENT_IMPORTS = 50  # succeeded imports whose verification health looks at


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


@dataclass(frozen=True)
class PipelineSpec:
    """What a person chooses when deploying a pipeline; the names come from the settings."""

    storage_uri: str
    storage_access_mode: str = "SasToken"
    key_vault_name: str = ""
    sas_secret_name: str = ""
    options: tuple[str, ...] = ()
    source_trigger: bool = True
    user_assigned_identity: str = ""
    grant_storage_role: bool = False  # ManagedIdentity mode, the account in the registry's resource group

    def parameters(self, kind: str, registry: str, pipeline: str) -> dict[str, Any]:
        """The pipeline template's parameters, after refusing what the service would refuse."""
        allowed = EXPORT_OPTIONS if kind == "export" else IMPORT_OPTIONS
        if self.storage_access_mode not in STORAGE_ACCESS_MODES:
            raise InvalidInput(
                f"must be one of {', '.join(STORAGE_ACCESS_MODES)}", target="storageAccessMode"
            )
        for index, option in enumerate(self.options):
            if option not in allowed:
                raise InvalidInput(
                    f"{option!r} is not one of {', '.join(allowed)}", target=f"options[{index}]"
                )
        if not self.storage_uri.startswith(("https://", "http://127.0.0.1", "http://localhost")):
            raise InvalidInput("must be the storage container's URL", target="storageUri")
        if self.storage_access_mode == "SasToken" and not (self.key_vault_name and self.sas_secret_name):
            raise InvalidInput(
                "SasToken mode needs the Key Vault name and the SAS secret name", target="keyVault"
            )
        if (
            self.user_assigned_identity
            and "/userassignedidentities/" not in self.user_assigned_identity.lower()
        ):
            raise InvalidInput("must be a user-assigned identity resource ID", target="userAssignedIdentity")
        return pipeline_parameters(
            kind,
            registry=registry,
            pipeline=pipeline,
            storage_uri=self.storage_uri,
            storage_access_mode=self.storage_access_mode,
            key_vault_name=self.key_vault_name,
            sas_secret_name=self.sas_secret_name,
            options=self.options,
            user_assigned_identity=self.user_assigned_identity,
            source_trigger=self.source_trigger,
            grant_storage_role=self.grant_storage_role,
        )


class Operations:
    def __init__(self, context: Context) -> None:
        self.context = context

    def get_run(self, run_id: str) -> Run:
        run = self.context.state.get_run(naming.check_run_id(run_id))
        if run is None:
            raise NotFound(f"no run {run_id}", target="run_id")
        return run

    def list_runs(self, kind: str | None = None, status: str | None = None, top: int = 50) -> list[Run]:
        try:
            kind_value = RunKind(kind) if kind else None
        except ValueError:
            raise InvalidInput("must be export or import", target="kind") from None
        try:
            status_value = RunStatus(status) if status else None
        except ValueError:
            allowed = ", ".join(s.value for s in RunStatus)
            raise InvalidInput(f"must be one of {allowed}", target="status") from None
        if not 1 <= top <= 1000:
            raise InvalidInput("must be between 1 and 1000", target="top")
        return self.context.state.list_runs(kind=kind_value, status=status_value, top=top)

    # ---- health -----------------------------------------------------------------------------------

    def health(self) -> list[Check]:
        """Every check, in this order; the independent ones at once, so a dependency that is down costs
        its client's retries once (about 5 s), not once per check that needs it."""
        settings = self.context.settings
        roles = [k for k in ("export", "import") if getattr(settings, f"{k}_pipeline")]
        probes: list[Callable[[], list[Check]]] = [lambda: [self._check("state", self._ping_state)]]
        probes += [partial(self._pipeline_checks, kind) for kind in roles]
        if settings.import_pipeline:
            probes.append(lambda: [self._check("watchedContainer", self._watched_container)])
            probes.append(lambda: [self._check("verification", self._recent_verifications)])
            probes.append(lambda: [self._check("blobsWaiting", self._blobs_waiting)])
        probes.append(lambda: [self._check("deployments", self._deployment_headroom)])
        with ThreadPoolExecutor(max_workers=HEALTH_PROBES) as pool:
            found = list(pool.map(lambda probe: probe(), probes))
        summary = Check("settings", True, f"registry {settings.registry}; roles: {', '.join(roles)}")
        return [summary, *(check for checks in found for check in checks)]

    @staticmethod
    def _check(name: str, probe: Callable[[], str]) -> Check:
        try:
            return Check(name, True, probe())
        except TransferError as exc:
            return Check(name, False, exc.message)

    def _watched_container(self) -> str:
        """The blob trigger's and the sweep's storage answers: one read of a blob nobody writes."""
        self.context.require_import().get_properties(HEALTH_PROBE_BLOB)
        return f"container {self.context.settings.target_container} reachable"

    def _blobs_waiting(self) -> str:
        """Blobs whose manual imports failed TRANSFER_IMPORT_MAX_ATTEMPTS times: the app gave up on them."""
        limit = self.context.settings.import_max_attempts
        newest: dict[str, Run] = {}
        for run in self.context.state.list_runs(kind=RunKind.IMPORT, top=500):  # newest first
            if run.owned and run.blob:
                newest.setdefault(run.blob, run)
        waiting = sorted(
            blob for blob, run in newest.items() if run.status is RunStatus.FAILED and run.attempt >= limit
        )
        if waiting:
            shown = ", ".join(waiting[:5]) + (f" and {len(waiting) - 5} more" if len(waiting) > 5 else "")
            raise TransferError(
                f"{len(waiting)} blobs wait for a person ({limit} manual imports failed): {shown}; "
                "see GET /api/blobs/{name}"
            )
        return "no blob waits for a person"

    def _ping_state(self) -> str:
        self.context.state.ping()
        return "tables reachable"

    def _recent_verifications(self) -> str:
        """A warning, not a failure: imports that succeeded but differ from their blob's manifest."""
        runs = self.context.state.list_runs(
            kind=RunKind.IMPORT, status=RunStatus.SUCCEEDED, top=RECENT_IMPORTS
        )
        failed = [run for run in runs if run.verification == "failed"]
        if not failed:
            verified = sum(1 for run in runs if run.verification == "passed")
            return f"{verified} of the last {len(runs)} succeeded imports verified against their manifests"
        shown = "; ".join(f"{run.id}: {run.verification_detail}" for run in failed[:3])
        more = f" and {len(failed) - 3} more" if len(failed) > 3 else ""
        return (
            f"warning: {len(failed)} of the last {len(runs)} succeeded imports differ from their "
            f"manifests: {shown}{more}"
        )

    def _deployment_headroom(self) -> str:
        count = self.context.arm.count_deployments()
        if count >= DEPLOYMENT_WARNING:
            raise TransferError(f"{count} deployments in the group: run cleanup (ARM's limit is 800)")
        return f"{count} deployments in the group"

    def _pipeline_checks(self, kind: str) -> list[Check]:
        name = f"{kind}Pipeline"
        try:
            pipeline = self.context.pipeline(kind, fresh=True)
        except TransferError as exc:
            return [Check(name, False, exc.message)]
        detail = f"{pipeline.provisioning_state or 'unknown'}; storage access {pipeline.storage_access_mode}"
        if kind == "import":
            detail += f"; source trigger {pipeline.source_trigger_status}"
        checks = [Check(name, pipeline.succeeded, detail)]
        if pipeline.uses_sas:
            checks.append(self._check(f"{kind}Sas", lambda: self._sas(pipeline)))
        else:
            checks.append(self._check(f"{kind}StorageRole", lambda: self._storage_role(pipeline)))
        checks.append(self._check(f"{kind}ApiVersion", lambda: self._api_version(pipeline)))
        return checks

    def _sas(self, pipeline: Pipeline) -> str:
        """What the troubleshooting guide requires of the SAS: permissions, HTTPS only, srt=sco, expiry."""
        sas, found = self.context.sas_shortfalls(pipeline, fresh=True)
        if found:
            raise TransferError("; ".join(s.message for s in found))
        if sas.expires_at is None:
            return f"SAS without expiry; permissions {sas.permissions}"
        left = sas.expires_at - self.context.clock()
        if left < SAS_WARNING:
            raise TransferError(
                f"the SAS expires in {left.days} days ({sas.expires_at:%Y-%m-%d}): renew it soon"
            )
        return f"SAS valid until {sas.expires_at:%Y-%m-%d}; permissions {sas.permissions}"

    def _storage_role(self, pipeline: Pipeline) -> str:
        """ManagedIdentity mode: does the pipeline's identity hold a blob data role on its storage account?"""
        account = storage_account_of(pipeline.storage_uri)
        principal = pipeline.principal_id
        if not account or not principal:
            return "cannot tell: ARM names no storage account or principal id for the pipeline"
        settings = self.context.settings
        try:
            assignments = [RoleAssignment.from_arm(a) for a in self.context.arm.role_assignments(principal)]
        except AccessDenied as exc:
            return (
                f"cannot read the role assignments of {principal} ({exc.message}): check by hand that it "
                f"holds Storage Blob Data Contributor on storage account {account}"
            )
        for assignment in assignments:
            reach = (
                assignment.covers_account(settings.subscription_id, account) if assignment.role_name else None
            )
            if reach:
                return f"the pipeline identity {principal} holds {assignment.role_name} at the {reach} scope"
        raise TransferError(
            f"the pipeline identity {principal} lacks Storage Blob Data Contributor on storage account "
            f"{account}: its runs will fail with storage's 403 (az role assignment create --assignee "
            f"{principal} --role 'Storage Blob Data Contributor' --scope <the account's resource id>)"
        )

    def _api_version(self, pipeline: Pipeline) -> str:
        configured = self.context.settings.pipeline_api_version
        if pipeline.id is None:
            return f"{configured} (not checked: the pipeline has no id)"
        advertised = self.context.arm.supported_api_versions(pipeline.id)
        if not advertised:
            return f"{configured} (the service advertised no versions)"
        if configured not in advertised:
            raise TransferError(
                f"TRANSFER_PIPELINE_API_VERSION {configured} is not among the versions the service "
                f"advertises: {', '.join(advertised)}"
            )
        return f"{configured}; the service advertises {', '.join(advertised)}"

    # ---- pipelines --------------------------------------------------------------------------------

    def deploy_pipeline(self, kind: str, spec: PipelineSpec) -> str:
        """Start deploying the export or import pipeline from templates/; returns the deployment name."""
        name = self.context.pipeline_name(kind)
        parameters = spec.parameters(kind, self.context.settings.registry, name)
        deployment = f"{naming.DEPLOYMENT_PREFIX}{kind}-pipeline-{name}"
        template = self.context.templates.load(EXPORT_PIPELINE if kind == "export" else IMPORT_PIPELINE)
        self.context.arm.begin_deployment(deployment, template, parameters)
        self.context.forget_pipeline(kind)
        log.info("pipeline deployment started: %s", deployment, extra={"pipeline": name})
        return deployment

    def deployment(self, name: str) -> DeploymentState:
        state = self.context.arm.get_deployment(name)
        if state is None:
            raise NotFound(f"no deployment {name}", target="deployment")
        return state

    def pipeline(self, kind: str) -> Pipeline:
        self.context.pipeline_name(kind)
        return self.context.pipeline(kind, fresh=True)
