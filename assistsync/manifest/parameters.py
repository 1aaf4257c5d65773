"""Function parameters: a JSON Schema, checked against its draft's meta-schema before any call.

The API takes ``parameters`` as "a JSON Schema object"; a schema with ``"type": "objekt"`` would
otherwise be uploaded and only fail when the model calls the function. ``schema_problems`` returns
every problem at once, each with the path of the offending value inside the schema, which the
loader turns into a position: in the YAML for inline ``parameters``, in the JSON file for
``parameters_file`` (``json_position``).

Which meta-schema: the one the schema's own ``$schema`` names, else draft-07. Draft-07 is the
lenient choice where drafts disagree (it accepts both forms of ``items``, which 2020-12 does not),
and its meta-schema checks about five times faster than 2020-12's (about 0.17 ms against 0.8 ms
for a small schema), which matters when a project declares hundreds of functions.
"""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

from assistsync.manifest.source import Pos, offset_pos

if TYPE_CHECKING:
    from jsonschema.exceptions import ValidationError
    from jsonschema.protocols import Validator

JsonPath = tuple[str | int, ...]
"""Keys and indexes from the top of a JSON value down to one value inside it."""

_WS = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()


@dataclass(frozen=True)
class SchemaProblem:
    """One way a schema breaks its meta-schema: where (``path`` inside the schema) and what."""

    path: JsonPath
    message: str


def _meta_validator(draft: str) -> Validator:
    """The validator of the meta-schema ``draft`` names (draft-07 for any other text).

    jsonschema is imported here, not at the top: it takes about 60 ms to import, which every
    command would pay even for projects that declare no function parameters.
    """
    from jsonschema import Draft7Validator
    from jsonschema.validators import validator_for

    return _validator_of(validator_for({"$schema": draft}, default=Draft7Validator))


@cache
def _validator_of(cls: type[Validator]) -> Validator:
    """One validator of each draft's meta-schema for the whole run: building one is costly."""
    return cls(cls.META_SCHEMA)


def used_jsonschema() -> bool:
    """Whether a schema of this run needed jsonschema's verdict (its version then matters)."""
    return _validator_of.cache_info().currsize > 0


_SIMPLE_TYPES = frozenset(("array", "boolean", "integer", "null", "number", "object", "string"))
_PLAIN_KEYS = frozenset(("type", "properties", "required", "description", "title", "enum", "items"))


def _plainly_valid(schema: object, depth: int = 0) -> bool:
    """True only for a schema in the small shape most function parameters take (``type``,
    ``properties``, ``required``, ``description``, ``title``, ``enum``, ``items`` of that same
    shape), each keyword as draft-07's meta-schema requires it: such a schema is valid, and
    the meta-schema walk (about 0.2 ms each, for every distinct schema) is skipped. Anything
    else, including every invalid schema, is left to the meta-schema; False is never a
    verdict, only "not sure"."""
    if type(schema) is not dict or depth > 32 or not schema.keys() <= _PLAIN_KEYS:
        return False
    kind = schema.get("type", "string")
    if type(kind) is list:
        # strings first: set() of a list holding a list would raise
        if not kind or any(type(k) is not str for k in kind) or len(set(kind)) != len(kind):
            return False
        if not set(kind) <= _SIMPLE_TYPES:
            return False
    elif type(kind) is not str or kind not in _SIMPLE_TYPES:
        return False
    for text in ("description", "title"):
        if text in schema and type(schema[text]) is not str:
            return False
    if "enum" in schema and type(schema["enum"]) is not list:
        return False
    required = schema.get("required", [])
    if type(required) is not list or any(type(r) is not str for r in required):
        return False
    if len(set(required)) != len(required):
        return False
    properties = schema.get("properties", {})
    if type(properties) is not dict:
        return False
    if not all(_plainly_valid(sub, depth + 1) for sub in properties.values()):
        return False
    return "items" not in schema or _plainly_valid(schema["items"], depth + 1)


def schema_problems(schema: dict[str, Any]) -> list[SchemaProblem]:
    """Every problem of ``schema`` as a JSON Schema (empty when it is valid), in path order."""
    if _plainly_valid(schema):
        return []
    named = schema.get("$schema")
    # A non-string $schema is itself reported by the meta-schema; it cannot choose one.
    validator = _meta_validator(named if isinstance(named, str) else "")
    try:
        found = {_problem(error) for error in validator.iter_errors(schema)}
    except RecursionError:
        return [SchemaProblem((), "nested too deeply to check")]
    return sorted(found, key=lambda p: ([str(part) for part in p.path], p.message))


def _problem(error: ValidationError) -> SchemaProblem:
    # "not valid under any of the given schemas" says nothing; the closest alternative does:
    # the one that got deepest into the value, and one that at least took its type.
    while error.context:
        error = max(error.context, key=lambda e: (len(e.absolute_path), e.validator != "type"))
    path = tuple(error.absolute_path)
    message = error.message
    value = error.instance
    allowed = error.validator_value
    if (
        error.validator == "enum"
        and "type" in path[-2:]
        and isinstance(value, str)
        and isinstance(allowed, list)
    ):
        types = [str(t) for t in allowed]
        close = difflib.get_close_matches(value, types, n=1, cutoff=0.6)
        hint = f"did you mean {close[0]!r}?" if close else f"expected one of: {', '.join(types)}"
        message = f"unknown type {value!r}; {hint}"
    return SchemaProblem(path, message)


def json_position(text: str, path: JsonPath) -> Pos:
    """The 1-based line and column, in JSON ``text``, of the value at ``path``.

    ``text`` must be valid JSON (it was loaded with ``json.loads``). Each step is scanned with
    the standard library's own decoder, so positions agree with what was loaded; with a
    duplicate key the last one counts, as in ``json.loads``. Where ``path`` leads nowhere, the
    position is that of the deepest value it reached. Only called for errors, so re-decoding
    skipped values costs nothing in a valid project.
    """
    i = _skip(text, 0)
    for part in path:
        target = _member(text, i, part)
        if target is None:
            break
        i = target
    return offset_pos(text, i)


def _skip(text: str, i: int) -> int:
    match = _WS.match(text, i)
    return match.end() if match else i


def _member(text: str, i: int, part: str | int) -> int | None:
    """The offset of member ``part`` of the object or array starting at ``i``, if present."""
    if i >= len(text) or text[i] not in "{[":
        return None
    is_object = text[i] == "{"
    found: int | None = None
    index = 0
    i = _skip(text, i + 1)
    while i < len(text) and text[i] not in "}]":
        key: Any = index
        if is_object:
            key, i = _DECODER.raw_decode(text, i)
            i = _skip(text, _skip(text, i) + 1)  # past the ':'
        if key == part and type(key) is type(part):
            found = i
        _, i = _DECODER.raw_decode(text, i)
        i = _skip(text, i)
        if i < len(text) and text[i] == ",":
            i = _skip(text, i + 1)
        index += 1
    return found
