"""ACR Transfer resources: registries (with their repositories, tags and manifests), export and import
pipelines, and pipeline runs (validation, re-PUT semantics, starting the run)."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable
from typing import Any

from emulator import export_policy, ids, validation
from emulator.arm_errors import ApiError, bad_request
from emulator.clock import Clock, iso
from emulator.identities import pipeline_identity
from emulator.pipeline_shapes import shape_pipeline
from emulator.registry_content import Change, Manifest, RegistryStore, seed_manifest
from emulator.resources import PutResult, ResourceManager
from emulator.store import Config, Repository, Resource, State

REGISTRIES = "Microsoft.ContainerRegistry/registries"
EXPORT_PIPELINES = validation.EXPORT_PIPELINES
IMPORT_PIPELINES = validation.IMPORT_PIPELINES
PIPELINE_RUNS = validation.PIPELINE_RUNS
TERMINAL = ("Succeeded", "Failed", "Canceled")


def is_pipeline_type(resource_type: str) -> bool:
    return resource_type.lower() in (
        EXPORT_PIPELINES.lower(),
        IMPORT_PIPELINES.lower(),
        PIPELINE_RUNS.lower(),
    )


def supported_versions_header(config: Config) -> dict[str, str]:
    """The header the live service answers every pipeline request with."""
    return {"api-supported-versions": ", ".join(config.pipeline_api_versions)}


def check_pipeline_api_version(config: Config, resource_type: str, api_version: str) -> None:
    validation.check_api_version(resource_type, api_version, config.pipeline_api_versions, config.location)


def seed_digest(repository: str, tag: str) -> str:
    """The digest of the image a seeded `repo:tag` gets (the sha256 of its manifest document)."""
    return seed_manifest(repository, tag).digest


def login_server(registry_name: str) -> str:
    return f"{registry_name.lower()}.azurecr.io"


class Registries:
    """Microsoft.ContainerRegistry/registries and their content."""

    def __init__(self, state: State, config: Config, clock: Clock, resources: ResourceManager) -> None:
        self.state = state
        self.config = config
        self.clock = clock
        self.resources = resources
        self.store = RegistryStore(state.lock)  # manifest documents, times, data-plane settings
        self.listen: Callable[[str], int] | None = None  # opens the registry's data-plane port (runtime)
        self.listeners: list[Callable[[Change], None]] = []  # told of every push and delete (events)

    def preflight(self, rid: ids.ResourceId, api_version: str, body: dict[str, Any]) -> None:
        validation.check_name("registry", rid.name)

    def put(self, rid: ids.ResourceId, resource_id: str, api_version: str, body: dict[str, Any]) -> PutResult:
        validation.check_name("registry", rid.name)
        if self.listen is not None:
            self.listen(rid.name)
        properties = copy.deepcopy(body.get("properties") or {})
        properties["loginServer"] = login_server(rid.name)
        properties.setdefault("adminUserEnabled", False)
        properties.setdefault("creationDate", iso(self.clock.now()))
        existing = self.resources.find(resource_id)
        pipelines = [p.body["name"] for p in self.resources.children(resource_id, EXPORT_PIPELINES)]
        export_policy.check_registry_update(
            rid.name,
            existing.body.get("properties") if existing else None,
            export_policy.with_defaults(properties),
            pipelines,
        )
        body = {
            **body,
            "location": body.get("location") or self.config.location,
            "sku": body.get("sku") or {"name": "Premium", "tier": "Premium"},
        }
        with self.state.lock:
            self.state.registries.setdefault(ids.key(resource_id), {})
        return self.resources.store_generic(rid, resource_id, api_version, body, properties, system_data=True)

    def delete(self, resource: Resource) -> None:
        with self.state.lock:
            self.state.registries.pop(ids.key(resource.id), None)
            self.store.forget(ids.key(resource.id))

    def content(self, registry_id: str) -> dict[str, Repository]:
        with self.state.lock:
            found = self.state.registries.get(ids.key(registry_id))
            if found is None:
                raise ApiError(404, "RegistryNotFound", f"The registry '{registry_id}' does not exist.")
            return found

    def add(
        self,
        registry_id: str,
        repository: str,
        tag: str | None,
        digest: str,
        manifest: Manifest | None = None,
        *,
        via: str = "admin",
        user_agent: str = "",
        actor: str = "",
        request_id: str = "",
    ) -> None:
        """Write a manifest (its document when known: its sha256 must be `digest`) and point `tag` at it;
        `via` says who pushed it (the registry's events report each push)."""
        now = self.clock.now()
        with self.state.lock:
            repo = self.content(registry_id).setdefault(repository, Repository())
            previous = repo.tags.get(tag) if tag else None
            self.store.record(ids.key(registry_id), repository, tag, digest, manifest, previous, now)
            repo.manifests.add(digest)
            if tag:
                repo.tags[tag] = digest
            document = manifest or self.store.document(digest)
            change = Change(
                "push",
                registry_id,
                repository,
                tag,
                digest,
                document.media_type if document else None,
                len(document.data) if document else 0,
                via,
                user_agent,
                request_id,
                actor,
            )
            for listener in self.listeners:
                listener(change)

    def delete_manifest(
        self, registry_id: str, repository: str, digest: str, *, via: str = "admin", **request: str
    ) -> bool:
        """Delete a manifest and the tags pointing at it; False when the repository does not have it."""
        with self.state.lock:
            content = self.content(registry_id)
            repo = content.get(repository)
            if repo is None or digest not in repo.manifests:
                return False
            tags = [t for t, d in repo.tags.items() if d == digest]
            for tag in tags:
                del repo.tags[tag]
            repo.manifests.discard(digest)
            self.store.forget_manifest(ids.key(registry_id), repository, digest, tags)
            if not repo.manifests:
                del content[repository]
            document = self.store.document(digest)
            change = Change(
                "delete",
                registry_id,
                repository,
                None,
                digest,
                document.media_type if document else None,
                len(document.data) if document else 0,
                via,
                request.get("user_agent", ""),
                request.get("request_id", ""),
                request.get("actor", ""),
            )
            for listener in self.listeners:
                listener(change)
            return True

    def untag(self, registry_id: str, repository: str, tag: str) -> bool:
        with self.state.lock:
            repo = self.content(registry_id).get(repository)
            if repo is None or tag not in repo.tags:
                return False
            del repo.tags[tag]
            self.store.forget_tag(ids.key(registry_id), repository, tag)
            return True

    def describe(self, registry_id: str) -> dict[str, Any]:
        with self.state.lock:
            return {
                name: {"tags": dict(sorted(repo.tags.items())), "manifests": sorted(repo.manifests)}
                for name, repo in sorted(self.content(registry_id).items())
            }


class Pipelines:
    """exportPipelines and importPipelines: validated against schema + rules, PUT answers 200 at once."""

    def __init__(self, state: State, config: Config, resources: ResourceManager) -> None:
        self.state = state
        self.config = config
        self.resources = resources

    def preflight(self, rid: ids.ResourceId, api_version: str, body: dict[str, Any]) -> None:
        self._check(rid, api_version, body)

    def _check(self, rid: ids.ResourceId, api_version: str, body: dict[str, Any]) -> dict[str, Any]:
        check_pipeline_api_version(self.config, rid.type, api_version)
        is_export = rid.is_type(EXPORT_PIPELINES)
        check = validation.export_pipeline if is_export else validation.import_pipeline
        return check(rid.name, api_version, body, self.config.pipeline_api_versions)

    def put(self, rid: ids.ResourceId, resource_id: str, api_version: str, body: dict[str, Any]) -> PutResult:
        properties = self._check(rid, api_version, body)
        registry = self.resources.find(rid.parent.id) if rid.parent else None
        if rid.is_type(EXPORT_PIPELINES) and registry is not None:
            export_policy.check_export_pipeline(registry.body["name"], registry.body.get("properties") or {})
        with self.state.lock:
            existing = self.resources.find(resource_id)
            identity = pipeline_identity(
                body["identity"],
                existing.body.get("identity") if existing else None,
                self.resources,
                self.config.tenant_id,
            )
            properties["provisioningState"] = "Succeeded"
            # As the live service answers (recorded 2026-04-07): no location (a request's is ignored),
            # systemData, and no options when none were sent.
            stored = {
                "id": resource_id,
                "name": rid.name,
                "type": rid.type,
                "identity": identity,
                "systemData": self.resources.system_data(existing),
                "properties": properties,
            }
            shape_pipeline(stored, self.config.managed_identity_answer_shape)
            resource = self.resources.save(resource_id, rid.type, api_version, stored, existing)
            return PutResult(200, resource)  # the real service answers a pipeline PUT with 200 at once

    def delete(self, resource: Resource) -> None:
        return None


class PipelineRuns:
    """pipelineRuns: PUT validates, then starts the run (201 + Azure-AsyncOperation); an identical re-PUT
    (same request and forceUpdateTag) starts nothing."""

    def __init__(
        self,
        state: State,
        config: Config,
        clock: Clock,
        resources: ResourceManager,
        start: Callable[[str, int], None],
    ) -> None:
        self.state = state
        self.config = config
        self.clock = clock
        self.resources = resources
        self._start = start

    def preflight(self, rid: ids.ResourceId, api_version: str, body: dict[str, Any]) -> None:
        """The body alone (its pipeline may be deployed by the same template: not looked up here)."""
        check_pipeline_api_version(self.config, rid.type, api_version)
        validation.pipeline_run(rid.name, api_version, body, self.config.pipeline_api_versions)

    def put(self, rid: ids.ResourceId, resource_id: str, api_version: str, body: dict[str, Any]) -> PutResult:
        check_pipeline_api_version(self.config, rid.type, api_version)
        properties = validation.pipeline_run(rid.name, api_version, body, self.config.pipeline_api_versions)
        request = copy.deepcopy(properties["request"])
        pipeline = self.pipeline_of(rid, request["pipelineResourceId"])
        validation.run_matches_pipeline(pipeline.type, request)
        force_tag = properties.get("forceUpdateTag")
        with self.state.lock:
            existing = self.resources.find(resource_id)
            if existing is not None:
                old = existing.body["properties"]
                if old.get("request") == request and old.get("forceUpdateTag") == force_tag:
                    return PutResult(200, existing)  # identical properties: nothing starts
                if old.get("provisioningState") not in TERMINAL:
                    raise ApiError(
                        409,
                        "Conflict",
                        f"The pipeline run '{rid.name}' is still in progress; wait for it to finish before "
                        "updating it.",
                    )
            return self.create(rid, resource_id, api_version, request, force_tag, existing, trigger=None)

    def create(
        self,
        rid: ids.ResourceId,
        resource_id: str,
        api_version: str,
        request: dict[str, Any],
        force_tag: str | None,
        existing: Resource | None,
        trigger: dict[str, Any] | None,
        source: dict[str, Any] | None = None,
    ) -> PutResult:
        with self.state.lock:
            response: dict[str, Any] = {"status": "Running", "progress": {"percentage": "0"}}
            response["startTime"] = iso(self.clock.now())
            if trigger:
                response["trigger"] = trigger
            if source:
                response["source"] = source
            properties: dict[str, Any] = {"request": request}
            if force_tag is not None:
                properties["forceUpdateTag"] = force_tag
            properties["response"] = response
            properties["provisioningState"] = "Creating" if existing is None else "Updating"
            stored = {
                "id": resource_id,
                "name": rid.name,
                "type": rid.type,
                "systemData": self.resources.system_data(existing),
                "properties": properties,
            }
            resource = self.resources.save(resource_id, rid.type, api_version, stored, existing)
            generation = self.state.run_generations.get(ids.key(resource_id), 0) + 1
            self.state.run_generations[ids.key(resource_id)] = generation
            operation = self.resources.new_operation("resource", ids.key(resource_id))
        self._start(ids.key(resource_id), generation)
        return PutResult(200 if existing else 201, resource, operation)

    def pipeline_of(self, run: ids.ResourceId, pipeline_id: str) -> Resource:
        pipeline = self.resources.find(pipeline_id)
        parsed = ids.parse(pipeline_id)
        if (
            pipeline is None
            or parsed is None
            or not (parsed.is_type(EXPORT_PIPELINES) or parsed.is_type(IMPORT_PIPELINES))
        ):
            raise bad_request(
                f"The pipeline '{pipeline_id}' in 'request.pipelineResourceId' was not found: it must be the "
                "resource id of an existing export or import pipeline.",
                code="InvalidPipelineResourceId" if parsed else "InvalidResourceId",
                target="properties.request.pipelineResourceId",
            )
        run_registry, pipeline_registry = run.parent, parsed.parent
        if run_registry is None or pipeline_registry is None or run_registry.key != pipeline_registry.key:
            raise bad_request(
                f"The pipeline '{pipeline_id}' belongs to another registry than the run '{run.full_name}'.",
                target="properties.request.pipelineResourceId",
            )
        return pipeline

    def delete(self, resource: Resource) -> None:
        with self.state.lock:
            key = ids.key(resource.id)
            self.state.run_generations[key] = self.state.run_generations.get(key, 0) + 1
            self.state.changed.notify_all()

    def trigger_run(self, pipeline: Resource, blob_name: str, source: dict[str, Any]) -> Resource:
        """The run the source trigger starts for a blob: a generated name (hyphens allowed: the service's
        own runs skip the name rules of PUT), `trigger.sourceTrigger.timestamp`, and the blob named as
        `config.source_trigger_run_shape` says. `source` is the pipeline's storage as a run echoes it."""
        parsed = ids.parse(pipeline.id)
        assert parsed is not None
        assert parsed.parent is not None
        name = self._trigger_run_name(parsed.name)
        rid = parsed.parent.child("pipelineRuns", name)
        shape = self.config.source_trigger_run_shape
        request: dict[str, Any] = {"pipelineResourceId": pipeline.id}
        echo = dict(source)
        if shape == "request-name":
            request["source"] = {"type": "AzureStorageBlob", "name": blob_name}
        if shape == "spec":
            echo["type"] = "AzureStorageBlobContainer"
        else:
            echo["type"] = "AzureStorageBlob"
            echo["uri"] = f"{echo['uri'].rstrip('/')}/{blob_name}"
        with self.state.lock:
            self.state.trigger_blobs[rid.key] = blob_name
        trigger = {"sourceTrigger": {"timestamp": iso(self.clock.now())}}
        return self.create(
            rid, rid.id, pipeline.api_version, request, None, None, trigger, source=echo
        ).resource

    def _trigger_run_name(self, pipeline_name: str) -> str:
        style = self.config.source_trigger_run_names
        if style == "pipeline-timestamp":
            return f"{pipeline_name}-{self.clock.now():%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:4]}"
        if style == "alphanumeric":
            return "sourcetrigger" + uuid.uuid4().hex[:24]
        return str(uuid.uuid4())
