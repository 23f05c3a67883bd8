"""The export and import pipelines as the use cases need them: read from ARM and cached for a few minutes,
their SAS read from Key Vault and cached the same way, whether a run would fail as they are set up now,
and how the app reaches the export pipeline's container. Each policy written once, here."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from transfer.domain.arm_views import MANAGED_IDENTITY, Pipeline
from transfer.domain.errors import InvalidInput, NotConfigured, NotFound, PipelineNotReady, TransferError
from transfer.domain.ports import PipelineResources, SasSigner, SecretReader
from transfer.domain.records import SasSecret
from transfer.domain.sas import Shortfall, shortfalls
from transfer.domain.settings import Settings, is_loopback_http
from transfer.service.memory import WorkerMemory
from transfer.service.readiness import Readiness

log = logging.getLogger("transfer")

PIPELINE_CACHE_TTL = timedelta(minutes=5)
DELEGATION_LIFETIME = timedelta(hours=2)  # a copy reads its source within this (Storage checks at each read)
KINDS = ("export", "import")


@dataclass(frozen=True)
class Container:
    """A pipeline's storage container and how the app writes to it: a SAS, or its own identity (None)."""

    url: str
    sas_token: str | None

    def blob_url(self, name: str) -> str:
        return f"{self.url}/{name}" + (f"?{self.sas_token.lstrip('?')}" if self.sas_token else "")


class Pipelines:
    def __init__(
        self,
        settings: Settings,
        resources: PipelineResources,
        secrets: SecretReader | None,
        memory: WorkerMemory,
        clock: Callable[[], datetime],
        tenant: Readiness | None = None,
        signer: SasSigner | None = None,
    ) -> None:
        self.signer = signer  # user delegation SASes for a ManagedIdentity export pipeline's copies
        self.settings = settings
        self.resources = resources
        self.secrets = secrets
        self.memory = memory
        self.clock = clock
        self.tenant = tenant  # the locked-down tenant's checks (service/readiness.py)

    def name(self, kind: str) -> str:
        """The configured pipeline of `kind`; refuses a kind this instance has no pipeline for."""
        if kind not in KINDS:
            raise InvalidInput("must be export or import", target="kind")
        name = self.settings.export_pipeline if kind == "export" else self.settings.import_pipeline
        if not name:
            raise NotConfigured(f"TRANSFER_{kind.upper()}_PIPELINE is not set")
        return name

    def get(self, kind: str, fresh: bool = False) -> Pipeline:
        """The export or import pipeline, cached for a few minutes (a warm worker reads it rarely)."""
        now = self.clock()
        cached = self.memory.pipelines.get(kind)
        if cached and not fresh and now - cached[0] < PIPELINE_CACHE_TTL:
            return cached[1]
        resource_id = self.settings.pipeline_id(kind)
        resource = self.resources.get_resource(resource_id)
        if resource is None:
            raise NotFound(f"the {kind} pipeline {resource_id} does not exist: deploy it first", target=kind)
        pipeline = Pipeline.from_arm(kind, resource)
        self.memory.pipelines[kind] = (now, pipeline)
        return pipeline

    def forget(self, kind: str) -> None:
        self.memory.pipelines.pop(kind, None)

    def managed_identity(self, kind: str) -> bool:
        """Whether the pipeline reaches its storage with its identity; False when it cannot be read."""
        try:
            return self.get(kind).storage_access_mode == MANAGED_IDENTITY
        except TransferError:
            return False

    def sas(self, pipeline: Pipeline, fresh: bool = False) -> SasSecret:
        """The pipeline's SAS, read from its Key Vault secret and cached like the pipeline: the start
        checks, the copy step and the manifests of a reconcile tick share one read."""
        if not pipeline.key_vault_uri or self.secrets is None:
            raise PipelineNotReady(
                f"the {pipeline.kind} pipeline is in SasToken mode but has no keyVaultUri",
                target=pipeline.kind,
            )
        now = self.clock()
        cached = self.memory.sas.get(pipeline.key_vault_uri)
        if cached is None or fresh or now - cached[0] >= PIPELINE_CACHE_TTL:
            cached = (now, self.secrets.read_sas(pipeline.key_vault_uri))
            self.memory.sas[pipeline.key_vault_uri] = cached
        return cached[1]

    def sas_shortfalls(self, pipeline: Pipeline, fresh: bool = False) -> tuple[SasSecret, list[Shortfall]]:
        """The pipeline's SAS (`sas`) and what it lacks for a run of the pipeline's kind."""
        secret = self.sas(pipeline, fresh)
        found = shortfalls(
            secret.token,
            kind=pipeline.kind,
            options=pipeline.options,
            expires_at=secret.expires_at,
            now=self.clock(),
            https_only=not is_loopback_http(pipeline.storage_uri or ""),
        )
        return secret, found

    def ensure_ready(self, kind: str) -> None:
        """Refuse a run the pipeline would fail as it is set up now, before anything is recorded: a missing
        pipeline, or a SAS that lacks what the troubleshooting guide requires (docs/service-facts.md). What
        the app cannot read itself (a Key Vault it may not open, ARM hiccups) does not block a start."""
        try:
            pipeline = self.get(kind)
        except NotFound as exc:
            raise PipelineNotReady(exc.message, target=kind) from None
        if self.tenant is not None:
            self.tenant.ensure_ready(pipeline)
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

    def export_container(self, *, needs_sas: bool) -> Container:
        """The export pipeline's container as the app reaches it: with the SAS of the pipeline's Key Vault
        secret in SasToken mode, else with its own identity, which `needs_sas` refuses (the server-side
        copy hands the target a source URL, which must carry its own authorisation)."""
        pipeline = self.get("export")
        url = (pipeline.storage_uri or "").rstrip("/")
        if not url:
            raise NotConfigured("the export pipeline has no target.uri")
        if not pipeline.uses_sas:
            return Container(url, self._delegated_sas(url) if needs_sas else None)
        if needs_sas and not (pipeline.key_vault_uri and self.secrets is not None):
            raise NotConfigured(
                "the copy step reads the source SAS from the export pipeline's Key Vault secret, which "
                "names none"
            )
        if not pipeline.key_vault_uri or self.secrets is None:
            raise NotConfigured("the export pipeline is in SasToken mode but has no keyVaultUri")
        return Container(url, self.sas(pipeline).token)

    def _delegated_sas(self, url: str) -> str:
        """A read-only user delegation SAS for a ManagedIdentity export pipeline's container, signed with
        the app's own identity; cached like the pipeline's SAS and signed again well before it expires."""
        if self.signer is None:
            raise NotConfigured(
                "the copy step of a ManagedIdentity export pipeline signs a user delegation SAS with the "
                "app's identity: this worker has no signer"
            )
        now = self.clock()
        key = f"delegation:{url}"
        cached = self.memory.sas.get(key)
        if cached is None or now - cached[0] >= PIPELINE_CACHE_TTL:
            token = self.signer.read_sas(url, now, now + DELEGATION_LIFETIME)
            cached = (now, SasSecret(token, now + DELEGATION_LIFETIME, "r"))
            self.memory.sas[key] = cached
        return cached[1].token
