"""ARM template engine of the emulator: validation and deployment of a template with its parameters.

The HTTP layer calls `validate` and `deploy`; resources are created through the `put_resource` callback and
read back through `DeploymentContext.reference`, so this module holds no state between deployments.
Supported: parameters (types, defaults, allowedValues, min/max length and value), variables, conditions,
dependsOn (explicit, and implicit through reference() by name), nested child resources, outputs, listKeys()
through `DeploymentContext.list_keys`, and nested deployments (Microsoft.Resources/deployments) whose
template is evaluated in the inner scope: their `properties.template` is passed on as written, for the caller
to deploy in the nested deployment's own scope. Not supported, and refused explicitly: copy loops,
user-defined functions, languageVersion 2.0, Key Vault parameter references.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from emulator.arm_expressions import (
    BUILTINS,
    LAZY_FUNCTIONS,
    Call,
    Evaluator,
    ExpressionError,
    Function,
    Literal,
    Site,
    TemplateError,
    arm_type,
    calls,
    deep_equal,
    expressions_in,
    format_datetime,
    parse,
    to_text,
)

__all__ = [
    "DeploymentContext",
    "DeploymentOutcome",
    "PlannedResource",
    "TemplateError",
    "deploy",
    "validate",
]

SYNTAX_HELP = "Please see https://aka.ms/arm-syntax for usage details."
PARAMETER_FILE_HELP = "Please see https://aka.ms/arm-create-parameter-file for usage details."

# Keys of a template resource that steer the deployment and are not part of the PUT body.
_DEPLOYMENT_KEYS = frozenset(
    k.lower()
    for k in (
        "type",
        "name",
        "apiVersion",
        "dependsOn",
        "condition",
        "comments",
        "copy",
        "resources",
        "resourceGroup",
        "subscriptionId",
        "scope",
    )
)

_SCOPE_KEYS = ("subscriptionId", "resourceGroup", "scope")
_PARAMETER_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "securestring": (str,),
    "int": (int,),
    "bool": (bool,),
    "array": (list,),
    "object": (dict,),
    "secureobject": (dict,),
}
# ARM's spelling of template types in its answers (parameters and outputs).
TYPE_NAMES = {
    "string": "String",
    "securestring": "SecureString",
    "int": "Int",
    "bool": "Bool",
    "array": "Array",
    "object": "Object",
    "secureobject": "SecureObject",
}

_ONLY_IN_DEFAULTS = " The function can only be used with parameter default values."
_RUNTIME_FUNCTIONS = frozenset({"reference", "list", "listkeys", "listsecrets", "listaccountsas"})
_DEFAULT_ONLY_FUNCTIONS = frozenset({"utcnow", "newguid"})
# Parameter defaults may use utcNow()/newGuid() but no runtime state and no variables.
_PARAMETER_DEFAULT = Site(_RUNTIME_FUNCTIONS | {"variables"})
# Variables, resource names and dependencies are resolved before anything is deployed.
_STATIC = Site(_RUNTIME_FUNCTIONS | _DEFAULT_ONLY_FUNCTIONS, _ONLY_IN_DEFAULTS)
# Resource bodies, conditions and outputs run during the deployment.
_RUNTIME = Site(_DEFAULT_ONLY_FUNCTIONS, _ONLY_IN_DEFAULTS)


@dataclass(frozen=True)
class DeploymentContext:
    subscription_id: str
    resource_group: str
    location: str  # of the resource group
    deployment_name: str
    tenant_id: str
    now: datetime  # the emulator's clock, for utcNow()
    # (resource_id, api_version, full) -> the resource (full=True) or its "properties";
    # raises TemplateError("ResourceNotFound", ...) when it does not exist.
    reference: Callable[[str, str | None, bool], dict[str, Any]]
    # (resource_id, api_version) -> what POST {resource_id}/listKeys answers; None: listKeys() is refused.
    list_keys: Callable[[str, str], dict[str, Any]] | None = None


@dataclass
class PlannedResource:
    resource_id: str
    type: str
    name: str
    api_version: str
    body: dict[str, Any]


@dataclass
class DeploymentOutcome:
    outputs: dict[str, dict[str, Any]]
    output_resources: list[str]


def validate(template: dict[str, Any], parameters: dict[str, Any], ctx: DeploymentContext) -> None:
    """What ARM checks before it starts: template shape, parameters, expressions, names and dependencies."""
    _Deployment(template, parameters, ctx).plan()


def deploy(
    template: dict[str, Any],
    parameters: dict[str, Any],
    ctx: DeploymentContext,
    put_resource: Callable[[PlannedResource], dict[str, Any]],
) -> DeploymentOutcome:
    """Validate, PUT each resource whose condition holds in dependency order, then evaluate the outputs."""
    deployment = _Deployment(template, parameters, ctx)
    deployed: list[str] = []
    for resource in deployment.plan():
        put_resource(deployment.planned(resource))
        deployed.append(resource.resource_id)
    return DeploymentOutcome(deployment.outputs(), deployed)


def _inner_template(raw: dict[str, Any]) -> Any:
    """The template of a nested deployment evaluated in the inner scope, or None."""
    if str(raw.get("type", "")).lower() != "microsoft.resources/deployments":
        return None
    properties = raw.get("properties")
    if not isinstance(properties, dict):
        return None
    options = properties.get("expressionEvaluationOptions")
    if not isinstance(options, dict) or str(options.get("scope", "")).lower() != "inner":
        return None
    return properties.get("template")


def _outer_body(raw: dict[str, Any]) -> dict[str, Any]:
    """The part of a resource the outer scope evaluates: all but the deployment keys and an inner template."""
    body = {k: v for k, v in raw.items() if k.lower() not in _DEPLOYMENT_KEYS}
    if _inner_template(raw) is not None:
        body["properties"] = {k: v for k, v in body["properties"].items() if k != "template"}
    return body


def _invalid(message: str, target: str | None = None) -> TemplateError:
    return TemplateError("InvalidTemplate", f"Deployment template validation failed: '{message}'", target)


@dataclass
class _Resource:
    """A template resource (nested children flattened) and what the plan learnt about it."""

    index: int
    raw: dict[str, Any]
    parent: _Resource | None
    label: str = ""  # how messages name it before its name is known
    type: str = ""
    name: str = ""
    api_version: str = ""
    resource_id: str = ""
    active: bool = True


class _Deployment:
    def __init__(self, template: dict[str, Any], parameters: dict[str, Any], ctx: DeploymentContext) -> None:
        self.template = template
        self.ctx = ctx
        self._check_shape()
        self.supplied = self._supplied(parameters)
        self.parameter_decls: dict[str, tuple[str, dict[str, Any]]] = {
            name.lower(): (name, decl) for name, decl in (template.get("parameters") or {}).items()
        }
        self.variable_decls: dict[str, tuple[str, Any]] = {
            name.lower(): (name, value) for name, value in (template.get("variables") or {}).items()
        }
        self._parameters: dict[str, Any] = {}
        self._variables: dict[str, Any] = {}
        self._resolving: list[str] = []
        self.resources = _flatten(template["resources"], None)
        for index, resource in enumerate(self.resources):
            resource.index = index
        self.evaluator = Evaluator({**BUILTINS, **self._host_functions()}, LAZY_FUNCTIONS)

    # --- template shape

    def _check_shape(self) -> None:
        if not isinstance(self.template, dict):
            raise _invalid("The template must be a JSON object.")
        for key in ("$schema", "contentVersion", "resources"):
            if key not in self.template:
                raise _invalid(f"Required property '{key}' not found in JSON. Path '', line 1, position 1.")
        if "languageVersion" in self.template:
            raise _invalid("languageVersion (symbolic resource names) is not supported by this emulator.")
        if self.template.get("functions"):
            raise _invalid("User-defined functions are not supported by this emulator.")
        if not isinstance(self.template["resources"], list):
            raise _invalid("The template property 'resources' must be an array.")
        for section in ("parameters", "variables", "outputs"):
            if not isinstance(self.template.get(section) or {}, dict):
                raise _invalid(f"The template property '{section}' must be an object.")
        if "copy" in (self.template.get("variables") or {}):
            raise _invalid("copy is not supported by this emulator (in 'variables').")

    def _supplied(self, parameters: dict[str, Any]) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name, entry in (parameters or {}).items():
            if isinstance(entry, dict) and "reference" in entry:
                raise _invalid(
                    f"The parameter '{name}' is a Key Vault reference; parameter references are not "
                    "supported by this emulator: pass the value."
                )
            if not isinstance(entry, dict) or "value" not in entry:
                raise _invalid(
                    f"The value of deployment parameter '{name}' is null or has no 'value' property."
                )
            values[name.lower()] = (name, entry["value"])
        return values

    # --- parameters and variables

    def parameter(self, name: str) -> Any:
        key = name.lower()
        if key not in self.parameter_decls:
            raise ExpressionError(
                f"The template parameter '{name}' is not found. Please see "
                "https://aka.ms/arm-syntax-parameters for usage details."
            )
        if key not in self._parameters:
            self._parameters[key] = self._resolve("parameter", key, self._parameter_value)
        return self._parameters[key]

    def variable(self, name: str) -> Any:
        key = name.lower()
        if key not in self.variable_decls:
            raise ExpressionError(
                f"The template variable '{name}' is not found. Please see "
                "https://aka.ms/arm-syntax-variables for usage details."
            )
        if key not in self._variables:
            self._variables[key] = self._resolve("variable", key, self._variable_value)
        return self._variables[key]

    def _resolve(self, kind: str, key: str, compute: Callable[[str], Any]) -> Any:
        marker = f"{kind}:{key}"
        if marker in self._resolving:
            chain = " -> ".join(m.split(":", 1)[1] for m in [*self._resolving, marker])
            raise _invalid(f"Circular reference detected in template {kind}s: {chain}.")
        self._resolving.append(marker)
        try:
            return compute(key)
        finally:
            self._resolving.pop()

    def _variable_value(self, key: str) -> Any:
        name, raw = self.variable_decls[key]
        try:
            return self.evaluator.evaluate(raw, _STATIC)
        except ExpressionError as exc:
            raise _invalid(f"The template variable '{name}' is not valid: {exc.message}", name) from None

    def _parameter_value(self, key: str) -> Any:
        name, decl = self.parameter_decls[key]
        kind = str(decl.get("type", "")).lower()
        if kind not in _PARAMETER_TYPES:
            raise _invalid(f"The template parameter '{name}' has an invalid type '{decl.get('type')}'.", name)
        if key in self.supplied:
            value = self.supplied[key][1]
        elif "defaultValue" in decl:
            try:
                value = self.evaluator.evaluate(decl["defaultValue"], _PARAMETER_DEFAULT)
            except ExpressionError as exc:
                raise _invalid(f"The template parameter '{name}' is not valid: {exc.message}", name) from None
        else:
            raise _invalid(
                f"The value for the template parameter '{name}' at line '1' and column '1' is not provided. "
                f"{PARAMETER_FILE_HELP}",
                name,
            )
        _check_parameter(name, decl, kind, value)
        return value

    def _check_parameters(self) -> None:
        undeclared = [name for key, (name, _) in self.supplied.items() if key not in self.parameter_decls]
        if undeclared:
            allowed = ", ".join(name for name, _ in self.parameter_decls.values())
            raise _invalid(
                f"The template parameters '{', '.join(undeclared)}' in the parameters file are not valid; "
                "they are not present in the original template and can therefore not be provided at "
                f"deployment time. The only supported parameters for this template are '{allowed}'. "
                "Please see https://aka.ms/arm-pass-parameter-values for usage details."
            )
        for key in self.parameter_decls:
            self.parameter(key)

    # --- expressions

    def _check_expressions(self) -> None:
        """ARM parses every expression up front: unknown functions and misplaced ones fail the validation."""
        for name, decl in self.parameter_decls.values():
            self._check(decl.get("defaultValue"), _PARAMETER_DEFAULT, f"The template parameter '{name}'")
        for name, raw in self.variable_decls.values():
            self._check(raw, _STATIC, f"The template variable '{name}'")
        for resource in self.resources:
            static = {
                k: resource.raw.get(k) for k in ("type", "name", "apiVersion", "dependsOn", *_SCOPE_KEYS)
            }
            runtime = _outer_body(resource.raw)
            where = f"The template resource '{resource.label}'"
            self._check(static, _STATIC, where)
            self._check([resource.raw.get("condition"), runtime], _RUNTIME, where)
        for name, output in (self.template.get("outputs") or {}).items():
            if isinstance(output, dict) and "copy" in output:
                raise _invalid(f"copy is not supported by this emulator (output '{name}').")
            self._check(output, _RUNTIME, f"The template output '{name}'")

    def _check(self, value: Any, site: Site, where: str) -> None:
        try:
            self.evaluator.check(value, site)
            for text in expressions_in(value):
                for node in calls(parse(text)):
                    self._check_names(node)
        except ExpressionError as exc:
            raise _invalid(f"{where} is not valid: {exc.message}") from None

    def _check_names(self, node: Call) -> None:
        """parameters('x') and variables('x') with a literal name are checked before the deployment starts."""
        name = node.name.lower()
        if name in ("parameters", "variables") and node.args and isinstance(node.args[0], Literal):
            wanted = str(node.args[0].value)
            declared = self.parameter_decls if name == "parameters" else self.variable_decls
            if wanted.lower() not in declared:
                (self.parameter if name == "parameters" else self.variable)(wanted)

    def _evaluate(self, value: Any, site: Site, resource: _Resource) -> Any:
        try:
            return self.evaluator.evaluate(value, site)
        except ExpressionError as exc:
            raise _invalid(f"The template resource '{resource.label}' is not valid: {exc.message}") from None

    # --- plan

    def plan(self) -> list[_Resource]:
        """Validate everything ARM validates up front; the resources to deploy, in dependency order."""
        self._check_expressions()
        self._check_parameters()
        for name in self.variable_decls:
            self.variable(name)
        for resource in self.resources:
            self._identify(resource)
        for resource in self.resources:
            self._decide(resource)
        order = self._order({r.index: self._dependencies(r) for r in self.resources})
        return [self.resources[i] for i in order if self.resources[i].active]

    def _identify(self, resource: _Resource) -> None:
        raw = resource.raw
        # ARM ignores a trailing '/' of a type: the official ACR templates have written
        # "Microsoft.ContainerRegistry/registries/exportPipelines/" since 2020 and deploy on Azure.
        own_type = _as_text(self._evaluate(raw["type"], _STATIC, resource), "type", resource).rstrip("/")
        own_name = _as_text(self._evaluate(raw["name"], _STATIC, resource), "name", resource)
        resource.api_version = _as_text(
            self._evaluate(raw["apiVersion"], _STATIC, resource), "apiVersion", resource
        )
        parent = resource.parent
        if parent is not None and "." not in own_type.split("/")[0]:
            own_type, own_name = f"{parent.type}/{own_type}", f"{parent.name}/{own_name}"
        resource.type, resource.name = own_type, own_name
        resource.label = own_name
        type_segments, name_segments = own_type.split("/"), own_name.split("/")
        if len(type_segments) != len(name_segments) + 1 or not all(name_segments):
            raise _invalid(
                f"The template resource '{own_name}' for type '{own_type}' at line '1' and column '1' has "
                "incorrect segment lengths. A nested resource type must have identical number of segments as "
                "its resource name. A root resource type must have segment length one greater than its "
                f"resource name. {SYNTAX_HELP}"
            )
        subscription = _as_text(
            self._evaluate(raw.get("subscriptionId") or self.ctx.subscription_id, _STATIC, resource),
            "subscriptionId",
            resource,
        )
        group = _as_text(
            self._evaluate(raw.get("resourceGroup") or self.ctx.resource_group, _STATIC, resource),
            "resourceGroup",
            resource,
        )
        scope = f"/subscriptions/{subscription}/resourceGroups/{group}"
        if "scope" in raw:
            scope = self._scope(self._evaluate(raw["scope"], _STATIC, resource), scope, resource)
        resource.resource_id = scope + _provider_segments(type_segments, name_segments)

    def _scope(self, value: Any, group_id: str, resource: _Resource) -> str:
        """An extension resource's scope: a resource id, or 'Namespace/type/name' in the resource group."""
        text = _as_text(value, "scope", resource).rstrip("/")
        if text.startswith("/"):
            return text
        segments = text.split("/")
        if len(segments) < 3 or len(segments) % 2 == 0:
            raise _invalid(
                f"The template resource '{resource.label}' is not valid: the scope '{text}' must be a "
                "resource id or 'Namespace/type/name'."
            )
        return group_id + _provider_segments([segments[0], *segments[1::2]], segments[2::2])

    def _decide(self, resource: _Resource) -> None:
        if "condition" not in resource.raw:
            return
        condition = self._evaluate(resource.raw["condition"], _RUNTIME, resource)
        if not isinstance(condition, bool):
            raise _invalid(
                f"The template resource '{resource.label}' is not valid: the condition must be of type "
                f"'Boolean' but is of type '{arm_type(condition)}'."
            )
        resource.active = condition

    def _dependencies(self, resource: _Resource) -> set[int]:
        depends_on = self._evaluate(resource.raw.get("dependsOn") or [], _STATIC, resource)
        if not isinstance(depends_on, list):
            raise _invalid(
                f"The template resource '{resource.label}' is not valid: 'dependsOn' must be an array."
            )
        needed: set[int] = set()
        for entry in depends_on:
            matches = self._find(to_text(entry))
            if not matches:
                raise _invalid(
                    f"The resource '{to_text(entry)}' is not defined in the template. {SYNTAX_HELP}"
                )
            needed.update(m.index for m in matches)
        needed.update(m.index for m in self._implicit_dependencies(resource))
        return needed

    def _implicit_dependencies(self, resource: _Resource) -> list[_Resource]:
        """reference('name') of a resource in the same template makes ARM wait for that resource."""
        body = _outer_body(resource.raw)
        found: list[_Resource] = []
        for text in expressions_in(body):
            for node in calls(parse(text)):
                if node.name.lower() == "reference" and node.args:
                    try:
                        target = self.evaluator.evaluate_node(node.args[0], _STATIC)
                    except TemplateError:
                        continue  # its name needs runtime state: ARM cannot see this dependency either
                    if isinstance(target, str) and not target.startswith("/"):
                        found.extend(r for r in self._find(target) if r is not resource)
        return found

    def _find(self, reference: str) -> list[_Resource]:
        """Template resources a dependsOn entry or reference() names: by id, by name, or by type/name."""
        wanted = reference.lower()
        if wanted.startswith("/"):
            return [r for r in self.resources if r.resource_id.lower() == wanted]
        by_name = [r for r in self.resources if r.name.lower() == wanted]
        return by_name or [r for r in self.resources if f"{r.type}/{r.name}".lower() == wanted]

    def _order(self, dependencies: dict[int, set[int]]) -> list[int]:
        """Topological order that keeps the template's order wherever dependencies allow."""
        done: list[int] = []
        placed: set[int] = set()
        remaining = sorted(dependencies)
        while remaining:
            ready = next((i for i in remaining if dependencies[i] <= placed), None)
            if ready is None:
                culprit = next(i for i in remaining if dependencies[i] & set(remaining))
                raise _invalid(
                    f"Circular dependency detected on resource: '{self.resources[culprit].resource_id}'. "
                    "Please see https://aka.ms/arm-syntax-resources for usage details."
                )
            done.append(ready)
            placed.add(ready)
            remaining.remove(ready)
        return done

    # --- deployment

    def planned(self, resource: _Resource) -> PlannedResource:
        body = _outer_body(resource.raw)
        try:
            evaluated = self.evaluator.evaluate(body, _RUNTIME)
            inner = _inner_template(resource.raw)
            if inner is not None:
                evaluated["properties"]["template"] = copy.deepcopy(inner)
        except ExpressionError as exc:
            raise TemplateError(
                "InvalidTemplate",
                f"Unable to process template language expressions for resource '{resource.resource_id}' at "
                f"line '1' and column '1'. '{exc.message}'",
                resource.resource_id,
            ) from None
        return PlannedResource(
            resource.resource_id, resource.type, resource.name, resource.api_version, copy.deepcopy(evaluated)
        )

    def outputs(self) -> dict[str, dict[str, Any]]:
        results: dict[str, dict[str, Any]] = {}
        for name, decl in (self.template.get("outputs") or {}).items():
            try:
                if "condition" in decl and self.evaluator.evaluate(decl["condition"], _RUNTIME) is not True:
                    continue
                kind = str(decl.get("type", "")).lower()
                if kind not in TYPE_NAMES:
                    raise ExpressionError(f"The output type '{decl.get('type')}' is not valid.")
                value = self.evaluator.evaluate(decl.get("value"), _RUNTIME)
                if not _has_type(value, _PARAMETER_TYPES[kind]):
                    raise ExpressionError(
                        f"Template output JToken type is not valid. Expected '{TYPE_NAMES[kind]}'. "
                        f"Actual '{arm_type(value)}'."
                    )
            except ExpressionError as exc:
                raise TemplateError(
                    "DeploymentOutputEvaluationFailed",
                    f"The template output '{name}' is not valid: {exc.message}",
                    name,
                ) from None
            # ARM lists secure outputs by type but never returns their value.
            results[name] = {"type": TYPE_NAMES[kind]}
            if not kind.startswith("secure"):
                results[name]["value"] = copy.deepcopy(value)
        return results

    # --- functions that need the deployment

    def _host_functions(self) -> dict[str, Function]:
        ctx = self.ctx
        subscription_id = f"/subscriptions/{ctx.subscription_id}"
        group_id = f"{subscription_id}/resourceGroups/{ctx.resource_group}"
        return {
            "parameters": Function(lambda a: self.parameter(_name_arg("parameters", a[0])), 1, 1),
            "variables": Function(lambda a: self.variable(_name_arg("variables", a[0])), 1, 1),
            "reference": Function(self._reference, 1, 3),
            "listkeys": Function(self._list_keys, 2, 3),
            "resourceid": Function(self._resource_id_function, 2, None),
            "subscriptionresourceid": Function(self._subscription_resource_id, 2, None),
            "tenantresourceid": Function(lambda a: _provider_path("", "tenantResourceId", a), 2, None),
            "extensionresourceid": Function(
                lambda a: _provider_path(
                    _name_arg("extensionResourceId", a[0]), "extensionResourceId", a[1:]
                ),
                3,
                None,
            ),
            "subscription": Function(
                lambda _: {
                    "id": subscription_id,
                    "subscriptionId": ctx.subscription_id,
                    "tenantId": ctx.tenant_id,
                    "displayName": f"Emulated subscription {ctx.subscription_id}",
                },
                0,
                0,
            ),
            "resourcegroup": Function(
                lambda _: {
                    "id": group_id,
                    "name": ctx.resource_group,
                    "type": "Microsoft.Resources/resourceGroups",
                    "location": ctx.location,
                    "tags": {},
                    "properties": {"provisioningState": "Succeeded"},
                },
                0,
                0,
            ),
            "tenant": Function(lambda _: {"tenantId": ctx.tenant_id, "countryCode": "US"}, 0, 0),
            "deployment": Function(lambda _: self._deployment_object(), 0, 0),
            "utcnow": Function(
                lambda a: format_datetime(ctx.now, _name_arg("utcNow", a[0]) if a else "yyyyMMddTHHmmssZ"),
                0,
                1,
            ),
            "newguid": Function(lambda _: str(uuid.uuid4()), 0, 0),
        }

    def _deployment_object(self) -> dict[str, Any]:
        return {
            "name": self.ctx.deployment_name,
            "properties": {
                "template": {
                    "contentVersion": self.template.get("contentVersion"),
                    "metadata": self.template.get("metadata", {}),
                },
                "parameters": {entry[0]: {"value": entry[1]} for entry in self.supplied.values()},
                "mode": "Incremental",
                "provisioningState": "Accepted",
            },
        }

    def _reference(self, args: list[Any]) -> Any:
        target = _name_arg("reference", args[0])
        api_version = _name_arg("reference", args[1]) if len(args) > 1 and args[1] is not None else None
        full = len(args) > 2 and to_text(args[2]).lower() == "full"
        in_template = self._find(target)
        if not target.startswith("/"):
            if not in_template:
                raise ExpressionError(f"The template resource '{target}' is not found. {SYNTAX_HELP}")
            target = in_template[0].resource_id
        if api_version is None:
            if not in_template:
                raise ExpressionError(
                    "Unable to evaluate template language function 'reference': the 'apiVersion' parameter "
                    f"is required for the resource '{target}' which is not deployed in this template."
                )
            api_version = in_template[0].api_version
        return self.ctx.reference(target, api_version, full)

    def _list_keys(self, args: list[Any]) -> Any:
        target = _name_arg("listKeys", args[0])
        api_version = _name_arg("listKeys", args[1])
        if not target.startswith("/"):
            in_template = self._find(target)
            if not in_template:
                raise ExpressionError(f"The template resource '{target}' is not found. {SYNTAX_HELP}")
            target = in_template[0].resource_id
        if self.ctx.list_keys is None:
            raise ExpressionError(
                "Unable to evaluate template language function 'listKeys': this emulator cannot list the "
                f"keys of '{target}'."
            )
        return self.ctx.list_keys(target, api_version)

    def _resource_id_function(self, args: list[Any]) -> str:
        texts = [_name_arg("resourceId", a) for a in args]
        type_at = next((i for i, t in enumerate(texts) if "/" in t), None)
        if type_at is None or type_at > 2:
            raise ExpressionError(
                "Unable to evaluate template language function 'resourceId': the resource type must be fully "
                "qualified (namespace/type) and follow at most a subscription id and a resource group name. "
                "Please see https://aka.ms/arm-resourceid for usage details."
            )
        scope = texts[:type_at]
        subscription = scope[0] if len(scope) == 2 else self.ctx.subscription_id
        group = scope[-1] if scope else self.ctx.resource_group
        return f"/subscriptions/{subscription}/resourceGroups/{group}" + _provider_path(
            "", "resourceId", texts[type_at:]
        )

    def _subscription_resource_id(self, args: list[Any]) -> str:
        texts = [_name_arg("subscriptionResourceId", a) for a in args]
        subscription = texts.pop(0) if "/" not in texts[0] else self.ctx.subscription_id
        return f"/subscriptions/{subscription}" + _provider_path("", "subscriptionResourceId", texts)


def _flatten(raws: list[Any], parent: _Resource | None) -> list[_Resource]:
    """Template resources with their nested child resources after each parent."""
    resources: list[_Resource] = []
    for position, raw in enumerate(raws):
        where = f"resources[{position}]" if parent is None else f"{parent.label}.resources[{position}]"
        if not isinstance(raw, dict) or not all(k in raw for k in ("type", "name", "apiVersion")):
            raise _invalid(
                f"The template resource '{where}' must be an object with type, name and apiVersion."
            )
        if "copy" in raw or _has_property_copy(raw.get("properties")):
            raise _invalid(f"copy is not supported by this emulator (template resource '{where}').")
        resource = _Resource(0, raw, parent, where)
        resources.append(resource)
        resources.extend(_flatten(raw.get("resources") or [], resource))
    return resources


def _has_property_copy(value: Any) -> bool:
    """A property loop: "copy": [{"name", "count", "input"}] anywhere inside the properties."""
    if isinstance(value, list):
        return any(_has_property_copy(item) for item in value)
    if not isinstance(value, dict):
        return False
    loop = value.get("copy")
    if isinstance(loop, list) and any(isinstance(item, dict) and "input" in item for item in loop):
        return True
    return any(_has_property_copy(item) for item in value.values())


def _provider_path(prefix: str, function: str, args: list[Any]) -> str:
    texts = [_name_arg(function, a) for a in args]
    type_segments, names = texts[0].split("/"), texts[1:]
    if len(type_segments) < 2 or len(names) != len(type_segments) - 1:
        raise ExpressionError(
            f"Unable to evaluate template language function '{function}': the type '{texts[0]}' requires "
            f"'{max(len(type_segments) - 1, 1)}' resource name argument(s). Please see "
            "https://aka.ms/arm-resourceid for usage details."
        )
    return prefix + _provider_segments(type_segments, names)


def _provider_segments(type_segments: list[str], names: list[str]) -> str:
    pairs = "".join(f"/{t}/{n}" for t, n in zip(type_segments[1:], names, strict=True))
    return f"/providers/{type_segments[0]}{pairs}"


def _name_arg(function: str, value: Any) -> str:
    if not isinstance(value, str):
        raise ExpressionError(
            f"Unable to evaluate template language function '{function}': expected a value of type 'String' "
            f"but received '{arm_type(value)}'. Please see https://aka.ms/arm-functions for usage details."
        )
    return value


def _as_text(value: Any, what: str, resource: _Resource) -> str:
    if not isinstance(value, str) or not value:
        raise _invalid(
            f"The template resource '{resource.label}' is not valid: '{what}' must be a non-empty string."
        )
    return value


def _has_type(value: Any, types: tuple[type, ...]) -> bool:
    return isinstance(value, types) and (bool in types or not isinstance(value, bool))


def _check_parameter(name: str, decl: dict[str, Any], kind: str, value: Any) -> None:
    where = f"for the template parameter '{name}' at line '1' and column '1'"
    if not _has_type(value, _PARAMETER_TYPES[kind]):
        expected = {"int": "Integer", "bool": "Boolean"}.get(kind, kind.removeprefix("secure").capitalize())
        raise _invalid(
            f"Template parameter JToken type is not valid. Expected '{expected}'. "
            f"Actual '{arm_type(value)}'. {PARAMETER_FILE_HELP}",
            name,
        )
    allowed = decl.get("allowedValues")
    if allowed is not None and not _allowed(value, allowed):
        shown = ",".join(to_text(v) for v in allowed)
        raise _invalid(
            f"The provided value '{to_text(value)}' {where} is not valid. The parameter value is not part "
            f"of the allowed value(s): '{shown}'.",
            name,
        )
    _check_bounds(name, decl, value, where)


def _allowed(value: Any, allowed: list[Any]) -> bool:
    if isinstance(value, list):  # for arrays, every element must be allowed
        return all(any(deep_equal(v, a) for a in allowed) for v in value)
    return any(deep_equal(value, a) for a in allowed)


def _check_bounds(name: str, decl: dict[str, Any], value: Any, where: str) -> None:
    if isinstance(value, str | list):
        if "minLength" in decl and len(value) < decl["minLength"]:
            raise _invalid(
                f"The provided value {where} is not valid. Length of the value should be greater than or "
                f"equal to '{decl['minLength']}'.",
                name,
            )
        if "maxLength" in decl and len(value) > decl["maxLength"]:
            raise _invalid(
                f"The provided value {where} is not valid. Length of the value should be less than or equal "
                f"to '{decl['maxLength']}'.",
                name,
            )
    if isinstance(value, int) and not isinstance(value, bool):
        if "minValue" in decl and value < decl["minValue"]:
            raise _invalid(
                f"The provided value '{value}' {where} is not valid. The value should be greater than or "
                f"equal to '{decl['minValue']}'.",
                name,
            )
        if "maxValue" in decl and value > decl["maxValue"]:
            raise _invalid(
                f"The provided value '{value}' {where} is not valid. The value should be less than or equal "
                f"to '{decl['maxValue']}'.",
                name,
            )
