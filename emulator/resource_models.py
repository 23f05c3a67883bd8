"""The shape of ACR Transfer's resource bodies, read from the official management SDK's generated models.

`azure-mgmt-containerregistry` (pinned in requirements-dev.txt) is generated from the same TypeSpec as the
REST spec: its ExportPipeline, ImportPipeline and PipelineRun models carry every property name, its nesting,
its type, whether it is required, whether it is read-only, and the enums. This module turns those models
into plain shapes once and checks a JSON body against them, the way the resource provider deserializes a
request: an unknown member, a wrong type or a value outside an enum is refused, naming the path. Read-only
members (provisioningState, response, principalId, ...) are accepted and ignored, as ARM does when a client
sends a GET body back. The service's own rules that no model states (name lengths, the artifact grammar,
limits) live in validation.py.
"""

from __future__ import annotations

import datetime
import functools
import sys
import types
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum
from typing import Any, Union

from azure.mgmt.containerregistry import models
from azure.mgmt.containerregistry._utils import model_base

EXPORT_PIPELINES = "Microsoft.ContainerRegistry/registries/exportPipelines"
IMPORT_PIPELINES = "Microsoft.ContainerRegistry/registries/importPipelines"
PIPELINE_RUNS = "Microsoft.ContainerRegistry/registries/pipelineRuns"

ROOT_MODELS: dict[str, type[model_base.Model]] = {
    EXPORT_PIPELINES.lower(): models.ExportPipeline,
    IMPORT_PIPELINES.lower(): models.ImportPipeline,
    PIPELINE_RUNS.lower(): models.PipelineRun,
}
# Members of a template resource or request that belong to ARM's envelope, not to the provider's model.
ENVELOPE = frozenset({"id", "name", "type", "apiVersion"})


@dataclass(frozen=True)
class Scalar:
    python: type
    enum: tuple[str, ...] | None = None  # closed set of values, compared case-insensitively like the SDK

    @property
    def label(self) -> str:
        return self.python.__name__


@dataclass(frozen=True)
class ListOf:
    item: Shape

    @property
    def label(self) -> str:
        return f"list of {self.item.label}"


@dataclass(frozen=True)
class MapOf:
    value: Shape

    @property
    def label(self) -> str:
        return f"map of {self.value.label}"


@dataclass(frozen=True)
class Member:
    shape: Shape
    required: bool
    read_only: bool


@dataclass(frozen=True)
class Model:
    name: str
    members: dict[str, Member]

    @property
    def label(self) -> str:
        return self.name


Shape = Scalar | ListOf | MapOf | Model


@dataclass(frozen=True)
class Problem:
    path: str
    message: str


def _hints(cls: type) -> dict[str, Any]:
    # The generated modules name their model types as "_models.X" under TYPE_CHECKING only.
    namespace = {**vars(sys.modules[cls.__module__]), "_models": models}
    return typing.get_type_hints(cls, namespace)


def _fields(cls: type) -> Iterator[tuple[str, model_base._RestField]]:
    for klass in reversed(cls.__mro__):
        for attribute, field in vars(klass).items():
            if isinstance(field, model_base._RestField):
                yield attribute, field


def _optional(annotation: Any) -> tuple[Any, bool]:
    """The annotation without None, and whether None was in it."""
    if typing.get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        rest = args[0] if len(args) == 1 else Union[tuple(args)]  # noqa: UP007 (built from a tuple)
        return rest, len(args) != len(typing.get_args(annotation))
    return annotation, False


def _shape(annotation: Any) -> Shape:
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType):
        enums = [a for a in typing.get_args(annotation) if isinstance(a, type) and issubclass(a, Enum)]
        if enums:  # Union[str, SomeEnum]: the SDK's "known values"
            return Scalar(str, tuple(str(member.value) for member in enums[0]))
        return Scalar(str)
    if origin is list:
        return ListOf(_shape(typing.get_args(annotation)[0]))
    if origin is dict:
        return MapOf(_shape(typing.get_args(annotation)[1]))
    if isinstance(annotation, type) and issubclass(annotation, model_base.Model):
        return model_of(annotation)
    if annotation in (datetime.datetime, datetime.date):
        return Scalar(str)
    if annotation in (str, int, float, bool):
        return Scalar(annotation)
    return Scalar(object)


@functools.cache
def model_of(cls: type[model_base.Model]) -> Model:
    hints = _hints(cls)
    members: dict[str, Member] = {}
    for attribute, field in _fields(cls):
        annotation, optional = _optional(hints[attribute])
        rest_name = field._rest_name_input or attribute
        read_only = (field._visibility or []) == ["read"]
        members[rest_name] = Member(_shape(annotation), required=not optional, read_only=read_only)
    return Model(cls.__name__, members)


def root(resource_type: str) -> Model:
    return model_of(ROOT_MODELS[resource_type.lower()])


def is_expression(value: object) -> bool:
    """An ARM template expression ("[...]", not the literal "[[..."), which stands for a value of any type."""
    return (
        isinstance(value, str)
        and value.startswith("[")
        and not value.startswith("[[")
        and value.endswith("]")
    )


def problems(resource_type: str, body: dict[str, Any], *, expressions: bool = False) -> list[Problem]:
    """Everything the provider's deserializer would refuse in a resource body, in document order.

    With `expressions`, a template expression is accepted wherever a value may stand (an unevaluated
    template resource); a request the provider receives has none.
    """
    found: list[Problem] = []
    _check({k: v for k, v in body.items() if k not in ENVELOPE}, root(resource_type), "", found, expressions)
    return found


def _join(path: str, member: str | int) -> str:
    if isinstance(member, int):
        return f"{path}[{member}]"
    return f"{path}.{member}" if path else member


def _check(value: Any, shape: Shape, path: str, found: list[Problem], expressions: bool) -> None:
    if expressions and is_expression(value):
        return
    if value is None:
        return  # null is "not given" to the deserializer; required members are checked by their parent
    if isinstance(shape, Model):
        _check_model(value, shape, path, found, expressions)
    elif isinstance(shape, ListOf):
        if not isinstance(value, list):
            found.append(Problem(path, f"expected a {shape.label}, got {_kind(value)}"))
            return
        for index, item in enumerate(value):
            _check(item, shape.item, _join(path, index), found, expressions)
    elif isinstance(shape, MapOf):
        if not isinstance(value, dict):
            found.append(Problem(path, f"expected a {shape.label}, got {_kind(value)}"))
            return
        for key, item in value.items():
            _check(item, shape.value, _join(path, key), found, expressions)
    else:
        _check_scalar(value, shape, path, found)


def _check_model(value: Any, shape: Model, path: str, found: list[Problem], expressions: bool) -> None:
    if not isinstance(value, dict):
        found.append(Problem(path, f"expected an object of type '{shape.name}', got {_kind(value)}"))
        return
    for key, item in value.items():
        member = shape.members.get(key)
        if member is None:
            found.append(
                Problem(_join(path, key), f"Could not find member '{key}' on object of type '{shape.name}'")
            )
        elif not member.read_only:
            _check(item, member.shape, _join(path, key), found, expressions)
    for key, member in shape.members.items():
        if member.required and not member.read_only and value.get(key) is None:
            found.append(Problem(_join(path, key), f"Required property '{key}' not found in '{shape.name}'"))


def _check_scalar(value: Any, shape: Scalar, path: str, found: list[Problem]) -> None:
    if shape.python is object:
        return
    wrong_type = (
        not isinstance(value, shape.python)
        or (shape.python is int and isinstance(value, bool))
        or (shape.python is float and not isinstance(value, int | float))
    )
    if wrong_type:
        found.append(Problem(path, f"expected {shape.label}, got {_kind(value)}"))
    elif shape.enum is not None and value.lower() not in {v.lower() for v in shape.enum}:
        found.append(
            Problem(path, f"Error converting value '{value}': allowed values are {', '.join(shape.enum)}")
        )


def _kind(value: Any) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}.get(
        type(value), type(value).__name__
    )
