"""The lenient JSON ARM reads deployment requests in.

`az deployment group create --template-file` does not send plain JSON: to keep the template's text as
written it splices it into the body unquoted, as `{"properties": {...}, template:{...}}}`, and a template
file may carry `//` and `/* */` comments (the CLI accepts JSONC). ARM's deserializer takes that: unquoted
property names, comments, single-quoted strings and trailing commas. `loads` does the same by rewriting the
text into JSON first; plain JSON passes through unchanged.
"""

from __future__ import annotations

import json
import re
from typing import Any

_BARE_WORD = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")
_LITERALS = frozenset({"true", "false", "null"})
_SPACE = " \t\r\n"


def loads(text: str | bytes) -> Any:
    if isinstance(text, bytes):
        text = text.decode("utf-8-sig")
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return json.loads(_to_json(text))


def _skip_ignorable(text: str, pos: int) -> int:
    """The position after whitespace and comments."""
    while pos < len(text):
        if text[pos] in _SPACE:
            pos += 1
        elif text.startswith("//", pos):
            end = text.find("\n", pos)
            pos = len(text) if end < 0 else end + 1
        elif text.startswith("/*", pos):
            end = text.find("*/", pos + 2)
            if end < 0:
                raise json.JSONDecodeError("Unterminated comment", text, pos)
            pos = end + 2
        else:
            break
    return pos


def _string(text: str, pos: int) -> tuple[str, int]:
    """A quoted string at `pos` (either quote) as a JSON string literal, and the position after it."""
    quote = text[pos]
    chars: list[str] = []
    pos += 1
    while pos < len(text):
        char = text[pos]
        if char == "\\":
            escaped = text[pos + 1 : pos + 2]
            chars.append("'" if escaped == "'" else "\\" + escaped)
            pos += 2
            continue
        if char == quote:
            return '"' + "".join(chars) + '"', pos + 1
        chars.append('\\"' if char == '"' else char)
        pos += 1
    raise json.JSONDecodeError("Unterminated string", text, pos)


def _to_json(text: str) -> str:
    out: list[str] = []
    pos = 0
    while pos < len(text):
        char = text[pos]
        if char in "\"'":
            literal, pos = _string(text, pos)
            out.append(literal)
        elif text.startswith("//", pos) or text.startswith("/*", pos) or char in _SPACE:
            pos = _skip_ignorable(text, pos)
            out.append(" ")
        elif char == ",":
            after = _skip_ignorable(text, pos + 1)
            if after < len(text) and text[after] in "}]":
                pos = after  # a trailing comma
            else:
                out.append(",")
                pos += 1
        elif (word := _BARE_WORD.match(text, pos)) is not None:
            value = word.group()
            after = _skip_ignorable(text, word.end())
            quoted = value not in _LITERALS and after < len(text) and text[after] == ":"
            out.append(json.dumps(value) if quoted else value)
            pos = word.end()
        else:
            out.append(char)
            pos += 1
    return "".join(out)
