"""Resource group deployments: PUT (pre-flight validation, then a background worker), GET, DELETE, list with
paging, cancel, validate, the history limit, and the long-running operation status."""

from __future__ import annotations

import contextlib
import contextvars
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from typing import Any

from emulator import arm_template, ids, resource_types
from emulator.acr import PIPELINE_RUNS, TERMINAL
from emulator.arm_errors import ApiError, bad_request
from emulator.arm_template import TYPE_NAMES, DeploymentContext, PlannedResource, TemplateError
from emulator.clock import Clock, iso, iso_duration
from emulator.resources import ResourceManager
from emulator.store import Config, Deployment, Operation, State

log = logging.getLogger("emulator.deployments")

TYPE = "Microsoft.Resources/deployments"
NAME = re.compile(r"^[-\w.()]{1,64}$", re.ASCII)
FAILED_MESSAGE = (
    "At least one resource deployment operation failed. Please list deployment operations for details. "
    "Please see https://aka.ms/arm-deployment-operations for usage details."
)


INVALID_DEPLOYMENT_MESSAGE = (
    "The template deployment '{name}' is not valid according to the validation procedure. The tracking id is "
    "'{tracking_id}'. See inner errors for details."
)
PREFLIGHT_FAILED_MESSAGE = "Preflight validation failed. Please refer to the details for the specific errors."


class _Deferred(Exception):
    """Pre-flight meets reference() / listKeys(): ARM cannot evaluate those before the deployment runs, so
    the resources from there on are judged by their providers during the deployment instead."""


def _defer(*_: Any) -> dict[str, Any]:
    raise _Deferred


class RunFailedInDeployment(TemplateError):
    def __init__(self, run_id: str, message: str) -> None:
        super().__init__(
            "ResourceDeploymentFailure",
            "The resource write operation failed to complete successfully, because it reached terminal "
            f"provisioning state 'Failed'. {message}",
            run_id,
        )
        self.run_message = message


class Deployments:
    def __init__(
        self, state: State, config: Config, clock: Clock, resources: ResourceManager, stop: threading.Event
    ) -> None:
        self.state = state
        self.config = config
        self.clock = clock
        self.resources = resources
        self.stop = stop
        # ARM's authorization of a template's resources for the caller (permissions.ArmAccess wires them):
        # pre-flight's reason to refuse a resource, and the error of a resource write during the deployment.
        self.refuse_resource: Callable[[str, str, str], str | None] = lambda *_: None
        self.refuse_write: Callable[[str, str], ApiError | None] = lambda *_: None

    # --- helpers

    def _key(self, subscription_id: str, group: str, name: str) -> str:
        return ids.key(f"{ids.group_id(subscription_id, group)}/providers/{TYPE}/{name}")

    def _context(self, deployment: Deployment) -> DeploymentContext:
        group = self.state.resource_group(
            deployment.subscription_id, deployment.resource_group, self.config.location
        )
        return DeploymentContext(
            subscription_id=deployment.subscription_id,
            resource_group=group["name"],
            location=group["location"],
            deployment_name=deployment.name,
            tenant_id=self.config.tenant_id,
            now=self.clock.now(),
            reference=self.resources.reference,
            list_keys=self.resources.list_keys,
        )

    def find(self, subscription_id: str, group: str, name: str) -> Deployment | None:
        with self.state.lock:
            return self.state.deployments.get(self._key(subscription_id, group, name))

    def get(self, subscription_id: str, group: str, name: str) -> Deployment:
        deployment = self.find(subscription_id, group, name)
        if deployment is None:
            raise ApiError(404, "DeploymentNotFound", f"Deployment '{name}' could not be found.")
        return deployment

    @staticmethod
    def check_name(name: str) -> None:
        if len(name) > 64:
            raise bad_request(
                f"The provided deployment name '{name}' has a length of '{len(name)}' which exceeds the "
                "maximum "
                "length of '64'. Please see https://aka.ms/arm-deploy for usage details.",
                code="InvalidDeployment",
            )
        if not NAME.match(name):
            raise bad_request(
                f"The provided deployment name '{name}' is not valid: it can contain only letters, digits, "
                "underscores, periods, parentheses and hyphens (1-64 characters). Please see "
                "https://aka.ms/arm-deploy for usage details.",
                code="InvalidDeployment",
            )

    @staticmethod
    def _request(body: Any) -> tuple[dict[str, Any], dict[str, Any], str]:
        properties = body.get("properties") if isinstance(body, dict) else None
        if not isinstance(properties, dict):
            raise bad_request("The request content must have 'properties'.", code="InvalidRequestContent")
        for unsupported in ("templateLink", "parametersLink"):
            if unsupported in properties:
                raise bad_request(
                    f"'{unsupported}' is not supported by this emulator: send the template and parameters "
                    "inline.",
                    code="InvalidRequestContent",
                )
        template = properties.get("template")
        if not isinstance(template, dict):
            raise bad_request(
                "The request content must have 'properties.template' (an inline template).",
                code="InvalidRequestContent",
            )
        mode = properties.get("mode") or "Incremental"
        if mode not in ("Incremental", "Complete"):
            raise bad_request(f"The deployment mode '{mode}' is not valid.", code="InvalidDeploymentMode")
        return template, properties.get("parameters") or {}, mode

    @staticmethod
    def _echo_parameters(template: dict[str, Any], supplied: dict[str, Any]) -> dict[str, Any]:
        given = {k.lower(): v for k, v in supplied.items()}
        echo: dict[str, Any] = {}
        for name, decl in (template.get("parameters") or {}).items():
            kind = str(decl.get("type", "")).lower()
            entry: dict[str, Any] = {"type": TYPE_NAMES.get(kind, str(decl.get("type")))}
            if name.lower() in given:
                value = given[name.lower()].get("value")
            elif "defaultValue" in decl and not (
                isinstance(decl["defaultValue"], str) and decl["defaultValue"].startswith("[")
            ):
                value = decl["defaultValue"]
            else:
                continue
            if not kind.startswith("secure"):
                entry["value"] = value
            echo[name] = entry
        return echo

    # --- PUT

    def preflight(self, deployment: Deployment) -> None:
        """ARM's pre-flight: each resource whose body needs no runtime state (no reference() / listKeys())
        goes to its provider's validation before anything is deployed. Refusals answer 400
        InvalidTemplateDeployment with the providers' errors in `details` (one entry for one resource; two
        levels, under PreflightValidationCheckFailed, when several resources fail)."""
        found: list[dict[str, Any]] = []
        unauthorized: list[str] = []

        def judge(planned: PlannedResource) -> dict[str, Any]:
            refused = self.refuse_resource(planned.resource_id, planned.type, planned.name)
            if refused:
                unauthorized.append(refused)
            try:
                self._check_type(planned)
                self.resources.preflight(planned.resource_id, planned.api_version, planned.body)
            except ApiError as exc:
                found.append(
                    {"code": exc.code, "message": exc.message, "target": exc.target or planned.resource_id}
                )
            return {"id": planned.resource_id, "type": planned.type, "properties": {}}

        context = replace(self._context(deployment), reference=_defer, list_keys=_defer)
        # What needs runtime state, or fails at run time, is for the deployment to find.
        with contextlib.suppress(_Deferred, TemplateError):
            arm_template.deploy(deployment.template, deployment.parameters, context, judge)
        if unauthorized:  # ARM checks the caller's write permission on every resource before the rest
            raise ApiError(
                400,
                "InvalidTemplateDeployment",
                f"The template deployment failed with error: '{unauthorized[0]}'.",
            )
        if not found:
            return
        details = (
            found
            if len(found) == 1
            else [
                {
                    "code": "PreflightValidationCheckFailed",
                    "message": PREFLIGHT_FAILED_MESSAGE,
                    "details": found,
                }
            ]
        )
        raise ApiError(
            400,
            "InvalidTemplateDeployment",
            INVALID_DEPLOYMENT_MESSAGE.format(name=deployment.name, tracking_id=deployment.correlation_id),
            details=details,
        )

    def put(
        self, subscription_id: str, group: str, name: str, body: Any, correlation_id: str | None = None
    ) -> tuple[int, Deployment, Operation]:
        self.check_name(name)
        template, parameters, mode = self._request(body)
        group_info = self.state.resource_group(subscription_id, group, self.config.location)
        deployment_id = f"{ids.group_id(subscription_id, group_info['name'])}/providers/{TYPE}/{name}"
        now = self.clock.now()
        candidate = Deployment(
            id=deployment_id,
            name=name,
            subscription_id=subscription_id,
            resource_group=group_info["name"],
            template=template,
            parameters=parameters,
            echo_parameters={},
            mode=mode,
            state="Accepted",
            created=now,
            updated=now,
            correlation_id=correlation_id or str(uuid.uuid4()),
            seq=0,
        )
        try:
            arm_template.validate(template, parameters, self._context(candidate))
        except TemplateError as exc:
            raise ApiError(400, exc.code, exc.message, target=exc.target) from None
        self.preflight(candidate)
        candidate.echo_parameters = self._echo_parameters(template, parameters)
        key = ids.key(deployment_id)
        with self.state.lock:
            existing = self.state.deployments.get(key)
            if existing is not None and existing.active:
                raise ApiError(
                    409,
                    "DeploymentActive",
                    f"Unable to edit or replace deployment '{name}': previous deployment from "
                    f"'{iso(existing.created)}' is still active (expiration time is "
                    f"'{iso(existing.created + timedelta(days=1))}'). Please see "
                    "https://aka.ms/arm-deploy for usage details.",
                )
            self._enforce_limit(subscription_id, group_info["name"], name, replacing=existing is not None)
            deployment = replace(candidate, seq=self.state.next_seq())
            self.state.deployments[key] = deployment
            operation = self.resources.new_operation("deployment", key)
            self._groom(subscription_id, group_info["name"], key)
        # The worker deploys as the PUT's caller (the systemData of what it makes): in the PUT's context.
        worker = contextvars.copy_context()
        threading.Thread(
            target=worker.run, args=(self._run, deployment), name=f"deployment-{name}", daemon=True
        ).start()
        return (200 if existing else 201), deployment, operation

    def _in_group(self, subscription_id: str, group: str) -> list[Deployment]:
        prefix = ids.key(ids.group_id(subscription_id, group)) + "/"
        return sorted(
            (d for k, d in self.state.deployments.items() if k.startswith(prefix)), key=lambda d: d.seq
        )

    def _enforce_limit(self, subscription_id: str, group: str, name: str, replacing: bool) -> None:
        count = len(self._in_group(subscription_id, group))
        if not replacing and count >= self.config.deployment_limit:
            raise ApiError(  # 409 as recorded from ARM (a 400 in the emulator before)
                409,
                "DeploymentQuotaExceeded",
                f"Creating the deployment '{name}' would exceed the quota of "
                f"'{self.config.deployment_limit}'. "
                f"The current deployment count is '{count}'. Please delete some deployments before creating "
                "a "
                "new one, or see https://aka.ms/800LimitFix for information on managing deployment limits.",
            )

    def _groom(self, subscription_id: str, group: str, keep: str) -> None:
        """Above `deployment_cleanup_above`, delete the oldest finished deployments down to
        `..._cleanup_to`."""
        if not self.config.deployment_grooming:
            return
        history = self._in_group(subscription_id, group)
        if len(history) <= self.config.deployment_cleanup_above:
            return
        excess = len(history) - self.config.deployment_cleanup_to
        for deployment in history:
            if excess <= 0:
                break
            key = ids.key(deployment.id)
            if key != keep and not deployment.active:
                del self.state.deployments[key]
                excess -= 1

    # --- the worker

    def _run(self, deployment: Deployment) -> None:
        key = ids.key(deployment.id)
        with self.state.lock:
            deployment.state = "Running"
            deployment.started = time.monotonic()
            deployment.updated = self.clock.now()
            self.state.changed.notify_all()
        created: list[str] = []

        def put_resource(planned: PlannedResource) -> dict[str, Any]:
            return self._put_resource(planned, created, deployment.correlation_id)

        try:
            outcome = arm_template.deploy(
                deployment.template, deployment.parameters, self._context(deployment), put_resource
            )
            final, outputs, error = "Succeeded", outcome.outputs, None
        except TemplateError as exc:
            detail: dict[str, Any] = {"code": exc.code, "message": exc.message}
            if exc.target:
                detail["target"] = exc.target
            if isinstance(exc, RunFailedInDeployment):
                detail["details"] = [{"code": "PipelineRunFailed", "message": exc.run_message}]
            final, outputs, error = (
                "Failed",
                {},
                {"code": "DeploymentFailed", "message": FAILED_MESSAGE, "details": [detail]},
            )
        except Exception as exc:
            log.exception("deployment %s crashed", deployment.id)
            final, outputs = "Failed", {}
            error = {
                "code": "DeploymentFailed",
                "message": FAILED_MESSAGE,
                "details": [
                    {"code": "InternalServerError", "message": f"Emulator error: {type(exc).__name__}: {exc}"}
                ],
            }
        with self.state.lock:
            if self.state.deployments.get(key) is not deployment or deployment.state == "Canceled":
                return
            deployment.state = final
            deployment.outputs = outputs
            deployment.error = error
            deployment.output_resources = created
            deployment.finished = time.monotonic()
            deployment.updated = self.clock.now()
            self.state.changed.notify_all()

    def _check_type(self, planned: PlannedResource) -> None:
        resource_types.check(
            planned.type, planned.api_version, self.config.pipeline_api_versions, self.config.location
        )

    def _nested(self, planned: PlannedResource, parent_correlation: str) -> dict[str, Any]:
        """A Microsoft.Resources/deployments resource of a template: a deployment of its own in its resource
        group (recorded, listed, readable), run before the parent goes on; its failure fails the parent.
        An inner-scope template comes as written, an outer-scope one already evaluated by the engine."""
        rid = ids.parse(planned.resource_id)
        if rid is None or not rid.resource_group:
            raise TemplateError(
                "InvalidTemplate",
                "A nested deployment must go to a resource group in this emulator.",
                planned.resource_id,
            )
        self.check_name(rid.name)
        template, parameters, mode = self._request({"properties": planned.body.get("properties")})
        group = self.state.resource_group(rid.subscription_id, rid.resource_group, self.config.location)
        now = self.clock.now()
        nested = Deployment(
            f"{ids.group_id(rid.subscription_id, group['name'])}/providers/{TYPE}/{rid.name}",
            rid.name, rid.subscription_id, group["name"], template, parameters,
            self._echo_parameters(template, parameters), mode, "Accepted", now, now, parent_correlation, 0,
        )  # fmt: skip
        key = ids.key(nested.id)
        with self.state.lock:
            existing = self.state.deployments.get(key)
            if existing is not None and existing.active:
                raise TemplateError(
                    "DeploymentActive", f"The nested deployment '{rid.name}' is still active.", nested.id
                )
            nested = replace(nested, seq=existing.seq if existing else self.state.next_seq())
            self.state.deployments[key] = nested
        self._run(nested)
        with self.state.lock:
            view = self.view(nested)
            # reference() of the nested deployment reads its outputs
            self.resources.save(nested.id, TYPE, planned.api_version, view, self.resources.find(nested.id))
        if nested.state != "Succeeded":
            inner = (nested.error or {}).get("details") or [{"code": "DeploymentFailed", "message": "failed"}]
            raise TemplateError(
                inner[0].get("code", "DeploymentFailed"), inner[0].get("message", ""), nested.id
            )
        return view

    def _put_resource(self, planned: PlannedResource, created: list[str], correlation: str) -> dict[str, Any]:
        if self.stop.is_set():
            raise TemplateError("DeploymentCanceled", "The emulator is stopping.")
        refused = self.refuse_write(planned.resource_id, planned.type)
        if refused is not None:
            raise TemplateError(refused.code, refused.message, planned.resource_id)
        if planned.type.lower() == TYPE.lower():
            self._check_type(planned)
            view = self._nested(planned, correlation)
            created.append(view["id"])
            return view
        try:
            self._check_type(planned)
            result = self.resources.put(planned.resource_id, planned.api_version, planned.body)
        except ApiError as exc:
            raise TemplateError(exc.code, exc.message, planned.resource_id) from None
        created.append(result.resource.id)
        if result.operation is not None and result.resource.type.lower() == PIPELINE_RUNS.lower():
            # ARM follows the RP's long-running PUT: the deployment runs until the pipeline run ends.
            with self.state.lock:
                self.state.changed.wait_for(
                    lambda: (
                        self.stop.is_set()
                        or (r := self.state.resources.get(ids.key(result.resource.id))) is None
                        or r.body["properties"].get("provisioningState") in TERMINAL
                    )
                )
                run = self.state.resources.get(ids.key(result.resource.id))
                body = run.body if run else result.resource.body
                state = body["properties"].get("provisioningState")
            if state == "Failed":
                message = (
                    body["properties"].get("response", {}).get("pipelineRunErrorMessage", "The run failed.")
                )
                raise RunFailedInDeployment(result.resource.id, message)
            return body
        return result.resource.body

    # --- reads, deletes

    def view(self, deployment: Deployment) -> dict[str, Any]:
        with self.state.lock:
            if deployment.finished:
                duration = deployment.finished - deployment.started
            elif deployment.started:
                duration = time.monotonic() - deployment.started
            else:
                duration = 0.0
            properties: dict[str, Any] = {
                "templateHash": str(abs(hash(repr(deployment.template))) % 10**19),
                "parameters": deployment.echo_parameters,
                "mode": deployment.mode,
                "provisioningState": deployment.state,
                "timestamp": iso(deployment.updated),
                "duration": iso_duration(duration),
                "correlationId": deployment.correlation_id,
                "providers": [],
                "dependencies": [],
            }
            if deployment.state == "Succeeded":
                properties["outputs"] = deployment.outputs
            if deployment.output_resources:
                ordered = _in_order(deployment.output_resources, self.config.output_resources_order)
                properties["outputResources"] = [{"id": r} for r in ordered]
            if deployment.error:
                properties["error"] = deployment.error
            return {"id": deployment.id, "name": deployment.name, "type": TYPE, "properties": properties}

    def delete(self, subscription_id: str, group: str, name: str) -> bool:
        with self.state.lock:
            deployment = self.find(subscription_id, group, name)
            if deployment is None:
                return False
            if deployment.active:
                raise ApiError(
                    409,
                    "DeploymentActive",
                    f"Unable to delete deployment '{name}': it is still active. Cancel it or wait for it to "
                    "finish.",
                )
            del self.state.deployments[ids.key(deployment.id)]
            self.resources.delete(deployment.id)  # what reference() of a nested deployment read
            return True

    def cancel(self, subscription_id: str, group: str, name: str) -> None:
        with self.state.lock:
            deployment = self.get(subscription_id, group, name)
            if not deployment.active:
                raise ApiError(
                    409,
                    "DeploymentCannotBeCancelled",
                    f"The deployment '{name}' cannot be cancelled: its state is '{deployment.state}'.",
                )
            deployment.state = "Canceled"
            deployment.finished = time.monotonic()
            deployment.updated = self.clock.now()
            self.state.changed.notify_all()

    def validate_only(
        self, subscription_id: str, group: str, name: str, body: Any, correlation_id: str | None = None
    ) -> dict[str, Any]:
        self.check_name(name)
        template, parameters, mode = self._request(body)
        group_info = self.state.resource_group(subscription_id, group, self.config.location)
        now = self.clock.now()
        probe = Deployment(
            f"{ids.group_id(subscription_id, group_info['name'])}/providers/{TYPE}/{name}",
            name, subscription_id, group_info["name"], template, parameters, {}, mode, "Succeeded", now, now,
            correlation_id or str(uuid.uuid4()), 0,
        )  # fmt: skip
        try:
            arm_template.validate(template, parameters, self._context(probe))
        except TemplateError as exc:
            raise ApiError(400, exc.code, exc.message, target=exc.target) from None
        self.preflight(probe)
        probe.echo_parameters = self._echo_parameters(template, parameters)
        return self.view(probe)

    def listing(self, subscription_id: str, group: str, state_filter: str | None) -> list[Deployment]:
        with self.state.lock:
            found = self._in_group(subscription_id, group)
        if state_filter:
            found = [d for d in found if d.state.lower() == state_filter.lower()]
        return found

    def status(self, operation: Operation) -> dict[str, Any]:
        with self.state.lock:
            deployment = self.state.deployments.get(operation.target)
            if deployment is None:
                return {"status": "Canceled"}
            status: dict[str, Any] = {"status": deployment.state}
            if deployment.error:
                status["error"] = deployment.error
            return status


def _in_order(resource_ids: list[str], order: str) -> list[str]:
    """outputResources as the setting `output_resources_order` says (ARM documents no order)."""
    if order == "deployed":
        return list(resource_ids)
    if order == "sorted":
        return sorted(resource_ids, key=str.lower)
    return list(reversed(resource_ids))


def parse_filter(expression: str | None) -> str | None:
    """`provisioningState eq 'Failed'` (the filter ARM supports on deployments)."""
    if not expression:
        return None
    match = re.fullmatch(r"\s*provisioningState\s+eq\s+'([A-Za-z]+)'\s*", expression)
    if not match:
        raise bad_request(
            f"The $filter '{expression}' is not supported: use provisioningState eq '<state>'.",
            code="InvalidFilterInQueryString",
        )
    return match.group(1)
