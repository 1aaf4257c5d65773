"""Request bodies of the runs endpoints, and the effective settings a new run records.

Same approach as the other groups: pydantic models that mirror the spec (``extra="forbid"``,
strict types, every limit: tools ≤ 20 on a run, ``max_*_tokens`` ≥ 256), then the rules the
spec cannot express (unique function names, metadata limits, ``tool_choice`` naming a tool the
run has, ``response_format`` json_object only with function tools, an assistant with more tools
than a run may carry), each a 400 with ``param``.
A null optional field means "not given", as clients of the time sent it.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import Field

from assistsync.server.assistants import MAX_INSTRUCTIONS
from assistsync.server.common import (
    Body,
    Tool,
    check_metadata,
    check_tools,
    dump_tools,
    response_format_value,
)
from assistsync.server.framework.errors import bad_request
from assistsync.server.framework.validation import validate

MAX_RUN_TOOLS = 20
MIN_MAX_TOKENS = 256
NAMED_TOOL_TYPES = ("function", "code_interpreter", "retrieval")

Json = dict[str, Any]


class TruncationStrategy(Body):
    """``TruncationObject``."""

    type: Literal["auto", "last_messages"]
    last_messages: int | None = Field(default=None, ge=1)


class _RunSettings(Body):
    model: str | None = None
    instructions: str | None = Field(default=None, max_length=MAX_INSTRUCTIONS)
    tools: list[Tool] | None = Field(default=None, max_length=MAX_RUN_TOOLS)
    metadata: dict[str, Any] | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    stream: bool | None = None
    max_prompt_tokens: int | None = Field(default=None, ge=MIN_MAX_TOKENS)
    max_completion_tokens: int | None = Field(default=None, ge=MIN_MAX_TOKENS)
    truncation_strategy: TruncationStrategy | None = None
    # Loosely typed: checked below, so that the errors can say what is accepted.
    tool_choice: Any = None
    response_format: Any = None


class CreateRunRequest(_RunSettings):
    """``CreateRunRequest`` (``thread_id`` is the path's)."""

    assistant_id: str
    additional_instructions: str | None = Field(default=None, max_length=MAX_INSTRUCTIONS)
    # Each item is a CreateMessageRequest, validated by the messages group.
    additional_messages: list[Json] | None = None


class CreateThreadAndRunRequest(_RunSettings):
    """``CreateThreadAndRunRequest``: no ``additional_*``; ``thread`` is validated by the
    threads group."""

    assistant_id: str
    thread: Json | None = None


class ToolOutput(Body):
    """One item of ``tool_outputs``; the spec marks neither field required, but an output
    without the call it answers can never be accepted."""

    tool_call_id: str
    output: str = ""


class SubmitToolOutputsRequest(Body):
    """``SubmitToolOutputsRunRequest``."""

    tool_outputs: list[ToolOutput]
    stream: bool | None = None


class ModifyRunRequest(Body):
    """``ModifyRunRequest``: only metadata."""

    metadata: dict[str, Any] | None = None


def parse_create_run(data: Json) -> CreateRunRequest:
    """A create-run body, validated."""
    request = validate(CreateRunRequest, data)
    _check_settings(request)
    return request


def parse_create_thread_and_run(data: Json) -> CreateThreadAndRunRequest:
    """A create-thread-and-run body, validated (the thread part by its own group later)."""
    request = validate(CreateThreadAndRunRequest, data)
    _check_settings(request)
    return request


def parse_submit(data: Json) -> SubmitToolOutputsRequest:
    """A submit-tool-outputs body, validated."""
    return validate(SubmitToolOutputsRequest, data)


def parse_modify(data: Json) -> Json | None:
    """A modify-run body: the new metadata (None, when null or absent: unchanged)."""
    request = validate(ModifyRunRequest, data)
    if request.metadata is not None:
        check_metadata(request.metadata)
    return request.metadata


def _check_settings(request: _RunSettings) -> None:
    if request.tools is not None:
        check_tools(request.tools)
    if request.metadata is not None:
        check_metadata(request.metadata)
    if request.model is not None and not request.model:
        raise bad_request("Invalid 'model': must be a non-empty model id.", "model")


def _tool_choice(value: Any, tools: list[Json]) -> str | Json:
    if value is None:
        return "auto"
    if value in ("none", "auto"):
        return str(value)
    kind = value.get("type") if isinstance(value, dict) else None
    if kind not in NAMED_TOOL_TYPES:
        raise bad_request(
            "Invalid 'tool_choice': expected 'none', 'auto' or a tool such as "
            '{"type": "function", "function": {"name": "my_function"}}, but got '
            f"{_shown(value)}.",
            "tool_choice",
        )
    assert isinstance(value, dict)
    if kind != "function":
        if not any(tool["type"] == kind for tool in tools):
            raise bad_request(
                f"Invalid 'tool_choice': the run has no '{kind}' tool to force.", "tool_choice"
            )
        return {"type": kind}
    function = value.get("function")
    name = function.get("name") if isinstance(function, dict) else None
    if not isinstance(name, str):
        raise bad_request(
            "Missing required parameter: 'tool_choice.function.name'.",
            "tool_choice.function.name",
        )
    names = [tool["function"]["name"] for tool in tools if tool["type"] == "function"]
    if name not in names:
        known = ", ".join(names) or "none"
        raise bad_request(
            f"Invalid 'tool_choice.function.name': the run has no function named {name!r} "
            f"(its functions: {known}).",
            "tool_choice.function.name",
        )
    return {"type": "function", "function": {"name": name}}


def _shown(value: Any) -> str:
    return json.dumps(value)


def run_fields(request: _RunSettings, assistant: Json, additional: str | None = None) -> Json:
    """The settings the run records: the request's overrides over the assistant's settings.

    ``model`` overrides only the model (the assistant's tools and files stay);
    ``instructions`` replaces the assistant's and ``additional`` (``additional_instructions``)
    is appended after a blank line; the result is always a string.
    """
    given = request.model_fields_set
    tools = dump_tools(request.tools) if request.tools is not None else list(assistant["tools"])
    if len(tools) > MAX_RUN_TOOLS:
        # An assistant may hold up to 128 tools, a run at most 20 (RunObject.tools): rather
        # than run with a silently cut list, ask the caller to choose.
        raise bad_request(
            f"Invalid 'tools': the assistant has {len(tools)} tools, but a run can carry at "
            f"most {MAX_RUN_TOOLS}. Pass 'tools' with the run (at most {MAX_RUN_TOOLS}) to "
            "choose the ones it may use.",
            "tools",
        )
    instructions = (
        request.instructions
        if request.instructions is not None
        else (assistant.get("instructions") or "")
    )
    if additional:
        instructions = f"{instructions}\n\n{additional}" if instructions else additional
    response_format = (
        response_format_value(request.response_format)
        if "response_format" in given and request.response_format is not None
        else assistant.get("response_format") or "auto"
    )
    if isinstance(response_format, dict) and response_format.get("type") == "json_object":
        for index, tool in enumerate(tools):
            if tool["type"] != "function":
                raise bad_request(
                    'Invalid \'response_format\': {"type": "json_object"} is only allowed '
                    f"when every tool of the run is a function tool, but tools[{index}] is "
                    f"'{tool['type']}'.",
                    "response_format",
                )
    truncation = request.truncation_strategy
    return {
        "model": request.model or assistant["model"],
        "instructions": instructions,
        "tools": tools,
        "file_ids": list(assistant.get("file_ids") or []),
        "metadata": request.metadata or {},
        "temperature": (
            request.temperature
            if request.temperature is not None
            else assistant.get("temperature", 1.0)
        ),
        "top_p": request.top_p if request.top_p is not None else assistant.get("top_p", 1.0),
        "max_prompt_tokens": request.max_prompt_tokens,
        "max_completion_tokens": request.max_completion_tokens,
        "truncation_strategy": (
            {"type": truncation.type, "last_messages": truncation.last_messages}
            if truncation is not None
            else {"type": "auto", "last_messages": None}
        ),
        "tool_choice": _tool_choice(request.tool_choice, tools),
        "response_format": response_format,
    }
