"""The raw schema of the user's files: ``assistsync.yaml`` and the assistant manifests.

These models are the one declaration of what a user may write. They validate the shape of the
YAML (``assistsync.manifest`` maps their errors back to file:line:col) and generate the JSON
Schemas in ``schemas/`` (``python -m assistsync.manifest.schema``) that editors use to complete
and check the files. Every limit of the Assistants API v1 that JSON Schema can express is declared
here; the ones it cannot (limits that only hold after files are read or globs expanded) are
checked by the loader.

This module imports only pydantic and the standard library, like the rest of ``assistsync.model``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    WithJsonSchema,
    model_validator,
)

# The API's limits (see shared/API.md); the loader re-checks the ones that depend on file content.
MAX_NAME_CHARS = 256
MAX_DESCRIPTION_CHARS = 512
MAX_INSTRUCTIONS_CHARS = 256_000
MAX_TOOLS = 128
MAX_FILES = 20
MAX_FILE_BYTES = 512 * 1024 * 1024
API_MAX_METADATA_PAIRS = 16
MAX_METADATA_PAIRS = API_MAX_METADATA_PAIRS - 1
"""One pair of the API's 16 is reserved for the ``assistsync_key`` ownership tag."""
MAX_METADATA_KEY_CHARS = 64
MAX_METADATA_VALUE_CHARS = 512

RESERVED_METADATA_KEY = "assistsync_key"
"""The metadata key assistsync sets itself (``assistsync.model.TAG_KEY``); users may not set it."""

ASSISTANT_KEY_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
FUNCTION_NAME_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
TOOL_TYPES = ("code_interpreter", "retrieval", "function")

ENVIRONMENT_NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,31}$"
VARIABLE_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"

DEFAULT_MANIFEST_GLOB = "assistants/**/*.yaml"
DEFAULT_LOCK = "assistsync.lock"
DEFAULT_TESTS_GLOB = "tests/**/*.yaml"

_SCHEMA_FIELD = Field(
    default=None,
    alias="$schema",
    description="URL or path of this file's JSON Schema, for editors; ignored by assistsync.",
)


def _not_reserved(key: str) -> str:
    if key == RESERVED_METADATA_KEY:
        raise ValueError(
            f"metadata key {RESERVED_METADATA_KEY!r} is reserved: assistsync sets it to the "
            "assistant's manifest key to recognise the assistants it owns"
        )
    return key


AssistantKey = Annotated[
    str,
    StringConstraints(pattern=ASSISTANT_KEY_PATTERN),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": ASSISTANT_KEY_PATTERN,
            "description": "Stable key of an assistant: its identity across renames.",
        }
    ),
]
MetadataKey = Annotated[
    str,
    StringConstraints(max_length=MAX_METADATA_KEY_CHARS),
    AfterValidator(_not_reserved),
    WithJsonSchema(
        {
            "type": "string",
            "maxLength": MAX_METADATA_KEY_CHARS,
            "not": {"const": RESERVED_METADATA_KEY},
        }
    ),
]
MetadataValue = Annotated[str, StringConstraints(max_length=MAX_METADATA_VALUE_CHARS)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


EnvironmentName = Annotated[
    str,
    StringConstraints(pattern=ENVIRONMENT_NAME_PATTERN),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": ENVIRONMENT_NAME_PATTERN,
            "description": "Environment name: 1-32 of `a-z 0-9 _ -`, starting with a letter "
            "or digit (it names the environment's lock file).",
        }
    ),
]
VariableName = Annotated[str, StringConstraints(pattern=VARIABLE_NAME_PATTERN)]


class EnvironmentConfig(_Strict):
    """One environment of ``assistsync.yaml``: the values its ``${VAR}`` take, and its lock."""

    variables: dict[VariableName, str] = Field(
        default_factory=dict,
        description=(
            "Values for `${VAR}` in the manifests, taken ahead of the process environment. "
            "Never put the endpoint or the key here: they stay in the process environment."
        ),
    )
    lock: str | None = Field(
        default=None,
        description=(
            "This environment's lock file, relative to assistsync.yaml (default: the project's "
            "lock with the environment's name before its suffix, e.g. `assistsync.prod.lock`)."
        ),
    )


class ProjectConfig(_Strict):
    """``assistsync.yaml``: where a project's manifests and lock file are."""

    model_config = ConfigDict(title="assistsync project configuration (assistsync.yaml)")

    schema_: str | None = _SCHEMA_FIELD
    manifests: list[str] = Field(
        default_factory=lambda: [DEFAULT_MANIFEST_GLOB],
        description=(
            "Globs of manifest files, relative to assistsync.yaml (`**` matches any depth). "
            "Every glob must match at least one file."
        ),
    )
    lock: str = Field(
        default=DEFAULT_LOCK,
        description="Path of the lock file, relative to assistsync.yaml, inside the project.",
    )
    environments: dict[EnvironmentName, EnvironmentConfig] = Field(
        default_factory=dict,
        description=(
            "Named environments (e.g. staging, prod) applied from the same manifests: each has "
            "its own variables, lock and sandbox state; commands then need `--env NAME` (or "
            "ASSISTSYNC_ENV)."
        ),
    )
    tests: list[str] = Field(
        default_factory=lambda: [DEFAULT_TESTS_GLOB],
        description=(
            "Globs of test files for `assistsync test`, relative to assistsync.yaml. The default "
            "may match nothing; a glob you list must match at least one file."
        ),
    )


class CodeInterpreterTool(_Strict):
    """The code interpreter tool."""

    type: Literal["code_interpreter"] = Field(description="The tool type.")


class RetrievalTool(_Strict):
    """The retrieval tool: lets the assistant search its attached files."""

    type: Literal["retrieval"] = Field(description="The tool type.")


class FunctionManifest(_Strict):
    """A function the assistant may call, as the API declares it.

    The JSON Schema of its parameters is given inline (``parameters``) or in a JSON file
    (``parameters_file``), not both; neither means a function without parameters.
    """

    model_config = ConfigDict(
        json_schema_extra={"not": {"required": ["parameters", "parameters_file"]}}
    )

    name: Annotated[str, StringConstraints(pattern=FUNCTION_NAME_PATTERN)] = Field(
        description="Function name: 1-64 letters, digits, `_` or `-`; unique per assistant."
    )
    description: str | None = Field(
        default=None, description="What the function does; the model reads it to decide calls."
    )
    parameters: dict[str, Any] | None = Field(
        default=None,
        description=(
            "The parameters as a JSON Schema object, checked against the meta-schema of the "
            "draft its `$schema` names (draft-07 without one)."
        ),
    )
    parameters_file: str | None = Field(
        default=None,
        description=(
            "A JSON file holding the parameters' JSON Schema, relative to this manifest; "
            "checked like `parameters`."
        ),
    )

    @model_validator(mode="after")
    def _one_parameters_source(self) -> FunctionManifest:
        if self.parameters is not None and self.parameters_file is not None:
            raise ValueError("set either 'parameters' or 'parameters_file', not both")
        return self


class FunctionTool(_Strict):
    """A function tool."""

    type: Literal["function"] = Field(description="The tool type.")
    function: FunctionManifest = Field(description="The function's declaration.")


Tool = Annotated[
    CodeInterpreterTool | RetrievalTool | FunctionTool,
    Field(discriminator="type"),
]


class AssistantManifest(_Strict):
    """One assistant, in the API's own terms plus local files for instructions, schemas, files.

    At most one of ``instructions`` and ``instructions_file`` is set; both may be left out.
    """

    model_config = ConfigDict(
        json_schema_extra={"not": {"required": ["instructions", "instructions_file"]}}
    )

    name: str | None = Field(
        default=None, max_length=MAX_NAME_CHARS, description="The assistant's display name."
    )
    model: str = Field(min_length=1, description="Model id, e.g. `gpt-4-turbo`.")
    description: str | None = Field(
        default=None, max_length=MAX_DESCRIPTION_CHARS, description="A short description."
    )
    instructions: str | None = Field(
        default=None,
        max_length=MAX_INSTRUCTIONS_CHARS,
        description="The system instructions, inline.",
    )
    instructions_file: str | None = Field(
        default=None,
        description=(
            "A UTF-8 text file holding the instructions, relative to this manifest "
            f"(at most {MAX_INSTRUCTIONS_CHARS:,} characters)."
        ),
    )
    tools: list[Tool] = Field(
        default_factory=list,
        max_length=MAX_TOOLS,
        description="Tools, in the API's shape: `code_interpreter`, `retrieval`, `function`.",
    )
    files: list[str] = Field(
        default_factory=list,
        max_length=MAX_FILES,
        description=(
            "Knowledge files: paths or globs relative to this manifest, inside the project. "
            f"At most {MAX_FILES} files after expansion, each at most 512 MB."
        ),
    )
    metadata: dict[MetadataKey, MetadataValue] = Field(
        default_factory=dict,
        max_length=MAX_METADATA_PAIRS,
        description=(
            f"String key-value pairs; at most {MAX_METADATA_PAIRS} (the API allows "
            f"{API_MAX_METADATA_PAIRS}; assistsync reserves `{RESERVED_METADATA_KEY}`)."
        ),
    )

    @model_validator(mode="after")
    def _one_instructions_source(self) -> AssistantManifest:
        if self.instructions is not None and self.instructions_file is not None:
            raise ValueError("set either 'instructions' or 'instructions_file', not both")
        return self


class ManifestDocument(_Strict):
    """A manifest file: assistants keyed by their stable key."""

    model_config = ConfigDict(title="assistsync manifest")

    schema_: str | None = _SCHEMA_FIELD
    assistants: dict[AssistantKey, AssistantManifest] = Field(
        description=(
            "Assistants by key (1-64 of `a-z 0-9 _ -`, starting with a letter or digit). The key "
            "is the assistant's identity: renaming it replaces the assistant. Required: a "
            "manifest that declares no assistants says so with `assistants: {}`."
        ),
    )
