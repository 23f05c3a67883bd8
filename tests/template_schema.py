"""Helpers for the ARM template tests: static scans of template files, and the functions the emulator's
engine implements.

Templates are evaluated by the emulator's own ARM engine (``emulator.arm_template``) and the resource bodies
they render are judged by the emulator's own validation (``emulator.validation``, whose shapes come from the
official management SDK's models): this module holds nothing that evaluates an expression or a body. It
says what an ARM expression string is, lists the template functions the engine implements, and scans a
template for the function calls in it (keys included, with their JSON paths), using the engine's parser.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from emulator import arm_template
from emulator.arm_expressions import Call, calls, parse

REPO_ROOT = Path(__file__).resolve().parents[1]

# What ARM treats as an expression: "[...]", but not "[[...", which is a literal string starting with "[".
EXPRESSION_PATTERN = r"^\[(?!\[)[\s\S]*\]$"

# Keys of a template resource that belong to the deployment engine, not to the resource's own schema.
ENVELOPE_KEYS = frozenset({"condition", "dependsOn", "comments", "copy", "metadata"})


def is_expression(value: object) -> bool:
    return isinstance(value, str) and re.match(EXPRESSION_PATTERN, value) is not None


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
