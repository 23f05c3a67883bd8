"""ARM template language expressions: parser, evaluator and the built-in functions that need no deployment.

Values are plain JSON values (str, int, bool, list, dict, None). Names of functions and object properties
are case-insensitive, as in ARM. Messages follow ARM's wording so that a test or a person reading the
emulator's error sees what Azure would say.
"""

from __future__ import annotations

import base64
import binascii
import calendar
import functools
import json
import re
import urllib.parse
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

FUNCTIONS_HELP = "Please see https://aka.ms/arm-functions for usage details."
EXPRESSIONS_HELP = "Please see https://aka.ms/arm-template-expressions for usage details."


class TemplateError(Exception):
    """A deployment failure in ARM's terms: an error code, a message and optionally the failing target."""

    def __init__(self, code: str, message: str, target: str | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.target = target


class ExpressionError(TemplateError):
    """An expression failed; the template layer adds where it happened before it reaches the client."""

    def __init__(self, message: str) -> None:
        super().__init__("InvalidTemplate", message)


# ---------------------------------------------------------------------------------------------------------
# Syntax


@dataclass(frozen=True)
class Literal:
    value: str | int


@dataclass(frozen=True)
class Call:
    name: str
    args: tuple[Node, ...]


@dataclass(frozen=True)
class Member:
    target: Node
    key: Node  # a Literal for `.name`, any expression for `[...]`
    safe: bool = False  # `.?name` / `[?...]` yields null instead of failing


Node = Literal | Call | Member


def is_expression(text: str) -> bool:
    return text.startswith("[") and text.endswith("]") and not text.startswith("[[")


def unescape(text: str) -> str:
    """`[[...]` is how a template writes a literal string that starts with `[`."""
    if text.startswith("[[") and text.endswith("]"):
        return text[1:]
    return text


@dataclass(frozen=True)
class _Token:
    kind: str  # ARM's token names, used in its parse errors
    text: str
    value: str | int | None = None


_PUNCTUATION = {
    "(": "LeftParenthesis",
    ")": "RightParenthesis",
    ",": "Comma",
    ".": "Dot",
    "[": "LeftSquareBracket",
    "]": "RightSquareBracket",
    "?": "QuestionMark",
}
_IDENTIFIER = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")
_INTEGER = re.compile(r"-?[0-9]+")


def _tokens(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    while pos < len(text):
        char = text[pos]
        if char.isspace():
            pos += 1
        elif char in _PUNCTUATION:
            tokens.append(_Token(_PUNCTUATION[char], char))
            pos += 1
        elif char == "'":
            value, pos = _string_literal(text, pos)
            tokens.append(_Token("Literal", value, value))
        elif match := _INTEGER.match(text, pos):
            tokens.append(_Token("Integer", match.group(), int(match.group())))
            pos = match.end()
        elif match := _IDENTIFIER.match(text, pos):
            tokens.append(_Token("Identifier", match.group(), match.group()))
            pos = match.end()
        else:
            raise ExpressionError(
                f"The language expression '{text}' is not valid: the string character '{char}' at position "
                f"'{pos}' is not expected."
            )
    tokens.append(_Token("EndOfData", ""))
    return tokens


def _string_literal(text: str, start: int) -> tuple[str, int]:
    chars: list[str] = []
    pos = start + 1
    while pos < len(text):
        if text[pos] != "'":
            chars.append(text[pos])
            pos += 1
        elif text.startswith("''", pos):
            chars.append("'")
            pos += 2
        else:
            return "".join(chars), pos + 1
    raise ExpressionError(
        f"The language expression literal limit exceeded or a string literal is not closed: '{text}'."
    )


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokens(text)
        self.pos = 0

    def peek(self) -> _Token:
        return self.tokens[self.pos]

    def take(self, kind: str) -> _Token:
        token = self.peek()
        if token.kind != kind:
            raise ExpressionError(
                f"Unable to parse language expression '{self.text}': expected token '{kind}' and actual "
                f"'{token.kind}'."
            )
        self.pos += 1
        return token

    def accept(self, kind: str) -> bool:
        if self.peek().kind == kind:
            self.pos += 1
            return True
        return False

    def whole(self) -> Node:
        node = self.expression()
        self.take("EndOfData")
        return node

    def expression(self) -> Node:
        node = self.primary()
        while True:
            if self.accept("Dot"):
                safe = self.accept("QuestionMark")
                node = Member(node, Literal(str(self.take("Identifier").value)), safe)
            elif self.accept("LeftSquareBracket"):
                safe = self.accept("QuestionMark")
                key = self.expression()
                self.take("RightSquareBracket")
                node = Member(node, key, safe)
            else:
                return node

    def primary(self) -> Node:
        token = self.peek()
        if token.kind in ("Literal", "Integer"):
            self.pos += 1
            assert token.value is not None
            return Literal(token.value)
        name = str(self.take("Identifier").value)
        self.take("LeftParenthesis")
        args: list[Node] = []
        if not self.accept("RightParenthesis"):
            args.append(self.expression())
            while self.accept("Comma"):
                args.append(self.expression())
            self.take("RightParenthesis")
        return Call(name, tuple(args))


@functools.lru_cache(maxsize=4096)
def parse(text: str) -> Node:
    """Parse a template string that is an expression (`[...]`, brackets included)."""
    return _Parser(text[1:-1]).whole()


def calls(node: Node) -> Iterator[Call]:
    """Every function call in the tree, outermost first."""
    if isinstance(node, Call):
        yield node
        for arg in node.args:
            yield from calls(arg)
    elif isinstance(node, Member):
        yield from calls(node.target)
        yield from calls(node.key)


def expressions_in(value: Any) -> Iterator[str]:
    """Every expression string inside a JSON value."""
    if isinstance(value, str):
        if is_expression(value):
            yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from expressions_in(key)  # a property name may be an expression too
            yield from expressions_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from expressions_in(item)


# ---------------------------------------------------------------------------------------------------------
# Evaluation


@dataclass(frozen=True)
class Function:
    impl: Callable[[list[Any]], Any]
    min_args: int = 0
    max_args: int | None = None  # None: any number


@dataclass(frozen=True)
class Site:
    """Where an expression sits in the template: ARM allows some functions only in some places."""

    forbidden: frozenset[str] = frozenset()  # lower-case function names
    hint: str = ""  # appended to the "not expected at this location" message


@dataclass
class Evaluator:
    functions: Mapping[str, Function]  # lower-case name -> function
    lazy: Mapping[str, Callable[[Evaluator, tuple[Node, ...], Site], Any]] = field(default_factory=dict)

    def evaluate(self, value: Any, site: Site) -> Any:
        """Evaluate every expression inside a JSON value, returning a new value."""
        if isinstance(value, str):
            return self.evaluate_node(parse(value), site) if is_expression(value) else unescape(value)
        if isinstance(value, dict):
            return {self._property_name(key, site): self.evaluate(item, site) for key, item in value.items()}
        if isinstance(value, list):
            return [self.evaluate(item, site) for item in value]
        return value

    def _property_name(self, key: str, site: Site) -> str:
        """A property name that is an expression (the official ACR templates key `userAssignedIdentities` by
        `[parameters('userAssignedIdentity')]`) is evaluated like a value and must give a string."""
        if not is_expression(key):
            return unescape(key)
        name = self.evaluate_node(parse(key), site)
        if not isinstance(name, str):
            raise ExpressionError(
                f"The template language expression '{key}' used as a property name must evaluate to a "
                f"string, but evaluated to a value of type '{arm_type(name)}'."
            )
        return name

    def evaluate_node(self, node: Node, site: Site) -> Any:
        if isinstance(node, Literal):
            return node.value
        if isinstance(node, Member):
            return member(
                self.evaluate_node(node.target, site), self.evaluate_node(node.key, site), node.safe
            )
        name = node.name.lower()
        self.check_call(node, site)
        if name in self.lazy:
            return self.lazy[name](self, node.args, site)
        args = [self.evaluate_node(arg, site) for arg in node.args]
        return self.functions[name].impl(args)

    def check_call(self, node: Call, site: Site) -> None:
        """The checks ARM makes before it runs anything: known function, argument count, allowed here."""
        name = node.name.lower()
        if name in site.forbidden:
            raise ExpressionError(
                f"The template function '{node.name}' is not expected at this location.{site.hint} "
                f"{EXPRESSIONS_HELP}"
            )
        if name in self.lazy:
            return
        function = self.functions.get(name)
        if function is None:
            raise ExpressionError(f"The template function '{node.name}' is not valid. {FUNCTIONS_HELP}")
        count = len(node.args)
        if count < function.min_args or (function.max_args is not None and count > function.max_args):
            raise ExpressionError(
                f"Unable to evaluate template language function '{node.name}': it expects "
                f"{_arity(function)} parameter(s) but was given {count}. {FUNCTIONS_HELP}"
            )

    def check(self, value: Any, site: Site) -> None:
        """Static validation of every expression in a value (also in branches that will not run)."""
        for text in expressions_in(value):
            for node in calls(parse(text)):
                self.check_call(node, site)


def _arity(function: Function) -> str:
    if function.max_args is None:
        return f"at least {function.min_args}"
    if function.min_args == function.max_args:
        return str(function.min_args)
    return f"{function.min_args} to {function.max_args}"


def _lazy_if(evaluator: Evaluator, args: tuple[Node, ...], site: Site) -> Any:
    if len(args) != 3:
        raise ExpressionError(
            f"The template language function 'if' must have three parameters. {FUNCTIONS_HELP}"
        )
    condition = evaluator.evaluate_node(args[0], site)
    if not isinstance(condition, bool):
        raise ExpressionError(
            f"The template language function 'if' expects its first parameter to be of type 'Boolean'. The "
            f"provided value is of type '{arm_type(condition)}'. {FUNCTIONS_HELP}"
        )
    # ARM evaluates only the branch taken: a reference() in the other branch never runs.
    return evaluator.evaluate_node(args[1] if condition else args[2], site)


LAZY_FUNCTIONS: dict[str, Callable[[Evaluator, tuple[Node, ...], Site], Any]] = {"if": _lazy_if}


# ---------------------------------------------------------------------------------------------------------
# Values


def arm_type(value: Any) -> str:
    if value is None:
        return "Null"
    if isinstance(value, bool):
        return "Boolean"
    if isinstance(value, int):
        return "Integer"
    if isinstance(value, float):
        return "Float"
    if isinstance(value, str):
        return "String"
    if isinstance(value, list):
        return "Array"
    return "Object"


def find_key(obj: Mapping[str, Any], key: str) -> str | None:
    """The actual key for a case-insensitive property name (an exact match wins)."""
    if key in obj:
        return key
    lowered = key.lower()
    return next((candidate for candidate in obj if candidate.lower() == lowered), None)


def member(target: Any, key: Any, safe: bool = False) -> Any:
    if target is None and safe:
        return None
    if isinstance(target, list) and isinstance(key, int) and not isinstance(key, bool):
        if 0 <= key < len(target):
            return target[key]
        if safe:
            return None
        raise ExpressionError(f"The language expression property array index '{key}' is out of bounds.")
    if isinstance(target, dict) and isinstance(key, str):
        actual = find_key(target, key)
        if actual is not None:
            return target[actual]
        if safe:
            return None
        available = ", ".join(target)
        raise ExpressionError(
            f"The language expression property '{key}' doesn't exist, available properties are '{available}'."
        )
    raise ExpressionError(
        f"The language expression property '{key}' can't be evaluated on a value of type "
        f"'{arm_type(target)}'."
    )


def deep_equal(left: Any, right: Any) -> bool:
    """ARM's equality: by type and value; strings case-sensitive; object keys case-insensitive."""
    if arm_type(left) != arm_type(right):
        return False
    if isinstance(left, list):
        return len(left) == len(right) and all(deep_equal(a, b) for a, b in zip(left, right, strict=True))
    if isinstance(left, dict):
        if len(left) != len(right):
            return False
        for key, value in left.items():
            other = find_key(right, key)
            if other is None or not deep_equal(value, right[other]):
                return False
        return True
    return bool(left == right)


def to_text(value: Any) -> str:
    """ARM's string(): bools are 'True'/'False', objects and arrays compact JSON, null is ''."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, str):
        return value
    if isinstance(value, list | dict):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return str(value)


def _fail(name: str, detail: str) -> ExpressionError:
    return ExpressionError(
        f"Unable to evaluate template language function '{name}': {detail} {FUNCTIONS_HELP}"
    )


def _want(name: str, value: Any, *types: type) -> Any:
    is_bool = isinstance(value, bool)
    if isinstance(value, types) and (bool in types or not is_bool):
        return value
    expected = " or ".join(arm_type(_SAMPLES[kind]) for kind in types)
    raise _fail(name, f"expected a value of type '{expected}' but received '{arm_type(value)}'.")


def _text(name: str, value: Any) -> str:
    return str(_want(name, value, str))


def _integer(name: str, value: Any) -> int:
    return int(_want(name, value, int))


def _boolean(name: str, value: Any) -> bool:
    return bool(_want(name, value, bool))


def _array_arg(name: str, value: Any) -> list[Any]:
    return list(_want(name, value, list))


def _object_arg(name: str, value: Any) -> dict[str, Any]:
    return dict(_want(name, value, dict))


_SAMPLES: dict[type, Any] = {str: "", int: 0, bool: True, list: [], dict: {}, float: 0.0, type(None): None}


# ---------------------------------------------------------------------------------------------------------
# Built-in functions that need nothing but their arguments

BUILTINS: dict[str, Function] = {}


def _builtin(
    name: str, min_args: int = 0, max_args: int | None = -1
) -> Callable[[Callable[[list[Any]], Any]], Callable[[list[Any]], Any]]:
    """Register a function; max_args -1 means exactly min_args, None means unbounded."""

    def register(impl: Callable[[list[Any]], Any]) -> Callable[[list[Any]], Any]:
        BUILTINS[name.lower()] = Function(impl, min_args, min_args if max_args == -1 else max_args)
        return impl

    return register


@_builtin("true")
def _true(_: list[Any]) -> bool:
    return True


@_builtin("false")
def _false(_: list[Any]) -> bool:
    return False


@_builtin("null")
def _null(_: list[Any]) -> None:
    return None


# --- logical and comparison


@_builtin("equals", 2)
def _equals(args: list[Any]) -> bool:
    return deep_equal(args[0], args[1])


@_builtin("not", 1)
def _not(args: list[Any]) -> bool:
    return not _boolean("not", args[0])


@_builtin("and", 2, None)
def _and(args: list[Any]) -> bool:
    values = [_boolean("and", arg) for arg in args]  # every argument must be a bool, as in ARM
    return all(values)


@_builtin("or", 2, None)
def _or(args: list[Any]) -> bool:
    values = [_boolean("or", arg) for arg in args]
    return any(values)


@_builtin("coalesce", 1, None)
def _coalesce(args: list[Any]) -> Any:
    return next((arg for arg in args if arg is not None), None)


def _comparable(name: str, args: list[Any]) -> tuple[Any, Any]:
    left, right = args
    if isinstance(left, str) and isinstance(right, str):
        return left, right
    return _want(name, left, int, float), _want(name, right, int, float)


@_builtin("less", 2)
def _less(args: list[Any]) -> bool:
    left, right = _comparable("less", args)
    return bool(left < right)


@_builtin("lessOrEquals", 2)
def _less_or_equals(args: list[Any]) -> bool:
    left, right = _comparable("lessOrEquals", args)
    return bool(left <= right)


@_builtin("greater", 2)
def _greater(args: list[Any]) -> bool:
    left, right = _comparable("greater", args)
    return bool(left > right)


@_builtin("greaterOrEquals", 2)
def _greater_or_equals(args: list[Any]) -> bool:
    left, right = _comparable("greaterOrEquals", args)
    return bool(left >= right)


# --- conversion


@_builtin("string", 1)
def _string(args: list[Any]) -> str:
    return to_text(args[0])


@_builtin("int", 1)
def _int(args: list[Any]) -> int:
    value = _want("int", args[0], str, int, float)
    try:
        return int(value.strip()) if isinstance(value, str) else int(value)
    except ValueError:
        raise _fail("int", f"the value '{value}' is not a valid integer.") from None


@_builtin("bool", 1)
def _bool(args: list[Any]) -> bool:
    value = _want("bool", args[0], str, int, bool)
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value != 0
    word = str(value).strip().lower()
    if word in ("true", "false"):
        return word == "true"
    raise _fail("bool", f"the value '{value}' is not a valid boolean.")


@_builtin("json", 1)
def _json(args: list[Any]) -> Any:
    text = _text("json", args[0])
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise _fail("json", f"the argument is not valid JSON: {exc.msg}.") from None


@_builtin("array", 1)
def _array(args: list[Any]) -> list[Any]:
    return args[0] if isinstance(args[0], list) else [args[0]]


@_builtin("createArray", 0, None)
def _create_array(args: list[Any]) -> list[Any]:
    return list(args)


@_builtin("createObject", 0, None)
def _create_object(args: list[Any]) -> dict[str, Any]:
    if len(args) % 2:
        raise _fail("createObject", "it expects an even number of parameters (pairs of name and value).")
    return {_text("createObject", args[i]): args[i + 1] for i in range(0, len(args), 2)}


@_builtin("base64", 1)
def _base64(args: list[Any]) -> str:
    return base64.b64encode(_text("base64", args[0]).encode()).decode()


@_builtin("base64ToString", 1)
def _base64_to_string(args: list[Any]) -> str:
    try:
        return base64.b64decode(_text("base64ToString", args[0]), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise _fail("base64ToString", "the argument is not valid base64.") from None


@_builtin("base64ToJson", 1)
def _base64_to_json(args: list[Any]) -> Any:
    return _json([_base64_to_string(args)])


@_builtin("uriComponent", 1)
def _uri_component(args: list[Any]) -> str:
    return urllib.parse.quote(_text("uriComponent", args[0]), safe="")


@_builtin("uriComponentToString", 1)
def _uri_component_to_string(args: list[Any]) -> str:
    return urllib.parse.unquote(_text("uriComponentToString", args[0]))


@_builtin("uri", 2)
def _uri(args: list[Any]) -> str:
    return urllib.parse.urljoin(_text("uri", args[0]), _text("uri", args[1]))


# --- strings and arrays


@_builtin("concat", 1, None)
def _concat(args: list[Any]) -> Any:
    if isinstance(args[0], list):
        result: list[Any] = []
        for arg in args:
            result.extend(_array_arg("concat", arg) if arg is not None else [])
        return result
    for arg in args:
        _want("concat", arg, str, int, bool, float, type(None))
    return "".join(to_text(arg) for arg in args)


_FORMAT_ITEM = re.compile(r"\{\{|\}\}|\{(\d+)(?:,(-?\d+))?(?::([^}]*))?\}")


@_builtin("format", 1, None)
def _format(args: list[Any]) -> str:
    template = _text("format", args[0])
    values = args[1:]

    def item(match: re.Match[str]) -> str:
        if match.group() in ("{{", "}}"):
            return match.group()[0]
        index = int(match.group(1))
        if index >= len(values):
            raise _fail("format", "index (zero based) must be less than the size of the argument list.")
        text = _format_value(values[index], match.group(3) or "")
        width = int(match.group(2) or 0)
        return text.rjust(width) if width > 0 else text.ljust(-width)

    return _FORMAT_ITEM.sub(item, template)


def _format_value(value: Any, spec: str) -> str:
    """The .NET numeric format strings that templates use: D, N, X and zero placeholders."""
    if not spec or isinstance(value, bool) or not isinstance(value, int):
        return to_text(value)
    kind, digits = spec[0].upper(), spec[1:]
    if kind == "D" and digits.isdigit():
        return f"{value:0{int(digits)}d}" if value >= 0 else f"-{-value:0{int(digits)}d}"
    if kind == "D" and not digits:
        return str(value)
    if kind == "N":
        return f"{value:,.{int(digits or 2)}f}"
    if kind == "X":
        text = f"{value:0{int(digits or 0)}x}"
        return text.upper() if spec[0] == "X" else text
    if set(spec) == {"0"}:
        return f"{value:0{len(spec)}d}"
    raise _fail("format", f"the format specifier '{spec}' is not supported by this emulator.")


@_builtin("toLower", 1)
def _to_lower(args: list[Any]) -> str:
    return _text("toLower", args[0]).lower()


@_builtin("toUpper", 1)
def _to_upper(args: list[Any]) -> str:
    return _text("toUpper", args[0]).upper()


@_builtin("trim", 1)
def _trim(args: list[Any]) -> str:
    return _text("trim", args[0]).strip()


@_builtin("replace", 3)
def _replace(args: list[Any]) -> str:
    text, old, new = (_text("replace", arg) for arg in args)
    if not old:
        raise _fail("replace", "the string to replace cannot be empty.")
    return text.replace(old, new)


@_builtin("split", 2)
def _split(args: list[Any]) -> list[str]:
    text = _text("split", args[0])
    delimiters = args[1] if isinstance(args[1], list) else [args[1]]
    pattern = "|".join(re.escape(_text("split", d)) for d in delimiters if d)
    return re.split(pattern, text) if pattern else [text]


@_builtin("substring", 2, 3)
def _substring(args: list[Any]) -> str:
    text = _text("substring", args[0])
    start = _integer("substring", args[1])
    length = _integer("substring", args[2]) if len(args) > 2 else len(text) - start
    if start < 0 or start > len(text):
        raise _fail(
            "substring", f"the index parameter '{start}' is out of range for a string of length {len(text)}."
        )
    if length < 0 or start + length > len(text):
        raise _fail(
            "substring",
            f"the length parameter '{length}' is out of range for a string of length {len(text)}.",
        )
    return text[start : start + length]


@_builtin("startsWith", 2)
def _starts_with(args: list[Any]) -> bool:
    return _text("startsWith", args[0]).lower().startswith(_text("startsWith", args[1]).lower())


@_builtin("endsWith", 2)
def _ends_with(args: list[Any]) -> bool:
    return _text("endsWith", args[0]).lower().endswith(_text("endsWith", args[1]).lower())


@_builtin("indexOf", 2)
def _index_of(args: list[Any]) -> int:
    if isinstance(args[0], list):
        return next((i for i, item in enumerate(args[0]) if deep_equal(item, args[1])), -1)
    return _text("indexOf", args[0]).lower().find(_text("indexOf", args[1]).lower())


@_builtin("lastIndexOf", 2)
def _last_index_of(args: list[Any]) -> int:
    if isinstance(args[0], list):
        found = [i for i, item in enumerate(args[0]) if deep_equal(item, args[1])]
        return found[-1] if found else -1
    return _text("lastIndexOf", args[0]).lower().rfind(_text("lastIndexOf", args[1]).lower())


@_builtin("padLeft", 2, 3)
def _pad_left(args: list[Any]) -> str:
    text = to_text(_want("padLeft", args[0], str, int))
    pad = _text("padLeft", args[2]) if len(args) > 2 else " "
    if len(pad) != 1:
        raise _fail("padLeft", "the padding character must be a single character.")
    return text.rjust(_integer("padLeft", args[1]), pad)


@_builtin("length", 1)
def _length(args: list[Any]) -> int:
    return len(_want("length", args[0], str, list, dict))


@_builtin("empty", 1)
def _empty(args: list[Any]) -> bool:
    value = args[0]
    return value is None or (isinstance(value, str | list | dict) and len(value) == 0)


@_builtin("contains", 2)
def _contains(args: list[Any]) -> bool:
    container, item = args
    if isinstance(container, list):
        return any(deep_equal(element, item) for element in container)
    if isinstance(container, dict):
        return find_key(container, to_text(_want("contains", item, str, int))) is not None
    return to_text(_want("contains", item, str, int)) in _text("contains", container)


@_builtin("first", 1)
def _first(args: list[Any]) -> Any:
    value = _want("first", args[0], str, list)
    return value[0] if value else ("" if isinstance(value, str) else None)


@_builtin("last", 1)
def _last(args: list[Any]) -> Any:
    value = _want("last", args[0], str, list)
    return value[-1] if value else ("" if isinstance(value, str) else None)


@_builtin("skip", 2)
def _skip(args: list[Any]) -> Any:
    value = _want("skip", args[0], str, list)
    return value[max(_integer("skip", args[1]), 0) :]


@_builtin("take", 2)
def _take(args: list[Any]) -> Any:
    value = _want("take", args[0], str, list)
    return value[: max(_integer("take", args[1]), 0)]


@_builtin("union", 1, None)
def _union(args: list[Any]) -> Any:
    if isinstance(args[0], dict):
        merged: dict[str, Any] = {}
        for arg in args:
            merged = _merge(merged, _object_arg("union", arg))
        return merged
    result: list[Any] = []
    for arg in args:
        for item in _array_arg("union", arg):
            if not any(deep_equal(item, seen) for seen in result):
                result.append(item)
    return result


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """union() of objects: later values win; nested objects merge recursively (arrays do not)."""
    merged = dict(base)
    for key, value in extra.items():
        existing = find_key(merged, key)
        if existing is not None and isinstance(merged[existing], dict) and isinstance(value, dict):
            merged[existing] = _merge(merged[existing], value)
        else:
            if existing is not None:
                del merged[existing]
            merged[key] = value
    return merged


@_builtin("intersection", 2, None)
def _intersection(args: list[Any]) -> Any:
    first, rest = args[0], args[1:]
    if isinstance(first, dict):
        return {
            key: value
            for key, value in first.items()
            if all(
                (other := find_key(_object_arg("intersection", o), key)) is not None
                and deep_equal(value, o[other])
                for o in rest
            )
        }
    return [
        item
        for item in _array_arg("intersection", first)
        if all(any(deep_equal(item, x) for x in _array_arg("intersection", o)) for o in rest)
    ]


@_builtin("items", 1)
def _items(args: list[Any]) -> list[dict[str, Any]]:
    obj = _object_arg("items", args[0])
    return [{"key": key, "value": obj[key]} for key in sorted(obj, key=str.lower)]


@_builtin("range", 2)
def _range(args: list[Any]) -> list[int]:
    start, count = _integer("range", args[0]), _integer("range", args[1])
    if count < 0:
        raise _fail("range", "the count must not be negative.")
    return list(range(start, start + count))


# --- numbers


def _numbers(name: str, args: list[Any]) -> list[int]:
    values = args[0] if len(args) == 1 and isinstance(args[0], list) else args
    if not values:
        raise _fail(name, "at least one value is required.")
    return [_integer(name, value) for value in values]


@_builtin("min", 1, None)
def _min(args: list[Any]) -> int:
    return min(_numbers("min", args))


@_builtin("max", 1, None)
def _max(args: list[Any]) -> int:
    return max(_numbers("max", args))


@_builtin("add", 2)
def _add(args: list[Any]) -> int:
    return _integer("add", args[0]) + _integer("add", args[1])


@_builtin("sub", 2)
def _sub(args: list[Any]) -> int:
    return _integer("sub", args[0]) - _integer("sub", args[1])


@_builtin("mul", 2)
def _mul(args: list[Any]) -> int:
    return _integer("mul", args[0]) * _integer("mul", args[1])


def _divisor(name: str, value: Any) -> int:
    if _integer(name, value) == 0:
        raise _fail(name, "the divisor cannot be zero.")
    return int(value)


@_builtin("div", 2)
def _div(args: list[Any]) -> int:
    dividend, divisor = _integer("div", args[0]), _divisor("div", args[1])
    quotient = abs(dividend) // abs(divisor)  # .NET truncates toward zero
    return quotient if (dividend >= 0) == (divisor > 0) else -quotient


@_builtin("mod", 2)
def _mod(args: list[Any]) -> int:
    dividend, divisor = _integer("mod", args[0]), _divisor("mod", args[1])
    return dividend - divisor * int(_div([dividend, divisor]))


# --- hashes


GUID_NAMESPACE = uuid.UUID("11fb06fb-712d-4ddd-98c7-e71bbd588830")


@_builtin("guid", 1, None)
def _guid(args: list[Any]) -> str:
    """ARM's guid(): a version-5 UUID in ARM's namespace over the arguments joined with '-'."""
    return str(uuid.uuid5(GUID_NAMESPACE, "-".join(_text("guid", arg) for arg in args)))


@_builtin("uniqueString", 1, None)
def _unique_string(args: list[Any]) -> str:
    """ARM's uniqueString(): 13 base-32 characters of ARM's 64-bit Murmur hash of the '-'-joined arguments."""
    digest = murmur64("-".join(_text("uniqueString", arg) for arg in args).encode())
    alphabet = "abcdefghijklmnopqrstuvwxyz234567"
    chars = []
    for _ in range(13):
        chars.append(alphabet[digest >> 59])
        digest = (digest << 5) & _MASK64
    return "".join(chars)


_MASK32 = 0xFFFFFFFF
_MASK64 = 0xFFFFFFFFFFFFFFFF


def _rotl(value: int, bits: int) -> int:
    return ((value << bits) | (value >> (32 - bits))) & _MASK32


def _mix(value: int) -> int:
    value = ((value ^ (value >> 16)) * 0x85EBCA6B) & _MASK32
    value = ((value ^ (value >> 13)) * 0xC2B2AE35) & _MASK32
    return value ^ (value >> 16)


def murmur64(data: bytes) -> int:
    """The 64-bit MurmurHash variant that ARM's uniqueString() is built on (two 32-bit lanes)."""
    c1, c2 = 0xAB0E9789, 0x239B961B
    h1 = h2 = 0
    whole = len(data) - len(data) % 8
    for i in range(0, whole, 8):
        k1 = _rotl((int.from_bytes(data[i : i + 4], "little") * c2) & _MASK32, 15) * c1 & _MASK32
        k2 = _rotl((int.from_bytes(data[i + 4 : i + 8], "little") * c1) & _MASK32, 17) * c2 & _MASK32
        h1 = (_rotl(h1 ^ k1, 19) + h2) & _MASK32
        h1 = (h1 * 5 + 0x561CCD1B) & _MASK32
        h2 = (_rotl(h2 ^ k2, 13) + h1) & _MASK32
        h2 = (h2 * 5 + 0x0BCAA747) & _MASK32
    tail = data[whole:]
    if tail:
        h1 ^= _rotl((int.from_bytes(tail[:4], "little") * c2) & _MASK32, 15) * c1 & _MASK32
    if len(tail) > 4:
        h2 ^= _rotl((int.from_bytes(tail[4:], "little") * c1) & _MASK32, 17) * c2 & _MASK32
    h2 ^= len(data)
    h1 = ((h1 ^ len(data)) + h2) & _MASK32
    h2 = (h2 + h1) & _MASK32
    h1, h2 = _mix(h1), _mix(h2)
    h1 = (h1 + h2) & _MASK32
    h2 = (h2 + h1) & _MASK32
    return (h2 << 32) | h1


# --- dates


_DOTNET_STANDARD_FORMATS = {
    "o": "yyyy-MM-ddTHH:mm:ss.fffffffK",
    "O": "yyyy-MM-ddTHH:mm:ss.fffffffK",
    "s": "yyyy-MM-ddTHH:mm:ss",
    "u": "yyyy-MM-dd HH:mm:ssZ",
    "r": "ddd, dd MMM yyyy HH:mm:ss 'GMT'",
    "R": "ddd, dd MMM yyyy HH:mm:ss 'GMT'",
    "d": "MM/dd/yyyy",
}
_DOTNET_FIELD = re.compile(
    r"'[^']*'|\"[^\"]*\"|\\.|yyyy|yy|MMMM|MMM|MM|M|dddd|ddd|dd|d|HH|H|hh|h|mm|m|ss|s|f{1,7}|tt|K|zzz|."
)


def format_datetime(moment: datetime, pattern: str) -> str:
    """Format a UTC datetime with a .NET date format string (standard single letters or custom)."""
    if len(pattern) == 1:
        if pattern not in _DOTNET_STANDARD_FORMATS:
            raise _fail("utcNow", f"the format '{pattern}' is not supported by this emulator.")
        pattern = _DOTNET_STANDARD_FORMATS[pattern]
    return "".join(_format_field(moment, token) for token in _DOTNET_FIELD.findall(pattern))


def _format_field(moment: datetime, token: str) -> str:
    fields: dict[str, Callable[[], str]] = {
        "yyyy": lambda: f"{moment.year:04d}",
        "yy": lambda: f"{moment.year % 100:02d}",
        "MMMM": lambda: calendar.month_name[moment.month],
        "MMM": lambda: calendar.month_abbr[moment.month],
        "MM": lambda: f"{moment.month:02d}",
        "M": lambda: str(moment.month),
        "dddd": lambda: calendar.day_name[moment.weekday()],
        "ddd": lambda: calendar.day_abbr[moment.weekday()],
        "dd": lambda: f"{moment.day:02d}",
        "d": lambda: str(moment.day),
        "HH": lambda: f"{moment.hour:02d}",
        "H": lambda: str(moment.hour),
        "hh": lambda: f"{(moment.hour % 12) or 12:02d}",
        "h": lambda: str((moment.hour % 12) or 12),
        "mm": lambda: f"{moment.minute:02d}",
        "m": lambda: str(moment.minute),
        "ss": lambda: f"{moment.second:02d}",
        "s": lambda: str(moment.second),
        "tt": lambda: "AM" if moment.hour < 12 else "PM",
        "K": lambda: "Z",
        "zzz": lambda: "+00:00",
    }
    if token in fields:
        return fields[token]()
    if token.startswith("f"):
        return f"{moment.microsecond:06d}0"[: len(token)]
    if token[0] in "'\"" and len(token) > 1:
        return token[1:-1]
    if token.startswith("\\"):
        return token[1:]
    return token


def parse_datetime(name: str, text: Any) -> datetime:
    text = _text(name, text).strip()
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace(" ", "T", 1))
    except ValueError:
        raise _fail(name, f"the value '{text}' is not a valid date and time.") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


_DURATION = re.compile(
    r"^(-)?P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$"
)


def add_duration(moment: datetime, duration: str) -> datetime:
    match = _DURATION.match(duration)
    if not match or duration.rstrip("T").endswith("P"):
        raise _fail("dateTimeAdd", f"the duration '{duration}' is not a valid ISO 8601 duration.")
    sign = -1 if match.group(1) else 1
    years, months, weeks, days, hours, minutes = (int(g or 0) for g in match.groups()[1:7])
    seconds = float(match.group(8) or 0)
    total_months = moment.year * 12 + moment.month - 1 + sign * (years * 12 + months)
    year, month = divmod(total_months, 12)
    day = min(moment.day, calendar.monthrange(year, month + 1)[1])
    moved = moment.replace(year=year, month=month + 1, day=day)
    return moved + sign * timedelta(weeks=weeks, days=days, hours=hours, minutes=minutes, seconds=seconds)


def iso(moment: datetime) -> str:
    text = moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{text}.{moment.microsecond:06d}0Z" if moment.microsecond else f"{text}Z"


@_builtin("dateTimeAdd", 2, 3)
def _date_time_add(args: list[Any]) -> str:
    moved = add_duration(parse_datetime("dateTimeAdd", args[0]), _text("dateTimeAdd", args[1]))
    return format_datetime(moved, _text("dateTimeAdd", args[2])) if len(args) > 2 else iso(moved)


@_builtin("dateTimeFromEpoch", 1)
def _date_time_from_epoch(args: list[Any]) -> str:
    return iso(datetime.fromtimestamp(_integer("dateTimeFromEpoch", args[0]), UTC))


@_builtin("dateTimeToEpoch", 1)
def _date_time_to_epoch(args: list[Any]) -> int:
    return int(parse_datetime("dateTimeToEpoch", args[0]).timestamp())
