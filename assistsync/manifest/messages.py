"""pydantic validation errors -> one located sentence each, in the user's terms.

pydantic's ``loc`` tuples follow the data (``("assistants", "bot", "tools", 0, ...)``), so they
lead back through the located data of ``source`` to the line and column where the problem is.
A discriminated union adds the tag to the path (``(..., "tools", 0, "function", "function")``);
``strip_tags`` removes it so the path matches the data again.
"""

from __future__ import annotations

import datetime
import difflib
from typing import Any

from pydantic import BaseModel
from pydantic_core import ErrorDetails

from assistsync.manifest.source import Pos, YMap, YSeq
from assistsync.model.manifest import (
    API_MAX_METADATA_PAIRS,
    MAX_FILES,
    MAX_METADATA_PAIRS,
    RESERVED_METADATA_KEY,
    TOOL_TYPES,
    AssistantManifest,
    CodeInterpreterTool,
    FunctionManifest,
    FunctionTool,
    ProjectConfig,
    RetrievalTool,
)

Loc = tuple[int | str, ...]

_TOOL_MODELS: dict[str, type[BaseModel]] = {
    "code_interpreter": CodeInterpreterTool,
    "retrieval": RetrievalTool,
    "function": FunctionTool,
}


def strip_tags(loc: Loc) -> Loc:
    """Drop the discriminator tag pydantic inserts after ``tools[i]``."""
    out: list[int | str] = []
    i = 0
    while i < len(loc):
        out.append(loc[i])
        if (
            loc[i] == "tools"
            and i + 2 < len(loc)
            and isinstance(loc[i + 1], int)
            and loc[i + 2] in TOOL_TYPES
        ):
            out.append(loc[i + 1])
            i += 3
            continue
        i += 1
    return tuple(out)


_NO_ASSISTANTS = " (write 'assistants: {}' to declare no assistants)"

_AT_KEY = {"extra_forbidden", "missing", "too_long"}


def _is_key(key: Any, node: YMap) -> bool:
    try:
        return key in node.key_pos
    except TypeError:  # unhashable: not a key of any mapping
        return False


def locate(data: Any, loc: Loc, kind: str = "", key: Any = None) -> Pos:
    """Where the error ``kind`` at ``loc`` belongs in located data.

    Walks as far as the data goes, so a missing field resolves to the key of the mapping that
    lacks it. Unknown fields, dictionary keys and whole mappings or lists point at their key;
    a wrong scalar points at the value itself. For an error about a key itself (``loc`` ending
    in ``"[key]"``), ``key`` is the key as written: pydantic's ``loc`` holds ``1`` for ``true``
    and ``'1.5'`` for ``1.5``, which the data does not.
    """
    node = data
    pos: Pos = data.pos if isinstance(data, (YMap, YSeq)) else (1, 1)
    for i, part in enumerate(loc):
        if loc[i + 1 : i + 2] == ("[key]",) and isinstance(node, YMap) and _is_key(key, node):
            return node.key_pos[key]
        if isinstance(node, YMap) and part in node.key_pos:
            pos = node.key_pos[part]
            if loc[i + 1 : i + 2] == ("[key]",):  # the problem is the key itself
                return pos
            value_pos = node.value_pos[part]
            node = node[part]
            if kind not in _AT_KEY and not isinstance(node, (YMap, YSeq)):
                pos = value_pos
        elif isinstance(node, YSeq) and isinstance(part, int) and 0 <= part < len(node):
            pos = node.item_pos[part]
            node = node[part]
        else:
            break
    return pos


def yaml_type(value: Any) -> str:
    """How a YAML user would name the type of a value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, (datetime.date, datetime.datetime)):
        return "a date"
    return type(value).__name__


def suggest(word: str, choices: list[str] | tuple[str, ...]) -> str:
    """``"; did you mean 'x'?"`` or ``"; expected one of: a, b"``."""
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    if close:
        return f"; did you mean {close[0]!r}?"
    return f"; expected one of: {', '.join(choices)}"


def _fields(model: type[BaseModel]) -> list[str]:
    return [f.alias or name for name, f in model.model_fields.items()]


def _model_at(root: type[BaseModel], loc: Loc, data: Any) -> type[BaseModel] | None:
    """The model that owns the mapping at ``loc`` (for the allowed fields of that level)."""
    if len(loc) == 0:
        return root
    if root is ProjectConfig:
        return None
    if len(loc) == 2 and loc[0] == "assistants":
        return AssistantManifest
    if len(loc) == 4 and loc[2] == "tools":
        tool = _value_at(data, loc)
        tag = tool.get("type") if isinstance(tool, dict) else None
        return _TOOL_MODELS.get(tag) if isinstance(tag, str) else None
    if len(loc) == 5 and loc[4] == "function":
        return FunctionManifest
    return None


def _value_at(data: Any, loc: Loc) -> Any:
    node = data
    for part in loc:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return None
    return node


def _what(loc: Loc) -> str:
    if not loc:
        return "the document"
    last = loc[-1]
    parent = loc[-2] if len(loc) >= 2 else None
    if parent == "metadata":
        return f"metadata value of {last!r}"
    if parent == "assistants":
        return f"assistant {last!r}"
    if isinstance(last, int):
        return f"{parent}[{last}]"
    return repr(last)


def describe(root: type[BaseModel], err: ErrorDetails, loc: Loc, data: Any) -> str:
    """One sentence for one pydantic error (``loc`` already stripped of union tags)."""
    kind = err["type"]
    ctx: dict[str, Any] = dict(err.get("ctx") or {})
    value = err.get("input")
    field = loc[-1] if loc else ""
    what = _what(loc)
    in_metadata = len(loc) >= 2 and loc[-2] == "metadata"
    if loc and loc[-1] == "[key]":
        key = loc[-2]
        in_metadata = len(loc) >= 3 and loc[-3] == "metadata"
        if kind == "string_pattern_mismatch" and len(loc) == 3 and loc[0] == "assistants":
            return (
                f"invalid assistant key {key!r}: use 1-64 lowercase letters, digits, '-' or '_', "
                "starting with a letter or digit"
            )
        if kind == "string_too_long":
            return f"metadata key {key!r} is {len(str(key))} characters; the API allows at most 64"
        if kind == "value_error":
            return str(ctx["error"])
        if kind == "string_type":
            key = value  # as written: loc holds 1 for true and '1.5' for 1.5
            hint = ""
            if isinstance(key, int) and not isinstance(key, bool):
                hint = f" (quote it: '{key}')"
            elif isinstance(key, (float, bool, datetime.date)):
                hint = " (quote it to make it a string)"
            what = "assistant key" if len(loc) == 3 and loc[0] == "assistants" else "key"
            return f"{what} {key!r} must be a string, not {yaml_type(key)}{hint}"
    if kind == "extra_forbidden":
        model = _model_at(root, loc[:-1], data)
        allowed = _fields(model) if model is not None else []
        hint = suggest(str(field), allowed) if allowed else ""
        return f"unknown field {field!r}{hint}"
    if kind == "missing":
        if loc == ("assistants",):
            return f"missing required field 'assistants'{_NO_ASSISTANTS}"
        return f"missing required field {field!r}"
    if kind == "string_too_long":
        limit = ctx.get("max_length")
        return f"{what} is {len(value):,} characters; the API allows at most {limit:,}"
    if kind == "too_long":
        # pydantic leaves actual_length unset for dictionaries.
        count = ctx.get("actual_length") or (
            len(value) if hasattr(value, "__len__") else "too many"
        )
        if field == "metadata":
            return (
                f"{count} metadata pairs; at most {MAX_METADATA_PAIRS} are allowed (the API "
                f"allows {API_MAX_METADATA_PAIRS} and assistsync reserves one for its "
                f"{RESERVED_METADATA_KEY!r} tag)"
            )
        if field == "files":
            return f"{count} file entries; an assistant may have at most {MAX_FILES} files"
        return f"{count} {field}; the API allows at most {ctx.get('max_length')}"
    if kind == "string_too_short":
        return f"{what} must not be empty"
    if kind == "string_pattern_mismatch":
        if field == "name":
            return (
                f"invalid function name {value!r}: use 1-64 letters, digits, '_' or '-' "
                f"(pattern {ctx.get('pattern')})"
            )
        return f"{what} {value!r} does not match {ctx.get('pattern')}"
    if kind == "union_tag_invalid":
        tag = str(ctx.get("tag"))
        return f"unknown tool type {tag!r}{suggest(tag, TOOL_TYPES)}"
    if kind == "union_tag_not_found":
        return f"a tool needs a 'type': one of {', '.join(TOOL_TYPES)}"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        hint = _NO_ASSISTANTS if loc == ("assistants",) and value is None else ""
        return f"{what} must be a mapping, not {yaml_type(value)}{hint}"
    if kind == "list_type":
        return f"{what} must be a list, not {yaml_type(value)}"
    if kind == "string_type":
        hint = ""
        if in_metadata and isinstance(value, (int, float, bool)):
            hint = f" (metadata values are strings: quote it, '{value}')"
        elif isinstance(value, (int, float, bool, datetime.date)):
            hint = " (quote it to make it a string)"
        return f"{what} must be a string, not {yaml_type(value)}{hint}"
    if kind == "value_error":
        return str(ctx["error"])
    return f"{what}: {err['msg']}"
