"""Request parsing shared by every endpoint: JSON bodies, query strings, pydantic errors -> 400.

The messages mimic the hosted API's wording; ``param`` is the JSON path of the first offending
value in its notation (``tools[0].function.name``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from assistsync.server.framework.errors import ApiError, bad_request

_M = TypeVar("_M", bound=BaseModel)


def json_kind(value: object) -> str:
    """How the hosted API named a JSON value's type in its errors (``"an integer"``)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a decimal"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


_EXPECTED = {
    "string_type": "a string",
    "int_type": "an integer",
    "float_type": "a number",
    "bool_type": "a boolean",
    "list_type": "an array",
    "dict_type": "an object",
    "model_type": "an object",
    "model_attributes_type": "an object",
}


def param_path(loc: Sequence[int | str], data: Any = None) -> str:
    """Pydantic's ``loc`` in the hosted API's notation: ``tools[0].function.name``.

    Pydantic inserts a discriminated union's tag after the index (``tools.0.function.name``
    reads ``("tools", 0, "function", "function", "name")``); the tag is not part of the JSON
    path. It is recognised by walking ``data`` (the validated input) along ``loc``: a string
    right after an index that equals the item's ``type`` is the tag.
    """
    out = ""
    previous: int | str | None = None
    current = data
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
            current = current[part] if isinstance(current, list) and part < len(current) else None
        elif (
            isinstance(previous, int) and isinstance(current, dict) and current.get("type") == part
        ):
            pass  # the union's tag
        else:
            out += f".{part}" if out else part
            current = current.get(part) if isinstance(current, dict) else None
        previous = part
    return out


def _from_pydantic(exc: ValidationError, data: Any) -> ApiError:
    err = exc.errors(include_url=False)[0]
    param = param_path(err["loc"], data) or None
    kind = err["type"]
    ctx: Mapping[str, Any] = err.get("ctx") or {}
    given = err.get("input")
    where = f"'{param}'" if param else "the request body"
    if kind == "extra_forbidden":
        message = f"Unrecognized request argument supplied: {param}"
    elif kind == "missing":
        message = f"Missing required parameter: '{param}'."
    elif kind == "string_too_long":
        message = (
            f"Invalid {where}: string too long. Expected a string with maximum length "
            f"{ctx['max_length']}, but got a string with length {len(given)} instead."
        )
    elif kind == "string_too_short":
        message = (
            f"Invalid {where}: string too short. Expected a string with minimum length "
            f"{ctx['min_length']}, but got a string with length {len(given)} instead."
        )
    elif kind == "too_long":
        message = (
            f"Invalid {where}: array too long. Expected an array with maximum length "
            f"{ctx['max_length']}, but got an array with length {ctx['actual_length']} instead."
        )
    elif kind == "too_short":
        message = (
            f"Invalid {where}: array too short. Expected an array with minimum length "
            f"{ctx['min_length']}, but got an array with length {ctx['actual_length']} instead."
        )
    elif kind in _EXPECTED:
        message = (
            f"Invalid type for {where}: expected {_EXPECTED[kind]}, "
            f"but got {json_kind(given)} instead."
        )
    elif kind == "literal_error":
        message = f"Invalid value for {where}: {given!r}. Supported values are: {ctx['expected']}."
    elif kind == "union_tag_invalid":
        param = f"{param}.type"
        message = (
            f"Invalid value for '{param}': {ctx['tag']!r}. Supported values are: "
            f"{ctx['expected_tags']}."
        )
    elif kind == "union_tag_not_found":
        message = f"Missing required parameter: '{param}.type'."
        param = f"{param}.type"
    elif kind in ("greater_than_equal", "less_than_equal"):
        bound = ctx.get("ge", ctx.get("le"))
        relation = ">=" if kind == "greater_than_equal" else "<="
        message = f"Invalid {where}: expected a number {relation} {bound}, but got {given}."
    else:
        message = f"Invalid {where}: {err['msg']}."
    return bad_request(message, param)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


_DECODER = json.JSONDecoder(parse_constant=_reject_constant)
"""One decoder for every body (``json.loads`` with an argument builds a new one per call)."""


def parse_json_object(body: bytes) -> dict[str, Any]:
    """The request body as a JSON object, or a 400 that says what was wrong with it."""
    try:
        # As json.loads does with bytes: UTF-8, -16 or -32, told apart by the first bytes.
        value = _DECODER.decode(body.decode(json.detect_encoding(body), "surrogatepass"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise bad_request(
            "We could not parse the JSON body of your request. The API expects a JSON object "
            f"(Content-Type: application/json), but what was sent was not valid JSON: {exc}."
        ) from None
    except RecursionError:
        # Arrays or objects nested thousands deep: the client's input, not our failure.
        raise bad_request(
            "We could not parse the JSON body of your request: its arrays or objects are "
            "nested too deeply. Send a JSON object nested at most a few hundred levels."
        ) from None
    if not isinstance(value, dict):
        raise bad_request(
            f"Invalid type for the request body: expected an object, but got {json_kind(value)}"
            " instead."
        )
    return value


def validate(model: type[_M], data: dict[str, Any]) -> _M:
    """``model.model_validate(data)`` with pydantic's errors turned into one 400."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise _from_pydantic(exc, data) from None


def single_params(query: Mapping[str, list[str]], allowed: Sequence[str]) -> dict[str, str]:
    """Each query parameter once, and only those in ``allowed`` (the spec lists them all)."""
    out: dict[str, str] = {}
    for name, values in query.items():
        if name not in allowed:
            known = ", ".join(f"'{a}'" for a in allowed) or "none"
            raise bad_request(
                f"Unrecognized query parameter: '{name}'. This endpoint accepts: {known}.", name
            )
        if len(values) > 1:
            raise bad_request(f"Query parameter '{name}' was given {len(values)} times.", name)
        out[name] = values[0]
    return out
