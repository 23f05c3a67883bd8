"""Request routing of the ARM endpoint: authentication, injected faults, the request log, then resource
groups, deployments, long-running operation statuses and generic resources by id."""

from __future__ import annotations

import copy
import re
import threading
from collections.abc import Callable
from typing import Any, Protocol
from urllib.parse import urlencode

from emulator import cloud, ids, jsonc, resource_types
from emulator.acr import (
    PIPELINE_RUNS,
    TERMINAL,
    is_pipeline_type,
    supported_versions_header,
)
from emulator.arm_errors import ApiError, bad_request
from emulator.arm_template import TemplateError
from emulator.authorization import RoleAssignments
from emulator.clock import Clock, iso
from emulator.deployments import TYPE as DEPLOYMENTS
from emulator.deployments import Deployments, parse_filter
from emulator.faults import Faults
from emulator.identities import TokenEndpoint
from emulator.permissions import ArmAccess
from emulator.resources import CALLER, ResourceManager
from emulator.server import Request, Response
from emulator.store import Config, RequestRecord, State
from emulator.tokens import Caller

ADMIN_PREFIX = "/_emulator"
CORRELATION = "x-ms-correlation-request-id"  # the server sets it on every request (the client's, else new)


class Dispatcher(Protocol):
    def dispatch(self, request: Request) -> Response: ...


class ArmHost(Protocol):
    """What the ARM routes use of the emulator (runtime.Emulator is one; routes never import it)."""

    state: State
    config: Config
    clock: Clock
    resources: ResourceManager
    deployments: Deployments
    faults: Faults
    tokens: TokenEndpoint
    authorization: RoleAssignments
    access: ArmAccess
    stop_event: threading.Event
    admin_routes: Dispatcher

    @property
    def arm_endpoint(self) -> str: ...


class ArmRoutes:
    def __init__(self, emulator: ArmHost) -> None:
        self.emulator = emulator
        self.state = emulator.state
        self.config = emulator.config
        self.resources = emulator.resources
        self.deployments = emulator.deployments

    @property
    def base(self) -> str:
        return self.emulator.arm_endpoint

    # --- entry

    def dispatch(self, request: Request) -> Response:
        if request.path == ADMIN_PREFIX or request.path.startswith(ADMIN_PREFIX + "/"):
            return self.emulator.admin_routes.dispatch(request)
        try:
            public = self._public(request)
        except ApiError as exc:
            return Response.error(exc)
        if public is not None:
            return public  # not an ARM request: not in the request log
        try:
            response = self._arm(request)
        except ApiError as exc:
            response = Response.error(exc)
        with self.state.lock:
            self.state.requests.append(
                RequestRecord(iso(self.emulator.clock.now()), request.method, request.path, response.status)
            )
        return response

    def _public(self, request: Request) -> Response | None:
        """What answers without a bearer token: the managed identity endpoint, ARM's metadata (read by
        `az cloud register`) and the public key of the tokens."""
        if request.path == TokenEndpoint.PATH:
            return Response(200, self.emulator.tokens.token(request.query, request.headers))
        if request.method == "GET" and request.path.lower() == cloud.METADATA_PATH:
            return Response(200, cloud.metadata_endpoints(self.base))
        if request.method == "GET" and request.path.lower() == cloud.TOKEN_KEYS_PATH:
            return Response(200, self.emulator.tokens.signer.jwks())
        return None

    def _arm(self, request: Request) -> Response:
        authorization = request.headers.get("authorization", "")
        if not authorization.lower().startswith("bearer ") or not authorization[7:].strip():
            raise ApiError(
                401,
                "AuthenticationFailed",
                "Authentication failed. The 'Authorization' header is missing."
                if not authorization
                else "Authentication failed. The 'Authorization' header is not a Bearer token.",
                headers={
                    "WWW-Authenticate": 'Bearer authorization_uri="https://login.microsoftonline.com/common"'
                },
            )
        fault = self.emulator.faults.match(request.method, request.path)
        if fault is not None:
            if fault.delay > 0 and self.emulator.stop_event.wait(fault.delay):
                raise ApiError(503, "ServiceUnavailable", "The emulator is stopping.")
            if fault.status is not None:
                raise fault.error(request.method, request.path)
        if "api-version" not in request.query:
            raise bad_request(
                "The api-version query parameter (?api-version=) is required for all requests.",
                code="MissingApiVersionParameter",
            )
        caller = CALLER.set(Caller.of_token(authorization[7:].strip()))
        try:
            self.emulator.access.authorize(request)  # the caller; a restricted one's missing role is a 403
            return self._route(request)
        finally:
            CALLER.reset(caller)

    def _route(self, request: Request) -> Response:
        segments = request.path.strip("/").split("/")
        lowered = [s.lower() for s in segments]
        if request.method == "GET" and lowered == ["tenants"]:
            return Response(200, cloud.tenants(self.config))
        if request.method == "GET" and lowered == ["subscriptions"]:
            return Response(200, cloud.subscriptions(self.config))
        if len(segments) < 2 or lowered[0] != "subscriptions":
            raise ApiError(404, "NotFound", f"The emulator serves no ARM path '{request.path}'.")
        subscription = segments[1]
        if len(segments) == 2 and request.method == "GET":
            return self._subscription(subscription)
        if lowered[-1:] == ["resources"] and request.method == "GET" and len(segments) in (3, 5):
            return self._resource_list(request, "/" + "/".join(segments[:-1]))
        if len(segments) == 4 and lowered[2] == "providers" and request.method == "GET":
            return Response(
                200,
                resource_types.provider(
                    subscription, segments[3], self.config.pipeline_api_versions, self.config.location
                ),
            )
        if len(segments) == 4 and lowered[2] == "resourcegroups":
            return self._resource_group(request, subscription, segments[3])
        deployments_at = 6
        if (
            len(segments) >= deployments_at
            and lowered[2] == "resourcegroups"
            and lowered[4:6] == ["providers", "microsoft.resources"]
            and len(segments) >= 7
            and lowered[6] == "deployments"
        ):
            return self._deployments(request, subscription, segments[3], segments[7:])
        if len(segments) >= 2 and lowered[-2] == "operationstatuses":
            return self._resource_status(request, segments[-1])
        if (
            lowered[-3:] == ["providers", "microsoft.authorization", "permissions"]
            and request.method == "GET"
        ):
            scope = "/" + "/".join(segments[:-3])
            access = self.emulator.access
            return Response(
                200, {"value": access.permissions(access.caller(request), scope), "nextLink": None}
            )
        if lowered[-3:] == ["providers", "microsoft.authorization", "roleassignments"]:
            if request.method != "GET":
                raise ApiError(405, "MethodNotAllowed", f"{request.method} on a collection is not supported.")
            scope = "/" + "/".join(segments[:-3])
            return self._page(
                request, self.emulator.authorization.listing(scope, request.query.get("$filter"))
            )
        return self._resources(request)

    def _resource_list(self, request: Request, scope: str) -> Response:
        """`GET {subscription or group}/resources` (what `az acr` looks registries up with): the top-level
        resources at the scope, with `$filter` on `resourceType eq '...'` and `name eq '...'`."""
        wanted = _resource_filter(request.query.get("$filter"))
        prefix = ids.key(scope) + "/"
        with self.state.lock:
            found = sorted(self.state.resources.values(), key=lambda r: r.seq)
        listed = []
        for resource in found:
            rid = ids.parse(resource.id)
            if rid is None or len(rid.types) != 1 or not ids.key(rid.scope + "/").startswith(prefix):
                continue
            if ids.key(rid.scope).count("/") > 4:  # an extension resource (a role assignment on something)
                continue
            if all(str(_generic_field(resource.body, k)).lower() == v.lower() for k, v in wanted.items()):
                listed.append(resource)
        return self._page(request, listed, lambda r: _generic(self._snapshot(r.body)))

    def _subscription(self, subscription: str) -> Response:
        if subscription.lower() != self.config.subscription_id.lower():
            raise ApiError(
                404, "SubscriptionNotFound", f"The subscription '{subscription}' could not be found."
            )
        return Response(200, cloud.subscription(self.config))

    # --- resource groups

    def _resource_group(self, request: Request, subscription: str, name: str) -> Response:
        if request.method == "PUT":
            body = request.json() or {}
            group = self.state.resource_group(
                subscription, name, body.get("location") or self.config.location
            )
        elif request.method in ("GET", "HEAD"):
            group = self.state.resource_group(subscription, name, self.config.location)
        else:
            raise ApiError(405, "MethodNotAllowed", f"{request.method} on a resource group is not emulated.")
        if request.method == "HEAD":
            return Response(204)
        return Response(
            200,
            {
                "id": ids.group_id(subscription, group["name"]),
                "name": group["name"],
                "type": "Microsoft.Resources/resourceGroups",
                "location": group["location"],
                "properties": {"provisioningState": "Succeeded"},
            },
        )

    # --- deployments

    def _deployment_url(self, subscription: str, group: str, name: str, tail: str, api_version: str) -> str:
        return (
            f"{self.base}/subscriptions/{subscription}/resourcegroups/{group}/providers/{DEPLOYMENTS}/{name}/{tail}"
            f"?{urlencode({'api-version': api_version})}"
        )

    def _deployments(self, request: Request, subscription: str, group: str, rest: list[str]) -> Response:
        api_version = request.query["api-version"]
        if not rest:
            if request.method != "GET":
                raise ApiError(405, "MethodNotAllowed", f"{request.method} on the deployments collection.")
            return self._list_deployments(request, subscription, group)
        name = rest[0]
        tail = [s.lower() for s in rest[1:]]
        if tail[:1] == ["operationstatuses"] and len(tail) == 2:
            operation = self.state.operations.get(rest[2])
            if operation is None or operation.kind != "deployment":
                raise ApiError(404, "OperationNotFound", f"The operation '{rest[2]}' was not found.")
            status = self.deployments.status(operation)
            return Response(200, status, self._retry(status["status"] in ("Accepted", "Running")))
        if tail[:1] == ["operationresults"] and len(tail) == 2:
            return Response(204)
        if tail == ["cancel"] and request.method == "POST":
            self.deployments.cancel(subscription, group, name)
            return Response(204)
        if tail == ["validate"] and request.method == "POST":
            return Response(
                200,
                self.deployments.validate_only(
                    subscription, group, name, _deployment_body(request), request.headers.get(CORRELATION)
                ),
            )
        if tail:
            raise ApiError(404, "NotFound", f"The emulator serves no deployment path '{request.path}'.")
        if request.method == "PUT":
            status, deployment, operation = self.deployments.put(
                subscription, group, name, _deployment_body(request), request.headers.get(CORRELATION)
            )
            return Response(
                status,
                self.deployments.view(deployment),
                {
                    "Azure-AsyncOperation": self._deployment_url(
                        subscription, group, name, f"operationStatuses/{operation.id}", api_version
                    ),
                    "Retry-After": str(self.config.retry_after),
                },
            )
        if request.method in ("GET", "HEAD"):
            deployment = self.deployments.find(subscription, group, name)
            if request.method == "HEAD":
                return Response(204 if deployment else 404)
            if deployment is None:
                raise ApiError(404, "DeploymentNotFound", f"Deployment '{name}' could not be found.")
            return Response(200, self.deployments.view(deployment))
        if request.method == "DELETE":
            if not self.deployments.delete(subscription, group, name):
                return Response(204)
            operation = self.resources.new_operation("deleted", name)
            return Response(
                202,
                None,
                {
                    "Location": self._deployment_url(
                        subscription, group, name, f"operationResults/{operation.id}", api_version
                    ),
                    "Retry-After": str(self.config.retry_after),
                },
            )
        raise ApiError(405, "MethodNotAllowed", f"{request.method} on a deployment is not supported.")

    def _page(
        self, request: Request, items: list[Any], render: Callable[[Any], Any] | None = None
    ) -> Response:
        """One page of `items`, each `render`ed (only the page's: a page costs its size, not the list's)."""
        skip = int(request.query.get("$skiptoken") or 0)
        top = request.query.get("$top")
        total = len(items) if top is None else min(len(items), int(top))
        end = min(total, skip + self.config.page_size)
        page = [render(item) for item in items[skip:end]] if render else items[skip:end]
        body: dict[str, Any] = {"value": page}
        if end < total:
            query = {k: v for k, v in request.query.items() if k != "$skiptoken"}
            query["$skiptoken"] = str(end)
            body["nextLink"] = f"{self.base}{request.path}?{urlencode(query)}"
        return Response(200, body)

    def _list_deployments(self, request: Request, subscription: str, group: str) -> Response:
        found = self.deployments.listing(subscription, group, parse_filter(request.query.get("$filter")))
        return self._page(request, [self.deployments.view(d) for d in found])

    # --- generic resources

    def _resource_status(self, request: Request, operation_id: str) -> Response:
        operation = self.state.operations.get(operation_id)
        if operation is None or operation.kind != "resource":
            raise ApiError(404, "OperationNotFound", f"The operation '{operation_id}' was not found.")
        with self.state.lock:
            resource = self.state.resources.get(operation.target)
            if resource is None:
                return Response(200, {"id": request.path, "name": operation_id, "status": "Canceled"})
            properties = resource.body.get("properties") or {}
            state = properties.get("provisioningState", "Succeeded")
            body: dict[str, Any] = {
                "id": request.path,
                "name": operation_id,
                "status": state if state in TERMINAL else "InProgress",
                "startTime": (properties.get("response") or {}).get("startTime"),
            }
            finish = (properties.get("response") or {}).get("finishTime")
            if state in TERMINAL and finish:
                body["endTime"] = finish
            if state == "Failed":
                body["error"] = {
                    "code": "PipelineRunFailed",
                    "message": (properties.get("response") or {}).get(
                        "pipelineRunErrorMessage", "The run failed."
                    ),
                }
        return Response(200, body, self._retry(body["status"] == "InProgress"))

    def _retry(self, pending: bool) -> dict[str, str]:
        return {"Retry-After": str(self.config.retry_after)} if pending else {}

    def _resources(self, request: Request) -> Response:
        """Generic resources: only the types of resource_types.TYPES at their API versions (anything else
        is refused as ARM refuses it); the pipeline types answer, like the live service, with the header
        api-supported-versions."""
        target, _, action = request.path.rpartition("/")
        if request.method == "POST" and action.lower() == "listkeys" and ids.parse(target) is not None:
            return self._list_keys(request, target)
        resource_type = _type_of(request.path)
        if resource_type is None:
            raise ApiError(404, "NotFound", f"The emulator serves no ARM path '{request.path}'.")
        is_pipeline = is_pipeline_type(resource_type)
        try:
            resource_types.check(
                resource_type,
                request.query["api-version"],
                self.config.pipeline_api_versions,
                self.config.location,
            )
        except ApiError as exc:
            if is_pipeline:
                exc.headers = {**supported_versions_header(self.config), **exc.headers}
            raise
        if not is_pipeline:
            return self._by_id(request)
        supported = supported_versions_header(self.config)
        try:
            response = self._by_id(request)
        except ApiError as exc:
            exc.headers = {**supported, **exc.headers}
            raise
        response.headers = {**supported, **response.headers}
        return response

    def _list_keys(self, request: Request, resource_id: str) -> Response:
        """POST {id}/listKeys (`az functionapp keys list` reads a site's host keys so)."""
        try:
            return Response(200, self.resources.list_keys(resource_id, request.query["api-version"]))
        except TemplateError as exc:
            status = 404 if exc.code == "ResourceNotFound" else 400
            raise ApiError(status, exc.code, exc.message) from None

    def _by_id(self, request: Request) -> Response:
        api_version = request.query["api-version"]
        rid = ids.parse(request.path)
        if rid is None:
            return self._list(request)
        if request.method in ("GET", "HEAD"):
            resource = self.resources.get(request.path)
            if request.method == "HEAD":
                return Response(204)
            return Response(200, self._snapshot(resource.body))
        if request.method == "PUT":
            result = self.resources.put(request.path, api_version, request.json() or {})
            headers: dict[str, str] = {}
            if result.operation is not None:
                headers["Azure-AsyncOperation"] = (
                    f"{self.base}{result.resource.id}/operationStatuses/{result.operation.id}?"
                    f"{urlencode({'api-version': api_version})}"
                )
                headers["Retry-After"] = str(self.config.retry_after)
            return Response(result.status, self._snapshot(result.resource.body), headers)
        if request.method == "DELETE":
            return Response(200 if self.resources.delete(request.path) else 204)
        raise ApiError(405, "MethodNotAllowed", f"{request.method} on '{request.path}' is not supported.")

    def _list(self, request: Request) -> Response:
        """GET of a collection: `{parent id}/{child type}` or `.../providers/{namespace}/{type}`."""
        if request.method != "GET":
            raise ApiError(405, "MethodNotAllowed", f"{request.method} on a collection is not supported.")
        parent_path, _, child = request.path.rpartition("/")
        parent = ids.parse(parent_path)
        if parent is not None:
            self.resources.get(parent_path)
            found = self.resources.children(parent_path, f"{parent.type}/{child}")
        else:
            segments = parent_path.strip("/").split("/")
            if len(segments) < 2 or segments[-2].lower() != "providers":
                raise ApiError(404, "NotFound", f"The emulator serves no ARM path '{request.path}'.")
            scope = ids.key("/" + "/".join(segments[:-2])) + "/"
            found = [
                r
                for r in self.resources.by_type(f"{segments[-1]}/{child}")
                if ids.key(r.id).startswith(scope)
            ]
        if found and found[0].type.lower() == PIPELINE_RUNS.lower():
            found = sorted(found, key=lambda r: r.seq, reverse=True)  # newest first
        return self._page(request, found, lambda r: self._snapshot(r.body))

    def _snapshot(self, body: dict[str, Any]) -> dict[str, Any]:
        with self.state.lock:
            return copy.deepcopy(body)


_GENERIC_KEYS = ("id", "name", "type", "kind", "location", "tags", "sku", "identity", "managedBy", "plan")


def _generic(body: dict[str, Any]) -> dict[str, Any]:
    """A resource as ARM's resource list shows it (GenericResourceExpanded: no properties)."""
    return {key: body[key] for key in _GENERIC_KEYS if key in body}


def _generic_field(body: dict[str, Any], name: str) -> Any:
    return body.get("type") if name == "resourceType" else body.get(name)


def _resource_filter(expression: str | None) -> dict[str, str]:
    """`resourceType eq 'X' and name eq 'y'`: the filters ARM's resource list takes that clients send."""
    if not expression:
        return {}
    wanted: dict[str, str] = {}
    for clause in re.split(r"\s+and\s+", expression.strip(), flags=re.IGNORECASE):
        match = re.fullmatch(r"\s*(resourceType|name)\s+eq\s+'([^']*)'\s*", clause, flags=re.IGNORECASE)
        if not match:
            raise bad_request(
                f"The $filter '{expression}' is not supported: use resourceType eq '<type>' and/or "
                "name eq '<name>'.",
                code="InvalidFilterInQueryString",
            )
        key = "resourceType" if match.group(1).lower() == "resourcetype" else "name"
        wanted[key] = match.group(2)
    return wanted


def _deployment_body(request: Request) -> Any:
    """A deployment request in ARM's lenient JSON (jsonc): the Azure CLI splices the template file's text in
    unquoted, comments and all."""
    if not request.body:
        return None
    try:
        return jsonc.loads(request.body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ApiError(
            400,
            "InvalidRequestContent",
            f"The request content was invalid and could not be deserialized: {exc}",
        ) from None


def _type_of(path: str) -> str | None:
    """The resource type a path addresses: a resource by id, a child collection of one, or a collection
    of a provider at a scope (`.../providers/{namespace}/{type}`)."""
    rid = ids.parse(path)
    if rid is not None:
        return rid.type
    parent_path, _, child = path.rpartition("/")
    parent = ids.parse(parent_path)
    if parent is not None:
        return f"{parent.type}/{child}"
    segments = parent_path.strip("/").split("/")
    if len(segments) >= 2 and segments[-2].lower() == "providers":
        return f"{segments[-1]}/{child}"
    return None
