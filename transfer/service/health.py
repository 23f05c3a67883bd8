"""Health: every check of this instance, one row each in CHECKS, run at once so a dependency that is down
costs its client's retries once (about 5 s), not once per check that needs it. A check is a probe that
returns its detail, or raises a TransferError whose message says what is wrong."""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

from transfer.domain.arm_views import Pipeline, storage_account_of
from transfer.domain.causes import Cause
from transfer.domain.errors import TransferError
from transfer.domain.manifests import Verification
from transfer.domain.ports import (
    BlobStore,
    Deployments,
    PipelineResources,
    RoleAssignments,
    RunStore,
    StateProbe,
)
from transfer.domain.readiness import Finding
from transfer.domain.runs import Run, RunKind, RunStatus
from transfer.domain.settings import Settings
from transfer.service.imports import watched_container
from transfer.service.pipelines import Pipelines
from transfer.service.readiness import Readiness
from transfer.service.roles import storage_role

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
    cause: Cause | None = None  # a known cause of failed runs (domain/causes.py) this check found


def probe(name: str, run: Callable[[], str]) -> Check:
    try:
        return Check(name, True, run())
    except TransferError as exc:
        return Check(name, False, exc.message)


class Health:
    def __init__(
        self,
        settings: Settings,
        state: StateProbe,
        runs: RunStore,
        blobs: BlobStore | None,
        deployments: Deployments,
        resources: PipelineResources,
        assignments: RoleAssignments,
        pipelines: Pipelines,
        clock: Callable[[], datetime],
        tenant: Readiness | None = None,
    ) -> None:
        self.tenant = tenant
        self.settings = settings
        self.state = state
        self.runs = runs
        self.blobs = blobs
        self.deployments = deployments
        self.resources = resources
        self.assignments = assignments
        self.pipelines = pipelines
        self.clock = clock

    def roles(self) -> list[str]:
        return [kind for kind in ("export", "import") if getattr(self.settings, f"{kind}_pipeline")]

    def checks(self) -> list[Callable[[], list[Check]]]:
        """The checks of this instance, in the order health lists them: one row each (a pipeline's row
        gives its own few checks)."""
        importing = bool(self.settings.import_pipeline)
        exporting = bool(self.settings.export_pipeline)
        rows: list[tuple[bool, Callable[[], list[Check]]]] = [
            (True, lambda: [probe("state", self._state)]),
            *((True, partial(self._pipeline, kind)) for kind in self.roles()),
            (exporting, lambda: self._tenant(lambda tenant: tenant.export_policy())),
            *((True, partial(self._tenant, partial(Readiness.app_role, kind=kind))) for kind in self.roles()),
            (importing, lambda: [probe("watchedContainer", self._watched_container)]),
            (importing, lambda: [probe("verification", self._recent_verifications)]),
            (importing, lambda: [probe("blobsWaiting", self._blobs_waiting)]),
            (True, lambda: [probe("deployments", self._deployment_headroom)]),
        ]
        return [check for applies, check in rows if applies]

    def __call__(self) -> list[Check]:
        with ThreadPoolExecutor(max_workers=HEALTH_PROBES) as pool:
            found = list(pool.map(lambda check: check(), self.checks()))
        summary = Check(
            "settings", True, f"registry {self.settings.registry}; roles: {', '.join(self.roles())}"
        )
        return [summary, *(check for checks in found for check in checks)]

    # ---- the checks ----

    def _state(self) -> str:
        self.state.ping()
        return "tables reachable"

    def _watched_container(self) -> str:
        """The blob trigger's and the sweep's storage answers: one read of a blob nobody writes."""
        watched_container(self.settings, self.blobs).get_properties(HEALTH_PROBE_BLOB)
        return f"container {self.settings.target_container} reachable"

    def _blobs_waiting(self) -> str:
        """Blobs whose manual imports failed TRANSFER_IMPORT_MAX_ATTEMPTS times: the app gave up on them."""
        limit = self.settings.import_max_attempts
        newest: dict[str, Run] = {}
        for run in self.runs.list_runs(kind=RunKind.IMPORT, top=500):  # newest first
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

    def _recent_verifications(self) -> str:
        """A warning, not a failure: imports that succeeded but differ from their blob's manifest."""
        runs = self.runs.list_runs(kind=RunKind.IMPORT, status=RunStatus.SUCCEEDED, top=RECENT_IMPORTS)
        failed = [run for run in runs if run.verification is Verification.FAILED]
        if not failed:
            verified = sum(1 for run in runs if run.verification is Verification.PASSED)
            return f"{verified} of the last {len(runs)} succeeded imports verified against their manifests"
        shown = "; ".join(f"{run.id}: {run.verification_detail}" for run in failed[:3])
        more = f" and {len(failed) - 3} more" if len(failed) > 3 else ""
        return (
            f"warning: {len(failed)} of the last {len(runs)} succeeded imports differ from their "
            f"manifests: {shown}{more}"
        )

    def _deployment_headroom(self) -> str:
        count = self.deployments.count_deployments()
        if count >= DEPLOYMENT_WARNING:
            raise TransferError(f"{count} deployments in the group: run cleanup (ARM's limit is 800)")
        return f"{count} deployments in the group"

    def _pipeline(self, kind: str) -> list[Check]:
        name = f"{kind}Pipeline"
        try:
            pipeline = self.pipelines.get(kind, fresh=True)
        except TransferError as exc:
            return [Check(name, False, exc.message)]
        detail = f"{pipeline.provisioning_state or 'unknown'}; storage access {pipeline.storage_access_mode}"
        if kind == "import":
            detail += f"; source trigger {pipeline.source_trigger_status}"
        checks = [Check(name, pipeline.succeeded, detail)]
        if pipeline.uses_sas:
            checks.append(probe(f"{kind}Sas", lambda: self._sas(pipeline)))
        else:
            checks.append(probe(f"{kind}StorageRole", lambda: self._storage_role(pipeline)))
        checks.append(probe(f"{kind}ApiVersion", lambda: self._api_version(pipeline)))
        checks += self._tenant(lambda tenant: tenant.storage(kind, pipeline.storage_uri))
        if pipeline.uses_sas and pipeline.key_vault_uri:
            checks += self._tenant(lambda tenant: tenant.vault(kind, pipeline))
        return checks

    def _tenant(self, finding: Callable[[Readiness], Finding]) -> list[Check]:
        """A locked-down tenant's finding (service/readiness.py) as a check: one the app could not read
        is unknown, not a failure; a failing one carries its cause."""
        if self.tenant is None:
            return []
        found = finding(self.tenant)
        detail = f"{found.detail}. {found.cause.hint}" if found.blocks and found.cause else found.detail
        return [Check(found.check, not found.blocks, detail, found.cause if found.blocks else None)]

    def _sas(self, pipeline: Pipeline) -> str:
        """What the troubleshooting guide requires of the SAS: permissions, HTTPS only, srt=sco, expiry."""
        sas, found = self.pipelines.sas_shortfalls(pipeline, fresh=True)
        if found:
            raise TransferError("; ".join(s.message for s in found))
        if sas.expires_at is None:
            return f"SAS without expiry; permissions {sas.permissions}"
        left = sas.expires_at - self.clock()
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
        found = storage_role(self.assignments, self.settings.subscription_id, principal, account)
        if found.unreadable:
            return (
                f"cannot read the role assignments of {principal} ({found.unreadable}): check by hand that "
                f"it holds Storage Blob Data Contributor on storage account {account}"
            )
        if found.role:
            return f"the pipeline identity {principal} holds {found.role} at the {found.reach} scope"
        raise TransferError(
            f"the pipeline identity {principal} lacks Storage Blob Data Contributor on storage account "
            f"{account}: its runs will fail with storage's 403 (az role assignment create --assignee "
            f"{principal} --role 'Storage Blob Data Contributor' --scope <the account's resource id>)"
        )

    def _api_version(self, pipeline: Pipeline) -> str:
        configured = self.settings.pipeline_api_version
        if pipeline.id is None:
            return f"{configured} (not checked: the pipeline has no id)"
        advertised = self.resources.supported_api_versions(pipeline.id)
        if not advertised:
            return f"{configured} (the service advertised no versions)"
        if configured not in advertised:
            raise TransferError(
                f"TRANSFER_PIPELINE_API_VERSION {configured} is not among the versions the service "
                f"advertises: {', '.join(advertised)}"
            )
        return f"{configured}; the service advertises {', '.join(advertised)}"
