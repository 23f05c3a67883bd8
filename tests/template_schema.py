"""Helpers for the ARM template tests: official schemas, an expression parser and a small evaluator.

The evaluator is deliberately small: it knows exactly the template functions the project's emulator
implements (``SUPPORTED_FUNCTIONS``), evaluates ``if()`` lazily as ARM does, and hands every ``reference()``
to a callback, so a test can see which resources a deployment would read and can make a read fail.
It is a test aid for the template files, not a deployment engine (no copy loops, no nested templates).
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import referencing
import referencing.exceptions
from referencing.jsonschema import DRAFT4

REPO_ROOT = Path(__file__).resolve().parents[1]
# The shared read-only reference sits beside the repository (also in CI, where the repo is cloned elsewhere).
SHARED_REFERENCE = REPO_ROOT.parent / "shared" / "reference"
ARM_SCHEMA_DIR = SHARED_REFERENCE / "arm-schemas"

EXPRESSION_URI = "https://schema.management.azure.com/schemas/common/definitions.json"
# What ARM treats as an expression: "[...]", but not "[[...", which is a literal string starting with "[".
EXPRESSION_PATTERN = r"^\[(?!\[)[\s\S]*\]$"

SUPPORTED_FUNCTIONS = frozenset(
    {
        "parameters",
        "variables",
        "concat",
        "format",
        "resourceId",
        "reference",
        "if",
        "equals",
        "empty",
        "not",
        "and",
        "or",
        "union",
        "createObject",
        "string",
        "toLower",
        "guid",
        "uniqueString",
        "subscription",
        "resourceGroup",
        "utcNow",
        "length",
        "contains",
    }
)

# Keys of a template resource that belong to the deployment engine, not to the resource's own schema.
ENVELOPE_KEYS = frozenset({"condition", "dependsOn", "comments", "copy", "metadata"})


class SharedReferenceMissing(RuntimeError):
    pass


def require_shared_reference() -> Path:
    if not ARM_SCHEMA_DIR.is_dir():
        raise SharedReferenceMissing(
            f"The shared reference folder is missing: expected {ARM_SCHEMA_DIR} (the 'shared' folder "
            f"must sit beside the repository at {REPO_ROOT}). The template tests validate against the "
            "official ARM schemas in it and cannot run without them."
        )
    return ARM_SCHEMA_DIR


# ---------------------------------------------------------------------------------------------------------
# Schemas


def is_expression(value: object) -> bool:
    return isinstance(value, str) and re.match(EXPRESSION_PATTERN, value) is not None


def _strict(schema: Any) -> Any:
    """A copy in which every object definition with declared properties rejects unknown properties."""
    if isinstance(schema, dict):
        out = {key: _strict(value) for key, value in schema.items()}
        if out.get("type") == "object" and "properties" in out and "additionalProperties" not in out:
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [_strict(item) for item in schema]
    return schema


@dataclass(frozen=True)
class ProviderSchema:
    """The official ARM schema of one provider and API version, resolvable offline."""

    document: dict[str, Any]
    registry: referencing.Registry
    base_uri: str

    def resource_types(self) -> dict[str, str]:
        """Maps resource type (e.g. Microsoft.ContainerRegistry/registries/pipelineRuns) to its definition."""
        types = {}
        for key, definition in self.document["resourceDefinitions"].items():
            (type_name,) = definition["properties"]["type"]["enum"]
            types[type_name] = key
        return types

    def validator(self, pointer: str) -> jsonschema.Draft4Validator:
        return jsonschema.Draft4Validator({"$ref": f"{self.base_uri}#{pointer}"}, registry=self.registry)

    def errors(self, pointer: str, instance: object) -> list[str]:
        found = sorted(self.validator(pointer).iter_errors(instance), key=lambda e: list(e.absolute_path))
        return [_describe(error) for error in found]


def _describe(error: jsonschema.ValidationError) -> str:
    path = "/".join(str(part) for part in error.absolute_path) or "<root>"
    detail = error.message
    if error.context:  # oneOf: say why each alternative failed
        detail += " [" + "; ".join(sorted({sub.message for sub in error.context})) + "]"
    return f"{path}: {detail}"


def _retrieve(uri: str) -> referencing.Resource:
    raise referencing.exceptions.NoSuchResource(
        ref=f"{uri} (remote schema references are not fetched; register it in load_provider_schema)"
    )


def load_provider_schema(file_name: str, *, strict: bool = True) -> ProviderSchema:
    path = require_shared_reference() / file_name
    document = json.loads(path.read_text(encoding="utf-8"))
    if strict:
        document = _strict(document)
    base_uri = document["id"].rstrip("#")
    expression = {"definitions": {"expression": {"type": "string", "pattern": EXPRESSION_PATTERN}}}
    registry = referencing.Registry(retrieve=_retrieve).with_resources(
        [
            (base_uri, DRAFT4.create_resource(document)),
            (EXPRESSION_URI, DRAFT4.create_resource(expression)),
        ]
    )
    return ProviderSchema(document=document, registry=registry, base_uri=base_uri)


# ---------------------------------------------------------------------------------------------------------
# Expressions


@dataclass(frozen=True)
class Call:
    name: str
    args: tuple[Node, ...]


@dataclass(frozen=True)
class Literal:
    value: object


@dataclass(frozen=True)
class Member:
    target: Node
    name: str


@dataclass(frozen=True)
class Index:
    target: Node
    index: Node


Node = Call | Literal | Member | Index

_TOKEN = re.compile(
    r"\s*(?:(?P<string>'(?:[^']|'')*')|(?P<number>-?\d+)|(?P<name>[A-Za-z_][A-Za-z0-9_]*)|(?P<punct>[(),.\[\]]))"
)


class ExpressionError(ValueError):
    pass


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens, position = [], 0
    while position < len(text):
        if text[position:].strip() == "":
            break
        match = _TOKEN.match(text, position)
        if not match:
            raise ExpressionError(f"cannot parse {text!r} at {position}: {text[position : position + 20]!r}")
        kind = match.lastgroup
        assert kind is not None
        tokens.append((kind, match.group(kind)))
        position = match.end()
    return tokens


def parse_expression(text: str) -> Node:
    """Parses the inside of an ARM expression string, e.g. ``concat(parameters('a'), 'b')``."""
    tokens = _tokens(text)
    position = 0

    def peek() -> tuple[str, str] | None:
        return tokens[position] if position < len(tokens) else None

    def take(expected: str | None = None) -> tuple[str, str]:
        nonlocal position
        token = peek()
        if token is None or (expected is not None and token[1] != expected):
            raise ExpressionError(f"in {text!r}: expected {expected or 'a token'}, found {token}")
        position += 1
        return token

    def primary() -> Node:
        kind, value = take()
        if kind == "string":
            node: Node = Literal(value[1:-1].replace("''", "'"))
        elif kind == "number":
            node = Literal(int(value))
        elif kind == "name" and value in ("true", "false") and (peek() or ("", ""))[1] != "(":
            node = Literal(value == "true")
        elif kind == "name":
            take("(")
            args: list[Node] = []
            if (peek() or ("", ""))[1] != ")":
                args.append(primary())
                while (peek() or ("", ""))[1] == ",":
                    take(",")
                    args.append(primary())
            take(")")
            node = Call(value, tuple(args))
        else:
            raise ExpressionError(f"in {text!r}: unexpected {value!r}")
        while (peek() or ("", ""))[1] in (".", "["):
            if take()[1] == ".":
                node = Member(node, take()[1])
            else:
                node = Index(node, primary())
                take("]")
        return node

    node = primary()
    if peek() is not None:
        raise ExpressionError(f"in {text!r}: unexpected trailing {peek()}")
    return node


def walk_nodes(node: Node) -> Iterator[Node]:
    yield node
    if isinstance(node, Call):
        for arg in node.args:
            yield from walk_nodes(arg)
    elif isinstance(node, Member):
        yield from walk_nodes(node.target)
    elif isinstance(node, Index):
        yield from walk_nodes(node.target)
        yield from walk_nodes(node.index)


def expressions_in(value: object, path: str = "") -> Iterator[tuple[str, Node]]:
    """Every ARM expression in a JSON value (keys included), with its JSON path."""
    if isinstance(value, str):
        if is_expression(value):
            yield path, parse_expression(value[1:-1])
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from expressions_in(key, f"{path}/{key}(key)")
            yield from expressions_in(item, f"{path}/{key}")
    elif isinstance(value, list):
        for number, item in enumerate(value):
            yield from expressions_in(item, f"{path}/{number}")


def calls_in(value: object) -> Iterator[tuple[str, Call]]:
    for path, node in expressions_in(value):
        for sub in walk_nodes(node):
            if isinstance(sub, Call):
                yield path, sub


# ---------------------------------------------------------------------------------------------------------
# Evaluation


class DeploymentError(RuntimeError):
    pass


@dataclass(frozen=True)
class Scope:
    subscription_id: str = "00000000-0000-0000-0000-000000000000"
    tenant_id: str = "11111111-1111-1111-1111-111111111111"
    resource_group: str = "transfer-rg"
    location: str = "westeurope"
    now: str = "20260101T000000Z"


Reference = Callable[[str, "str | None", bool], Any]


@dataclass
class Evaluation:
    """Parameters, variables, the resources that would be deployed, and outputs of one template."""

    parameters: dict[str, Any]
    resources: list[dict[str, Any]]
    skipped: list[dict[str, Any]]
    outputs: dict[str, Any]
    references: list[tuple[str, str | None, bool]] = field(default_factory=list)

    def resource(self, resource_type: str) -> dict[str, Any]:
        matches = [r for r in self.resources if r["type"] == resource_type]
        assert len(matches) == 1, f"expected one deployed {resource_type}, found {len(matches)}"
        return matches[0]

    def deployed_types(self) -> list[str]:
        return [r["type"] for r in self.resources]


def _lookup(value: Any, name: str) -> Any:
    if not isinstance(value, Mapping):
        raise DeploymentError(f"cannot read property {name!r} of {value!r}")
    for key, item in value.items():
        if key.lower() == name.lower():  # ARM property access is case-insensitive
            return item
    raise DeploymentError(f"the object has no property {name!r} (has {sorted(value)})")


def _is_empty(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, str | list | dict):
        return len(value) == 0
    raise DeploymentError(f"empty() of {value!r}")


def _union(*values: Any) -> Any:
    if all(isinstance(v, Mapping) for v in values):
        merged: dict[str, Any] = {}
        for value in values:
            for key, item in value.items():
                if isinstance(item, Mapping) and isinstance(merged.get(key), Mapping):
                    merged[key] = _union(merged[key], item)
                else:
                    merged[key] = copy.deepcopy(item)
        return merged
    if all(isinstance(v, list) for v in values):
        out: list[Any] = []
        for value in values:
            out.extend(item for item in value if item not in out)
        return out
    raise DeploymentError(f"union() of mixed types: {values!r}")


def _format(template: str, *args: Any) -> str:
    def replace(match: re.Match[str]) -> str:
        number = int(match.group(1))
        if number >= len(args):
            raise DeploymentError(f"format({template!r}) has no argument {number}")
        return _to_string(args[number])

    return re.sub(r"\{(\d+)\}", replace, template)


def _to_string(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


class Evaluator:
    def __init__(
        self,
        template: dict[str, Any],
        parameters: Mapping[str, Any],
        reference: Reference,
        scope: Scope | None = None,
    ) -> None:
        self.template = template
        self.scope = scope or Scope()
        self.reference_fn = reference
        self.references: list[tuple[str, str | None, bool]] = []
        self._variables: dict[str, Any] = {}
        self._evaluating: set[str] = set()
        self.parameters = self._bind_parameters(dict(parameters))

    # -- parameters

    def _bind_parameters(self, given: dict[str, Any]) -> dict[str, Any]:
        declared = self.template.get("parameters", {})
        unknown = set(given) - set(declared)
        if unknown:
            raise DeploymentError(f"parameters not declared by the template: {sorted(unknown)}")
        bound: dict[str, Any] = {}
        self.parameters = bound
        for name, spec in declared.items():
            if name in given:
                value = given[name]
            elif "defaultValue" in spec:
                value = self.value(spec["defaultValue"], allow_utc_now=True)
            else:
                raise DeploymentError(f"missing value for parameter {name!r}")
            check_parameter_value(name, spec, value)
            bound[name] = value
        return bound

    # -- values

    def value(self, value: Any, *, allow_utc_now: bool = False) -> Any:
        if isinstance(value, str):
            if is_expression(value):
                return self.node(parse_expression(value[1:-1]), allow_utc_now=allow_utc_now)
            if value.startswith("[["):
                return value[1:]
            return value
        if isinstance(value, dict):
            return {
                self.value(key, allow_utc_now=allow_utc_now): self.value(item, allow_utc_now=allow_utc_now)
                for key, item in value.items()
            }
        if isinstance(value, list):
            return [self.value(item, allow_utc_now=allow_utc_now) for item in value]
        return value

    def variable(self, name: str) -> Any:
        if name in self._variables:
            return self._variables[name]
        declared = self.template.get("variables", {})
        if name not in declared:
            raise DeploymentError(f"variables({name!r}) is not declared")
        if name in self._evaluating:
            raise DeploymentError(f"variable {name!r} refers to itself")
        self._evaluating.add(name)
        try:
            result = self.value(declared[name])
        finally:
            self._evaluating.discard(name)
        self._variables[name] = result
        return result

    def node(self, node: Node, *, allow_utc_now: bool = False) -> Any:
        if isinstance(node, Literal):
            return node.value
        if isinstance(node, Member):
            return _lookup(self.node(node.target), node.name)
        if isinstance(node, Index):
            target, index = self.node(node.target), self.node(node.index)
            if isinstance(target, list) and isinstance(index, int):
                return target[index]
            return _lookup(target, str(index))
        name = node.name
        if name not in SUPPORTED_FUNCTIONS:
            raise DeploymentError(f"function {name}() is not supported by the emulator")
        if name == "if":  # lazy, as in ARM: only the chosen branch is evaluated
            condition, when_true, when_false = node.args
            chosen = when_true if self._bool(self.node(condition)) else when_false
            return self.node(chosen)
        if name == "utcNow" and not allow_utc_now:
            raise DeploymentError("utcNow() is only allowed in parameter default values")
        args = [self.node(arg, allow_utc_now=allow_utc_now) for arg in node.args]
        return self._call(name, args)

    @staticmethod
    def _bool(value: Any) -> bool:
        if not isinstance(value, bool):
            raise DeploymentError(f"expected a boolean, got {value!r}")
        return value

    def _call(self, name: str, args: list[Any]) -> Any:
        scope = self.scope
        if name == "parameters":
            if args[0] not in self.parameters:
                raise DeploymentError(f"parameters({args[0]!r}) is not declared")
            return self.parameters[args[0]]
        if name == "variables":
            return self.variable(args[0])
        if name == "concat":
            if all(isinstance(a, list) for a in args):
                return [item for a in args for item in a]
            return "".join(_to_string(a) for a in args)
        if name == "format":
            return _format(*args)
        if name == "resourceId":
            return self.resource_id(*args)
        if name == "reference":
            resource, api_version = args[0], args[1] if len(args) > 1 else None
            full = len(args) > 2 and str(args[2]).lower() == "full"
            self.references.append((resource, api_version, full))
            return self.reference_fn(resource, api_version, full)
        if name == "equals":
            return args[0] == args[1]
        if name == "empty":
            return _is_empty(args[0])
        if name == "not":
            return not self._bool(args[0])
        # and() / or() evaluate every argument here, so no template relies on short-circuiting.
        if name == "and":
            return all(self._bool(a) for a in args)
        if name == "or":
            return any(self._bool(a) for a in args)
        if name == "union":
            return _union(*args)
        if name == "createObject":
            if len(args) % 2:
                raise DeploymentError("createObject() needs key/value pairs")
            return {_to_string(args[i]): args[i + 1] for i in range(0, len(args), 2)}
        if name == "string":
            return _to_string(args[0])
        if name == "toLower":
            return _to_string(args[0]).lower()
        if name == "guid":
            return str(uuid.uuid5(uuid.NAMESPACE_URL, "|".join(_to_string(a) for a in args)))
        if name == "uniqueString":
            digest = hashlib.sha256("|".join(_to_string(a) for a in args).encode()).hexdigest()
            return format(int(digest[:16], 16), "013x")[:13]
        if name == "subscription":
            return {
                "id": f"/subscriptions/{scope.subscription_id}",
                "subscriptionId": scope.subscription_id,
                "tenantId": scope.tenant_id,
                "displayName": "test subscription",
            }
        if name == "resourceGroup":
            return {
                "id": f"/subscriptions/{scope.subscription_id}/resourceGroups/{scope.resource_group}",
                "name": scope.resource_group,
                "location": scope.location,
                "properties": {"provisioningState": "Succeeded"},
            }
        if name == "utcNow":
            return scope.now
        if name == "length":
            return len(args[0])
        if name == "contains":
            container, item = args
            if isinstance(container, str):
                return str(item).lower() in container.lower()
            if isinstance(container, dict):
                return any(str(item).lower() == key.lower() for key in container)
            return item in container
        raise AssertionError(name)  # pragma: no cover - SUPPORTED_FUNCTIONS and this table agree

    def resource_id(self, *args: Any) -> str:
        strings = [_to_string(a) for a in args]
        type_at = next((i for i, a in enumerate(strings) if "/" in a), None)
        if type_at is None or type_at > 2:
            raise DeploymentError(f"resourceId{tuple(strings)}: no resource type")
        subscription, group = self.scope.subscription_id, self.scope.resource_group
        if type_at == 1:
            group = strings[0]
        elif type_at == 2:
            subscription, group = strings[0], strings[1]
        resource_type, names = strings[type_at], strings[type_at + 1 :]
        namespace, *types = resource_type.split("/")
        if len(names) != len(types) or any(not n for n in names):
            raise DeploymentError(f"resourceId{tuple(strings)}: the names do not fit the type (empty name?)")
        path = "/".join(f"{t}/{n}" for t, n in zip(types, names, strict=True))
        return f"/subscriptions/{subscription}/resourceGroups/{group}/providers/{namespace}/{path}"

    # -- the whole template

    def run(self) -> Evaluation:
        deployed, skipped = [], []
        for resource in self.template.get("resources", []):
            condition = self.value(resource.get("condition", True))
            # ARM resolves the name of every resource, deployed or not.
            name = self.value(resource["name"])
            if not condition:
                skipped.append({"type": resource["type"], "name": name})
                continue
            inner = _inner_template(resource)
            body = {key: item for key, item in resource.items() if key != "condition"}
            if inner is not None:  # evaluated in its own scope, by its own deployment: keep it as written
                body["properties"] = {k: v for k, v in body["properties"].items() if k != "template"}
            evaluated = {key: self.value(item) for key, item in body.items()}
            if inner is not None:
                evaluated["properties"]["template"] = inner
            deployed.append(evaluated)
        outputs = {name: self.value(spec["value"]) for name, spec in self.template.get("outputs", {}).items()}
        return Evaluation(self.parameters, deployed, skipped, outputs, self.references)


def _inner_template(resource: Mapping[str, Any]) -> dict[str, Any] | None:
    """The template of a nested deployment whose expressions are evaluated in its own (inner) scope."""
    if resource.get("type", "").lower() != "microsoft.resources/deployments":
        return None
    properties = resource.get("properties", {})
    if properties.get("expressionEvaluationOptions", {}).get("scope", "").lower() != "inner":
        return None
    template = properties.get("template")
    return template if isinstance(template, dict) else None


def template_scopes(template: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """The template itself (nested inner-scope templates cut out) and each nested inner-scope template."""
    outer = copy.deepcopy(template)
    for number, resource in enumerate(outer.get("resources", [])):
        inner = _inner_template(resource)
        if inner is not None:
            del resource["properties"]["template"]
            yield from ((f"resources/{number}/{where}", t) for where, t in template_scopes(inner))
    yield "", outer


def check_parameter_value(name: str, spec: Mapping[str, Any], value: Any) -> None:
    """The parameter checks ARM itself makes before a deployment starts."""
    expected = {"string": str, "securestring": str, "array": list, "object": dict, "bool": bool, "int": int}
    kind = spec["type"].lower()
    if not isinstance(value, expected[kind]):
        raise DeploymentError(f"parameter {name!r}: expected {kind}, got {value!r}")
    allowed = spec.get("allowedValues")
    if allowed is not None:
        items = value if kind == "array" else [value]
        bad = [item for item in items if item not in allowed]
        if bad:
            raise DeploymentError(f"parameter {name!r}: {bad} not in allowed values {allowed}")
    if isinstance(value, str | list):
        if "minLength" in spec and len(value) < spec["minLength"]:
            raise DeploymentError(f"parameter {name!r}: shorter than {spec['minLength']}")
        if "maxLength" in spec and len(value) > spec["maxLength"]:
            raise DeploymentError(f"parameter {name!r}: longer than {spec['maxLength']}")


def evaluate(
    template: dict[str, Any],
    parameters: Mapping[str, Any],
    reference: Reference,
    scope: Scope | None = None,
) -> Evaluation:
    return Evaluator(template, parameters, reference, scope).run()
