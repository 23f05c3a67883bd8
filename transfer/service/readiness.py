"""A locked-down tenant's readiness: what health shows, `pipelines deploy` and every export or import start
check before anything is written (domain/readiness.py decides; this reads ARM through narrow ports).

A start the pipeline would fail is refused with PipelineNotReady naming the cause; what the app cannot read
itself (a storage account it may not see, the permissions API down) never blocks: health calls it unknown."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from transfer.domain import readiness
from transfer.domain.arm_views import Pipeline, storage_account_of
from transfer.domain.errors import PipelineNotReady, TransferError
from transfer.domain.ports import RoleAssignments, TenantReads
from transfer.domain.readiness import Finding
from transfer.domain.settings import Settings
from transfer.service.memory import WorkerMemory

log = logging.getLogger("transfer")

STORAGE_API = "2023-05-01"
VAULT_API = "2023-07-01"
REGISTRY_API = "2023-11-01-preview"  # the first API version with every registry policy the app reads
VAULT_NAME = re.compile(r"[A-Za-z][A-Za-z0-9-]{2,23}")
CACHE_TTL = timedelta(minutes=5)  # a warm worker's starts share one reading


class Readiness:
    def __init__(
        self,
        settings: Settings,
        arm: TenantReads,
        assignments: RoleAssignments,
        memory: WorkerMemory,
        clock: Callable[[], datetime],
    ) -> None:
        self.settings = settings
        self.arm = arm
        self.assignments = assignments
        self.memory = memory
        self.clock = clock

    def findings(self, kind: str, pipeline: Pipeline | None, storage_uri: str | None = None) -> list[Finding]:
        """Every finding for a pipeline of `kind` (as deployed, or about to be with `storage_uri`)."""
        found = [self.storage(kind, storage_uri or (pipeline.storage_uri if pipeline else None))]
        if pipeline is not None and pipeline.uses_sas and pipeline.key_vault_uri:
            found.append(self.vault(kind, pipeline))
        if kind == "export":
            found.append(self.export_policy())
        found.append(self.app_role(kind))
        return found

    def refuse_blocked(self, kind: str, found: Sequence[Finding], what: str) -> None:
        """Raise PipelineNotReady naming the first finding that would fail the run."""
        for finding in found:
            if finding.blocks and finding.cause is not None:
                raise PipelineNotReady(
                    f"{what}: {finding.cause.code}: {finding.detail}. {finding.cause.hint}",
                    target=f"{kind}Pipeline",
                )
            if not finding.known:
                log.warning("%s: %s", finding.check, finding.detail)

    def ensure_ready(self, pipeline: Pipeline) -> None:
        """At an export or import start: refuse a run the tenant's setup would fail."""
        kind, now = pipeline.kind, self.clock()
        cached = self.memory.readiness.get(kind)
        if cached is None or now - cached[0] >= CACHE_TTL:
            cached = (now, self.findings(kind, pipeline))
            self.memory.readiness[kind] = cached
        self.refuse_blocked(kind, cached[1], f"the {kind} pipeline is not ready")

    # ---- each finding ----

    def storage(self, kind: str, storage_uri: str | None) -> Finding:
        check = f"{kind}StorageNetwork"
        account = storage_account_of(storage_uri)
        if not account:
            return readiness.unknown(check, "the pipeline names no storage account")
        return _read(
            check,
            lambda: readiness.storage_network(
                check,
                account,
                readiness.find_account(
                    self.arm.list_resources("Microsoft.Storage/storageAccounts", STORAGE_API), account
                ),
            ),
        )

    def vault(self, kind: str, pipeline: Pipeline) -> Finding:
        check = f"{kind}VaultAccess"
        uri = pipeline.key_vault_uri or ""

        def decide() -> Finding:
            vault = readiness.find_vault(self.arm.list_resources("Microsoft.KeyVault/vaults", VAULT_API), uri)
            assignments: list[dict[str, Any]] | None = None
            if vault is not None and readiness.uses_rbac(vault) and pipeline.principal_id:
                try:
                    assignments = self.assignments.role_assignments(pipeline.principal_id)
                except TransferError as exc:
                    log.warning(
                        "the role assignments of %s are unreadable: %s", pipeline.principal_id, exc.message
                    )
            return readiness.vault_access(check, vault, uri, pipeline.principal_id, assignments)

        return _read(check, decide)

    def vault_uses_rbac(self, vault_name: str) -> bool | None:
        """Whether the vault (in the registry's resource group, as the templates require) uses Azure RBAC;
        None when the app cannot read it."""
        if not VAULT_NAME.fullmatch(vault_name):
            return None
        group = self.settings.registry_id.split("/providers/", 1)[0]
        try:
            vault = self.arm.read_resource(
                f"{group}/providers/Microsoft.KeyVault/vaults/{vault_name}", VAULT_API
            )
        except TransferError as exc:
            log.warning("vault %s could not be read: %s", vault_name, exc.message)
            return None
        return None if vault is None else readiness.uses_rbac(vault)

    def may_grant_storage_role(self, storage_uri: str | None) -> tuple[bool, str]:
        """Whether the pipeline template can grant the storage role (`grantStorageRole`): the account is in
        the registry's resource group and this identity may write role assignments on it; else why not."""
        account = storage_account_of(storage_uri)
        group = self.settings.registry_id.split("/providers/", 1)[0].lower()
        try:
            found = readiness.find_account(
                self.arm.list_resources("Microsoft.Storage/storageAccounts", STORAGE_API), account or ""
            )
            if found is None:
                return False, f"ARM shows this identity no storage account named {account}"
            account_id = str(found.get("id") or "")
            if not account_id.lower().startswith(group + "/"):
                return False, f"storage account {account} is not in the registry's resource group"
            if not readiness.allowed(readiness.ROLE_ASSIGNMENT_WRITE, self.arm.permissions(account_id)):
                return False, f"this identity may not write role assignments on storage account {account}"
        except TransferError as exc:
            return False, exc.message
        return True, f"the template grants it on storage account {account}"

    def export_policy(self) -> Finding:
        check = "exportPolicy"
        return _read(
            check,
            lambda: readiness.export_policy(
                check, self.arm.read_resource(self.settings.registry_id, REGISTRY_API)
            ),
        )

    def app_role(self, kind: str) -> Finding:
        check = f"{kind}AppRole"
        group = self.settings.registry_id.split("/providers/", 1)[0]
        return _read(
            check,
            lambda: readiness.app_permissions(
                check, kind, self.arm.permissions(self.settings.registry_id), self.arm.permissions(group)
            ),
        )


def _read(check: str, decide: Callable[[], Finding]) -> Finding:
    """A finding, or unknown when ARM would not tell the app (a role it lacks to read, a fault)."""
    try:
        return decide()
    except TransferError as exc:
        return readiness.unknown(check, exc.message)
