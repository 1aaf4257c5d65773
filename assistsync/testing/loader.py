"""Test files -> :class:`TestCase` values, or every problem at once, located ``FILE:LINE:COL``.

Test files go through the manifest machinery (:mod:`assistsync.manifest`): the same YAML
reader (``${VAR}``, duplicate keys, positions), the same path rules (relative to the file that
names them, never leaving the project, no symlink out of it) and the same error type
(:class:`~assistsync.errors.ManifestError`), so ``assistsync validate`` reports problems in
manifests and tests together. On top of the shape (:mod:`assistsync.model.testfile`) it checks
what needs the manifests: the assistant key exists, functions named by stubs and ``calls`` are
function tools of that assistant, ``cites`` names one of the assistant's files, regexes compile,
JSON Schemas are valid, test keys are unique across files.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from assistsync.errors import ManifestError
from assistsync.manifest import Project
from assistsync.manifest.files import PathProblem, expand
from assistsync.manifest.loader import _Loader
from assistsync.manifest.messages import describe, locate, suggest
from assistsync.manifest.parameters import schema_problems
from assistsync.manifest.source import Pos, YMap, YSeq
from assistsync.model import DesiredAssistant
from assistsync.model.manifest import DEFAULT_TESTS_GLOB
from assistsync.model.testfile import (
    KINDS,
    TEST_KEY_PATTERN,
    Assertion,
    Stub,
    TestFile,
    TestSpec,
    TurnSpec,
)


@dataclass(frozen=True)
class Where:
    """A position in a test file (project-relative path, 1-based line and column)."""

    file: str
    line: int
    col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


@dataclass(frozen=True)
class Check:
    """An assertion, where it is written, and what its paths resolve to.

    ``cites`` is the project-relative path a ``cites`` assertion names; ``inner`` is the
    assertion a ``not`` wraps.
    """

    assertion: Assertion
    where: Where
    cites: str | None = None
    inner: Check | None = None

    @property
    def kind(self) -> str:
        return self.assertion.kind


@dataclass(frozen=True)
class Attachment:
    """A file attached to a user message: its project-relative name and its path."""

    name: str
    path: Path


@dataclass(frozen=True)
class TurnCase:
    """One turn, ready to run."""

    user: str
    where: Where
    files: tuple[Attachment, ...]
    stubs: Mapping[str, tuple[Stub, ...]]
    checks: tuple[Check, ...]


@dataclass(frozen=True)
class TestCase:
    """One test, ready to run: its key, assistant key, turns and repeat threshold."""

    __test__ = False

    key: str
    assistant: str
    where: Where
    turns: tuple[TurnCase, ...]
    repeat: int
    needed: int


@dataclass(frozen=True)
class TestSuite:
    """Every test of a project, sorted by key, and the files they came from."""

    __test__ = False

    tests: tuple[TestCase, ...]
    files: tuple[Path, ...]


def load_tests(project: Project, env: Mapping[str, str] | None = None) -> TestSuite:
    """Find and check the project's test files (the ``tests:`` globs of ``assistsync.yaml``).

    Raises ``ManifestError`` with every problem found. The default glob may match nothing (a
    project without tests is valid); a glob the user listed must match at least one file.
    """
    import os

    loader = _Loader(root=project.root, env=os.environ if env is None else env)
    reader = _Tests(loader, project)
    paths = reader.find()
    cases: dict[str, TestCase] = {}
    for path in paths:
        for case in reader.load(path):
            first = cases.get(case.key)
            if first is not None:
                loader.error(
                    case.where.file,
                    (case.where.line, case.where.col),
                    f"duplicate test key {case.key!r}: already declared at {first.where}",
                )
                continue
            cases[case.key] = case
    if loader.diagnostics:
        raise ManifestError(list(dict.fromkeys(loader.diagnostics)), "the test files")
    return TestSuite(tuple(cases[k] for k in sorted(cases)), tuple(paths))


class _Tests:
    def __init__(self, loader: _Loader, project: Project) -> None:
        self.loader = loader
        self.project = project

    def error(self, rel: str, pos: Pos, message: str) -> None:
        self.loader.error(rel, pos, message)

    def find(self) -> list[Path]:
        config = self.project.config
        rel = self.loader.rel(self.project.config_path)
        found: set[Path] = set()
        listed = self.project.config.tests != [DEFAULT_TESTS_GLOB]
        for pattern in config.tests:
            try:
                paths, problems = expand(self.loader.root, self.loader.root, pattern, "test glob")
            except PathProblem as exc:
                if listed:
                    self.error(rel, (1, 1), str(exc))
                continue
            for problem in problems:
                self.error(rel, (1, 1), problem)
            found.update(p for p in paths if p.suffix in (".yaml", ".yml"))
        return sorted(found)

    def validate(self, data: YMap, rel: str) -> dict[str, TestSpec]:
        """The file's valid tests; every problem of the others is reported (so that a typo
        in one test does not hide an unknown assistant in the next)."""
        try:
            return dict(TestFile.model_validate(data).tests)
        except ValidationError as exc:
            broken: set[Any] = set()
            for err in exc.errors(include_url=False):
                loc = tuple(err["loc"])
                pos = locate(data, loc, err["type"], err.get("input"))
                self.error(rel, pos, _describe(err, loc, data))
                broken.add(loc[1] if len(loc) >= 2 and loc[0] == "tests" else None)
        tests = data.get("tests")
        if None in broken or not isinstance(tests, YMap):
            return {}
        return {k: TestSpec.model_validate(v) for k, v in tests.items() if k not in broken}

    def load(self, path: Path) -> list[TestCase]:
        rel = self.loader.rel(path)
        ok, data = self.loader.read_source(path)
        if not ok:
            return []
        if data is None or not isinstance(data, YMap):
            self.error(rel, (1, 1), "a test file must be a mapping with a 'tests' key")
            return []
        specs = self.validate(data, rel)
        tests = data.get("tests")
        out: list[TestCase] = []
        if not isinstance(tests, YMap):
            return out
        for key, spec in specs.items():
            case = self.case(key, spec, tests, rel, path.parent)
            if case is not None:
                out.append(case)
        return out

    def case(self, key: str, spec: TestSpec, tests: YMap, rel: str, base: Path) -> TestCase | None:
        before = self.loader.failures
        key_pos = tests.key_pos[key]
        if not re.fullmatch(TEST_KEY_PATTERN, key):
            self.error(
                rel,
                key_pos,
                f"invalid test key {key!r}: use letters, digits, '.', '-' or '_' (at most 128), "
                "starting with a letter or digit",
            )
        node: YMap = tests[key]
        assistant = self.project.desired.assistants.get(spec.assistant)
        spoiled = (rel, node.value_pos["assistant"]) in self.loader.spoiled
        if assistant is None and spoiled:
            self.loader.failures += 1
        elif assistant is None:
            known = sorted(self.project.desired.assistants)
            hint = suggest(spec.assistant, known) if known else " (the manifests declare none)"
            self.error(
                rel,
                node.value_pos["assistant"],
                f"unknown assistant {spec.assistant!r}: not a key in the manifests{hint}",
            )
        turns = []
        for i, turn in enumerate(spec.turns):
            turns.append(self.turn(turn, node["turns"], i, assistant, rel, base))
        if self.loader.failures > before:
            return None
        return TestCase(
            key=key,
            assistant=spec.assistant,
            where=Where(rel, *key_pos),
            turns=tuple(turns),
            repeat=spec.repeat,
            needed=spec.needed,
        )

    def turn(
        self,
        turn: TurnSpec,
        seq: YSeq,
        i: int,
        assistant: DesiredAssistant | None,
        rel: str,
        base: Path,
    ) -> TurnCase:
        node: YMap = seq[i]
        files = []
        for j, raw in enumerate(turn.files):
            pos = node["files"].item_pos[j]
            try:
                path = self.loader.existing_file(base, raw, "file")
            except PathProblem as exc:
                self.loader.path_error(rel, pos, exc)
                continue
            files.append(Attachment(self.loader.rel(path), path))
        functions = _functions(assistant)
        for name in turn.tools:
            if assistant is not None and name not in functions:
                self.error(
                    rel,
                    node["tools"].key_pos[name],
                    f"assistant {assistant.key!r} has no function {name!r}"
                    + (suggest(name, sorted(functions)) if functions else " (it has none)"),
                )
            for j, stub in enumerate(turn.tools[name]):
                if stub.when is not None and not isinstance(stub.when, dict):
                    self.error(rel, node["tools"][name].item_pos[j], "when must be a mapping")
        checks = []
        expect = node.get("expect")
        for j, assertion in enumerate(turn.expect):
            item = expect[j] if isinstance(expect, YSeq) else YMap(node.pos)
            pos = expect.item_pos[j] if isinstance(expect, YSeq) else node.pos
            checks.append(self.check(assertion, item, pos, assistant, functions, rel, base))
        return TurnCase(
            user=turn.user,
            where=Where(rel, *seq.item_pos[i]),
            files=tuple(files),
            stubs={name: tuple(stubs) for name, stubs in turn.tools.items()},
            checks=tuple(checks),
        )

    def check(
        self,
        assertion: Assertion,
        node: YMap,
        pos: Pos,
        assistant: DesiredAssistant | None,
        functions: set[str],
        rel: str,
        base: Path,
    ) -> Check:
        kind = assertion.kind
        value_pos = node.value_pos.get(kind, pos)
        where = Where(rel, *pos)
        if kind == "not":
            inner_node = node.get("not")
            inner_pos = node.value_pos.get("not", pos)
            assert assertion.not_ is not None
            inner = self.check(
                assertion.not_,
                inner_node if isinstance(inner_node, YMap) else YMap(inner_pos),
                inner_pos,
                assistant,
                functions,
                rel,
                base,
            )
            return Check(assertion, where, inner=inner)
        if kind == "regex":
            assert assertion.regex is not None
            try:
                re.compile(assertion.regex)
            except re.error as exc:
                self.error(rel, value_pos, f"invalid regular expression: {exc}")
        if kind == "json" and isinstance(assertion.json_, dict):
            self.schema(assertion.json_, node, "json", rel)
        if kind == "json" and assertion.json_ is False:
            self.error(rel, value_pos, "json takes true or a JSON Schema (to negate, use 'not:')")
        if kind == "calls":
            assert assertion.calls is not None
            if assistant is not None and assertion.calls not in functions:
                self.error(
                    rel,
                    value_pos,
                    f"assistant {assistant.key!r} has no function {assertion.calls!r}"
                    + (suggest(assertion.calls, sorted(functions)) if functions else ""),
                )
            if assertion.schema_ is not None:
                self.schema(assertion.schema_, node, "schema", rel)
        cited = None
        if kind == "cites":
            assert assertion.cites is not None
            cited = self.cites(assertion.cites, value_pos, assistant, rel, base)
        return Check(assertion, where, cites=cited)

    def schema(self, schema: dict[str, Any], node: YMap, field: str, rel: str) -> None:
        for problem in schema_problems(schema):
            where = locate(node.get(field), problem.path)
            self.error(rel, where, f"invalid JSON Schema in {field}: {problem.message}")

    def cites(
        self, raw: str, pos: Pos, assistant: DesiredAssistant | None, rel: str, base: Path
    ) -> str | None:
        try:
            path = self.loader.existing_file(base, raw, "cites")
        except PathProblem as exc:
            self.loader.path_error(rel, pos, exc)
            return None
        name = self.loader.rel(path)
        if assistant is not None and name not in assistant.files:
            have = ", ".join(assistant.files) if assistant.files else "none"
            self.error(
                rel,
                pos,
                f"cites {raw!r} ({name}), which is not a file of assistant {assistant.key!r} "
                f"(its files: {have}); it could never be cited",
            )
            return None
        return name


def _functions(assistant: DesiredAssistant | None) -> set[str]:
    if assistant is None:
        return set()
    return {
        t["function"]["name"]
        for t in assistant.tools
        if t.get("type") == "function" and isinstance(t.get("function"), dict)
    }


def _model_at(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The model owning the mapping at ``loc`` of a test file (for "did you mean")."""
    from assistsync.model.testfile import TestFile as File

    if not loc:
        return File
    if len(loc) == 2 and loc[0] == "tests":
        return TestSpec
    if len(loc) == 4 and loc[2] == "turns":
        return TurnSpec
    if len(loc) >= 6 and loc[4] == "expect":
        return Assertion
    if len(loc) == 7 and loc[4] == "tools":
        return Stub
    return None


def _describe(err: Any, loc: tuple[Any, ...], data: Any) -> str:
    """One sentence for a test file's shape error: the manifests' wording, with the allowed
    fields of the level that has an unknown one."""
    if err["type"] == "extra_forbidden":
        field = str(loc[-1])
        parent = loc[:-1]
        if parent and parent[-1] == "not":
            parent = (*parent[:-1], 0)
        model = _model_at(parent) if not (len(parent) > 6 and parent[4] == "expect") else Assertion
        if model is Assertion:
            return f"unknown assertion or field {field!r}{suggest(field, list(KINDS))}"
        if model is not None:
            fields = [f.alias or n for n, f in model.model_fields.items() if n != "schema_"]
            return f"unknown field {field!r}{suggest(field, fields)}"
    return describe(TestFile, err, loc, data)
