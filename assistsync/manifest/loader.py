"""The one loader: a project directory -> ``Project`` (config, paths, ``Desired``) or all problems.

Order of work, and why:

1. ``assistsync.yaml`` is read and validated first; if it is wrong nothing else can be found,
   so its problems are raised alone.
2. Every manifest glob must match at least one file. A glob that matches nothing is an error,
   not a warning: a mistyped glob would silently drop the assistants of the files it meant, and
   the next apply would destroy them.
3. Each manifest is parsed, its shape validated by the pydantic models in
   ``assistsync.model.manifest`` (one schema), then the checks JSON Schema cannot express run on
   the valid parts: files exist and stay inside the project, instructions and parameters files
   are read, function parameters are valid JSON Schemas (``parameters.py``), limits that hold
   after reading or glob expansion, duplicates across files. An empty manifest is an error, not
   "no assistants" (that takes ``assistants: {}``): a truncated file must not destroy what it
   held. Problems are collected, never raised one at a time.
4. Only when nothing is wrong are knowledge files hashed (sha256 in 1 MiB chunks, each file
   once), so a typo never costs a pass over hundreds of megabytes.

The loader only reads: it never writes, creates or touches the user's files (with
``cache=True`` it keeps what it loaded in ``.assistsync/cache/``, see ``_from_cache``).
Whatever the file system or the environment refuses on the way (a name too long, a FIFO,
undecodable bytes in a name or a variable, nesting past Python's recursion limit) is a located
problem like any other, never an exception the CLI would report as a bug.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import math
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from assistsync.errors import AssistsyncError, Diagnostic, ManifestError
from assistsync.manifest.cache import library_version, read_entry, write_entry
from assistsync.manifest.environments import Selected, select
from assistsync.manifest.files import (
    BadUtf8,
    PathProblem,
    RealDirs,
    check_relative,
    decode_utf8,
    existing_file,
    expand,
    is_utf8,
    relative,
    sha256_file,
)
from assistsync.manifest.messages import describe, locate, strip_tags
from assistsync.manifest.parameters import (
    SchemaProblem,
    json_position,
    schema_problems,
    used_jsonschema,
)
from assistsync.manifest.source import Pos, YMap, YSeq, offset_pos, read_yaml
from assistsync.model import Desired, DesiredAssistant, DesiredFile, SourceLocation
from assistsync.model.config import canonical_json
from assistsync.model.manifest import (
    DEFAULT_MANIFEST_GLOB,
    MAX_FILE_BYTES,
    MAX_FILES,
    MAX_INSTRUCTIONS_CHARS,
    AssistantManifest,
    FunctionTool,
    ManifestDocument,
    ProjectConfig,
)

CONFIG_NAME = "assistsync.yaml"

_M = TypeVar("_M", bound=BaseModel)

_HIGH, _LOW = r"\\u[dD][89abAB][0-9a-fA-F]{2}", r"\\u[dD][c-fC-F][0-9a-fA-F]{2}"
_SURROGATE_ESCAPE = re.compile(f"{_HIGH}(?!{_LOW})|(?<!{_HIGH}){_LOW}")
"""A JSON escape of half a UTF-16 surrogate pair without its other half."""

_INVALID = object()
"""A parameters file whose problems are already reported."""


@dataclass(frozen=True)
class _Unusable:
    """A file named by a manifest that cannot be read as text, and why (reported per entry)."""

    reason: str


@dataclass(frozen=True)
class Project:
    """A loaded project. All paths are absolute; ``root`` has its symlinks resolved.

    ``manifest_paths`` are sorted; ``desired`` holds every assistant of every manifest and every
    knowledge file they name (by project-relative POSIX path, hashed).
    """

    root: Path
    config: ProjectConfig
    config_path: Path
    lock_path: Path
    manifest_paths: tuple[Path, ...]
    desired: Desired
    environment: str | None = None
    """The environment loaded (``--env``), or ``None`` for a project without environments."""

    def relative(self, path: Path) -> str:
        """A path inside the project as the project-relative POSIX string used everywhere."""
        return path.relative_to(self.root).as_posix()


@dataclass
class _Loader:
    root: Path
    env: Mapping[str, str]
    diagnostics: list[Diagnostic] = field(default_factory=list)
    # Positions whose value already has a problem (e.g. an unset ${VAR}): no further checks there.
    spoiled: set[tuple[str, Pos]] = field(default_factory=set)
    files: dict[str, Path] = field(default_factory=dict)
    file_refs: dict[str, tuple[str, Pos]] = field(default_factory=dict)  # first entry naming it
    texts: dict[Path, str | BadUtf8 | _Unusable] = field(default_factory=dict)
    sizes: dict[Path, int] = field(default_factory=dict)
    # Many assistants name the same files: resolve each (base, entry) once.
    expanded: dict[tuple[Path, str, str], tuple[list[Path], list[str]] | PathProblem] = field(
        default_factory=dict
    )
    found: dict[tuple[Path, str, str], Path | PathProblem] = field(default_factory=dict)
    real_dirs: RealDirs = field(default_factory=dict)
    names: dict[Path, str] = field(default_factory=dict)
    # JSON Schemas are checked once each: inline ones by canonical text, files by path.
    inline_schemas: dict[str, list[SchemaProblem]] = field(default_factory=dict)
    schema_files: dict[Path, Any] = field(default_factory=dict)
    # Files whose own problems are reported (once, however many entries name them).
    reported: set[Path] = field(default_factory=set)
    # Problems met, reported or already reported: an assistant that met one is not resolved.
    failures: int = 0
    # With a cache: the SHA-256 of every file read as text (see ``_from_cache``), and the
    # instructions file of each assistant (an entry names it instead of holding its text).
    digests: dict[Path, str] | None = None
    instruction_files: dict[str, Path] = field(default_factory=dict)

    # -- reporting -------------------------------------------------------------------------

    def rel(self, path: Path) -> str:
        # Asked for every knowledge file of every assistant, and relpath is not cheap.
        name = self.names.get(path)
        if name is None:
            name = self.names[path] = relative(self.root, path)
        return name

    def error(self, file: str, pos: Pos, message: str) -> None:
        self.diagnostics.append(Diagnostic(file, pos[0], pos[1], message))
        self.failures += 1

    def failed(self) -> ManifestError:
        """The error carrying every problem found, named by the files they are in."""
        # One problem reached twice (a YAML alias, a file named by several entries) is one.
        diagnostics = list(dict.fromkeys(self.diagnostics))
        files = {d.file for d in diagnostics}
        subject = "the manifests"
        if files == {CONFIG_NAME}:
            subject = f"the project file ({CONFIG_NAME})"
        elif CONFIG_NAME in files:
            subject = f"the project file ({CONFIG_NAME}) and the manifests"
        return ManifestError(diagnostics, subject)

    def read_source(self, path: Path) -> tuple[bool, Any]:
        """``(True, data)`` with the located YAML data of one file (``None`` for an empty
        document: nothing, or only comments), or ``(False, None)`` when it cannot be read or
        parsed (reported)."""
        rel = self.rel(path)
        try:
            raw = self.read_bytes(path)
        except OSError as exc:
            self.error(rel, (1, 1), f"cannot read: {exc.strerror}")
            return False, None
        text = decode_utf8(raw)
        if isinstance(text, BadUtf8):
            self.error(rel, (text.line, text.col), text.message())
            return False, None
        data, problems = read_yaml(text, self.env)
        for p in problems:
            self.error(rel, (p.line, p.col), p.message)
            self.spoiled.add((rel, (p.line, p.col)))
        if data is None and problems:
            return False, None
        return True, data

    def validate(self, model: type[_M], data: Any, rel: str) -> _M | None:
        """Validate ``data`` against ``model``, reporting each error at its position."""
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            for err in exc.errors(include_url=False):
                loc = strip_tags(tuple(err["loc"]))
                pos = locate(data, loc, err["type"], err.get("input"))
                self.error(rel, pos, describe(model, err, loc, data))
            return None

    def read_bytes(self, path: Path) -> bytes:
        """The bytes of a file the result depends on; their digest is kept for the cache."""
        raw = path.read_bytes()
        if self.digests is not None:
            self.digests[path] = hashlib.sha256(raw).hexdigest()
        return raw

    # -- paths -------------------------------------------------------------------------------

    def path_error(self, rel: str, pos: Pos, exc: PathProblem) -> None:
        if (rel, pos) not in self.spoiled:
            self.error(rel, pos, str(exc))

    def read_text(self, path: Path) -> str | BadUtf8 | _Unusable:
        """A text file named by a manifest, read once however many entries name it."""
        if path not in self.texts:
            try:
                size = path.stat().st_size
                # A UTF-8 character is at most 4 bytes: anything larger is too long unread.
                if size > 4 * MAX_INSTRUCTIONS_CHARS:
                    self.texts[path] = _Unusable(f"is {size:,} bytes, too large to read as text")
                else:
                    self.texts[path] = decode_utf8(self.read_bytes(path))
            except OSError as exc:
                self.texts[path] = _Unusable(f"cannot be read: {exc.strerror}")
        return self.texts[path]

    def text_of(self, path: Path, raw: str, what: str, rel: str, pos: Pos) -> str | None:
        """The text of the file entry ``what: raw`` at ``rel:pos`` names, or ``None`` (reported:
        at the entry, or inside the file where the file itself is wrong, once per file)."""
        text = self.read_text(path)
        if isinstance(text, _Unusable):
            self.error(rel, pos, f"{what} {raw!r} {text.reason}")
            return None
        if isinstance(text, BadUtf8):
            context = f" ({what} of {rel}:{pos[0]}:{pos[1]})"
            self.once(path, (text.line, text.col), text.message(context))
            return None
        return text

    def once(self, path: Path, pos: Pos, message: str) -> None:
        """Report a problem inside a file that several entries may name, the first time only;
        later entries still count as failed."""
        if path in self.reported:
            self.failures += 1
        else:
            self.reported.add(path)
            self.error(self.rel(path), pos, message)

    def expand(self, base: Path, raw: str, what: str) -> tuple[list[Path], list[str]]:
        """``files.expand``, memoised; raises ``PathProblem`` like it."""
        key = (base, raw, what)
        if key not in self.expanded:
            try:
                self.expanded[key] = expand(self.root, base, raw, what, self.real_dirs)
            except PathProblem as exc:
                self.expanded[key] = exc
        result = self.expanded[key]
        if isinstance(result, PathProblem):
            raise result
        return result

    def existing_file(self, base: Path, raw: str, what: str) -> Path:
        """``files.existing_file``, memoised; raises ``PathProblem`` like it."""
        key = (base, raw, what)
        if key not in self.found:
            try:
                self.found[key] = existing_file(self.root, base, raw, what, self.real_dirs)
            except PathProblem as exc:
                self.found[key] = exc
        result = self.found[key]
        if isinstance(result, PathProblem):
            raise result
        return result

    def size_of(self, path: Path) -> int:
        if path not in self.sizes:
            self.sizes[path] = path.stat().st_size
        return self.sizes[path]

    # -- the project file ----------------------------------------------------------------------

    def load_config(self, config_path: Path) -> tuple[ProjectConfig, YMap]:
        rel = self.rel(config_path)
        ok, data = self.read_source(config_path)
        config: ProjectConfig | None = None
        if ok and data is None:  # an empty project file means every default
            data = YMap((1, 1))
        if data is not None and not isinstance(data, YMap):
            self.error(rel, (1, 1), f"{CONFIG_NAME} must be a mapping (keys: manifests, lock)")
        elif data is not None:
            config = self.validate(ProjectConfig, data, rel)
        if config is None or self.diagnostics:
            raise self.failed()
        return config, data

    def find_manifests(self, config: ProjectConfig, data: YMap, config_path: Path) -> list[Path]:
        rel = self.rel(config_path)
        items = data.get("manifests")
        found: set[Path] = set()
        for i, pattern in enumerate(config.manifests):
            pos = items.item_pos[i] if isinstance(items, YSeq) else (1, 1)
            try:
                paths, problems = expand(self.root, self.root, pattern, "manifest glob")
            except PathProblem as exc:
                message = str(exc)
                default = "manifests" not in data and pattern == DEFAULT_MANIFEST_GLOB
                if default:
                    message = (
                        f"no manifests: the default glob {DEFAULT_MANIFEST_GLOB!r} matches no "
                        "file; add manifests there or list globs under 'manifests:'"
                    )
                self.path_error(rel, pos, PathProblem(message + self.yml_hint(pattern, default)))
                continue
            for problem in problems:
                self.error(rel, pos, problem)
            found.update(p for p in paths if p != config_path)
        return sorted(found)

    def yml_hint(self, pattern: str, default: bool) -> str:
        """For a ``*.yaml`` glob that matched nothing: the ``.yml`` files beside it, if any."""
        if not pattern.endswith(".yaml"):
            return ""
        other = pattern.removesuffix(".yaml") + ".yml"
        try:
            paths, _ = expand(self.root, self.root, other, "manifest glob")
        except PathProblem:
            return ""
        names = ", ".join(self.rel(p) for p in paths[:3]) + (", ..." if len(paths) > 3 else "")
        many = len(paths) != 1
        where = "list that glob under" if default else "add that glob to"
        return (
            f"; {other!r} matches {len(paths)} file{'s' if many else ''} ({names}): "
            f"rename {'them' if many else 'it'} to .yaml or {where} 'manifests:'"
        )

    def lock_path(
        self, config: ProjectConfig, data: YMap, config_path: Path, selected: Selected
    ) -> Path:
        pos = selected.lock_pos
        raw = selected.lock
        from assistsync.manifest.files import check_real  # the lock is written: follow links

        try:
            path = check_relative(self.root, self.root, raw, "lock")
            check_real(self.root, path, raw, "lock")
        except PathProblem as exc:
            self.path_error(self.rel(config_path), pos, exc)
            return self.root / "assistsync.lock"
        try:
            if path.is_dir():
                self.error(self.rel(config_path), pos, f"lock {raw!r} is a directory")
        except OSError as exc:  # e.g. a name too long for the file system
            self.error(self.rel(config_path), pos, f"lock {raw!r} cannot be used: {exc.strerror}")
        return path

    # -- manifests ----------------------------------------------------------------------------

    def load_manifest(self, path: Path) -> list[tuple[DesiredAssistant, Pos]]:
        rel = self.rel(path)
        ok, data = self.read_source(path)
        if not ok:
            return []
        if data is None:
            # A truncated manifest must not read as "no assistants": the plan would destroy
            # every assistant it held. Declaring none takes an explicit 'assistants: {}'.
            self.error(
                rel,
                (1, 1),
                "empty manifest: write 'assistants: {}' to declare no assistants (an empty "
                "file is refused so that a truncated manifest cannot destroy its assistants)",
            )
            return []
        if not isinstance(data, YMap):
            self.error(rel, (1, 1), "a manifest must be a mapping with an 'assistants' key")
            return []
        try:
            models = dict(ManifestDocument.model_validate(data).assistants)
        except ValidationError as exc:
            models = self.partial(exc, data, rel)
        assistants = data.get("assistants")
        if not isinstance(assistants, YMap):
            return []
        for key, value in assistants.items():
            if key not in models and isinstance(value, YMap):
                self.check_paths(value, rel, path.parent)
        out: list[tuple[DesiredAssistant, Pos]] = []
        for key, model in models.items():
            pos = assistants.key_pos[key]
            desired = self.resolve(
                key,
                model,
                assistants[key],
                SourceLocation(file=rel, line=pos[0], col=pos[1]),
                path.parent,
            )
            if desired is not None:
                out.append((desired, pos))
        return out

    def partial(self, exc: ValidationError, data: YMap, rel: str) -> dict[str, AssistantManifest]:
        """Report a manifest's errors; return the assistants that are valid on their own."""
        broken: set[Any] = set()
        for err in exc.errors(include_url=False):
            loc = strip_tags(tuple(err["loc"]))
            pos = locate(data, loc, err["type"], err.get("input"))
            self.error(rel, pos, describe(ManifestDocument, err, loc, data))
            if len(loc) >= 2 and loc[0] == "assistants":
                broken.add(loc[1])
        assistants = data.get("assistants")
        models: dict[str, AssistantManifest] = {}
        if isinstance(assistants, YMap):
            for key, value in assistants.items():
                if key in broken or not isinstance(key, str):
                    continue
                try:
                    models[key] = AssistantManifest.model_validate(value)
                except ValidationError:  # pragma: no cover - reported above
                    continue
        return models

    def check_paths(self, data: YMap, rel: str, base: Path) -> None:
        """Check the file references of an assistant whose shape is invalid, so that a missing
        or escaping file is reported in the same run as the shape errors ("every error at
        once"); the assistant itself is not resolved."""
        raw = data.get("instructions_file")
        if isinstance(raw, str):
            self.instructions(raw, data, rel, base)
        files = data.get("files")
        if isinstance(files, YSeq) and all(isinstance(f, str) for f in files):
            self.knowledge_files(list(files), data, rel, base)

    def resolve(
        self, key: str, m: AssistantManifest, data: YMap, source: SourceLocation, base: Path
    ) -> DesiredAssistant | None:
        """The checks JSON Schema cannot express, then the resolved assistant."""
        rel = source.file
        before = self.failures
        instructions = m.instructions
        if m.instructions_file is not None:
            instructions = self.instructions(m.instructions_file, data, rel, base)
            path = self.found.get((base, m.instructions_file, "instructions_file"))
            if isinstance(path, Path):
                self.instruction_files[key] = path
        tools = [self.tool(i, tool, data, rel, base) for i, tool in enumerate(m.tools)]
        self.unique_function_names(m, data, rel)
        files = self.knowledge_files(m.files, data, rel, base)
        if self.failures > before:
            return None
        return DesiredAssistant(
            key=key,
            name=m.name,
            model=m.model,
            description=m.description,
            instructions=instructions,
            tools=tuple(t for t in tools if t is not None),
            files=files,
            metadata=dict(m.metadata),
            source=source,
        )

    def instructions(self, raw: str, data: YMap, rel: str, base: Path) -> str | None:
        pos = data.value_pos["instructions_file"]
        try:
            path = self.existing_file(base, raw, "instructions_file")
        except PathProblem as exc:
            self.path_error(rel, pos, exc)
            return None
        text = self.text_of(path, raw, "instructions_file", rel, pos)
        if text is None:
            return None
        if len(text) > MAX_INSTRUCTIONS_CHARS:
            self.error(
                rel,
                pos,
                f"instructions in {raw!r} are {len(text):,} characters; "
                f"the API allows at most {MAX_INSTRUCTIONS_CHARS:,}",
            )
            return None
        return text

    def tool(self, i: int, tool: Any, data: YMap, rel: str, base: Path) -> dict[str, Any] | None:
        if not isinstance(tool, FunctionTool):
            return {"type": tool.type}
        fn = tool.function
        fn_data = data["tools"][i]["function"]
        out: dict[str, Any] = {"name": fn.name}
        if fn.description is not None:
            out["description"] = fn.description
        if fn.parameters is not None:
            pos = fn_data.value_pos["parameters"]
            params, problem = _plain_json(fn.parameters)
            if problem is not None:
                self.error(rel, pos, f"parameters {problem}")
                return None
            # YAML anchors repeat one schema across assistants: check each distinct one once.
            text = canonical_json(params)
            if text not in self.inline_schemas:
                self.inline_schemas[text] = schema_problems(params)
            problems = self.inline_schemas[text]
            for p in problems:
                where = locate(fn_data["parameters"], p.path)
                self.error(rel, where, f"invalid JSON Schema in parameters: {p.message}")
            if problems:
                return None
            out["parameters"] = params
        elif fn.parameters_file is not None:
            params = self.parameters_file(fn.parameters_file, fn_data, rel, base)
            if params is None:
                return None
            out["parameters"] = params
        return {"type": "function", "function": out}

    def parameters_file(self, raw: str, fn_data: YMap, rel: str, base: Path) -> Any:
        pos = fn_data.value_pos["parameters_file"]
        try:
            path = self.existing_file(base, raw, "parameters_file")
        except PathProblem as exc:
            self.path_error(rel, pos, exc)
            return None
        text = self.text_of(path, raw, "parameters_file", rel, pos)
        if text is None:
            return None
        if path not in self.schema_files:
            self.schema_files[path] = self.schema_file(path, text, f"{rel}:{pos[0]}:{pos[1]}")
        value = self.schema_files[path]
        if value is _INVALID:
            self.failures += 1  # reported with the first entry that named the file
            return None
        if not isinstance(value, dict):
            self.error(
                rel,
                pos,
                f"parameters_file {raw!r} must hold a JSON object (a JSON Schema), "
                f"not {_json_type(value)}",
            )
            return None
        return value

    def schema_file(self, path: Path, text: str, referrer: str) -> Any:
        """The JSON value of a parameters file, or ``_INVALID`` when it is not JSON or not a
        valid JSON Schema; problems are reported in the JSON file itself, once however many
        functions name it, and say which manifest entry led there."""
        rel = self.rel(path)
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            self.error(
                rel,
                (exc.lineno, exc.colno),
                f"invalid JSON (parameters_file of {referrer}): {exc.msg}",
            )
            return _INVALID
        except RecursionError:
            self.error(rel, (1, 1), f"JSON nested too deeply (parameters_file of {referrer})")
            return _INVALID
        if not is_utf8(canonical_json(value)):
            # JSON may escape a lone surrogate ("\ud800"), which is not text any API takes.
            escape = _SURROGATE_ESCAPE.search(text)
            self.error(
                rel,
                offset_pos(text, escape.start() if escape else 0),
                f"invalid JSON (parameters_file of {referrer}): a \\u escape for half of a "
                "UTF-16 surrogate pair, alone, is not a character",
            )
            return _INVALID
        if not isinstance(value, dict):
            return value  # reported where it is named: a schema file must hold an object
        problems = schema_problems(value)
        for p in problems:
            self.error(
                rel,
                json_position(text, p.path),
                f"invalid JSON Schema (parameters_file of {referrer}): {p.message}",
            )
        return _INVALID if problems else value

    def unique_function_names(self, m: AssistantManifest, data: YMap, rel: str) -> None:
        seen: dict[str, Pos] = {}
        for i, tool in enumerate(m.tools):
            if not isinstance(tool, FunctionTool):
                continue
            fn_data = data["tools"][i]["function"]
            pos = fn_data.value_pos["name"]
            name = tool.function.name
            if name in seen:
                line, col = seen[name]
                self.error(
                    rel,
                    pos,
                    f"function name {name!r} is already used by this assistant "
                    f"(at line {line}:{col}); names must be unique per assistant",
                )
            else:
                seen[name] = pos

    def knowledge_files(
        self, entries: list[str], data: YMap, rel: str, base: Path
    ) -> tuple[str, ...]:
        chosen: dict[str, Path] = {}
        items = data.get("files")
        for i, raw in enumerate(entries):
            pos = items.item_pos[i] if isinstance(items, YSeq) else data.key_pos["files"]
            try:
                paths, problems = self.expand(base, raw, "file")
            except PathProblem as exc:
                self.path_error(rel, pos, exc)
                continue
            for problem in problems:
                self.error(rel, pos, problem)
            for path in paths:
                name = self.rel(path)
                if name in chosen:
                    continue
                try:
                    size = self.size_of(path)
                except OSError as exc:
                    self.error(rel, pos, f"file {name!r} cannot be read: {exc.strerror}")
                    continue
                if size > MAX_FILE_BYTES:
                    self.error(
                        rel,
                        pos,
                        f"file {name!r} is {size:,} bytes; the API accepts files up to 512 MB "
                        f"({MAX_FILE_BYTES:,} bytes)",
                    )
                    continue
                chosen[name] = path
                self.file_refs.setdefault(name, (rel, pos))
        # More than MAX_FILES entries is already a shape error at the same place.
        if len(chosen) > MAX_FILES and len(entries) <= MAX_FILES:
            self.error(
                rel,
                data.key_pos["files"],
                f"{len(chosen)} files after expanding globs; an assistant may have at most "
                f"{MAX_FILES}",
            )
        self.files.update(chosen)
        return tuple(sorted(chosen))

    def hash_files(self) -> dict[str, DesiredFile]:
        """Every knowledge file hashed; one that became unreadable since it was checked is
        reported at the first entry that named it."""
        out: dict[str, DesiredFile] = {}
        for name in sorted(self.files):
            try:
                sha, size = sha256_file(self.files[name])
            except OSError as exc:
                rel, pos = self.file_refs[name]
                self.error(rel, pos, f"file {name!r} cannot be read: {exc.strerror}")
                continue
            out[name] = DesiredFile(path=name, sha256=sha, size=size)
        return out


def _json_type(value: Any) -> str:
    return {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number"
    )


def _plain_json(value: Any) -> tuple[Any, str | None]:
    """A deep plain copy of YAML data that must be JSON, or the reason it is not."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            if not isinstance(k, str):
                return None, f"must be JSON: key {k!r} is not a string"
            out[k], problem = _plain_json(v)
            if problem is not None:
                return None, problem
        return out, None
    if isinstance(value, list):
        items = []
        for v in value:
            item, problem = _plain_json(v)
            if problem is not None:
                return None, problem
            items.append(item)
        return items, None
    if isinstance(value, float) and not math.isfinite(value):
        return None, f"must be JSON: {value} is not a JSON number"
    if value is None or isinstance(value, (str, int, float, bool)):
        return copy.copy(value), None
    return None, f"must be JSON: {value!r} is not a JSON value (quote it)"


def _open_config(
    root: Path, env: Mapping[str, str] | None, watch: set[str] | None = None
) -> tuple[_Loader, Path, ProjectConfig, YMap]:
    """Find and validate ``assistsync.yaml``: the loader, its path, its config and its data.

    ``watch`` collects the ``${VAR}`` names the project file asks for, and makes the loader
    keep the digests of what it reads (for the cache)."""
    start = Path(root)
    try:
        if start.name == CONFIG_NAME and start.is_file():
            start = start.parent
        resolved = Path(os.path.realpath(start))
        config_path = resolved / CONFIG_NAME
        found = config_path.is_file()
        if not found and config_path.exists():
            raise AssistsyncError(f"{CONFIG_NAME} in {resolved} is not a file")
    except (OSError, ValueError) as exc:  # too long a name, a NUL, a loop of symlinks
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise AssistsyncError(f"cannot use {str(root)!r} as a project directory: {reason}") from exc
    if not found:
        raise AssistsyncError(
            f"no {CONFIG_NAME} in {resolved}: run assistsync in a project directory or point "
            "-C at one (examples/quickstart is a minimal project)"
        )
    base = os.environ if env is None else env
    loader = _Loader(root=resolved, env=base if watch is None else _Watched(base, watch))
    if watch is not None:
        loader.digests = {}
    config, data = loader.load_config(config_path)
    return loader, config_path, config, data


def _open(
    root: Path,
    env: Mapping[str, str] | None,
    environment: str | None = None,
    watch: tuple[set[str], set[str]] | None = None,
) -> tuple[_Loader, Path, ProjectConfig, YMap, Selected]:
    """``_open_config``, then the environment chosen: the loader reads ``${VAR}`` as it says.

    ``watch``: where to collect the ``${VAR}`` names asked for by the project file, and by
    the manifests."""
    in_config, in_manifests = watch if watch is not None else (None, None)
    loader, config_path, config, data = _open_config(root, env, in_config)
    base = loader.env.env if isinstance(loader.env, _Watched) else loader.env
    selected = select(config, data, environment, base)
    loader.env = selected.env if in_manifests is None else _Watched(selected.env, in_manifests)
    return loader, config_path, config, data, selected


def project_config(root: Path) -> ProjectConfig:
    """``assistsync.yaml`` alone, validated. Raises as ``load_project`` does for it."""
    return _open_config(root, None)[2]


def project_environments(root: Path) -> tuple[str, ...]:
    """The environments ``assistsync.yaml`` declares (none: an empty tuple). Raises as
    ``load_project`` does for the project file."""
    return tuple(project_config(root).environments)


def locate_lock(
    root: Path, env: Mapping[str, str] | None = None, environment: str | None = None
) -> Path:
    """The lock file's path, from ``assistsync.yaml`` alone (the manifests are not read).

    Lets apply take the one-writer lock before it reads the live state, and read the live
    state while the manifests load. Raises as ``load_project`` does for the project file.
    """
    loader, config_path, config, data, selected = _open(root, env, environment)
    path = loader.lock_path(config, data, config_path, selected)
    if loader.diagnostics:
        raise loader.failed()
    return path


def load_project(
    root: Path,
    env: Mapping[str, str] | None = None,
    environment: str | None = None,
    *,
    cache: bool = False,
) -> Project:
    """Load and validate the project in directory ``root`` (or the ``assistsync.yaml`` itself).

    ``env`` supplies ``${VAR}`` values (default: ``os.environ``), after the variables of
    ``environment`` when the project declares environments (then one must be chosen). Raises
    ``ManifestError`` with every problem found, each located as ``FILE:LINE:COL`` with FILE
    relative to the project root; raises ``AssistsyncError`` when ``root`` holds no
    ``assistsync.yaml`` or the environment does not fit it.

    Never writes the user's files. With ``cache``, the loaded project is kept in
    ``.assistsync/cache/`` and used again while every input is unchanged (``_from_cache``);
    the result is the same as without it, errors included (a project with problems is never
    cached, so its problems always come from a full load).
    """
    watch: tuple[set[str], set[str]] | None = (set(), set()) if cache else None
    loader, config_path, config, data, selected = _open(root, env, environment, watch)
    lock_path = loader.lock_path(config, data, config_path, selected)
    manifest_paths = loader.find_manifests(config, data, config_path)
    desired = None
    if watch is not None and not loader.diagnostics:
        desired = _from_cache(loader, manifest_paths, selected.name)
    if desired is None:
        desired = _load_desired(loader, manifest_paths)
        if watch is not None and _cacheable(loader, config, selected.name, *watch):
            _store(loader, manifest_paths, selected.name, desired)
    return Project(
        root=loader.root,
        config=config,
        config_path=config_path,
        lock_path=lock_path,
        manifest_paths=tuple(manifest_paths),
        desired=desired,
        environment=selected.name,
    )


def _load_desired(loader: _Loader, manifest_paths: list[Path]) -> Desired:
    """Every manifest read, checked and resolved, then the knowledge files hashed; raises
    ``ManifestError`` with every problem (including those found before, in the project file)."""
    assistants: dict[str, DesiredAssistant] = {}
    for path in manifest_paths:
        for desired, pos in loader.load_manifest(path):
            first = assistants.get(desired.key)
            if first is not None:
                src = first.source
                loader.error(
                    desired.source.file,
                    pos,
                    f"duplicate assistant key {desired.key!r}: already declared at "
                    f"{src.file}:{src.line}:{src.col}",
                )
                continue
            assistants[desired.key] = desired
    if loader.diagnostics:
        raise loader.failed()
    files = loader.hash_files()
    if loader.diagnostics:
        raise loader.failed()
    return Desired(assistants=dict(sorted(assistants.items())), files=files)


# -- the cache ---------------------------------------------------------------------------------
#
# An entry (``cache.py`` stores it) records every input of a load besides ``assistsync.yaml``'s
# own checks and the manifest globs, which run again on every load anyway:
#
# - ``manifests``: the files the globs matched;
# - ``found`` / ``expanded``: every path a manifest names (base directory, entry as written,
#   its kind) and the file(s) it resolved to; they are resolved again by the same functions
#   (containment, symlinks, file types, glob matches) and must give the same files;
# - ``texts``: the SHA-256 of every file read as text (project file, manifests, instructions,
#   parameters files), read and hashed again;
# - the knowledge files, hashed again and compared with the entry's ``Desired.files``: by
#   content, not by size and modification time, which a same-size edit within the file
#   system's timestamp granularity (or a tool that restores times) would not change;
# - ``jsonschema``: its version, when a parameters schema needed it.
#
# ``${VAR}`` values are not recorded: a load that took a value from the process environment
# is not cached at all (the value would sit in the entry's desired state, and it may be a
# secret); values from the chosen environment's ``variables`` are part of assistsync.yaml,
# whose bytes are recorded.


class _Watched(Mapping[str, str]):
    """``${VAR}`` values, noting every name asked for, whether set or not."""

    def __init__(self, env: Mapping[str, str], names: set[str]) -> None:
        self.env = env
        self.names = names

    def __contains__(self, name: object) -> bool:
        if isinstance(name, str):
            self.names.add(name)
        return name in self.env

    def __getitem__(self, name: str) -> str:
        self.names.add(name)
        return self.env[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.env)

    def __len__(self) -> int:
        return len(self.env)


def _cacheable(
    loader: _Loader,
    config: ProjectConfig,
    environment: str | None,
    in_config: set[str],
    in_manifests: set[str],
) -> bool:
    """Whether a load that succeeded may be kept: it took no value from the process
    environment, and every path it resolved, it resolved without a problem."""
    own = config.environments[environment].variables if environment else {}
    if in_config or not in_manifests <= own.keys():
        return False
    return all(isinstance(r, Path) for r in loader.found.values()) and all(
        not isinstance(r, PathProblem) and not r[1] for r in loader.expanded.values()
    )


def _store(
    loader: _Loader, manifest_paths: list[Path], environment: str | None, desired: Desired
) -> None:
    rel = loader.rel
    record: dict[str, Any] = {
        "manifests": [rel(p) for p in manifest_paths],
        "found": [
            [rel(base), raw, what, rel(path)]
            for (base, raw, what), path in loader.found.items()
            if isinstance(path, Path)
        ],
        "expanded": [
            [rel(base), raw, what, [rel(p) for p in result[0]]]
            for (base, raw, what), result in loader.expanded.items()
            if not isinstance(result, PathProblem)
        ],
        "texts": sorted([rel(p), digest] for p, digest in (loader.digests or {}).items()),
    }
    # Instructions read from a file are named, not copied: the file is read to check it anyway.
    named = {
        key: rel(path)
        for key, path in loader.instruction_files.items()
        if key in desired.assistants and desired.assistants[key].instructions is not None
    }
    record["instructions"] = named
    if used_jsonschema():
        record["jsonschema"] = library_version("jsonschema")
    left_out = {"assistants": {key: {"instructions"} for key in named}}
    write_entry(
        loader.root, environment, record, desired.model_dump_json(exclude=left_out).encode()
    )


def _from_cache(
    loader: _Loader, manifest_paths: list[Path], environment: str | None
) -> Desired | None:
    """The desired state of the cache entry, when it is intact and every input it records is
    unchanged; ``None`` otherwise. Never raises: an unusable entry is only a full load."""
    found = read_entry(loader.root, environment)
    if found is None:
        return None
    try:
        # A loader of its own: what it resolves for a stale entry must not be recorded again.
        return _verified(_Loader(loader.root, loader.env), *found, manifest_paths)
    except (
        LookupError,
        TypeError,
        ValueError,
        AttributeError,
        OSError,
        PathProblem,
        RecursionError,
    ):
        return None


def _verified(
    loader: _Loader, entry: dict[str, Any], value: bytes, manifest_paths: list[Path]
) -> Desired | None:
    root = loader.root
    if entry["manifests"] != [loader.rel(p) for p in manifest_paths]:
        return None
    if "jsonschema" in entry and entry["jsonschema"] != library_version("jsonschema"):
        return None
    # Paths compared as strings (both sides normalised), each base directory made once:
    # a thousand entries name files in a handful of directories.
    at = functools.partial(os.path.join, os.fspath(root))
    bases = {name: root / name for name in {e[0] for e in entry["found"] + entry["expanded"]}}
    for base, raw, what, found in entry["found"]:
        if os.fspath(loader.existing_file(bases[base], raw, what)) != at(found):
            return None
    for base, raw, what, found in entry["expanded"]:
        paths, problems = loader.expand(bases[base], raw, what)
        if problems or [loader.rel(p) for p in paths] != found:
            return None
    named: dict[str, str] = entry["instructions"]
    wanted = set(named.values())
    texts: dict[str, str | BadUtf8] = {}
    for name, digest in entry["texts"]:
        with open(at(name), "rb") as f:
            raw = f.read()
        if hashlib.sha256(raw).hexdigest() != digest:
            return None
        if name in wanted:
            texts[name] = decode_utf8(raw)
    data = json.loads(value)
    for key, name in named.items():
        text = texts[name]
        if not isinstance(text, str):
            return None
        data["assistants"][key]["instructions"] = text
    desired = Desired.model_validate(data)
    for name, file in desired.files.items():
        if sha256_file(root / name) != (file.sha256, file.size):
            return None
    return desired
