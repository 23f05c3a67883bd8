"""What every family of use cases shares: the ports, the clock, the settings, and the few helpers that
read or write through them the same way everywhere (saving a run, the pipeline cache)."""

from __future__ import annotations

import logging
import secrets
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from transfer.domain.arm_views import Pipeline
from transfer.domain.errors import (
    InvalidInput,
    NotConfigured,
    NotFound,
    PipelineNotReady,
    PreconditionFailed,
    Throttled,
    TransferError,
    Unavailable,
)
from transfer.domain.ports import (
    BlobCopier,
    BlobStore,
    BlobWriter,
    Registry,
    ResourceManager,
    SasSecret,
    SecretReader,
    StateStore,
    TemplateSource,
)
from transfer.domain.runs import Run
from transfer.domain.sas import Shortfall, shortfalls
from transfer.domain.settings import Settings, is_loopback_http
from transfer.domain.staleness import Policy

TRANSIENT_ERRORS = (Throttled, Unavailable)
PIPELINE_CACHE_TTL = timedelta(minutes=5)
log = logging.getLogger("transfer")
# A timer pass stops starting new items after this long: well under host.json's functionTimeout (9:30),
# so the pass ends cleanly and its report is written.
PASS_BUDGET = timedelta(minutes=4)
THROTTLE_PAUSE = timedelta(seconds=60)  # when a 429 names no Retry-After


def random_token() -> str:
    return secrets.token_hex(3)


@dataclass
class Report:
    """What a timer did, for logs and the CLI."""

    counts: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    items: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"counts": dict(self.counts), "errors": self.errors, "items": self.items}


class Context:
    def __init__(
        self,
        settings: Settings,
        *,
        arm: ResourceManager,
        state: StateStore,
        blobs: BlobStore | None,
        copier: Callable[[], BlobCopier] | None,
        secrets_reader: SecretReader | None,
        clock: Callable[[], datetime],
        token: Callable[[], str],
        registry: Registry | None = None,
        blob_writer: BlobWriter | None = None,
        templates: TemplateSource,
    ) -> None:
        self.settings = settings
        self.templates = templates  # the ARM templates the app deploys
        self.registry = registry  # the registry's data plane: selectors, incremental exports, verification
        self.blob_writer = blob_writer  # manifests beside exported blobs
        self.arm = arm
        self.state = state
        self.blobs = blobs
        self.secrets = secrets_reader
        self.clock = clock
        self.token = token
        self.policy = Policy.of(settings.window_days, settings.margin_hours, settings.stale_action)
        self._copier_factory = copier
        self._copier: BlobCopier | None = None
        self._pipelines: dict[str, tuple[datetime, Pipeline]] = {}
        self._sas: dict[str, tuple[datetime, SasSecret]] = {}
        self.arm_not_before: datetime | None = None  # set by a 429: passes leave ARM alone until then

    def save(self, run: Run, **changes: Any) -> Run:
        """Write the run with `changes`; a racing writer's newer record wins and is returned."""
        now = self.clock()
        status = changes.get("status", run.status)
        if status.terminal and run.finished_at is None:
            changes.setdefault("finished_at", now)
        try:
            return self.state.update_run(replace(run, updated_at=now, **changes))
        except PreconditionFailed:
            stored = self.state.get_run(run.id)
            return stored or run

    def pipeline_name(self, kind: str) -> str:
        if kind not in ("export", "import"):
            raise InvalidInput("must be export or import", target="kind")
        name = self.settings.export_pipeline if kind == "export" else self.settings.import_pipeline
        if not name:
            raise NotConfigured(f"TRANSFER_{kind.upper()}_PIPELINE is not set")
        return name

    def pipeline(self, kind: str, fresh: bool = False) -> Pipeline:
        """The export or import pipeline, cached for a few minutes (a warm worker reads it rarely)."""
        now = self.clock()
        cached = self._pipelines.get(kind)
        if cached and not fresh and now - cached[0] < PIPELINE_CACHE_TTL:
            return cached[1]
        resource_id = self.settings.pipeline_id(kind)
        resource = self.arm.get_resource(resource_id)
        if resource is None:
            raise NotFound(f"the {kind} pipeline {resource_id} does not exist: deploy it first", target=kind)
        pipeline = Pipeline.from_arm(kind, resource)
        self._pipelines[kind] = (now, pipeline)
        return pipeline

    def sas(self, pipeline: Pipeline, fresh: bool = False) -> SasSecret:
        """The pipeline's SAS, read from its Key Vault secret and cached like the pipeline: the start
        checks, the copy step and the manifests of a reconcile tick share one read."""
        if not pipeline.key_vault_uri or self.secrets is None:
            raise PipelineNotReady(
                f"the {pipeline.kind} pipeline is in SasToken mode but has no keyVaultUri",
                target=pipeline.kind,
            )
        now = self.clock()
        cached = self._sas.get(pipeline.key_vault_uri)
        if cached is None or fresh or now - cached[0] >= PIPELINE_CACHE_TTL:
            cached = (now, self.secrets.read_sas(pipeline.key_vault_uri))
            self._sas[pipeline.key_vault_uri] = cached
        return cached[1]

    def sas_shortfalls(self, pipeline: Pipeline, fresh: bool = False) -> tuple[SasSecret, list[Shortfall]]:
        """The pipeline's SAS (`sas`) and what it lacks for a run of the pipeline's kind."""
        secret = self.sas(pipeline, fresh)
        now = self.clock()
        found = shortfalls(
            secret.token,
            kind=pipeline.kind,
            options=pipeline.options,
            expires_at=secret.expires_at,
            now=now,
            https_only=not is_loopback_http(pipeline.storage_uri or ""),
        )
        return secret, found

    def ensure_ready(self, kind: str) -> None:
        """Refuse a run the pipeline would fail as it is set up now (FACTS.md's causes), before anything is
        recorded: a missing pipeline, or a SAS that lacks what the troubleshooting guide requires. What the
        app cannot read itself (a Key Vault it may not open, ARM hiccups) does not block a start."""
        try:
            pipeline = self.pipeline(kind)
        except NotFound as exc:
            raise PipelineNotReady(exc.message, target=kind) from None
        if not pipeline.uses_sas:
            return
        try:
            _, found = self.sas_shortfalls(pipeline)
        except PipelineNotReady:
            raise
        except TransferError as exc:
            log.warning("the %s pipeline's SAS could not be checked: %s", kind, exc.message)
            return
        if found:
            raise PipelineNotReady(
                f"the {kind} pipeline's SAS (its Key Vault secret) would fail the run: "
                + "; ".join(s.message for s in found),
                target=f"{kind}Pipeline",
            )

    def forget_pipeline(self, kind: str) -> None:
        self._pipelines.pop(kind, None)

    def require_import(self) -> BlobStore:
        if not self.settings.import_pipeline:
            raise NotConfigured("this instance has no import pipeline (TRANSFER_IMPORT_PIPELINE)")
        if self.blobs is None:
            raise NotConfigured("TransferStorage is not configured")
        return self.blobs

    def require_registry(self) -> Registry:
        if self.registry is None:
            raise NotConfigured("this instance reads no registry data plane (TRANSFER_REGISTRY_ENDPOINT)")
        return self.registry

    def copier(self) -> BlobCopier:
        if self._copier is None:
            if self._copier_factory is None:
                raise NotConfigured("TRANSFER_COPY_TARGET_URL is not set")
            self._copier = self._copier_factory()
        return self._copier


class Pass:
    """One timer pass over many items: each item on its own, within a time budget, and no ARM work after
    the first 429 (nor, on this worker, before its Retry-After has passed: the next pass waits it out).

    `item` runs one item's work: a transient error defers the item, any other error is recorded against
    it in the report, and the pass goes on either way.
    """

    def __init__(self, context: Context, report: Report, budget: timedelta = PASS_BUDGET) -> None:
        self.context = context
        self.report = report
        self.deadline = context.clock() + budget
        self.stopped: str | None = None

    def may_continue(self, *, arm: bool = True) -> bool:
        now = self.context.clock()
        if self.stopped is None and now >= self.deadline:
            self.stopped = "the pass's time budget is spent"
        if self.stopped is None and arm and self.context.arm_not_before and now < self.context.arm_not_before:
            self.stopped = f"throttled: this worker waits until {self.context.arm_not_before:%H:%M:%S}Z"
        return self.stopped is None

    def item(self, label: str, work: Callable[[], Any]) -> Any | None:
        try:
            return work()
        except Throttled as exc:
            pause = timedelta(seconds=exc.retry_after) if exc.retry_after else THROTTLE_PAUSE
            self.context.arm_not_before = self.context.clock() + pause
            self.stopped = f"throttled (retry after {pause.total_seconds():.0f} s)"
            self._defer(label, exc.message)
        except Unavailable as exc:
            self._defer(label, exc.message)
        except TransferError as exc:
            self.report.counts["errors"] += 1
            self.report.errors.append(f"{label}: {exc.message}")
            log.warning("%s: %s", label, exc.message, extra={"item": label})
        except Exception:  # one item's surprise must not stop the others
            self.report.counts["errors"] += 1
            self.report.errors.append(f"{label}: an unexpected error (see the logs)")
            log.exception("unexpected error on %s", label, extra={"item": label})
        return None

    def _defer(self, label: str, message: str) -> None:
        self.report.counts["deferred"] += 1
        self.report.errors.append(f"{label}: {message}")

    def not_reached(self, count: int) -> None:
        """Items left for the next pass, which starts with them."""
        if count:
            self.report.counts["not-reached"] += count
            self.report.errors.append(f"{count} items left for the next pass: {self.stopped}")
