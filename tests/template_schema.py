"""Helpers for the ARM template tests: the official schemas offline, and static scans of template files.

Templates are evaluated by the emulator's own ARM engine (``emulator.arm_template``); this module holds
nothing that evaluates an expression. It loads the official ARM schemas from the shared reference folder
(the remote ``common/definitions.json#/definitions/expression`` reference resolved locally), says what an
ARM expression string is, lists the template functions the emulator's engine implements, and scans a
template for the function calls in it (keys included, with their JSON paths), using the engine's parser.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema
import referencing
import referencing.exceptions
from referencing.jsonschema import DRAFT4

from emulator import arm_template
from emulator.arm_expressions import Call, calls, parse

REPO_ROOT = Path(__file__).resolve().parents[1]
# The shared read-only reference sits beside the repository (also in CI, where the repo is cloned elsewhere).
SHARED_REFERENCE = REPO_ROOT.parent / "shared" / "reference"
ARM_SCHEMA_DIR = SHARED_REFERENCE / "arm-schemas"

EXPRESSION_URI = "https://schema.management.azure.com/schemas/common/definitions.json"
# What ARM treats as an expression: "[...]", but not "[[...", which is a literal string starting with "[".
EXPRESSION_PATTERN = r"^\[(?!\[)[\s\S]*\]$"

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
# The emulator's functions, and scans of a template file


def emulator_functions() -> frozenset[str]:
    """Lower-case names of the template functions the emulator's engine implements: its own table.

    The engine builds its table per deployment (the built-ins plus the functions that need the deployment,
    such as parameters() or reference()), so it is read from the engine set up for an empty template.
    """
    empty = {"$schema": "", "contentVersion": "1.0.0.0", "resources": []}
    context = arm_template.DeploymentContext(
        subscription_id="00000000-0000-0000-0000-000000000000",
        resource_group="rg",
        location="westeurope",
        deployment_name="functions",
        tenant_id="00000000-0000-0000-0000-000000000000",
        now=datetime(2026, 1, 1, tzinfo=UTC),
        reference=lambda resource, api_version, full: {},
    )
    evaluator = arm_template._Deployment(empty, {}, context).evaluator
    return frozenset(evaluator.functions) | frozenset(evaluator.lazy)


def expressions_in(value: object, path: str = "") -> Iterator[tuple[str, str]]:
    """Every ARM expression string in a JSON value (keys included), with its JSON path."""
    if isinstance(value, str):
        if is_expression(value):
            yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from expressions_in(key, f"{path}/{key}(key)")
            yield from expressions_in(item, f"{path}/{key}")
    elif isinstance(value, list):
        for number, item in enumerate(value):
            yield from expressions_in(item, f"{path}/{number}")


def calls_in(value: object) -> Iterator[tuple[str, Call]]:
    """Every function call in a JSON value, parsed by the emulator's parser, with its JSON path."""
    for path, text in expressions_in(value):
        for call in calls(parse(text)):
            yield path, call


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
