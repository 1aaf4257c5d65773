"""Whatever a manifest contains, loading it ends in a project or a located ``ManifestError``:
never another exception (which the CLI would report as a bug)."""

from __future__ import annotations

import io
import json
import os
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from assistsync.errors import ManifestError
from assistsync.manifest import load_project, locate_lock

FRAGMENTS = [
    "assistants:",
    "\n",
    "  ",
    "    ",
    "bot:",
    "model: gpt-4",
    "name:",
    "tools:",
    "- type: retrieval",
    "- type: function",
    "function:",
    "parameters:",
    "parameters_file: ../p.json",
    "files:",
    "- ../docs/*.md",
    "- ../../etc/passwd",
    "metadata:",
    "team: x",
    "instructions_file: ../i.md",
    "instructions: |",
    "${HOME}",
    "${NOPE}",
    "&a",
    "*a",
    "<<: *a",
    "[",
    "]",
    "{",
    "}",
    ",",
    ":",
    "?",
    "!!binary",
    "!!str",
    "'",
    '"',
    "#",
    "---",
    "...",
    "\t",
    "123",
    "null",
    "true",
    "~",
    "-",
]

FIELDS = [
    "name",
    "model",
    "description",
    "instructions",
    "instructions_file",
    "tools",
    "files",
    "metadata",
    "type",
    "function",
    "parameters",
    "parameters_file",
    "colour",
    "assistsync_key",
    # JSON Schema keywords, so inline parameters meet the meta-schema check
    "properties",
    "required",
    "items",
    "enum",
    "$schema",
]
fuzz = settings(
    max_examples=int(os.environ.get("ASSISTSYNC_FUZZ_EXAMPLES", "300")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
"""Examples per test: 300, or ``ASSISTSYNC_FUZZ_EXAMPLES``."""

values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
    | st.sampled_from(
        ["../i.md", "../p.json", "../docs/*.md", "retrieval", "function", "f-1", "object", "objekt"]
    ),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
documents = st.dictionaries(
    st.sampled_from(["bot", "Bad Key", "x" * 70]) | st.text(max_size=6),
    st.dictionaries(st.sampled_from(FIELDS), values, max_size=6),
    max_size=3,
).map(lambda assistants: {"assistants": assistants})


def _dump(document: object) -> str:
    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    out = io.StringIO()
    yaml.dump(document, out)
    return out.getvalue()


manifest_text = st.one_of(
    documents.map(_dump),
    st.lists(st.sampled_from(FRAGMENTS), max_size=40).map(" ".join),
    st.lists(st.sampled_from(FRAGMENTS), max_size=40).map("".join),
    st.text(max_size=200),
)


@fuzz
@given(text=manifest_text)
def test_any_manifest_loads_or_fails_with_located_errors(text: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "assistsync.yaml").write_text("manifests: [assistants/*.yaml]\n")
        (root / "assistants").mkdir()
        (root / "docs").mkdir()
        (root / "docs" / "a.md").write_text("doc")
        (root / "i.md").write_text("instructions")
        (root / "p.json").write_text('{"type": "object"}')
        (root / "assistants" / "fuzz.yaml").write_text(text, encoding="utf-8", errors="replace")
        try:
            load_project(root, env={"HOME": "/home/x"})
        except ManifestError as exc:
            diagnostics = exc.diagnostics
        else:
            return
    assert diagnostics
    for d in diagnostics:
        assert d.line >= 1
        assert d.col >= 1
        assert d.message


projects = st.dictionaries(
    st.sampled_from(["manifests", "lock", "$schema", "extra"]),
    values | st.sampled_from(["../x.lock", "\0", "assistants/*.yaml", "/abs.lock", "docs"]),
    max_size=3,
).map(_dump)


@fuzz
@given(text=projects | st.text(max_size=100))
def test_any_project_file_loads_or_fails_cleanly(text: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "assistsync.yaml").write_text(text, encoding="utf-8", errors="replace")
        (root / "assistants").mkdir()
        (root / "docs").mkdir()
        (root / "assistants" / "a.yaml").write_text("assistants:\n  bot:\n    model: gpt-4\n")
        try:
            load_project(root)
            locate_lock(root)
        except ManifestError as exc:
            assert all(d.line >= 1 and d.col >= 1 and d.message for d in exc.diagnostics)  # noqa: PT017


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.text(max_size=8)
    | st.sampled_from(["object", "objekt", "string", "http://json-schema.org/draft-04/schema#"]),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(["type", "properties", "required", "items", "not", "$schema", "$ref"])
            | st.text(max_size=4),
            inner,
            max_size=4,
        )
    ),
    max_leaves=16,
)
json_text = st.one_of(
    st.builds(json.dumps, json_values, indent=st.sampled_from([None, 0, 2])),
    st.text(max_size=60),
)


@fuzz
@given(text=json_text)
def test_any_parameters_file_loads_or_fails_with_errors_inside_it(text: str) -> None:
    manifest = (
        "assistants:\n  bot:\n    model: gpt-4\n    tools:\n      - type: function\n"
        "        function:\n          name: f\n          parameters_file: ../p.json\n"
    )
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "assistsync.yaml").write_text("manifests: [assistants/*.yaml]\n")
        (root / "assistants").mkdir()
        (root / "assistants" / "a.yaml").write_text(manifest)
        (root / "p.json").write_text(text, encoding="utf-8", errors="replace")
        try:
            load_project(root, env={})
        except ManifestError as exc:
            diagnostics = exc.diagnostics
        else:
            return
    lines = text.split("\n")
    for d in diagnostics:
        assert d.message
        if d.file == "p.json":
            assert 1 <= d.line <= len(lines)
            assert 1 <= d.col <= len(lines[d.line - 1]) + 1
        else:
            assert (d.file, d.line, d.col) == ("assistants/a.yaml", 8, 28)
