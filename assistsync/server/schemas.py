"""Request validation: pydantic models that mirror the spec, plus the rules it cannot express.

The models (``extra="forbid"``, ``strict=True``) encode what the published spec says about
request bodies: which fields exist, their JSON types, length and item limits. What the spec
leaves out but the hosted API enforced (API.md: function-name pattern, unique function names,
metadata limits, duplicate file ids, response_format shape) is checked afterwards in plain
code. Every failure becomes one :class:`ApiError` 400 whose ``param`` is the JSON path of the
first offending value in the hosted API's notation (``tools[0].function.name``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from assistsync.server.errors import ApiError, bad_request
from assistsync.server.store import PageQuery

MAX_NAME = 256
MAX_DESCRIPTION = 512
MAX_INSTRUCTIONS = 256_000
MAX_TOOLS = 128
MAX_FILE_IDS = 20
MAX_METADATA_PAIRS = 16
MAX_METADATA_KEY = 64
MAX_METADATA_VALUE = 512
MAX_LIST_LIMIT = 100
FUNCTION_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
TOOL_TYPES = ("code_interpreter", "retrieval", "function")
FILE_PURPOSES = ("fine-tune", "assistants")


class _Body(BaseModel):
    # strict: JSON "1" is not a number and 1 is not a string, as the hosted API answered.
    model_config = ConfigDict(extra="forbid", strict=True)


class FunctionDefinition(_Body):
    """``FunctionObject``: the name is checked against the pattern after parsing."""

    name: str
    # Not nullable in the spec; defaults only stand in for "omitted" (exclude_unset drops them).
    description: str = ""
    parameters: dict[str, Any] = Field(default_factory=dict)


class CodeInterpreterTool(_Body):
    type: Literal["code_interpreter"]


class RetrievalTool(_Body):
    type: Literal["retrieval"]


class FunctionTool(_Body):
    type: Literal["function"]
    function: FunctionDefinition


Tool = Annotated[CodeInterpreterTool | RetrievalTool | FunctionTool, Field(discriminator="type")]


class _AssistantFields(_Body):
    name: str | None = Field(default=None, max_length=MAX_NAME)
    description: str | None = Field(default=None, max_length=MAX_DESCRIPTION)
    instructions: str | None = Field(default=None, max_length=MAX_INSTRUCTIONS)
    tools: list[Tool] = Field(default_factory=list, max_length=MAX_TOOLS)
    file_ids: list[str] = Field(default_factory=list, max_length=MAX_FILE_IDS)
    # Loosely typed here so that the checks below can word their errors like the hosted API.
    metadata: dict[str, Any] | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    response_format: Any = None


class CreateAssistantRequest(_AssistantFields):
    """``CreateAssistantRequest``: ``model`` is required."""

    model: str


class ModifyAssistantRequest(_AssistantFields):
    """``ModifyAssistantRequest``: any subset; ``model`` may be omitted but not null."""

    model: str = ""


class CreateAssistantFileRequest(_Body):
    """``CreateAssistantFileRequest``."""

    file_id: str


_M = TypeVar("_M", bound=BaseModel)


# -- JSON and pydantic errors -> ApiError -------------------------------------------------------


def _json_kind(value: object) -> str:
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


def param_path(loc: Sequence[int | str]) -> str:
    """Pydantic's ``loc`` in the hosted API's notation: ``tools[0].function.name``.

    The tag pydantic inserts after a discriminated-union index (``tools.0.function.name``
    reads ``("tools", 0, "function", "function", "name")``) is not part of the JSON path.
    """
    out = ""
    previous: int | str | None = None
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif isinstance(previous, int) and part in TOOL_TYPES and out.startswith("tools"):
            pass
        else:
            out += f".{part}" if out else part
        previous = part
    return out


def _from_pydantic(exc: ValidationError) -> ApiError:
    err = exc.errors(include_url=False)[0]
    param = param_path(err["loc"]) or None
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
    elif kind == "too_long":
        message = (
            f"Invalid {where}: array too long. Expected an array with maximum length "
            f"{ctx['max_length']}, but got an array with length {ctx['actual_length']} instead."
        )
    elif kind in _EXPECTED:
        message = (
            f"Invalid type for {where}: expected {_EXPECTED[kind]}, "
            f"but got {_json_kind(given)} instead."
        )
    elif kind == "literal_error":
        message = f"Invalid value for {where}: {given!r}. Supported values are: {ctx['expected']}."
    elif kind == "union_tag_invalid":
        allowed = ", ".join(f"'{t}'" for t in TOOL_TYPES)
        param = f"{param}.type"
        message = f"Invalid value for '{param}': {ctx['tag']!r}. Supported values are: {allowed}."
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


def parse_json_object(body: bytes) -> dict[str, Any]:
    """The request body as a JSON object, or a 400 that says what was wrong with it."""
    try:
        value = json.loads(body, parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError) as exc:
        raise bad_request(
            "We could not parse the JSON body of your request. The API expects a JSON object "
            f"(Content-Type: application/json), but what was sent was not valid JSON: {exc}."
        ) from None
    if not isinstance(value, dict):
        raise bad_request(
            f"Invalid type for the request body: expected an object, but got {_json_kind(value)}"
            " instead."
        )
    return value


def validate(model: type[_M], data: dict[str, Any]) -> _M:
    """``model.model_validate(data)`` with pydantic's errors turned into one 400."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise _from_pydantic(exc) from None


# -- rules the spec cannot express ---------------------------------------------------------------


def _check_tools(tools: Sequence[CodeInterpreterTool | RetrievalTool | FunctionTool]) -> None:
    seen: dict[str, int] = {}
    for index, tool in enumerate(tools):
        if not isinstance(tool, FunctionTool):
            continue
        name = tool.function.name
        param = f"tools[{index}].function.name"
        if not FUNCTION_NAME.fullmatch(name):
            raise bad_request(
                f"Invalid '{param}': string does not match pattern. Expected a string that "
                f"matches the pattern '^[a-zA-Z0-9_-]{{1,64}}$', but got {name!r}.",
                param,
            )
        if name in seen:
            raise bad_request(
                f"Invalid '{param}': duplicate function name {name!r} (also tools[{seen[name]}]);"
                " function names must be unique within an assistant.",
                param,
            )
        seen[name] = index


def _check_metadata(metadata: dict[str, Any]) -> None:
    if len(metadata) > MAX_METADATA_PAIRS:
        raise bad_request(
            f"Invalid 'metadata': too many properties. Expected an object with at most "
            f"{MAX_METADATA_PAIRS} properties, but got an object with {len(metadata)} "
            "properties instead.",
            "metadata",
        )
    for key, value in metadata.items():
        param = f"metadata.{key}"
        if len(key) > MAX_METADATA_KEY:
            raise bad_request(
                f"Invalid 'metadata': key {key[:16]!r}... is {len(key)} characters long; keys "
                f"can be at most {MAX_METADATA_KEY} characters.",
                "metadata",
            )
        if not isinstance(value, str):
            raise bad_request(
                f"Invalid type for '{param}': expected a string, but got {_json_kind(value)} "
                "instead.",
                param,
            )
        if len(value) > MAX_METADATA_VALUE:
            raise bad_request(
                f"Invalid '{param}': string too long. Expected a string with maximum length "
                f"{MAX_METADATA_VALUE}, but got a string with length {len(value)} instead.",
                param,
            )


def _check_file_ids(file_ids: Sequence[str]) -> None:
    seen: set[str] = set()
    for index, file_id in enumerate(file_ids):
        if file_id in seen:
            raise bad_request(
                f"Invalid 'file_ids': duplicate file id '{file_id}'; each file can be attached "
                "to an assistant only once.",
                f"file_ids[{index}]",
            )
        seen.add(file_id)


def _check_response_format(value: Any) -> Any:
    if value is None:
        return "auto"
    if value in ("none", "auto"):
        return value
    if (
        isinstance(value, dict)
        and set(value) <= {"type"}
        and value.get("type", "text") in ("text", "json_object")
    ):
        return {"type": value.get("type", "text")}
    raise bad_request(
        "Invalid 'response_format': expected 'none', 'auto', {\"type\": \"text\"} or "
        f'{{"type": "json_object"}}, but got {json.dumps(value)}.',
        "response_format",
    )


def _normalised(request: _AssistantFields, fields: set[str]) -> dict[str, Any]:
    """The stored form of the given ``fields``: nulls replaced by the API's defaults."""
    if "model" in fields and not getattr(request, "model", ""):
        raise bad_request("Invalid 'model': must be a non-empty model id.", "model")
    if "tools" in fields:
        _check_tools(request.tools)
    if "metadata" in fields and request.metadata is not None:
        _check_metadata(request.metadata)
    if "file_ids" in fields:
        _check_file_ids(request.file_ids)
    out: dict[str, Any] = {}
    for name in fields - {"file_ids"}:
        value = getattr(request, name)
        if name == "tools":
            value = [tool.model_dump(exclude_unset=True) for tool in request.tools]
        elif name == "metadata":
            value = value if value is not None else {}
        elif name in ("temperature", "top_p"):
            value = float(value) if value is not None else 1.0
        elif name == "response_format":
            value = _check_response_format(value)
        out[name] = value
    return out


def assistant_create_fields(data: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Validate a create body: every stored field (defaults filled in) and the file ids."""
    request = validate(CreateAssistantRequest, data)
    defaults: dict[str, Any] = {
        "name": None,
        "description": None,
        "instructions": None,
        "tools": [],
        "metadata": {},
        "temperature": 1.0,
        "top_p": 1.0,
        "response_format": "auto",
    }
    fields = _normalised(request, set(request.model_fields_set) | {"model"})
    return defaults | fields, request.file_ids


def assistant_modify_fields(data: dict[str, Any]) -> tuple[dict[str, Any], list[str] | None]:
    """Validate a modify body: the changed fields, and the new file set if one was given."""
    request = validate(ModifyAssistantRequest, data)
    given = set(request.model_fields_set)
    changes = _normalised(request, given)
    return changes, (request.file_ids if "file_ids" in given else None)


# -- query strings --------------------------------------------------------------------------------


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


def page_query(query: Mapping[str, list[str]]) -> PageQuery:
    """``limit``/``order``/``after``/``before`` of a cursor list, validated."""
    params = single_params(query, ("limit", "order", "after", "before"))
    limit = 20
    if "limit" in params:
        raw = params["limit"]
        if not re.fullmatch(r"[0-9]{1,4}", raw) or not 1 <= int(raw) <= MAX_LIST_LIMIT:
            raise bad_request(
                f"Invalid 'limit': expected an integer between 1 and {MAX_LIST_LIMIT}, "
                f"but got {raw!r}.",
                "limit",
            )
        limit = int(raw)
    order = params.get("order", "desc")
    if order not in ("asc", "desc"):
        raise bad_request(f"Invalid 'order': expected 'asc' or 'desc', but got {order!r}.", "order")
    return PageQuery(
        limit=limit,
        order="asc" if order == "asc" else "desc",
        after=params.get("after"),
        before=params.get("before"),
    )


def files_query(query: Mapping[str, list[str]]) -> str | None:
    """The ``purpose`` filter of ``GET /files``, the only parameter v1 had there."""
    return single_params(query, ("purpose",)).get("purpose")
