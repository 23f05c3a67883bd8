"""The one façade the entry points use. It holds the use cases, never the ports: each use case names the
ports it touches in its constructor, and the composition root (transfer/bootstrap.py) builds them all.

Every side effect on ARM or Storage happens after the state record that makes it repeatable: a retry, a
repeated event or a racing worker finds the record and does nothing twice.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from transfer.domain.arm_views import DeploymentState, Pipeline
from transfer.domain.records import BlobInfo
from transfer.domain.runs import Run, Trigger
from transfer.domain.settings import Settings
from transfer.service.blob_events import BlobResult, HandleBlob
from transfer.service.cleanup import Cleanup, DeleteRun
from transfer.service.dashboard import Dashboard, DashboardView
from transfer.service.diagnosis import BlobDiagnosis, DiagnoseBlob
from transfer.service.exports import ScheduledExport, StartExport
from transfer.service.health import Check, Health
from transfer.service.imports import StartImport
from transfer.service.inventory import IdentityNeeds, Inventory, ListedPipeline, ListedRun, PipelineDeletion
from transfer.service.migrate import MigratePipeline, Migration
from transfer.service.passes import Report
from transfer.service.pipeline_admin import PipelineAdmin, PipelineSpec
from transfer.service.pushes import PushReport, RecordPushes, StartPushExports
from transfer.service.reads import ReadRuns
from transfer.service.reconcile import Reconcile, ReconcileRun
from transfer.service.requests import Accepted
from transfer.service.sweep import Sweep


@dataclass(frozen=True)
class UseCases:
    start_export: StartExport
    scheduled_export: ScheduledExport
    start_import: StartImport
    handle_blob: HandleBlob
    sweep: Sweep
    diagnose_blob: DiagnoseBlob
    reconcile: Reconcile
    reconcile_run: ReconcileRun
    cleanup: Cleanup
    delete_run: DeleteRun
    reads: ReadRuns
    health: Health
    pipelines: PipelineAdmin
    inventory: Inventory
    record_pushes: RecordPushes
    start_push_exports: StartPushExports
    dashboard: Dashboard
    migrate: MigratePipeline | None = None  # `pipelines migrate`


class TransferService:
    def __init__(self, settings: Settings, use_cases: UseCases) -> None:
        self.settings = settings
        self.use_cases = use_cases

    # ---- starting runs ----

    def start_export(
        self,
        artifacts: Any,
        trigger: Trigger,
        target_name: str | None = None,
        idempotency_key: str | None = None,
        incremental: Any = False,
    ) -> Accepted:
        return self.use_cases.start_export(artifacts, trigger, target_name, idempotency_key, incremental)

    def start_scheduled_export(self, occurrence: Mapping[str, Any] | None = None) -> Accepted | None:
        return self.use_cases.scheduled_export(occurrence)

    def start_import(self, blob: Any, trigger: Trigger, idempotency_key: str | None = None) -> Accepted:
        return self.use_cases.start_import(blob, trigger, idempotency_key)

    # ---- export on push ----

    def record_pushes(self, events: Sequence[Mapping[str, Any]]) -> PushReport:
        return self.use_cases.record_pushes(events)

    def start_push_exports(self) -> list[Run]:
        return self.use_cases.start_push_exports()

    # ---- the watched container ----

    def handle_blob(
        self, name: str, trigger: Trigger = Trigger.BLOB, info: BlobInfo | None = None
    ) -> BlobResult:
        return self.use_cases.handle_blob(name, trigger, info)

    def sweep(self) -> Report:
        return self.use_cases.sweep()

    def diagnose_blob(self, name: str) -> BlobDiagnosis:
        return self.use_cases.diagnose_blob(name)

    # ---- reconcile and cleanup ----

    def reconcile(self) -> Report:
        return self.use_cases.reconcile()

    def follow(self) -> Report:
        """The follow timer: the active runs, at once nothing when none is."""
        return self.use_cases.reconcile.follow()

    def reconcile_run(self, run_id: str) -> Run:
        """Move one run forward from ARM now (the CLI's --wait); a finished run is returned as it is."""
        run = self.get_run(run_id)
        return run if run.status.terminal else self.use_cases.reconcile_run(run)

    def cleanup(self, dry_run: bool = False) -> Report:
        return self.use_cases.cleanup(dry_run)

    def delete_run(self, run_id: str) -> Run:
        return self.use_cases.delete_run(self.get_run(run_id))

    # ---- reads, health, pipelines ----

    def get_run(self, run_id: str) -> Run:
        return self.use_cases.reads.get(run_id)

    def list_runs(self, kind: str | None = None, status: str | None = None, top: int = 50) -> list[Run]:
        return self.use_cases.reads.list(kind, status, top)

    def health(self) -> list[Check]:
        return self.use_cases.health()

    def dashboard(self, before: str | None = None, marker: str | None = None) -> DashboardView:
        """The operator's page: `before` pages the runs (a run id), `marker` the watched container."""
        return self.use_cases.dashboard(before, marker)

    def deploy_pipeline(self, kind: str, spec: PipelineSpec) -> str:
        return self.use_cases.pipelines.deploy(kind, spec)

    def deployment(self, name: str) -> DeploymentState:
        return self.use_cases.pipelines.deployment(name)

    def pipeline(self, kind: str) -> Pipeline:
        return self.use_cases.pipelines.pipeline(kind)

    def migrate_pipeline(self, kind: str, to: str) -> Migration:
        assert self.use_cases.migrate is not None, "assemble() wires it"
        return self.use_cases.migrate(kind, to)

    # ---- the registry's resources, whoever made them (operators) ----

    def list_pipelines(self) -> list[ListedPipeline]:
        return self.use_cases.inventory.pipelines()

    def delete_pipeline(self, kind: str, name: str, force: bool = False) -> PipelineDeletion:
        return self.use_cases.inventory.delete_pipeline(kind, name, force)

    def pipeline_identity(self, kind: str) -> IdentityNeeds:
        return self.use_cases.inventory.identity_needs(kind)

    def list_pipeline_runs(self) -> list[ListedRun]:
        return self.use_cases.inventory.pipeline_runs()
