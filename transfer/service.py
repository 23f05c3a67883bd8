"""Use cases: start exports and imports, handle blobs by the 60-day rule, reconcile, clean up, health.

Every side effect on ARM or Storage happens after the state record that makes it repeatable:
a retry, a repeated event or a racing worker finds the record and does nothing twice.
"""

from __future__ import annotations

import logging
import secrets
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from transfer import artifacts as artifact_refs
from transfer import naming, templates
from transfer.config import Settings
from transfer.errors import (
    AlreadyExists,
    Conflict,
    InvalidInput,
    NotConfigured,
    NotFound,
    PreconditionFailed,
    Throttled,
    TransferError,
    Unavailable,
)
from transfer.ports import (
    BlobAction,
    BlobCopier,
    BlobInfo,
    BlobRecord,
    BlobStore,
    RequestRecord,
    ResourceManager,
    SecretReader,
    StateStore,
)
from transfer.runs import (
    CopyStatus,
    DeploymentState,
    Run,
    RunKind,
    RunStatus,
    Trigger,
    apply,
    awaits_copy,
    observe,
)
from transfer.staleness import Decision, Outcome, Policy, content_version, decide, refresh_metadata

log = logging.getLogger("transfer")

TRANSIENT = (Throttled, Unavailable)
DEPLOY_GRACE = timedelta(minutes=10)  # ARM may not list a deployment right after its PUT
REFRESH_RETRY_AFTER = timedelta(minutes=10)
ORPHAN_GRACE = timedelta(minutes=2)  # far longer than a claim-then-record takes in a live worker
PIPELINE_CACHE_TTL = timedelta(minutes=5)
SAS_WARNING = timedelta(days=14)
DEPLOYMENT_WARNING = 700  # above this, ARM starts deleting the group's oldest deployments


@dataclass(frozen=True)
class Accepted:
    request_id: str
    runs: list[Run]
    repeated: bool = False


@dataclass(frozen=True)
class BlobResult:
    blob: str
    outcome: Outcome
    reason: str
    run: Run | None = None


@dataclass
class Report:
    """What a timer did, for logs and the CLI."""

    counts: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    items: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"counts": dict(self.counts), "errors": self.errors, "items": self.items}


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


EXPORT_OPTIONS = ("OverwriteBlobs", "ContinueOnErrors")
IMPORT_OPTIONS = ("OverwriteTags", "DeleteSourceBlobOnSuccess", "ContinueOnErrors")
STORAGE_MODES = ("SasToken", "ManagedIdentity")


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

    def parameters(self, kind: str, registry: str, pipeline: str) -> dict[str, Any]:
        allowed = EXPORT_OPTIONS if kind == "export" else IMPORT_OPTIONS
        if self.storage_access_mode not in STORAGE_MODES:
            raise InvalidInput(f"must be one of {', '.join(STORAGE_MODES)}", target="storageAccessMode")
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
        parameters: dict[str, Any] = {
            "registryName": registry,
            f"{kind}PipelineName": pipeline,
            "targetUri" if kind == "export" else "sourceUri": self.storage_uri.rstrip("/"),
            "storageAccessMode": self.storage_access_mode,
            "keyVaultName": self.key_vault_name,
            "sasTokenSecretName": self.sas_secret_name,
            "options": list(dict.fromkeys(self.options)),
            "userAssignedIdentity": self.user_assigned_identity,
        }
        if kind == "import":
            parameters["sourceTriggerStatus"] = "Enabled" if self.source_trigger else "Disabled"
        return parameters


def random_token() -> str:
    return secrets.token_hex(3)


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _ids_equal(a: str | None, b: str | None) -> bool:
    return (a or "").lower() == (b or "").lower()


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
    ) -> None:
        self.settings = settings
        self.arm = arm
        self.state = state
        self.blobs = blobs
        self._copier_factory = copier
        self._copier: BlobCopier | None = None
        self.secrets = secrets_reader
        self.clock = clock
        self.token = token
        self.policy = Policy.of(settings.window_days, settings.margin_hours, settings.stale_action)
        self._pipelines: dict[str, tuple[datetime, dict[str, Any]]] = {}
        self._known_runs: set[str] = set()  # source-trigger runs already recorded (a warm worker keeps it)

    # ---- starting runs ----------------------------------------------------------------------------

    def start_export(
        self,
        artifacts: Any,
        trigger: Trigger,
        target_name: str | None = None,
        idempotency_key: str | None = None,
    ) -> Accepted:
        if not self.settings.export_pipeline:
            raise NotConfigured("this instance has no export pipeline (TRANSFER_EXPORT_PIPELINE)")
        refs = artifact_refs.parse_artifacts(artifacts)
        naming.check_target_name(target_name)
        chunks = artifact_refs.split(refs)
        request = {"kind": "export", "artifacts": refs, "targetName": target_name}
        request_id, run_ids, repeated = self._claim(idempotency_key, request, len(chunks))
        now = self.clock()
        runs = []
        for run_id, chunk in zip(run_ids, chunks, strict=True):
            run = self._new_run(run_id, RunKind.EXPORT, trigger, request_id, now, artifacts=chunk)
            run = replace(run, blob=naming.export_blob_name(target_name, run_id))
            runs.append(self._record_and_deploy(run))
        if not repeated:
            log.info(
                "export accepted: %d artifacts in %d runs",
                len(refs),
                len(runs),
                extra={"request_id": request_id, "trigger": trigger.value, "run_ids": run_ids},
            )
        return Accepted(request_id, runs, repeated)

    def start_scheduled_export(self, occurrence: Mapping[str, Any] | None = None) -> Accepted | None:
        """One export per schedule occurrence. `occurrence` is the timer's schedule status (Last/Next, kept
        by the host's schedule monitor), the same for every delivery of one occurrence; without it, the
        minute on the clock stands in, which a redelivery across a minute boundary does not match."""
        if not self.settings.export_artifacts:
            return None
        occurrence = occurrence or {}
        if occurrence.get("Last") or occurrence.get("Next"):
            tick = f"{occurrence.get('Last') or '-'}/{occurrence.get('Next') or '-'}"
        else:
            tick = self.clock().strftime("%Y%m%dT%H%M")
        return self.start_export(
            list(self.settings.export_artifacts),
            Trigger.SCHEDULE,
            idempotency_key=f"schedule-{tick.replace(' ', '')}"[:200],
        )

    def start_import(self, blob: Any, trigger: Trigger, idempotency_key: str | None = None) -> Accepted:
        blobs = self._require_import()
        name = naming.check_blob_name(blob)
        request = {"kind": "import", "blob": name}
        if idempotency_key is not None:
            repeat = self._stored_request(naming.check_idempotency_key(idempotency_key), request)
            if repeat is not None:
                return repeat
        if blobs.get_properties(name) is None:
            raise NotFound(
                f"blob {name!r} is not in container {self.settings.target_container}", target="blob"
            )
        request_id, run_ids, repeated = self._claim(idempotency_key, request, 1)
        run = self._new_run(run_ids[0], RunKind.IMPORT, trigger, request_id, self.clock(), blob=name)
        return Accepted(request_id, [self._record_and_deploy(run)], repeated)

    def _stored_request(self, key: str, request: Mapping[str, Any]) -> Accepted | None:
        """The runs of an earlier request with this key, when all are recorded: a repeat must get them even
        after the blob was imported and deleted."""
        stored = self.state.get_request(key)
        if stored is None:
            return None
        self._same_request(stored, request)
        runs = [self.state.get_run(run_id) for run_id in stored.run_ids]
        if any(run is None for run in runs):
            return None
        return Accepted(stored.request_id, [run for run in runs if run is not None], repeated=True)

    @staticmethod
    def _same_request(stored: RequestRecord, request: Mapping[str, Any]) -> None:
        if stored.fingerprint != naming.fingerprint(request):
            raise Conflict(
                "this Idempotency-Key was already used for a different request",
                target="Idempotency-Key",
                code="IdempotencyKeyReused",
            )

    def _claim(self, key: str | None, request: Mapping[str, Any], count: int) -> tuple[str, list[str], bool]:
        """Run ids for a request; with an idempotency key, the ids stored by its first use."""
        now = self.clock()
        kind = RunKind(request["kind"])
        request_id = uuid.uuid4().hex
        run_ids = [naming.run_id(kind, now, self.token()) for _ in range(count)]
        if key is None:
            return request_id, run_ids, False
        naming.check_idempotency_key(key)
        fingerprint = naming.fingerprint(request)
        stored = self.state.claim_request(RequestRecord(key, request_id, fingerprint, tuple(run_ids), now))
        self._same_request(stored, request)
        return stored.request_id, list(stored.run_ids), stored.request_id != request_id

    def _new_run(
        self,
        run_id: str,
        kind: RunKind,
        trigger: Trigger,
        request_id: str,
        now: datetime,
        *,
        artifacts: Iterable[str] = (),
        blob: str | None = None,
    ) -> Run:
        return Run(
            id=run_id,
            kind=kind,
            trigger=trigger,
            status=RunStatus.ACCEPTED,
            created_at=now,
            updated_at=now,
            request_id=request_id,
            deployment_name=naming.deployment_name(run_id),
            artifacts=tuple(artifacts),
            blob=blob,
            pipeline_run_id=f"{self.settings.registry_id}/pipelineRuns/{run_id}",
        )

    def _record_and_deploy(self, run: Run) -> Run:
        try:
            run = self.state.add_run(run)
        except AlreadyExists:
            stored = self.state.get_run(run.id)
            if stored is None:
                raise
            run = stored
        if run.status is RunStatus.ACCEPTED:
            run = self._deploy(run)
        return run

    def _deploy(self, run: Run) -> Run:
        pipeline = self.settings.pipeline_id(run.kind.value)
        common = {
            "registryName": self.settings.registry,
            "pipelineRunName": run.id,
            "pipelineResourceId": pipeline,
            "forceUpdateTag": naming.force_update_tag(run.id),
        }
        if run.kind is RunKind.EXPORT:
            template = templates.load(templates.EXPORT_RUN)
            parameters = {**common, "artifacts": list(run.artifacts), "targetName": run.blob}
        else:
            template = templates.load(templates.IMPORT_RUN)
            parameters = {**common, "sourceName": run.blob}
        context = {"run_id": run.id, "blob": run.blob, "trigger": run.trigger.value}
        try:
            self.arm.begin_deployment(run.deployment_name, template, parameters)
        except TRANSIENT as exc:
            log.warning("deployment deferred to reconcile: %s", exc.message, extra=context)
            return run
        except TransferError as exc:
            log.error("deployment rejected: %s", exc.message, extra=context)
            return self._save(run, status=RunStatus.FAILED, error=exc.message)
        log.info("deployment started: %s", run.deployment_name, extra=context)
        return self._save(run, status=RunStatus.DEPLOYING)

    def _save(self, run: Run, **changes: Any) -> Run:
        now = self.clock()
        status = changes.get("status", run.status)
        if status.terminal and run.finished_at is None:
            changes.setdefault("finished_at", now)
        try:
            return self.state.update_run(replace(run, updated_at=now, **changes))
        except PreconditionFailed:
            stored = self.state.get_run(run.id)
            return stored or run

    # ---- the watched container --------------------------------------------------------------------

    def handle_blob(
        self, name: str, trigger: Trigger = Trigger.BLOB, info: BlobInfo | None = None
    ) -> BlobResult:
        blobs = self._require_import()
        name = naming.check_blob_name(name)
        blob = info or blobs.get_properties(name)
        if blob is None:
            return BlobResult(name, Outcome.NOTHING, "the blob no longer exists")
        now = self.clock()
        records = self.state.blob_records(name)
        orphan = self._orphaned_import(blob, records, now)
        if orphan is not None:
            return self._resume_import(orphan, trigger, now)
        decision = decide(
            blob,
            trigger_enabled=self._source_trigger_enabled(),
            policy=self.policy,
            now=now,
            records=records,
        )
        context = {"blob": name, "trigger": trigger.value, "outcome": decision.outcome.value}
        log.info("blob decision: %s (%s)", decision.outcome.value, decision.reason, extra=context)
        if decision.outcome is Outcome.LEAVE:
            self.state.claim_blob(self._record(blob, decision, BlobAction.SOURCE_TRIGGER, now))
            return BlobResult(name, decision.outcome, decision.reason)
        if decision.outcome is Outcome.REFRESH:
            return self._refresh(blobs, blob, decision, now)
        if decision.outcome is Outcome.IMPORT:
            return self._import_blob(blob, decision, trigger, now)
        return BlobResult(name, decision.outcome, decision.reason)

    def _record(
        self, blob: BlobInfo, decision: Decision, action: BlobAction, now: datetime, run_id: str | None = None
    ) -> BlobRecord:
        return BlobRecord(
            name=blob.name,
            key=decision.lock_key,
            action=action,
            decided_at=now,
            last_modified=blob.last_modified,
            run_id=run_id,
            reason=decision.reason,
        )

    def _refresh(self, blobs: BlobStore, blob: BlobInfo, decision: Decision, now: datetime) -> BlobResult:
        record = self._record(blob, decision, BlobAction.REFRESH, now)
        if not self.state.claim_blob(record):
            stored = next((r for r in self.state.blob_records(blob.name) if r.key == decision.lock_key), None)
            if (
                stored is None
                or stored.reason.startswith("refreshed")
                or now - stored.decided_at < REFRESH_RETRY_AFTER
            ):
                return BlobResult(blob.name, Outcome.NOTHING, "a refresh of this blob is already recorded")
            record = replace(stored, decided_at=now)
        try:
            refreshed = blobs.merge_metadata(blob.name, refresh_metadata(now), blob.etag)
        except PreconditionFailed:
            return BlobResult(
                blob.name, Outcome.NOTHING, "the blob changed meanwhile; its next event decides"
            )
        self.state.update_blob_record(replace(record, reason=f"refreshed: {decision.reason}"))
        log.info(
            "blob refreshed for the source trigger",
            extra={"blob": blob.name, "last_modified": refreshed.last_modified.isoformat()},
        )
        return BlobResult(blob.name, Outcome.REFRESH, decision.reason)

    def _import_blob(self, blob: BlobInfo, decision: Decision, trigger: Trigger, now: datetime) -> BlobResult:
        run_id = naming.run_id(RunKind.IMPORT, now, self.token())
        if not self.state.claim_blob(self._record(blob, decision, BlobAction.IMPORT, now, run_id)):
            return BlobResult(
                blob.name, Outcome.NOTHING, "an import of this blob version is already recorded"
            )
        run = self._new_run(run_id, RunKind.IMPORT, trigger, uuid.uuid4().hex, now, blob=blob.name)
        return BlobResult(blob.name, Outcome.IMPORT, decision.reason, self._record_and_deploy(run))

    def _orphaned_import(self, blob: BlobInfo, records: list[BlobRecord], now: datetime) -> BlobRecord | None:
        """An import claimed for this version whose run was never recorded: the worker died in between.
        A claim younger than the grace may belong to a worker still busy with it."""
        version = content_version(blob)
        for record in records:
            if (
                record.action is BlobAction.IMPORT
                and record.run_id
                and record.key.endswith(version)
                and now - record.decided_at > ORPHAN_GRACE
                and self.state.get_run(record.run_id) is None
            ):
                return record
        return None

    def _resume_import(self, record: BlobRecord, trigger: Trigger, now: datetime) -> BlobResult:
        assert record.run_id is not None
        log.warning("finishing an import whose run was never recorded", extra={"blob": record.name})
        run = self._new_run(record.run_id, RunKind.IMPORT, trigger, uuid.uuid4().hex, now, blob=record.name)
        return BlobResult(record.name, Outcome.IMPORT, record.reason, self._record_and_deploy(run))

    def sweep(self) -> Report:
        """Apply the 60-day rule to every blob in the watched container (blobs age without events)."""
        blobs = self._require_import()
        report = Report()
        for blob in blobs.list_blobs():
            try:
                result = self.handle_blob(blob.name, Trigger.SWEEP, info=blob)
            except (InvalidInput, *TRANSIENT) as exc:  # one odd blob never stops the sweep of the others
                report.errors.append(f"{blob.name!r}: {exc.message}")
                continue
            report.counts[result.outcome.value] += 1
            if result.outcome in (Outcome.REFRESH, Outcome.IMPORT):
                report.items.append(
                    {
                        "blob": blob.name,
                        "outcome": result.outcome.value,
                        "run": result.run.id if result.run else None,
                    }
                )
        return report

    # ---- reconcile and cleanup --------------------------------------------------------------------

    def reconcile(self) -> Report:
        report = Report()
        if self.settings.import_pipeline:
            try:
                self._adopt_source_trigger_runs(report)
            except TRANSIENT as exc:  # the active runs below still move forward
                report.counts["deferred"] += 1
                report.errors.append(f"source-trigger runs: {exc.message}")
        copies: list[Run] = []
        for run in self.state.active_runs():
            if run.status.terminal:  # finished in ARM; only its copy is still followed
                copies.append(run)
                continue
            try:
                after = self._reconcile_run(run)
            except TRANSIENT as exc:
                report.counts["deferred"] += 1
                report.errors.append(f"{run.id}: {exc.message}")
                continue
            report.counts[after.status.value] += 1
            if after.status is not run.status:
                report.items.append({"run": run.id, "from": run.status.value, "to": after.status.value})
            if awaits_copy(after):
                copies.append(after)
        self._advance_copies(report, copies)
        return report

    def reconcile_run(self, run_id: str) -> Run:
        """Move one run forward from ARM now (the CLI's --wait); a finished run is returned as it is."""
        run = self.get_run(run_id)
        return run if run.status.terminal else self._reconcile_run(run)

    def _reconcile_run(self, run: Run) -> Run:
        deployment = self.arm.get_deployment(run.deployment_name) if run.owned else None
        pipeline_run = self.arm.get_resource(run.pipeline_run_id) if run.pipeline_run_id else None
        seen = observe(deployment, pipeline_run)
        now = self.clock()
        context = {"run_id": run.id, "blob": run.blob, "trigger": run.trigger.value}
        if seen is None:
            if run.status is RunStatus.ACCEPTED and run.owned:
                log.info("redeploying a run whose deployment never started", extra=context)
                return self._deploy(run)
            if now - run.updated_at > DEPLOY_GRACE:
                return self._save(
                    run, status=RunStatus.FAILED, error="ARM has no deployment or pipelineRun for it"
                )
            return run
        after = apply(run, seen, now)
        if self._copy_due(after):
            after = replace(after, copy_status=CopyStatus.QUEUED)  # recorded with the success itself
        if after == replace(run, updated_at=after.updated_at):
            return run
        if after.status.terminal:
            log.info("run %s: %s", after.status.value, after.error or "", extra=context)
        try:
            return self.state.update_run(after)
        except PreconditionFailed:
            return self.state.get_run(run.id) or run

    def _adopt_source_trigger_runs(self, report: Report) -> None:
        """Record the runs the import pipeline's source trigger started, so their status is visible."""
        pipeline = self.settings.pipeline_id("import")
        for resource in self.arm.list_pipeline_runs():
            props = resource.get("properties") or {}
            request = props.get("request") or {}
            started_by_trigger = ((props.get("response") or {}).get("trigger") or {}).get("sourceTrigger")
            name = str(resource.get("name") or "")
            if not started_by_trigger or not _ids_equal(request.get("pipelineResourceId"), pipeline):
                continue
            started = _parse_time(started_by_trigger.get("timestamp"))
            if name in self._known_runs or (
                started is not None and self.clock() - started > self.policy.window
            ):
                continue  # recorded already, or too old to matter to the 60-day rule
            if not naming.RUN_ID.match(name):
                continue
            if self.state.get_run(name) is not None:
                self._known_runs.add(name)
                continue
            blob = ((request.get("source") or {}).get("name")) or None
            now = self.clock()
            run = Run(
                id=name,
                kind=RunKind.IMPORT,
                trigger=Trigger.SOURCE,
                status=RunStatus.RUNNING,
                created_at=now,
                updated_at=now,
                request_id=uuid.uuid4().hex,
                deployment_name="",
                blob=blob,
                pipeline_run_id=resource.get("id"),
                owned=False,
            )
            seen = observe(None, resource)
            if seen is not None:
                run = apply(run, seen, now)
            try:
                self.state.add_run(run)
            except AlreadyExists:
                self._known_runs.add(name)
                continue
            self._known_runs.add(name)
            if blob:
                self._tie_to_blob(blob, name)
            report.counts["adopted"] += 1

    def _tie_to_blob(self, blob: str, run_id: str) -> None:
        for record in self.state.blob_records(blob):
            if record.action is BlobAction.SOURCE_TRIGGER and record.run_id is None:
                self.state.update_blob_record(replace(record, run_id=run_id))

    def cleanup(self, dry_run: bool = False) -> Report:
        """Delete the pipelineRun and deployment of terminal runs past the retention; only our own."""
        report = Report()
        cutoff = self.clock() - timedelta(hours=self.settings.retention_hours)
        for run in self.state.runs_to_clean():
            if not run.owned or run.finished_at is None or run.finished_at > cutoff:
                report.counts["kept"] += 1
                continue
            report.items.append(
                {"run": run.id, "deployment": run.deployment_name, "pipelineRun": run.pipeline_run_id}
            )
            if dry_run:
                report.counts["would-delete"] += 1
                continue
            try:
                self._delete_resources(run)
            except TRANSIENT as exc:
                report.errors.append(f"{run.id}: {exc.message}")
                continue
            report.counts["deleted"] += 1
        return report

    def _delete_resources(self, run: Run) -> Run:
        own_run_id = f"{self.settings.registry_id}/pipelineRuns/{run.id}"
        if run.pipeline_run_id and _ids_equal(run.pipeline_run_id, own_run_id):
            self.arm.delete_resource(run.pipeline_run_id)
        if naming.is_ours(run.deployment_name):
            self.arm.delete_deployment(run.deployment_name)
        log.info("run resources deleted", extra={"run_id": run.id})
        return self._save(run, cleaned_up=True)

    def delete_run(self, run_id: str) -> Run:
        run = self.get_run(run_id)
        if not run.status.terminal:
            raise Conflict(
                f"run {run.id} is {run.status.value}; delete it once it has finished", target="run_id"
            )
        if not run.owned:
            raise Conflict("the source trigger started this run; the app does not delete it", target="run_id")
        if run.cleaned_up:
            return run
        return self._delete_resources(run)

    # ---- copy after export ------------------------------------------------------------------------

    def _copy_due(self, run: Run) -> bool:
        return (
            bool(self.settings.copy_target_url)
            and run.kind is RunKind.EXPORT
            and run.status is RunStatus.SUCCEEDED
            and run.copy_status is None
            and run.blob is not None
        )

    def _advance_copies(self, report: Report, runs: list[Run]) -> None:
        """Start queued copies and follow pending ones; the index keeps them active until they settle."""
        for run in runs:
            try:
                after = self._copy_step(run)
            except TRANSIENT as exc:
                report.errors.append(f"copy {run.id}: {exc.message}")
                continue
            except TransferError as exc:
                after = self._save(run, copy_status=CopyStatus.FAILED, copy_error=exc.message)
            if after.copy_status is not run.copy_status:
                report.counts[f"copy-{after.copy_status}"] += 1

    def _copy_step(self, run: Run) -> Run:
        assert run.blob is not None
        copier = self._get_copier()
        if run.copy_status is CopyStatus.QUEUED:
            source = self._export_blob_url(run.blob)
            state = copier.start_copy(source, run.blob)
            log.info("copy started", extra={"run_id": run.id, "blob": run.blob})
        else:
            current = copier.copy_state(run.blob)
            if current is None:
                return self._save(
                    run, copy_status=CopyStatus.FAILED, copy_error="the copied blob disappeared"
                )
            state = current
        status = (
            CopyStatus(state.status) if state.status in CopyStatus._value2member_map_ else CopyStatus.PENDING
        )
        if status is run.copy_status:
            return run
        return self._save(run, copy_status=status, copy_error=state.error)

    def _export_blob_url(self, blob: str) -> str:
        """The exported blob's URL with a SAS read from the export pipeline's own Key Vault secret."""
        pipeline = self._pipeline("export")
        target = (pipeline.get("properties") or {}).get("target") or {}
        uri = str(target.get("uri") or "").rstrip("/")
        if not uri:
            raise NotConfigured("the export pipeline has no target.uri")
        mode = target.get("storageAccessMode") or "SasToken"
        key_vault_uri = target.get("keyVaultUri")
        if mode != "SasToken" or not key_vault_uri or self.secrets is None:
            raise NotConfigured(
                "the copy step reads the source SAS from the export pipeline's Key Vault secret; "
                "a ManagedIdentity export pipeline needs azcopy or a SasToken pipeline for the copy"
            )
        sas = self.secrets.read_sas(key_vault_uri)
        return f"{uri}/{blob}?{sas.token.lstrip('?')}"

    def _get_copier(self) -> BlobCopier:
        if self._copier is None:
            if self._copier_factory is None:
                raise NotConfigured("TRANSFER_COPY_TARGET_URL is not set")
            self._copier = self._copier_factory()
        return self._copier

    # ---- reads ------------------------------------------------------------------------------------

    def get_run(self, run_id: str) -> Run:
        run = self.state.get_run(naming.check_run_id(run_id))
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
        return self.state.list_runs(kind=kind_value, status=status_value, top=top)

    # ---- health -----------------------------------------------------------------------------------

    def health(self) -> list[Check]:
        checks = [Check("settings", True, self._roles())]
        checks.append(self._check("state", self._ping_state))
        for kind in ("export", "import"):
            if getattr(self.settings, f"{kind}_pipeline"):
                checks.extend(self._pipeline_checks(kind))
        checks.append(self._check("deployments", self._deployment_headroom))
        return checks

    def _roles(self) -> str:
        roles = [k for k in ("export", "import") if getattr(self.settings, f"{k}_pipeline")]
        return f"registry {self.settings.registry}; roles: {', '.join(roles)}"

    def _check(self, name: str, probe: Callable[[], str]) -> Check:
        try:
            return Check(name, True, probe())
        except TransferError as exc:
            return Check(name, False, exc.message)

    def _ping_state(self) -> str:
        self.state.ping()
        return "tables reachable"

    def _deployment_headroom(self) -> str:
        count = self.arm.count_deployments()
        if count >= DEPLOYMENT_WARNING:
            raise TransferError(f"{count} deployments in the group: run cleanup (ARM's limit is 800)")
        return f"{count} deployments in the group"

    def _pipeline_checks(self, kind: str) -> list[Check]:
        name = f"{kind}Pipeline"
        try:
            pipeline = self._pipeline(kind, fresh=True)
        except TransferError as exc:
            return [Check(name, False, exc.message)]
        props = pipeline.get("properties") or {}
        storage = props.get("target" if kind == "export" else "source") or {}
        mode = storage.get("storageAccessMode") or "SasToken"
        detail = f"{props.get('provisioningState', 'unknown')}; storage access {mode}"
        if kind == "import":
            detail += f"; source trigger {self._trigger_status(pipeline)}"
        checks = [Check(name, str(props.get("provisioningState", "Succeeded")) == "Succeeded", detail)]
        if mode == "SasToken":
            checks.append(self._check(f"{kind}Sas", lambda: self._sas_expiry(storage.get("keyVaultUri"))))
        return checks

    def _sas_expiry(self, key_vault_uri: str | None) -> str:
        if not key_vault_uri or self.secrets is None:
            raise TransferError("the pipeline is in SasToken mode but has no keyVaultUri")
        sas = self.secrets.read_sas(key_vault_uri)
        if sas.expires_at is None:
            return f"SAS without expiry; permissions {sas.permissions}"
        left = sas.expires_at - self.clock()
        if left <= timedelta(0):
            raise TransferError(f"the SAS expired at {sas.expires_at:%Y-%m-%d %H:%M}Z: renew the secret")
        if left < SAS_WARNING:
            raise TransferError(
                f"the SAS expires in {left.days} days ({sas.expires_at:%Y-%m-%d}): renew it soon"
            )
        return f"SAS valid until {sas.expires_at:%Y-%m-%d}; permissions {sas.permissions}"

    # ---- pipelines --------------------------------------------------------------------------------

    def deploy_pipeline(self, kind: str, spec: PipelineSpec) -> str:
        """Start deploying the export or import pipeline from templates/; returns the deployment name."""
        name = self._pipeline_name(kind)
        parameters = spec.parameters(kind, self.settings.registry, name)
        deployment = f"{naming.DEPLOYMENT_PREFIX}{kind}-pipeline-{name}"
        template = templates.load(
            templates.EXPORT_PIPELINE if kind == "export" else templates.IMPORT_PIPELINE
        )
        self.arm.begin_deployment(deployment, template, parameters)
        self._pipelines.pop(kind, None)
        log.info("pipeline deployment started: %s", deployment, extra={"pipeline": name})
        return deployment

    def deployment(self, name: str) -> DeploymentState:
        state = self.arm.get_deployment(name)
        if state is None:
            raise NotFound(f"no deployment {name}", target="deployment")
        return state

    def pipeline(self, kind: str) -> dict[str, Any]:
        self._pipeline_name(kind)
        return self._pipeline(kind, fresh=True)

    def _pipeline_name(self, kind: str) -> str:
        if kind not in ("export", "import"):
            raise InvalidInput("must be export or import", target="kind")
        name = self.settings.export_pipeline if kind == "export" else self.settings.import_pipeline
        if not name:
            raise NotConfigured(f"TRANSFER_{kind.upper()}_PIPELINE is not set")
        return name

    def _pipeline(self, kind: str, fresh: bool = False) -> dict[str, Any]:
        now = self.clock()
        cached = self._pipelines.get(kind)
        if cached and not fresh and now - cached[0] < PIPELINE_CACHE_TTL:
            return cached[1]
        resource_id = self.settings.pipeline_id(kind)
        pipeline = self.arm.get_resource(resource_id)
        if pipeline is None:
            raise NotFound(f"the {kind} pipeline {resource_id} does not exist: deploy it first", target=kind)
        self._pipelines[kind] = (now, pipeline)
        return pipeline

    @staticmethod
    def _trigger_status(pipeline: Mapping[str, Any]) -> str:
        trigger = ((pipeline.get("properties") or {}).get("trigger") or {}).get("sourceTrigger") or {}
        return str(trigger.get("status") or "Enabled")

    def _source_trigger_enabled(self) -> bool:
        return self._trigger_status(self._pipeline("import")).lower() == "enabled"

    def _require_import(self) -> BlobStore:
        if not self.settings.import_pipeline:
            raise NotConfigured("this instance has no import pipeline (TRANSFER_IMPORT_PIPELINE)")
        if self.blobs is None:
            raise NotConfigured("TransferStorage is not configured")
        return self.blobs
