"""A small typed client of the emulator's admin API (stdlib only), for tests and the demo."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote


class AdminError(RuntimeError):
    def __init__(self, status: int, body: Any) -> None:
        super().__init__(f"admin API answered {status}: {body}")
        self.status = status
        self.body = body


class AdminClient:
    def __init__(self, endpoint: str, ca_file: str | Path, timeout: float = 30.0) -> None:
        self.endpoint = endpoint.rstrip("/")
        self._context = ssl.create_default_context(cafile=str(ca_file))
        self.timeout = timeout

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode("utf-8")
        request = urllib.request.Request(  # noqa: S310 - https to the emulator only
            f"{self.endpoint}/_emulator/{path}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json"} if data is not None else {},
        )
        try:
            with urllib.request.urlopen(request, context=self._context, timeout=self.timeout) as response:  # noqa: S310
                payload = response.read()
        except urllib.error.HTTPError as exc:
            text = exc.read().decode("utf-8", "replace")
            try:
                detail: Any = json.loads(text)
            except json.JSONDecodeError:
                detail = text
            raise AdminError(exc.code, detail) from None
        return json.loads(payload) if payload else None

    # --- state

    def health(self) -> dict[str, Any]:
        return self._call("GET", "health")

    def settings(self) -> dict[str, str]:
        return self._call("GET", "settings")

    def reset(self) -> None:
        self._call("POST", "reset", {})

    def config(self) -> dict[str, Any]:
        return self._call("GET", "config")

    def configure(self, **values: Any) -> dict[str, Any]:
        """e.g. configure(run_seconds=0.5, deployment_limit=10, deployment_grooming=False)."""
        return self._call("POST", "config", values)

    # --- seeding

    def create_registry(
        self,
        name: str,
        repositories: dict[str, dict[str, str | None] | list[str]] | None = None,
        *,
        resource_group: str | None = None,
        subscription_id: str | None = None,
        location: str | None = None,
        export_policy: str | None = None,
        public_network_access: str | None = None,
    ) -> dict[str, Any]:
        """Create a registry with content {repo: {tag: digest or None}} (None derives a digest);
        export_policy "disabled" needs public_network_access "Disabled"."""
        body: dict[str, Any] = {"name": name, "repositories": repositories or {}}
        body.update(_scope(resource_group, subscription_id))
        if location:
            body["location"] = location
        if export_policy:
            body["exportPolicy"] = export_policy
        if public_network_access:
            body["publicNetworkAccess"] = public_network_access
        return self._call("POST", "registries", body)

    def set_registry_policies(
        self, registry: str, *, export_policy: str | None = None, public_network_access: str | None = None
    ) -> dict[str, Any]:
        """Update the registry's exportPolicy ("enabled" / "disabled") and publicNetworkAccess as a PUT
        through ARM would (refused while export pipelines exist, or disabling exports with public access
        on: AdminError 400 with the ARM error). Returns the registry's resource body."""
        body: dict[str, Any] = {}
        if export_policy:
            body["exportPolicy"] = export_policy
        if public_network_access:
            body["publicNetworkAccess"] = public_network_access
        return self._call("POST", f"registries/{quote(registry)}/policies", body)

    def add_repositories(
        self, registry: str, repositories: dict[str, dict[str, str | None] | list[str]]
    ) -> dict[str, Any]:
        return self._call(
            "POST", f"registries/{quote(registry)}/repositories", {"repositories": repositories}
        )

    def add_image(
        self,
        registry: str,
        repository: str,
        tag: str,
        layer_sizes: list[int] | None = None,
        *,
        layers: list[dict[str, Any]] | None = None,
        media_type: str = "oci",
        platform: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """Push an image whose manifest has layers of these sizes (`layer_sizes`), or these layer specs
        (`layers=[{"size", "mediaType"?, "urls"?}]`: foreign / non-distributable layers carry urls; a size
        over 8 GB is declared, no bytes), as an OCI (`media_type="oci"`) or Docker v2 (`"docker"`) manifest.
        Returns {"repository", "tag", "digest", "mediaType", "size"}."""
        body: dict[str, Any] = {"repository": repository, "tag": tag, "mediaType": media_type}
        if layers is not None:
            body["layers"] = layers
        else:
            body["layerSizes"] = layer_sizes
        if platform:
            body["platform"] = platform
        return self._call("POST", f"registries/{quote(registry)}/images", body)

    def add_index(
        self,
        registry: str,
        repository: str,
        tag: str,
        platforms: list[dict[str, Any]],
        *,
        media_type: str = "oci",
    ) -> dict[str, Any]:
        """Push a multi-platform index: `platforms=[{"os", "architecture", "layerSizes" | "layers"}]` become
        untagged image manifests, the index gets the tag. Returns {"digest", "manifests": [{"digest", "os",
        "architecture", "size"}]}."""
        body = {"repository": repository, "tag": tag, "platforms": platforms, "mediaType": media_type}
        return self._call("POST", f"registries/{quote(registry)}/index", body)

    def attach_referrer(
        self,
        registry: str,
        repository: str,
        subject: str,
        artifact_type: str,
        *,
        annotations: dict[str, str] | None = None,
        payload: str | None = None,
        tag: str | None = None,
    ) -> dict[str, Any]:
        """Push a referrer of `subject` (a digest or a tag of `repository`): a signature
        (`application/vnd.cncf.notary.signature`), an SBOM, an attestation, or a referrer of a referrer.
        When the registry lacks the referrers API the fallback tag `sha256-<hex>` is updated, as a client
        would. Returns {"digest", "subject", "artifactType", "mediaType", "size"}."""
        body: dict[str, Any] = {"repository": repository, "subject": subject, "artifactType": artifact_type}
        if annotations:
            body["annotations"] = annotations
        if payload is not None:
            body["payload"] = payload
        if tag:
            body["tag"] = tag
        return self._call("POST", f"registries/{quote(registry)}/referrers", body)

    def referrers(self, registry: str) -> list[dict[str, Any]]:
        """Every referrer of the registry: {repository, digest, subject, artifactType, annotations}."""
        return list(self._call("GET", f"registries/{quote(registry)}/referrers")["referrers"])

    def set_referrers_api(
        self,
        registry: str,
        enabled: bool,
        *,
        write_fallback_tags: bool = True,
        page_size: int | Literal["unchanged"] | None = "unchanged",
    ) -> dict[str, Any]:
        """enabled=False: the registry lacks the referrers API (404, clients fall back to `sha256-<hex>` tags,
        written now for existing referrers unless write_fallback_tags=False). page_size: referrers per page
        (None: one page)."""
        body: dict[str, Any] = {"enabled": enabled, "writeFallbackTags": write_fallback_tags}
        if page_size != "unchanged":
            body["pageSize"] = page_size
        return self._call("POST", f"registries/{quote(registry)}/referrers-api", body)

    def throttle_registry(
        self,
        registry: str,
        *,
        path: str = ".*",
        method: str = "*",
        seconds: float = 5,
        count: int | None = None,
    ) -> dict[str, Any]:
        """The registry's data-plane requests matching method + path regex answer 429 TOOMANYREQUESTS for
        `seconds` from the first one (at most `count` of them), each with Retry-After counting down."""
        body: dict[str, Any] = {"path": path, "method": method, "seconds": seconds}
        if count is not None:
            body["count"] = count
        return self._call("POST", f"registries/{quote(registry)}/throttle", body)

    def registry_throttles(self, registry: str) -> dict[str, Any]:
        """{"limits": {...}, "rules": [...], "throttled": number of 429s answered}."""
        return self._call("GET", f"registries/{quote(registry)}/throttle")

    def clear_registry_throttles(self, registry: str) -> dict[str, Any]:
        return self._call("DELETE", f"registries/{quote(registry)}/throttle")

    def set_referrer_limits(
        self,
        registry: str,
        *,
        per_registry: int | Literal["unchanged"] | None = "unchanged",
        per_identity: int | Literal["unchanged"] | None = "unchanged",
        window_seconds: float | None = None,
    ) -> dict[str, Any]:
        """ListReferrers limits (default: ACR's published 2,000 per registry and 1,000 per identity a
        minute); None turns one off."""
        body: dict[str, Any] = {}
        if per_registry != "unchanged":
            body["listReferrersPerRegistry"] = per_registry
        if per_identity != "unchanged":
            body["listReferrersPerIdentity"] = per_identity
        if window_seconds is not None:
            body["windowSeconds"] = window_seconds
        return self._call("POST", f"registries/{quote(registry)}/limits", body)

    def delete_manifest(self, registry: str, repository: str, reference: str) -> dict[str, Any]:
        """Delete a manifest (by digest or tag) and its tags, as a client's DELETE does (ImageDeleted)."""
        key = "digest" if reference.startswith("sha256:") else "tag"
        body = {"repository": repository, key: reference}
        return self._call("POST", f"registries/{quote(registry)}/delete", body)

    def registry_content(self, registry: str) -> dict[str, Any]:
        """{repo: {"tags": {tag: digest}, "manifests": [digest, ...]}}."""
        return self._call("GET", f"registries/{quote(registry)}")["content"]

    # --- the registry data plane

    def registry_endpoint(self, registry: str) -> str:
        """`https://127.0.0.1:{port}`: the registry's data plane (ContainerRegistryClient's endpoint)."""
        return str(self._call("GET", f"registries/{quote(registry)}")["endpoint"])

    def registry_manifests(self, registry: str) -> list[dict[str, Any]]:
        """Every manifest: {repository, digest, tags, mediaType, imageSize, createdTime, lastUpdateTime,
        document (False for a digest given through the admin API without a document)}."""
        return list(self._call("GET", f"registries/{quote(registry)}/manifests")["manifests"])

    def retag(self, registry: str, repository: str, tag: str, digest: str | None = None) -> dict[str, Any]:
        """Point repository:tag at a new image (a new digest), or at `digest` (a manifest the repository
        has). Returns {repository, tag, digest, previousDigest}."""
        body: dict[str, Any] = {"repository": repository, "tag": tag}
        if digest:
            body["digest"] = digest
        return self._call("POST", f"registries/{quote(registry)}/retag", body)

    def set_pull_access(
        self, registry: str, allowed: bool, *, principal: str = "*", status: int = 401
    ) -> dict[str, Any]:
        """allowed=False: the principal ("*" = every caller; else a JWT's oid/appid) lacks AcrPull on the
        registry, its data-plane calls answer `status` (401 UNAUTHORIZED or 403 DENIED)."""
        body = {"principal": principal, "acrPull": allowed, "status": status}
        return self._call("POST", f"registries/{quote(registry)}/access", body)

    def fail_imports_of(
        self, registry: str, artifacts: list[str], message: str | None = None
    ) -> dict[str, Any]:
        """Imports into `registry` cannot bring these artifacts in (skipped with ContinueOnErrors, else
        the run fails), until clear_import_failures."""
        body: dict[str, Any] = {"artifacts": artifacts}
        if message:
            body["message"] = message
        return self._call("POST", f"registries/{quote(registry)}/import-failures", body)

    def clear_import_failures(self, registry: str) -> dict[str, Any]:
        return self._call("DELETE", f"registries/{quote(registry)}/import-failures")

    def create_vault(
        self,
        name: str,
        secrets: dict[str, str] | None = None,
        *,
        rbac: bool = False,
        resource_group: str | None = None,
        subscription_id: str | None = None,
    ) -> dict[str, Any]:
        """Create a Key Vault (its resource body; properties.vaultUri is its data plane)."""
        body: dict[str, Any] = {"name": name, "secrets": secrets or {}, "enableRbacAuthorization": rbac}
        body.update(_scope(resource_group, subscription_id))
        return self._call("POST", "vaults", body)

    def set_secret(self, vault: str, name: str, value: str, *, expires: str | None = None) -> dict[str, str]:
        """Returns {"id": versioned secret id, "secretUri": the keyVaultUri to give a pipeline}."""
        body: dict[str, Any] = {"value": value}
        if expires:
            body["expires"] = expires
        return self._call("PUT", f"vaults/{quote(vault)}/secrets/{quote(name)}", body)

    def add_access_policy(
        self,
        vault: str,
        object_id: str,
        *,
        secrets: list[str] | None = None,
        keys: list[str] | None = None,
    ) -> dict[str, Any]:
        """An access policy for `object_id` (through `accessPolicies/add`, as the templates add one):
        secrets permissions (get, list, set, delete) and keys permissions (get, list, create, sign, verify,
        delete). Returns the vault's resource body."""
        permissions = {"secrets": secrets or [], "keys": keys or []}
        return self._call(
            "POST",
            f"vaults/{quote(vault)}/access-policies",
            {"objectId": object_id, "permissions": permissions},
        )

    def create_identity(
        self, name: str, *, resource_group: str | None = None, subscription_id: str | None = None
    ) -> dict[str, Any]:
        """Create a user-assigned identity (its resource body: id, properties.principalId/clientId)."""
        return self._call("POST", "identities", {"name": name, **_scope(resource_group, subscription_id)})

    # --- storage accounts, role assignments

    def register_storage_account(
        self,
        name: str,
        *,
        key: str | None = None,
        resource_group: str | None = None,
        subscription_id: str | None = None,
        public_network_access: str | None = None,
        default_action: str = "Allow",
        bypass: str = "AzureServices",
        private_endpoints: list[str] | None = None,
    ) -> dict[str, Any]:
        """The account's ARM resource (the scope of role assignments on it, its network rules); `key`: its
        Azurite account key, which the emulator needs to reach an account other than the connection
        string's. A network-restricted account (default_action="Deny", public_network_access="Disabled",
        private endpoints only) answers a pipeline 403 AuthorizationFailure: ACR is not a trusted service."""
        body: dict[str, Any] = {
            "name": name,
            **_scope(resource_group, subscription_id),
            "networkDefaultAction": default_action,
            "bypass": bypass,
        }
        if key:
            body["key"] = key
        if public_network_access:
            body["publicNetworkAccess"] = public_network_access
        if private_endpoints:
            body["privateEndpoints"] = private_endpoints
        return self._call("POST", "storage-accounts", body)

    def assign_role(
        self,
        principal_id: str,
        role: str = "Storage Blob Data Contributor",
        *,
        scope: str | None = None,
        storage_account: str | None = None,
    ) -> dict[str, Any]:
        """A role assignment (as ARM stores it) for a principal at `scope` (default: the subscription) or on
        `storage_account`; `role` is a built-in role's name or id, or a roleDefinitionId."""
        body: dict[str, Any] = {"principalId": principal_id, "role": role}
        if scope:
            body["scope"] = scope
        if storage_account:
            body["storageAccount"] = storage_account
        return self._call("POST", "role-assignments", body)

    def restrict_arm_access(self, principal: str | None = None, *, restricted: bool = True) -> dict[str, Any]:
        """principal (default: the app's identity, `EMULATOR_APP_PRINCIPAL_ID`; "*": every caller) holds only
        its role assignments: ARM answers what they do not allow with 403 AuthorizationFailed, a deployment
        writing such a resource fails pre-flight, and the permissions API lists just those roles."""
        body: dict[str, Any] = {"restricted": restricted}
        if principal:
            body["principal"] = principal
        return self._call("POST", "arm-access", body)

    def arm_access(self) -> dict[str, Any]:
        """{"restricted": [principals], "appPrincipalId"}."""
        return self._call("GET", "arm-access")

    # --- Event Grid events of the registries

    def subscribe_events(
        self,
        registry: str,
        endpoint: str,
        *,
        name: str | None = None,
        event_types: list[str] | None = None,
        max_events_per_batch: int = 1,
        schema: str = "EventGridSchema",
        subject_begins_with: str | None = None,
        subject_ends_with: str | None = None,
        max_delivery_attempts: int = 30,
        validate: bool = False,
    ) -> dict[str, Any]:
        """A WebHook subscription to the registry's events (ImagePushed, ImageDeleted), as an Event Grid
        system topic subscription delivers them: batches of up to max_events_per_batch, POSTed as a JSON array
        (EventGridSchema, or CloudEventSchemaV1_0). validate=True runs Event Grid's handshake first."""
        body: dict[str, Any] = {
            "registry": registry,
            "endpoint": endpoint,
            "maxEventsPerBatch": max_events_per_batch,
            "schema": schema,
            "maxDeliveryAttempts": max_delivery_attempts,
            "validate": validate,
        }
        if name:
            body["name"] = name
        if event_types is not None:
            body["includedEventTypes"] = event_types
        if subject_begins_with:
            body["subjectBeginsWith"] = subject_begins_with
        if subject_ends_with:
            body["subjectEndsWith"] = subject_ends_with
        return self._call("POST", "events/subscriptions", body)

    def unsubscribe_events(self, name: str) -> dict[str, Any]:
        return self._call("DELETE", f"events/subscriptions/{quote(name)}")

    def event_delivery(self, **knobs: Any) -> dict[str, Any]:
        """How delivery misbehaves: duplicates=1 (each batch twice), reorder="reverse" | "shuffle" | "none",
        delaySeconds=2.0, hold=True (until flush_events), batchSize=10 (overrides maxEventsPerBatch),
        retryDelays=[0.1, 0.5] (after a failed POST)."""
        return self._call("POST", "events/delivery", knobs)

    def flush_events(self) -> int:
        """Deliver what is held or delayed now; returns how many events were waiting."""
        return int(self._call("POST", "events/flush", {})["released"])

    def events(self) -> dict[str, Any]:
        """{"subscriptions", "knobs", "published": [events], "deliveries": [{subscription, eventIds,
        subjects, attempt, status, error, time}], "deadLetters": [{subscription, event, reason}]}."""
        return self._call("GET", "events")

    # --- clock

    def clock(self) -> dict[str, Any]:
        return self._call("GET", "clock")

    def advance_clock(self, *, days: float = 0, hours: float = 0, seconds: float = 0) -> dict[str, Any]:
        return self._call("POST", "clock", {"days": days, "hours": hours, "seconds": seconds})

    # --- faults

    def inject_fault(
        self,
        *,
        status: int | None = None,
        path: str = ".*",
        method: str = "*",
        count: int = 1,
        retry_after: str | int | None = None,
        delay_seconds: float = 0,
        code: str | None = None,
        message: str | None = None,
    ) -> dict[str, Any]:
        """The next `count` ARM requests matching method + path regex answer `status` (after
        `delay_seconds`)."""
        body: dict[str, Any] = {"method": method, "path": path, "count": count, "delaySeconds": delay_seconds}
        if status is not None:
            body["status"] = status
        if retry_after is not None:
            body["retryAfter"] = str(retry_after)
        if code:
            body["code"] = code
        if message:
            body["message"] = message
        return self._call("POST", "faults", body)

    def fail_next_run(self, message: str, *, pipeline: str | None = None, count: int = 1) -> dict[str, Any]:
        body: dict[str, Any] = {"message": message, "count": count}
        if pipeline:
            body["pipeline"] = pipeline
        return self._call("POST", "faults/runs", body)

    def faults(self) -> dict[str, Any]:
        return self._call("GET", "faults")

    def clear_faults(self) -> None:
        self._call("DELETE", "faults")

    # --- request log, trigger

    def requests(self, since: int = 0) -> list[dict[str, Any]]:
        """ARM requests served: {"index", "time", "method", "path", "status"} (admin calls not logged)."""
        return self._call("GET", f"requests?since={since}")["requests"]

    def clear_requests(self) -> None:
        self._call("DELETE", "requests")

    def scan_source_trigger(self) -> None:
        """Run one source-trigger scan now (it also runs on its own every trigger_interval)."""
        self._call("POST", "trigger", {})


def _scope(resource_group: str | None, subscription_id: str | None) -> dict[str, str]:
    scope: dict[str, str] = {}
    if resource_group:
        scope["resourceGroup"] = resource_group
    if subscription_id:
        scope["subscriptionId"] = subscription_id
    return scope
