"""Unit tests of the emulator's ARM template engine: expressions, parameters, resources, outputs."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from emulator.arm_expressions import murmur64
from emulator.arm_template import (
    DeploymentContext,
    DeploymentOutcome,
    PlannedResource,
    TemplateError,
    deploy,
    validate,
)

SUB = "00000000-0000-0000-0000-0000000000aa"
RG = "rg1"
GROUP_ID = f"/subscriptions/{SUB}/resourceGroups/{RG}"
NOW = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
SCHEMA = "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#"


class FakeArm:
    """Records PUTs and answers reference() from them and from seeded resources."""

    def __init__(self, seeded: dict[str, dict[str, Any]] | None = None) -> None:
        self.resources = {k.lower(): v for k, v in (seeded or {}).items()}
        self.puts: list[PlannedResource] = []
        self.references: list[tuple[str, str | None, bool]] = []

    def put(self, planned: PlannedResource) -> dict[str, Any]:
        self.puts.append(planned)
        body = json.loads(json.dumps(planned.body))
        body["id"] = planned.resource_id
        if body.get("identity", {}).get("type") == "SystemAssigned":
            body["identity"]["principalId"] = "system-principal"
        self.resources[planned.resource_id.lower()] = body
        return body

    def reference(self, resource_id: str, api_version: str | None, full: bool) -> dict[str, Any]:
        self.references.append((resource_id, api_version, full))
        resource = self.resources.get(resource_id.lower())
        if resource is None:
            raise TemplateError("ResourceNotFound", f"The Resource '{resource_id}' was not found.")
        return resource if full else resource.get("properties", {})

    def body(self, type_suffix: str) -> dict[str, Any]:
        return next(p.body for p in self.puts if p.type.endswith(type_suffix))


def context(arm: FakeArm | None = None) -> DeploymentContext:
    arm = arm or FakeArm()
    return DeploymentContext(SUB, RG, "eastus", "dep1", "tenant1", NOW, arm.reference)


def make_template(
    resources: list[dict[str, Any]] | None = None,
    parameters: dict[str, Any] | None = None,
    variables: dict[str, Any] | None = None,
    outputs: dict[str, Any] | None = None,
) -> dict[str, Any]:
    template: dict[str, Any] = {"$schema": SCHEMA, "contentVersion": "1.0.0.0", "resources": resources or []}
    for key, value in (("parameters", parameters), ("variables", variables), ("outputs", outputs)):
        if value is not None:
            template[key] = value
    return template


def thing(name: str, **extra: Any) -> dict[str, Any]:
    return {"type": "Microsoft.Test/things", "apiVersion": "2024-01-01", "name": name, **extra}


def run(
    template: dict[str, Any], values: dict[str, Any] | None = None, arm: FakeArm | None = None
) -> DeploymentOutcome:
    arm = arm or FakeArm()
    parameters = {name: {"value": value} for name, value in (values or {}).items()}
    return deploy(template, parameters, context(arm), arm.put)


def value_of(expression: Any, arm: FakeArm | None = None, **kwargs: Any) -> Any:
    """Deploy one resource whose property 'v' is the expression; return what was PUT."""
    arm = arm or FakeArm()
    values = kwargs.pop("values", None)
    run(make_template([thing("t", properties={"v": expression})], **kwargs), values, arm)
    return arm.puts[-1].body["properties"]["v"]


def error_of(action: Callable[[], Any]) -> TemplateError:
    with pytest.raises(TemplateError) as caught:
        action()
    return caught.value


def invalid(expression: Any, **kwargs: Any) -> TemplateError:
    return error_of(lambda: value_of(expression, **kwargs))


# --------------------------------------------------------------------------------------------------------
# Syntax


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("plain", "plain"),
        ("[[not an expression]", "[not an expression]"),
        ("[[", "[["),
        ("[half", "[half"),
        ("half]", "half]"),
        ("['literal']", "literal"),
        ("[concat('it''s', ' ok')]", "it's ok"),
        ("[concat('[', ']')]", "[]"),
        ("[  concat( 'a' ,  'b' )  ]", "ab"),
        ("[add(-1, 3)]", 2),
        ("[CONCAT('a', 'b')]", "ab"),
    ],
)
def test_literals_escapes_and_whitespace(text: str, expected: Any) -> None:
    assert value_of(text) == expected


def test_expressions_are_evaluated_inside_objects_and_arrays() -> None:
    assert value_of({"a": ["[concat('x', 'y')]", {"b": "[add(1, 1)]"}], "c": 5}) == {
        "a": ["xy", {"b": 2}],
        "c": 5,
    }


def test_a_property_name_may_be_an_expression() -> None:
    # The official ACR templates key userAssignedIdentities by the identity's id, given as a parameter.
    identity = f"{GROUP_ID}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/uai1"
    template = make_template(
        [thing("t", identity="[variables('userIdentity')]")],
        parameters={"userAssignedIdentity": {"type": "string"}},
        variables={
            "userIdentity": {
                "type": "UserAssigned",
                "userAssignedIdentities": {"[parameters('userAssignedIdentity')]": {}},
            }
        },
    )
    arm = FakeArm()
    run(template, {"userAssignedIdentity": identity}, arm)
    assert arm.puts[0].body["identity"] == {"type": "UserAssigned", "userAssignedIdentities": {identity: {}}}


def test_a_property_name_expression_must_give_a_string_and_escapes_stay_literal() -> None:
    assert value_of({"[[literal]": 1, "[concat('a', 'b')]": 2}) == {"[literal]": 1, "ab": 2}
    assert "must evaluate to a string" in invalid({"[add(1, 2)]": True}).message


def test_a_property_name_expression_is_checked_before_the_deployment() -> None:
    template = make_template([thing("t", properties={"[noSuchFunction()]": 1})])
    assert "noSuchFunction" in error_of(lambda: validate(template, {}, context())).message


def test_property_and_index_access() -> None:
    obj = "createObject('Items', createArray(1, createObject('name', 'x')), 'key', 'v')"
    assert value_of(f"[{obj}.Items[1].name]") == "x"
    assert value_of(f"[{obj}.items[0]]") == 1  # property names are case-insensitive
    assert value_of(f"[{obj}['key']]") == "v"
    assert value_of(f"[{obj}[concat('ke', 'y')]]") == "v"
    assert value_of(f"[{obj}.?missing]") is None
    assert value_of("[json('[[1,2],[3]]')[1][0]]") == 3


def test_missing_property_names_the_available_ones() -> None:
    error = invalid("[createObject('a', 1, 'b', 2).nope]")
    assert error.code == "InvalidTemplate"
    assert (
        "The language expression property 'nope' doesn't exist, available properties are 'a, b'."
        in error.message
    )


def test_index_out_of_bounds() -> None:
    assert "array index '2' is out of bounds" in invalid("[createArray(1, 2)[2]]").message


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("[concat('a']", "Unable to parse language expression"),
        ("[concat('a')) ]", "expected token 'EndOfData'"),
        ("[concat('a' 'b')]", "expected token 'RightParenthesis'"),
        ("[concat('unclosed)]", "not closed"),
        ("[true]", "expected token 'LeftParenthesis'"),
        ("[concat(#)]", "the string character '#'"),
    ],
)
def test_syntax_errors_are_invalid_template(text: str, fragment: str) -> None:
    error = invalid(text)
    assert error.code == "InvalidTemplate"
    assert fragment in error.message


def test_unknown_function_fails_validation_even_in_an_untaken_branch() -> None:
    template = make_template([thing("t", properties={"v": "[if(true(), 'a', foo('x'))]"})])
    error = error_of(lambda: validate(template, {}, context()))
    assert error.code == "InvalidTemplate"
    assert (
        "The template function 'foo' is not valid. Please see https://aka.ms/arm-functions" in error.message
    )


def test_wrong_argument_count() -> None:
    assert "expects 2 parameter(s) but was given 1" in invalid("[equals('a')]").message


# --------------------------------------------------------------------------------------------------------
# Functions


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[concat('a', 'b', 'c')]", "abc"),
        ("[concat('n', 1, true())]", "n1True"),
        ("[concat(createArray(1, 2), createArray(3))]", [1, 2, 3]),
        ("[format('{0}-{1}', 'a', 2)]", "a-2"),
        ("[format('{{{0}}}', 'x')]", "{x}"),
        ("[format('{0:D3}|{1}', 7, true())]", "007|True"),
        ("[format('{0,4}|{0,-3}|', 'ab')]", "  ab|ab |"),
        ("[if(equals(1, 1), 'yes', 'no')]", "yes"),
        ("[equals(createObject('a', createArray(1)), createObject('A', createArray(1)))]", True),
        ("[equals('abc', 'ABC')]", False),
        ("[equals(1, '1')]", False),
        ("[equals(true(), 1)]", False),
        ("[empty('')]", True),
        ("[empty(createArray())]", True),
        ("[empty(createObject())]", True),
        ("[empty(null())]", True),
        ("[empty(' ')]", False),
        ("[not(false())]", True),
        ("[and(true(), true(), false())]", False),
        ("[or(false(), true())]", True),
        (
            "[union(createObject('a', 1, 'n', createObject('x', 1)), "
            "createObject('b', 2, 'n', createObject('y', 2)))]",
            {"a": 1, "n": {"x": 1, "y": 2}, "b": 2},
        ),
        ("[union(createObject('a', 1), createObject('a', 3))]", {"a": 3}),
        ("[union(createArray(1, 2), createArray(2, 3))]", [1, 2, 3]),
        ("[createObject('k', createArray('v'))]", {"k": ["v"]}),
        ("[string(true())]", "True"),
        ("[string(createObject('a', 1, 'b', 'x'))]", '{"a":1,"b":"x"}'),
        ("[string(createArray(1, 'two'))]", '[1,"two"]'),
        ("[string(12)]", "12"),
        ("[toLower('AbC')]", "abc"),
        ("[toUpper('AbC')]", "ABC"),
        ("[length('abcd')]", 4),
        ("[length(createArray(1, 2))]", 2),
        ("[length(createObject('a', 1))]", 1),
        ("[contains('OneTwo', 'Two')]", True),
        ("[contains('OneTwo', 'two')]", False),
        ("[contains(createArray('a', 'b'), 'b')]", True),
        ("[contains(createObject('Key', 1), 'key')]", True),
        ("[first(createArray('x', 'y'))]", "x"),
        ("[first('abc')]", "a"),
        ("[last(createArray('x', 'y'))]", "y"),
        ("[last('abc')]", "c"),
        ("[coalesce(null(), null(), 'z')]", "z"),
        ("[int('42')]", 42),
        ("[int(' -7 ')]", -7),
        ("[bool('TRUE')]", True),
        ("[bool(0)]", False),
        ("[json('{\"a\": [1, null]}')]", {"a": [1, None]}),
        ("[json('null')]", None),
        ("[replace('a-b-c', '-', '')]", "abc"),
        ("[split('a,b;c', createArray(',', ';'))]", ["a", "b", "c"]),
        ("[split('a/b', '/')]", ["a", "b"]),
        ("[substring('abcdef', 2)]", "cdef"),
        ("[substring('abcdef', 1, 3)]", "bcd"),
        ("[startsWith('AbcDef', 'abc')]", True),
        ("[endsWith('AbcDef', 'DEF')]", True),
        ("[trim('  x y  ')]", "x y"),
        ("[skip(createArray(1, 2, 3), 1)]", [2, 3]),
        ("[skip('abc', 5)]", ""),
        ("[take(createArray(1, 2, 3), 2)]", [1, 2]),
        ("[take('abc', 0)]", ""),
        ("[array('x')]", ["x"]),
        ("[array(createArray(1))]", [1]),
        ("[true()]", True),
        ("[false()]", False),
        ("[null()]", None),
        ("[indexOf('abcABC', 'C')]", 2),
        ("[lastIndexOf('abcABC', 'c')]", 5),
        ("[padLeft('7', 3, '0')]", "007"),
        ("[base64('hi')]", "aGk="),
        ("[base64ToString('aGk=')]", "hi"),
        ("[uriComponent('a b/c')]", "a%20b%2Fc"),
        ("[uri('https://x.net/a/', 'b')]", "https://x.net/a/b"),
        ("[min(3, 1, 2)]", 1),
        ("[max(createArray(3, 9))]", 9),
        ("[range(2, 3)]", [2, 3, 4]),
        ("[div(-7, 2)]", -3),
        ("[mod(-7, 2)]", -1),
        ("[sub(mul(2, 3), add(1, 1))]", 4),
        ("[less('a', 'b')]", True),
        ("[greaterOrEquals(2, 2)]", True),
        ("[intersection(createArray(1, 2, 3), createArray(2, 3, 4))]", [2, 3]),
        ("[items(createObject('b', 2, 'a', 1))]", [{"key": "a", "value": 1}, {"key": "b", "value": 2}]),
        ("[dateTimeAdd('2026-01-31T00:00:00Z', 'P1M')]", "2026-02-28T00:00:00Z"),
        ("[dateTimeAdd('2026-01-01T00:00:00Z', '-PT1H30M', 'yyyy-MM-dd HH:mm')]", "2025-12-31 22:30"),
        ("[dateTimeToEpoch(dateTimeFromEpoch(1700000000))]", 1700000000),
    ],
)
def test_function(text: str, expected: Any) -> None:
    assert value_of(text) == expected


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("[substring('abc', 4)]", "out of range"),
        ("[int('x1')]", "not a valid integer"),
        ("[json('{')]", "not valid JSON"),
        ("[not('true')]", "expected a value of type 'Boolean' but received 'String'"),
        ("[createObject('a')]", "even number"),
        ("[div(1, 0)]", "cannot be zero"),
        ("[concat('a', createArray(1))]", "received 'Array'"),
        ("[if('yes', 1, 2)]", "first parameter to be of type 'Boolean'"),
        ("[format('{1}', 'a')]", "index (zero based)"),
    ],
)
def test_function_errors(text: str, fragment: str) -> None:
    error = invalid(text)
    assert error.code == "InvalidTemplate"
    assert fragment in error.message


def test_guid_is_arms_name_based_uuid() -> None:
    namespace = uuid.UUID("11fb06fb-712d-4ddd-98c7-e71bbd588830")
    assert value_of("[guid('a', 'b')]") == str(uuid.uuid5(namespace, "a-b"))
    assert value_of("[guid('a', 'b')]") != value_of("[guid('a', 'c')]")


@pytest.mark.parametrize(
    ("args", "expected"),
    [  # values that ARM's uniqueString() returns
        ("'test'", "rbgf3xv4ufgzg"),
        ("'hello', 'world'", "a7wkljktk6wne"),
        ("'foo', 'bar', 'baz'", "xzi4ioaxtmth4"),
        ("'/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/my-rg'", "bmg7c6xu4tw46"),
    ],
)
def test_unique_string_matches_arm(args: str, expected: str) -> None:
    assert value_of(f"[uniqueString({args})]") == expected


def test_murmur_is_64_bit() -> None:
    assert 0 <= murmur64(b"x" * 23) < 2**64


def test_resource_id_forms() -> None:
    assert (
        value_of("[resourceId('Microsoft.Test/things', 'a')]")
        == f"{GROUP_ID}/providers/Microsoft.Test/things/a"
    )
    assert value_of("[resourceId('Microsoft.Test/things/parts', 'a', 'b')]") == (
        f"{GROUP_ID}/providers/Microsoft.Test/things/a/parts/b"
    )
    assert value_of("[resourceId('other', 'Microsoft.Test/things', 'a')]") == (
        f"/subscriptions/{SUB}/resourceGroups/other/providers/Microsoft.Test/things/a"
    )
    assert value_of("[resourceId('s2', 'other', 'Microsoft.Test/things/parts', 'a', 'b')]") == (
        "/subscriptions/s2/resourceGroups/other/providers/Microsoft.Test/things/a/parts/b"
    )
    assert value_of("[subscriptionResourceId('Microsoft.Authorization/roleDefinitions', 'r')]") == (
        f"/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions/r"
    )
    assert (
        value_of("[tenantResourceId('Microsoft.Test/things', 'a')]") == "/providers/Microsoft.Test/things/a"
    )
    assert (
        value_of("[extensionResourceId('/x/y', 'Microsoft.Test/locks', 'l')]")
        == "/x/y/providers/Microsoft.Test/locks/l"
    )


def test_resource_id_with_wrong_name_count() -> None:
    error = invalid("[resourceId('Microsoft.Test/things/parts', 'a')]")
    assert "the type 'Microsoft.Test/things/parts' requires '2' resource name argument(s)" in error.message


def test_subscription_resource_group_and_deployment() -> None:
    assert value_of("[subscription()]") == {
        "id": f"/subscriptions/{SUB}",
        "subscriptionId": SUB,
        "tenantId": "tenant1",
        "displayName": f"Emulated subscription {SUB}",
    }
    group = value_of("[resourceGroup()]")
    assert (group["id"], group["name"], group["location"]) == (GROUP_ID, RG, "eastus")
    assert group["properties"] == {"provisioningState": "Succeeded"}
    assert value_of("[deployment().name]") == "dep1"
    assert value_of("[tenant().tenantId]") == "tenant1"


def test_utc_now_only_in_parameter_defaults() -> None:
    parameters = {
        "stamp": {"type": "string", "defaultValue": "[utcNow()]"},
        "day": {"type": "string", "defaultValue": "[utcNow('yyyy-MM-dd')]"},
        "iso": {"type": "string", "defaultValue": "[utcNow('o')]"},
    }
    assert value_of("[parameters('stamp')]", parameters=parameters) == "20260304T050607Z"
    assert value_of("[parameters('day')]", parameters=parameters) == "2026-03-04"
    assert value_of("[parameters('iso')]", parameters=parameters) == "2026-03-04T05:06:07.0000000Z"
    error = invalid("[utcNow()]")
    assert error.code == "InvalidTemplate"
    assert "The template function 'utcNow' is not expected at this location" in error.message


def test_new_guid_in_a_default() -> None:
    parameters = {"id": {"type": "string", "defaultValue": "[newGuid()]"}}
    assert uuid.UUID(value_of("[parameters('id')]", parameters=parameters)).version == 4


# --------------------------------------------------------------------------------------------------------
# reference() and lazy if()


VAULT_ID = f"{GROUP_ID}/providers/Microsoft.KeyVault/vaults/kv"


def test_if_does_not_evaluate_the_untaken_branch() -> None:
    arm = FakeArm()  # no vault: reference() would fail
    expression = f"[if(false(), reference('{VAULT_ID}', '2023-07-01').vaultUri, 'none')]"
    assert value_of(expression, arm) == "none"
    assert arm.references == []


def test_reference_of_a_missing_resource_fails_with_resource_not_found() -> None:
    error = invalid(f"[if(true(), reference('{VAULT_ID}', '2023-07-01').vaultUri, 'none')]")
    assert error.code == "ResourceNotFound"


def test_reference_returns_properties_or_the_full_resource() -> None:
    vault = {"id": VAULT_ID, "location": "eastus", "properties": {"vaultUri": "https://kv.vault.azure.net/"}}
    arm = FakeArm({VAULT_ID: vault})
    assert value_of(f"[reference('{VAULT_ID}', '2023-07-01').vaultUri]", arm) == "https://kv.vault.azure.net/"
    assert value_of(f"[reference('{VAULT_ID}', '2023-07-01', 'Full').location]", arm) == "eastus"
    assert arm.references == [(VAULT_ID, "2023-07-01", False), (VAULT_ID, "2023-07-01", True)]


def test_reference_outside_the_template_needs_an_api_version() -> None:
    assert "'apiVersion' parameter is required" in invalid(f"[reference('{VAULT_ID}')]").message


def test_reference_by_name_uses_the_template_resource_and_orders_after_it() -> None:
    arm = FakeArm()
    template = make_template(
        [
            thing("reader", properties={"copied": "[reference('source').color]"}),
            thing("source", properties={"color": "blue"}),
        ]
    )
    outcome = run(template, arm=arm)
    assert [p.name for p in arm.puts] == ["source", "reader"]
    assert arm.body("things") == {"properties": {"color": "blue"}}
    assert arm.puts[1].body == {"properties": {"copied": "blue"}}
    assert arm.references == [(f"{GROUP_ID}/providers/Microsoft.Test/things/source", "2024-01-01", False)]
    assert outcome.output_resources[0].endswith("/things/source")


def test_reference_is_not_allowed_in_variables() -> None:
    template = make_template(variables={"v": f"[reference('{VAULT_ID}', '2023-07-01')]"})
    error = error_of(lambda: validate(template, {}, context()))
    assert error.code == "InvalidTemplate"
    assert "The template variable 'v' is not valid: The template function 'reference' is not expected" in (
        error.message
    )


# --------------------------------------------------------------------------------------------------------
# Parameters


NAME_PARAMETER = {"type": "string", "minLength": 5, "maxLength": 8}


def deploy_parameters(declared: dict[str, Any], values: dict[str, Any]) -> DeploymentOutcome:
    outputs = {
        name: {"type": decl["type"], "value": f"[parameters('{name}')]"} for name, decl in declared.items()
    }
    return run(make_template(parameters=declared, outputs=outputs), values)


def parameter_error(declared: dict[str, Any], values: dict[str, Any]) -> TemplateError:
    return error_of(lambda: deploy_parameters(declared, values))


def test_missing_parameter() -> None:
    error = parameter_error({"registryName": {"type": "string"}}, {})
    assert error.code == "InvalidTemplate"
    assert error.message == (
        "Deployment template validation failed: 'The value for the template parameter 'registryName' at line "
        "'1' and column '1' is not provided. Please see https://aka.ms/arm-create-parameter-file for usage "
        "details.'"
    )


def test_undeclared_parameter() -> None:
    error = parameter_error({"a": {"type": "string"}}, {"a": "x", "extra": 1})
    assert error.code == "InvalidTemplate"
    assert "The template parameters 'extra' in the parameters file are not valid" in error.message
    assert "The only supported parameters for this template are 'a'" in error.message


@pytest.mark.parametrize(
    ("kind", "value", "actual"),
    [
        ("string", 1, "Integer"),
        ("int", "1", "String"),
        ("int", True, "Boolean"),
        ("bool", "true", "String"),
        ("array", {}, "Object"),
        ("object", [], "Array"),
        ("securestring", 5, "Integer"),
    ],
)
def test_parameter_type_is_checked(kind: str, value: Any, actual: str) -> None:
    error = parameter_error({"p": {"type": kind}}, {"p": value})
    assert error.code == "InvalidTemplate"
    assert "Template parameter JToken type is not valid. Expected" in error.message
    assert f"Actual '{actual}'" in error.message


def test_parameter_types_are_case_insensitive_and_secure_outputs_hide_values() -> None:
    declared = {"s": {"type": "SecureString"}, "n": {"type": "Int"}, "b": {"type": "BOOL"}}
    outputs = deploy_parameters(declared, {"s": "secret", "n": 3, "b": False}).outputs
    assert outputs == {
        "s": {"type": "SecureString"},
        "n": {"type": "Int", "value": 3},
        "b": {"type": "Bool", "value": False},
    }


def test_allowed_values() -> None:
    declared = {"mode": {"type": "string", "allowedValues": ["SasToken", "ManagedIdentity"]}}
    assert deploy_parameters(declared, {"mode": "SasToken"}).outputs["mode"]["value"] == "SasToken"
    error = parameter_error(declared, {"mode": "sastoken"})
    assert error.code == "InvalidTemplate"
    assert "The provided value 'sastoken' for the template parameter 'mode'" in error.message
    assert "not part of the allowed value(s): 'SasToken,ManagedIdentity'" in error.message


def test_allowed_values_of_an_array_apply_to_each_element() -> None:
    declared = {"options": {"type": "array", "allowedValues": ["A", "B"]}}
    assert deploy_parameters(declared, {"options": ["B", "A"]}).outputs["options"]["value"] == ["B", "A"]
    assert "allowed value(s)" in parameter_error(declared, {"options": ["A", "C"]}).message


@pytest.mark.parametrize(
    ("decl", "value", "fragment"),
    [
        (NAME_PARAMETER, "abcd", "greater than or equal to '5'"),
        (NAME_PARAMETER, "abcdefghi", "less than or equal to '8'"),
        ({"type": "array", "minLength": 1}, [], "greater than or equal to '1'"),
        ({"type": "array", "maxLength": 2}, [1, 2, 3], "less than or equal to '2'"),
        ({"type": "int", "minValue": 1}, 0, "The provided value '0'"),
        ({"type": "int", "maxValue": 5}, 6, "less than or equal to '5'"),
    ],
)
def test_length_and_value_bounds(decl: dict[str, Any], value: Any, fragment: str) -> None:
    error = parameter_error({"p": decl}, {"p": value})
    assert error.code == "InvalidTemplate"
    assert fragment in error.message


def test_bounds_hold_at_the_limits() -> None:
    assert deploy_parameters({"p": NAME_PARAMETER}, {"p": "abcde"}).outputs["p"]["value"] == "abcde"
    assert deploy_parameters({"p": NAME_PARAMETER}, {"p": "abcdefgh"}).outputs["p"]["value"] == "abcdefgh"


def test_defaults_are_expressions_and_may_use_other_parameters() -> None:
    declared = {
        "location": {"type": "string", "defaultValue": "[resourceGroup().location]"},
        "name": {"type": "string", "defaultValue": "[concat(parameters('prefix'), 'x')]"},
        "prefix": {"type": "string"},
    }
    outputs = deploy_parameters(declared, {"prefix": "p"}).outputs
    assert (outputs["location"]["value"], outputs["name"]["value"]) == ("eastus", "px")


def test_defaults_are_validated_too() -> None:
    error = parameter_error({"p": {"type": "string", "defaultValue": "c", "allowedValues": ["a", "b"]}}, {})
    assert "allowed value(s)" in error.message


def test_circular_defaults() -> None:
    declared = {
        "a": {"type": "string", "defaultValue": "[parameters('b')]"},
        "b": {"type": "string", "defaultValue": "[parameters('a')]"},
    }
    assert "Circular reference" in parameter_error(declared, {}).message


def test_parameter_names_are_case_insensitive() -> None:
    assert (
        value_of(
            "[parameters('REGISTRYNAME')]",
            parameters={"registryName": {"type": "string"}},
            values={"RegistryName": "r"},
        )
        == "r"
    )


def test_key_vault_parameter_reference_is_refused_clearly() -> None:
    template = make_template(parameters={"p": {"type": "securestring"}})
    parameters = {"p": {"reference": {"keyVault": {"id": VAULT_ID}, "secretName": "s"}}}
    error = error_of(lambda: validate(template, parameters, context()))
    assert error.code == "InvalidTemplate"
    assert "not supported by this emulator" in error.message


def test_typo_in_parameter_name_fails_validation_before_anything_is_deployed() -> None:
    template = make_template(
        [thing("t", properties={"v": "[parameters('regstryName')]"})],
        parameters={"registryName": {"type": "string"}},
    )
    arm = FakeArm()
    error = error_of(lambda: deploy(template, {"registryName": {"value": "r"}}, context(arm), arm.put))
    assert error.code == "InvalidTemplate"
    assert "The template parameter 'regstryName' is not found." in error.message
    assert arm.puts == []


def test_typo_in_a_computed_parameter_name_fails_at_deployment() -> None:
    error = invalid("[parameters(concat('miss', 'ing'))]")
    assert error.code == "InvalidTemplate"
    assert "The template parameter 'missing' is not found." in error.message
    assert error.message.startswith("Unable to process template language expressions for resource")


# --------------------------------------------------------------------------------------------------------
# Variables


def test_variables_are_evaluated_with_nested_expressions() -> None:
    variables = {
        "base": "[toUpper('x')]",
        "obj": {"name": "[concat(variables('base'), '1')]", "n": [1, "[add(1, 1)]"]},
    }
    assert value_of("[variables('obj')]", variables=variables) == {"name": "X1", "n": [1, 2]}


def test_variable_cycle_and_typo() -> None:
    cyclic = make_template(variables={"a": "[variables('b')]", "b": "[variables('a')]"})
    assert (
        "Circular reference detected in template variables: a -> b -> a"
        in error_of(lambda: validate(cyclic, {}, context())).message
    )
    typo = make_template([thing("t", properties={"v": "[variables('nope')]"})], variables={"yes": 1})
    error = error_of(lambda: validate(typo, {}, context()))
    assert error.code == "InvalidTemplate"
    assert "The template variable 'nope' is not found." in error.message


# --------------------------------------------------------------------------------------------------------
# Resources


def test_body_keeps_everything_but_deployment_keys() -> None:
    arm = FakeArm()
    resource = thing(
        "t",
        location="[resourceGroup().location]",
        tags={"a": "b"},
        sku={"name": "Premium"},
        identity={"type": "SystemAssigned"},
        comments="not sent",
        dependsOn=[],
        condition=True,
        properties={"x": 1},
    )
    run(make_template([resource]), arm=arm)
    planned = arm.puts[0]
    assert (planned.type, planned.name, planned.api_version) == ("Microsoft.Test/things", "t", "2024-01-01")
    assert planned.resource_id == f"{GROUP_ID}/providers/Microsoft.Test/things/t"
    assert planned.body == {
        "location": "eastus",
        "tags": {"a": "b"},
        "sku": {"name": "Premium"},
        "identity": {"type": "SystemAssigned"},
        "properties": {"x": 1},
    }


def test_depends_on_orders_by_id_name_and_type_name() -> None:
    arm = FakeArm()
    resources = [
        thing("c", dependsOn=["Microsoft.Test/things/b"]),
        thing("b", dependsOn=["[resourceId('Microsoft.Test/things', 'a')]"]),
        thing("a", dependsOn=[]),
        thing("d", dependsOn=["c", "a"]),
    ]
    outcome = run(make_template(resources), arm=arm)
    assert [p.name for p in arm.puts] == ["a", "b", "c", "d"]
    assert [i.rsplit("/", 1)[1] for i in outcome.output_resources] == ["a", "b", "c", "d"]


def test_unknown_dependency() -> None:
    template = make_template([thing("a", dependsOn=["ghost"])])
    error = error_of(lambda: validate(template, {}, context()))
    assert error.code == "InvalidTemplate"
    assert "The resource 'ghost' is not defined in the template." in error.message


def test_circular_dependency() -> None:
    template = make_template([thing("a", dependsOn=["b"]), thing("b", dependsOn=["a"])])
    error = error_of(lambda: validate(template, {}, context()))
    assert error.code == "InvalidTemplate"
    assert "Circular dependency detected on resource" in error.message


def test_condition_false_skips_the_resource_and_its_dependency() -> None:
    arm = FakeArm()
    resources = [thing("a", condition="[equals(parameters('mode'), 'on')]"), thing("b", dependsOn=["a"])]
    outcome = run(make_template(resources, parameters={"mode": {"type": "string"}}), {"mode": "off"}, arm)
    assert [p.name for p in arm.puts] == ["b"]
    assert outcome.output_resources == [f"{GROUP_ID}/providers/Microsoft.Test/things/b"]


def test_condition_must_be_boolean() -> None:
    template = make_template([thing("a", condition="yes")])
    assert (
        "condition must be of type 'Boolean'" in error_of(lambda: validate(template, {}, context())).message
    )


def test_nested_child_resources_are_flattened() -> None:
    arm = FakeArm()
    parent = {
        "type": "Microsoft.ContainerRegistry/registries",
        "apiVersion": "2025-06-01-preview",
        "name": "reg01",
        "resources": [
            {
                "type": "exportPipelines",
                "apiVersion": "2025-06-01-preview",
                "name": "pipe1",
                "dependsOn": ["reg01"],
            },
            {
                "type": "Microsoft.ContainerRegistry/registries/importPipelines",
                "apiVersion": "2025-06-01-preview",
                "name": "reg01/pipe2",
            },
        ],
    }
    run(make_template([parent]), arm=arm)
    assert [(p.type, p.name) for p in arm.puts] == [
        ("Microsoft.ContainerRegistry/registries", "reg01"),
        ("Microsoft.ContainerRegistry/registries/exportPipelines", "reg01/pipe1"),
        ("Microsoft.ContainerRegistry/registries/importPipelines", "reg01/pipe2"),
    ]
    assert (
        arm.puts[1].resource_id
        == f"{GROUP_ID}/providers/Microsoft.ContainerRegistry/registries/reg01/exportPipelines/pipe1"
    )
    assert "resources" not in arm.puts[0].body


def test_name_segments_must_match_type_segments() -> None:
    template = make_template([{"type": "Microsoft.Test/things/parts", "apiVersion": "1", "name": "onlyone"}])
    assert "incorrect segment lengths" in error_of(lambda: validate(template, {}, context())).message


def test_a_trailing_slash_in_a_type_is_ignored_as_arm_does() -> None:
    # "Microsoft.ContainerRegistry/registries/exportPipelines/": every official ACR template since 2020.
    arm = FakeArm()
    template = make_template(
        [{"type": "Microsoft.Test/things/parts/", "apiVersion": "1", "name": "[concat('a', '/', 'b')]"}],
        outputs={"id": {"type": "string", "value": "[resourceId('Microsoft.Test/things/parts', 'a', 'b')]"}},
    )
    outcome = run(template, arm=arm)
    assert arm.puts[0].type == "Microsoft.Test/things/parts"
    assert arm.puts[0].resource_id == f"{GROUP_ID}/providers/Microsoft.Test/things/a/parts/b"
    assert outcome.outputs["id"]["value"] == arm.puts[0].resource_id


def test_explicit_resource_group_and_scope() -> None:
    arm = FakeArm()
    resources = [
        thing("a", resourceGroup="other"),
        {
            "type": "Microsoft.Authorization/roleAssignments",
            "apiVersion": "2022-04-01",
            "name": "ra",
            "scope": "Microsoft.KeyVault/vaults/kv",
        },
        {"type": "Microsoft.Authorization/locks", "apiVersion": "2020-05-01", "name": "l", "scope": VAULT_ID},
    ]
    run(make_template(resources), arm=arm)
    assert [p.resource_id for p in arm.puts] == [
        f"/subscriptions/{SUB}/resourceGroups/other/providers/Microsoft.Test/things/a",
        f"{VAULT_ID}/providers/Microsoft.Authorization/roleAssignments/ra",
        f"{VAULT_ID}/providers/Microsoft.Authorization/locks/l",
    ]
    assert all("scope" not in p.body for p in arm.puts)


@pytest.mark.parametrize(
    "template",
    [
        make_template([thing("a", copy={"name": "c", "count": 2})]),
        make_template([thing("a", properties={"x": {"copy": [{"name": "d", "count": 2, "input": {}}]}})]),
        make_template(outputs={"o": {"type": "array", "copy": {"count": 1, "input": 1}}}),
        {**make_template(), "variables": {"copy": []}},
    ],
)
def test_copy_is_refused_explicitly(template: dict[str, Any]) -> None:
    error = error_of(lambda: validate(template, {}, context()))
    assert error.code == "InvalidTemplate"
    assert "copy is not supported by this emulator" in error.message


@pytest.mark.parametrize("missing", ["$schema", "contentVersion", "resources"])
def test_template_needs_schema_content_version_and_resources(missing: str) -> None:
    template = make_template()
    del template[missing]
    error = error_of(lambda: validate(template, {}, context()))
    assert error.code == "InvalidTemplate"
    assert f"Required property '{missing}' not found" in error.message


def test_unknown_top_level_keys_are_fine() -> None:
    validate({**make_template(), "metadata": {"x": 1}, "apiProfile": "p"}, {}, context())


def test_a_failing_put_stops_the_deployment() -> None:
    arm = FakeArm()

    def put(planned: PlannedResource) -> dict[str, Any]:
        if planned.name == "a":
            raise TemplateError("Conflict", "busy", planned.resource_id)
        return arm.put(planned)

    template = make_template([thing("a"), thing("b", dependsOn=["a"])])
    error = error_of(lambda: deploy(template, {}, context(arm), put))
    assert (error.code, error.message) == ("Conflict", "busy")
    assert arm.puts == []


# --------------------------------------------------------------------------------------------------------
# Outputs


def test_outputs_are_evaluated_after_the_resources() -> None:
    arm = FakeArm()
    template = make_template(
        [thing("a", properties={"color": "red"})],
        outputs={
            "color": {"type": "string", "value": "[reference('a').color]"},
            "count": {"type": "int", "value": 2},
            "flag": {"type": "bool", "value": "[true()]"},
            "list": {"type": "array", "value": "[createArray(1)]"},
            "obj": {"type": "object", "value": {"k": "[concat('v', '1')]"}},
            "skipped": {"type": "string", "condition": "[false()]", "value": "[reference('ghost').x]"},
        },
    )
    assert run(template, arm=arm).outputs == {
        "color": {"type": "String", "value": "red"},
        "count": {"type": "Int", "value": 2},
        "flag": {"type": "Bool", "value": True},
        "list": {"type": "Array", "value": [1]},
        "obj": {"type": "Object", "value": {"k": "v1"}},
    }


def test_output_type_mismatch() -> None:
    error = error_of(lambda: run(make_template(outputs={"o": {"type": "string", "value": 5}})))
    assert (error.code, error.target) == ("DeploymentOutputEvaluationFailed", "o")
    assert "Expected 'String'. Actual 'Integer'." in error.message


def test_output_missing_property() -> None:
    error = error_of(
        lambda: run(make_template(outputs={"o": {"type": "string", "value": "[createObject().x]"}}))
    )
    assert error.code == "DeploymentOutputEvaluationFailed"
    assert (
        "The template output 'o' is not valid: The language expression property 'x' doesn't exist"
        in error.message
    )


# --------------------------------------------------------------------------------------------------------
# The project's templates


PRINCIPAL_OF_USER_IDENTITY = "user-principal"
USER_IDENTITY = f"{GROUP_ID}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/uai"


def pipeline_templates() -> list[Path]:
    return sorted(
        p.parent
        for p in TEMPLATES.glob("*/azuredeploy.json")
        if "pipeline" in p.parent.name and "run" not in p.parent.name
    )


def load(directory: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    template = json.loads((directory / "azuredeploy.json").read_text())
    parameters = json.loads((directory / "azuredeploy.parameters.json").read_text())["parameters"]
    return template, parameters


def project_arm() -> FakeArm:
    vault_id = f"{GROUP_ID}/providers/Microsoft.KeyVault/vaults/kv1"
    return FakeArm(
        {
            vault_id: {"id": vault_id, "properties": {"vaultUri": "https://kv.vault.azure.net/"}},
            USER_IDENTITY: {"id": USER_IDENTITY, "properties": {"principalId": PRINCIPAL_OF_USER_IDENTITY}},
        }
    )


def test_project_templates_exist() -> None:
    names = {p.parent.name for p in TEMPLATES.glob("*/azuredeploy.json")}
    assert {"export-pipeline", "import-pipeline"} <= names


@pytest.mark.parametrize("identity", ["system", "user"])
@pytest.mark.parametrize("mode", ["SasToken", "ManagedIdentity"])
@pytest.mark.parametrize("directory", pipeline_templates(), ids=lambda p: p.name)
def test_pipeline_template(directory: Path, mode: str, identity: str) -> None:
    template, parameters = load(directory)
    parameters.update(
        storageAccessMode={"value": mode},
        keyVaultName={"value": "kv1" if mode == "SasToken" else ""},
        sasTokenSecretName={"value": "sas1" if mode == "SasToken" else ""},
        userAssignedIdentity={"value": USER_IDENTITY if identity == "user" else ""},
    )
    arm = project_arm()
    outcome = deploy(template, parameters, context(arm), arm.put)

    pipeline = arm.puts[0]
    assert pipeline.type.endswith("Pipelines")
    assert pipeline.api_version == "2025-06-01-preview"
    storage = pipeline.body["properties"].get("target") or pipeline.body["properties"]["source"]
    assert storage["storageAccessMode"] == mode
    assert storage["type"] == "AzureStorageBlobContainer"
    vault_reads = [r for r in arm.references if "/vaults/" in r[0]]
    if mode == "SasToken":
        assert storage["keyVaultUri"] == "https://kv.vault.azure.net/secrets/sas1"
        assert len(vault_reads) == 1
    else:
        assert "keyVaultUri" not in storage
        assert vault_reads == []  # the untaken if() branch never reads the vault
    if identity == "user":
        assert pipeline.body["identity"] == {
            "type": "UserAssigned",
            "userAssignedIdentities": {USER_IDENTITY: {}},
        }
    else:
        assert pipeline.body["identity"] == {"type": "SystemAssigned"}
    assert pipeline.body["location"] == "eastus"

    principal = PRINCIPAL_OF_USER_IDENTITY if identity == "user" else "system-principal"
    assert outcome.outputs["principalId"] == {"type": "String", "value": principal}
    assert outcome.outputs["pipelineResourceId"]["value"] == pipeline.resource_id
    assert outcome.outputs["storageAccessMode"] == {"type": "String", "value": mode}
    assert outcome.output_resources[0] == pipeline.resource_id
    policies = [p for p in arm.puts if p.type == "Microsoft.KeyVault/vaults/accessPolicies"]
    if mode == "SasToken":  # the default keyVaultSecretAccess is AccessPolicy
        assert [p.name for p in policies] == ["kv1/add"]
        assert policies[0].body["properties"]["accessPolicies"][0]["objectId"] == principal
    else:
        assert policies == []
    assert len(arm.puts) == len(outcome.output_resources)


@pytest.mark.parametrize("directory", pipeline_templates(), ids=lambda p: p.name)
def test_pipeline_template_role_assignment_on_the_vault(directory: Path) -> None:
    template, parameters = load(directory)
    parameters.update(
        storageAccessMode={"value": "SasToken"},
        keyVaultName={"value": "kv1"},
        sasTokenSecretName={"value": "sas1"},
        keyVaultSecretAccess={"value": "RoleAssignment"},
        userAssignedIdentity={"value": ""},
    )
    arm = project_arm()
    deploy(template, parameters, context(arm), arm.put)
    assignment = next(p for p in arm.puts if p.type == "Microsoft.Authorization/roleAssignments")
    vault_id = f"{GROUP_ID}/providers/Microsoft.KeyVault/vaults/kv1"
    assert (
        assignment.resource_id
        == f"{vault_id}/providers/Microsoft.Authorization/roleAssignments/{assignment.name}"
    )
    assert uuid.UUID(assignment.name).version == 5
    assert assignment.body["properties"]["principalId"] == "system-principal"
    assert all(p.type != "Microsoft.KeyVault/vaults/accessPolicies" for p in arm.puts)


@pytest.mark.parametrize("directory", pipeline_templates(), ids=lambda p: p.name)
def test_pipeline_template_rejects_an_unknown_mode(directory: Path) -> None:
    template, parameters = load(directory)
    parameters["storageAccessMode"] = {"value": "Anonymous"}
    error = error_of(lambda: validate(template, parameters, context(project_arm())))
    assert error.code == "InvalidTemplate"
    assert "allowed value(s)" in error.message


@pytest.mark.parametrize(
    "directory",
    sorted(p.parent for p in TEMPLATES.glob("pipelinerun-*/azuredeploy.json")),
    ids=lambda p: p.name,
)
def test_pipeline_run_template(directory: Path) -> None:
    template, parameters = load(directory)
    arm = FakeArm()
    outcome = deploy(template, parameters, context(arm), arm.put)
    (run_resource,) = arm.puts
    assert run_resource.type == "Microsoft.ContainerRegistry/registries/pipelineRuns"
    request = run_resource.body["properties"]["request"]
    assert request["pipelineResourceId"] == parameters["pipelineResourceId"]["value"]
    assert ("catalogDigest" in request) == bool(parameters.get("catalogDigest", {}).get("value"))
    assert outcome.outputs["pipelineRunResourceId"]["value"] == run_resource.resource_id

    parameters["catalogDigest"] = {"value": "sha256:" + "a" * 64}
    arm = FakeArm()
    deploy(template, parameters, context(arm), arm.put)
    assert arm.puts[0].body["properties"]["request"]["catalogDigest"] == "sha256:" + "a" * 64


def test_list_keys_asks_the_context_and_is_refused_without_it() -> None:
    site = f"{GROUP_ID}/providers/Microsoft.Web/sites/app1/host/default"
    template = make_template(
        [
            thing(
                "hook",
                properties={
                    "url": "[concat('https://h/?code=', listKeys(resourceId('Microsoft.Web/sites/host', "
                    "'app1', 'default'), '2024-04-01').systemKeys.blobs_extension)]"
                },
            )
        ]
    )
    arm = FakeArm()
    asked: list[tuple[str, str]] = []

    def list_keys(resource_id: str, api_version: str) -> dict[str, Any]:
        asked.append((resource_id, api_version))
        return {"systemKeys": {"blobs_extension": "k1"}}

    ctx = DeploymentContext(SUB, RG, "eastus", "dep1", "tenant1", NOW, arm.reference, list_keys)
    deploy(template, {}, ctx, arm.put)
    assert arm.body("things")["properties"]["url"] == "https://h/?code=k1"
    assert asked == [(site, "2024-04-01")]
    error = error_of(lambda: deploy(template, {}, context(), FakeArm().put))
    assert "listKeys" in error.message


def test_an_inner_scope_nested_template_is_passed_on_as_written() -> None:
    inner = make_template(
        [thing("[parameters('name')]")], parameters={"name": {"type": "string"}}, outputs={}
    )
    nested = {
        "type": "Microsoft.Resources/deployments",
        "apiVersion": "2022-09-01",
        "name": "nested1",
        "resourceGroup": "[parameters('group')]",
        "properties": {
            "mode": "Incremental",
            "expressionEvaluationOptions": {"scope": "inner"},
            "parameters": {"name": {"value": "[concat(parameters('group'), '-thing')]"}},
            "template": inner,
        },
    }
    template = make_template([nested], parameters={"group": {"type": "string"}})
    arm = FakeArm()
    deploy(template, {"group": {"value": "other-rg"}}, context(arm), arm.put)
    (planned,) = arm.puts
    assert planned.resource_id == (
        f"/subscriptions/{SUB}/resourceGroups/other-rg/providers/Microsoft.Resources/deployments/nested1"
    )
    assert planned.body["properties"]["parameters"] == {"name": {"value": "other-rg-thing"}}
    assert planned.body["properties"]["template"] == inner
