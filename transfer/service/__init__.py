"""Use cases: start exports and imports, handle blobs by the 60-day rule, reconcile, clean up, health.

`TransferService` is the one façade the entry points use; each family of use cases lives in its own module
over a shared `Context` (the ports, the clock, the settings):
- starting (+ selecting): exports (selectors, incremental), the scheduled export, imports (claim,
  record, deploy);
- watched: the watched container (blob events, refresh, manual import, sweep);
- reconciling (+ copying, manifests): runs, source-trigger runs, copies, manifests and verification,
  cleanup, delete;
- operations: reads, health, pipelines;
- inventory: every pipeline and pipelineRun of the registry, whoever made it (list, delete), and what a
  pipeline's identity still needs (for operators).

Every side effect on ARM or Storage happens after the state record that makes it repeatable:
a retry, a repeated event or a racing worker finds the record and does nothing twice.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from transfer.domain.arm_views import DeploymentState, Pipeline
from transfer.domain.ports import (
    BlobCopier,
    BlobInfo,
    BlobStore,
    BlobWriter,
    Registry,
    ResourceManager,
    SecretReader,
    StateStore,
    TemplateSource,
)
from transfer.domain.runs import Run, Trigger
from transfer.domain.settings import Settings
from transfer.service.context import Context, Report, random_token
from transfer.service.copying import Copies
from transfer.service.inventory import IdentityNeeds, Inventory, ListedPipeline, ListedRun, PipelineDeletion
from transfer.service.operations import Check, Operations, PipelineSpec
from transfer.service.reconciling import Reconciler
from transfer.service.starting import Accepted, Starter
from transfer.service.watched import BlobDiagnosis, BlobResult, WatchedContainer

__all__ = [
    "Accepted",
    "BlobDiagnosis",
    "BlobResult",
    "Check",
    "IdentityNeeds",
    "ListedPipeline",
    "ListedRun",
    "PipelineDeletion",
    "PipelineSpec",
    "Report",
    "TransferService",
]


class TransferService:
    def __init__(
        self,
        settings: Settings,
        *,
        arm: ResourceManager,
        state: StateStore,
        blobs: BlobStore | None = None,
        copier: Callable[[], BlobCopier] | None = None,
        secrets_reader: SecretReader | None = None,
        clock: Callable[[], datetime],
        token: Callable[[], str] = random_token,
        registry: Registry | None = None,
        blob_writer: BlobWriter | None = None,
        templates: TemplateSource,
    ) -> None:
        self.settings = settings
        self.arm, self.state, self.blobs = arm, state, blobs
        self.context = Context(
            settings,
            arm=arm,
            state=state,
            blobs=blobs,
            copier=copier,
            secrets_reader=secrets_reader,
            clock=clock,
            token=token,
            registry=registry,
            blob_writer=blob_writer,
            templates=templates,
        )
        self._starter = Starter(self.context)
        self._watched = WatchedContainer(self.context, self._starter)
        self._reconciler = Reconciler(self.context, self._starter, Copies(self.context))
        self._operations = Operations(self.context)
        self._inventory = Inventory(self.context)

    # ---- starting runs ----

    def start_export(
        self,
        artifacts: Any,
        trigger: Trigger,
        target_name: str | None = None,
        idempotency_key: str | None = None,
        incremental: Any = False,
    ) -> Accepted:
        return self._starter.start_export(artifacts, trigger, target_name, idempotency_key, incremental)

    def start_scheduled_export(self, occurrence: Mapping[str, Any] | None = None) -> Accepted | None:
        return self._starter.start_scheduled_export(occurrence)

    def start_import(self, blob: Any, trigger: Trigger, idempotency_key: str | None = None) -> Accepted:
        return self._starter.start_import(blob, trigger, idempotency_key)

    # ---- the watched container ----

    def handle_blob(
        self, name: str, trigger: Trigger = Trigger.BLOB, info: BlobInfo | None = None
    ) -> BlobResult:
        return self._watched.handle_blob(name, trigger, info)

    def sweep(self) -> Report:
        return self._watched.sweep()

    def diagnose_blob(self, name: str) -> BlobDiagnosis:
        return self._watched.diagnose(name)

    # ---- reconcile and cleanup ----

    def reconcile(self) -> Report:
        return self._reconciler.reconcile()

    def reconcile_run(self, run_id: str) -> Run:
        """Move one run forward from ARM now (the CLI's --wait); a finished run is returned as it is."""
        run = self.get_run(run_id)
        return run if run.status.terminal else self._reconciler.reconcile_one(run)

    def cleanup(self, dry_run: bool = False) -> Report:
        return self._reconciler.cleanup(dry_run)

    def delete_run(self, run_id: str) -> Run:
        return self._reconciler.delete_run(self.get_run(run_id))

    # ---- reads, health, pipelines ----

    def get_run(self, run_id: str) -> Run:
        return self._operations.get_run(run_id)

    def list_runs(self, kind: str | None = None, status: str | None = None, top: int = 50) -> list[Run]:
        return self._operations.list_runs(kind, status, top)

    def health(self) -> list[Check]:
        return self._operations.health()

    def deploy_pipeline(self, kind: str, spec: PipelineSpec) -> str:
        return self._operations.deploy_pipeline(kind, spec)

    def deployment(self, name: str) -> DeploymentState:
        return self._operations.deployment(name)

    def pipeline(self, kind: str) -> Pipeline:
        return self._operations.pipeline(kind)

    # ---- the registry's resources, whoever made them (operators) ----

    def list_pipelines(self) -> list[ListedPipeline]:
        return self._inventory.pipelines()

    def delete_pipeline(self, kind: str, name: str, force: bool = False) -> PipelineDeletion:
        return self._inventory.delete_pipeline(kind, name, force)

    def pipeline_identity(self, kind: str) -> IdentityNeeds:
        return self._inventory.identity_needs(kind)

    def list_pipeline_runs(self) -> list[ListedRun]:
        return self._inventory.pipeline_runs()
