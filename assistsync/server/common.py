"""Request fields several endpoint groups share: the strict body base, tools, metadata, lists.

The models (``extra="forbid"``, ``strict=True``) encode what the published spec says about
request bodies. What the spec leaves out but the hosted API enforced (API.md: function-name
pattern, unique function names, metadata limits, duplicate file ids, response_format shape) is
checked afterwards in plain code, worded like the hosted API, with ``param``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from assistsync.server.db import PAGE_PARAMS, PageQuery, parse_page
from assistsync.server.framework.errors import bad_request
from assistsync.server.framework.routing import Request
from assistsync.server.framework.validation import json_kind, single_params

MAX_METADATA_PAIRS = 16
MAX_METADATA_KEY = 64
MAX_METADATA_VALUE = 512
FUNCTION_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
TOOL_TYPES = ("code_interpreter", "retrieval", "function")


class Body(BaseModel):
    """Base of every request body model."""

    # strict: JSON "1" is not a number and 1 is not a string, as the hosted API answered.
    model_config = ConfigDict(extra="forbid", strict=True)


class FunctionDefinition(Body):
    """``FunctionObject``: the name is checked against the pattern after parsing."""

    name: str
    # Not nullable in the spec; defaults only stand in for "omitted" (exclude_unset drops them).
    description: str = ""
    parameters: dict[str, Any] = Field(default_factory=dict)


class CodeInterpreterTool(Body):
    type: Literal["code_interpreter"]


class RetrievalTool(Body):
    type: Literal["retrieval"]


class FunctionTool(Body):
    type: Literal["function"]
    function: FunctionDefinition


AnyTool = CodeInterpreterTool | RetrievalTool | FunctionTool
Tool = Annotated[AnyTool, Field(discriminator="type")]


def plain(request: Request[Any]) -> None:
    """Operations without query parameters reject any, as unknown fields are rejected."""
    single_params(request.query, ())


_FIRST_PAGE = parse_page({})


def page_query(query: Mapping[str, list[str]], *extra: str) -> tuple[PageQuery, dict[str, str]]:
    """A cursor list's paging parameters, and the values of the ``extra`` filters given."""
    if not query:  # the usual first page: the defaults (a frozen value, safe to share)
        return _FIRST_PAGE, {}
    params = single_params(query, (*PAGE_PARAMS, *extra))
    return parse_page(params), {name: params[name] for name in extra if name in params}


def check_tools(tools: Sequence[AnyTool]) -> None:
    """Function names match the pattern and are unique (``param``: ``tools[i].function.name``)."""
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


def dump_tools(tools: Sequence[AnyTool]) -> list[dict[str, Any]]:
    """Tools as stored and returned: exactly the fields the client gave."""
    return [tool.model_dump(exclude_unset=True) for tool in tools]


def check_metadata(metadata: dict[str, Any], where: str = "metadata") -> None:
    """At most 16 pairs, keys up to 64 characters, values strings up to 512.

    ``where`` is the field's path (``metadata``, ``messages[0].metadata``).
    """
    if len(metadata) > MAX_METADATA_PAIRS:
        raise bad_request(
            f"Invalid '{where}': too many properties. Expected an object with at most "
            f"{MAX_METADATA_PAIRS} properties, but got an object with {len(metadata)} "
            "properties instead.",
            where,
        )
    for key, value in metadata.items():
        param = f"{where}.{key}"
        if len(key) > MAX_METADATA_KEY:
            raise bad_request(
                f"Invalid '{where}': key {key[:16]!r}... is {len(key)} characters long; keys "
                f"can be at most {MAX_METADATA_KEY} characters.",
                where,
            )
        if not isinstance(value, str):
            raise bad_request(
                f"Invalid type for '{param}': expected a string, but got {json_kind(value)} "
                "instead.",
                param,
            )
        if len(value) > MAX_METADATA_VALUE:
            raise bad_request(
                f"Invalid '{param}': string too long. Expected a string with maximum length "
                f"{MAX_METADATA_VALUE}, but got a string with length {len(value)} instead.",
                param,
            )


def metadata_value(metadata: dict[str, Any] | None, where: str = "metadata") -> dict[str, Any]:
    """Checked metadata; null (absent) is ``{}``."""
    if metadata is None:
        return {}
    check_metadata(metadata, where)
    return metadata


def check_unique_file_ids(file_ids: Sequence[str], what: str, where: str = "file_ids") -> None:
    """No file id twice (``what`` ends the message: "to an assistant", "to a message";
    ``where`` is the list's path)."""
    seen: set[str] = set()
    for index, file_id in enumerate(file_ids):
        if file_id in seen:
            raise bad_request(
                f"Invalid '{where}': duplicate file id '{file_id}'; each file can be attached "
                f"{what} only once.",
                f"{where}[{index}]",
            )
        seen.add(file_id)


def response_format_value(value: Any) -> Any:
    """``response_format`` as stored: null is ``"auto"``; else one of the four valid shapes."""
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
