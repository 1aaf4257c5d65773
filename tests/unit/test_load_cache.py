"""The cache of loaded projects (``.assistsync/cache/``): a hit is exactly a full load.

Every test compares ``load_project(cache=True)`` with a full load of the same files
(``cache=False``): equal projects, or the same errors. Whether the cache was used is read from
the loader's own ``_from_cache`` (what the next ``cache=True`` load would take).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assistsync.errors import AssistsyncError, ManifestError
from assistsync.manifest import Project, load_project
from assistsync.manifest import cache as cache_module
from assistsync.manifest import loader as loader_module

CONFIG = """\
manifests: [assistants/*.yaml]
environments:
  staging:
    variables: {TONE: calm, LEVEL: "2"}
"""

FILES: dict[str, bytes] = {
    "assistsync.yaml": CONFIG.encode(),
    "assistants/a.yaml": b"""\
assistants:
  support:
    name: Support ${TONE}
    model: gpt-4
    instructions_file: ../prompts/support.md
    files: [../docs/faq.md, ../docs/*.txt]
    metadata: {level: "${LEVEL}"}
    tools:
      - type: function
        function:
          name: lookup
          parameters_file: ../functions/lookup.json
  writer:
    model: gpt-4
    instructions: Write in a ${TONE} voice.
    tools: [{type: retrieval}]
    files: [../docs/faq.md]
""",
    "assistants/b.yaml": b"""\
assistants:
  helper:
    model: gpt-3.5-turbo
    instructions_file: ../prompts/helper.md
    tools:
      - type: function
        function:
          name: add
          parameters: {type: object, properties: {a: {type: integer}}, required: [a]}
""",
    "prompts/support.md": "Help customers; be kind. \u00e9\n".encode(),
    "prompts/helper.md": b"Add numbers.\n",
    "functions/lookup.json": b'{"type": "object", "properties": {"id": {"type": "string"}}}\n',
    "docs/faq.md": b"# FAQ\nShipping takes 3 days.\n",
    "docs/a.txt": b"alpha\n",
    "docs/b.txt": b"beta\n",
}
ENV = "staging"


def make(root: Path, files: dict[str, bytes] = FILES) -> Path:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    return root


class Loaded(Project):
    """A project that compares by order too: the fingerprint of a plan hashes the desired
    state in its order (assistants, files, metadata), so a hit must keep it."""

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Project)
            and Project.__eq__(self, other)
            and self.desired.model_dump_json() == other.desired.model_dump_json()
        )

    __hash__ = None  # type: ignore[assignment]


def load(root: Path, *, cache: bool, env: dict[str, str] | None = None) -> Project | str:
    """The project, or the text of every problem (so that errors compare too)."""
    try:
        p = load_project(root, env={} if env is None else env, environment=ENV, cache=cache)
        return Loaded(**{f.name: getattr(p, f.name) for f in dataclasses.fields(p)})
    except ManifestError as exc:
        return "\n".join(map(str, exc.diagnostics))
    except AssistsyncError as exc:  # the project file names no such environment any more
        return str(exc)


def hit(root: Path, env: dict[str, str] | None = None) -> bool:
    """Whether the next cached load of ``root`` would be taken from the cache."""
    watch: tuple[set[str], set[str]] = (set(), set())
    loader, _, config, data, selected = loader_module._open(root, env or {}, ENV, watch)
    manifests = loader.find_manifests(config, data, root / "assistsync.yaml")
    return loader_module._from_cache(loader, manifests, selected.name) is not None


def entry(root: Path) -> Path:
    return cache_module.entry_path(root.resolve(), ENV)


def test_a_hit_is_the_full_load(tmp_path: Path) -> None:
    root = make(tmp_path)
    full = load(root, cache=False)
    assert isinstance(full, Project)
    assert not entry(root).exists(), "a load without cache writes nothing"
    assert load(root, cache=True) == full  # a miss, which writes the entry
    assert entry(root).exists()
    assert hit(root)
    assert load(root, cache=True) == full
    # instructions read from files are named in the entry, not copied
    assert b"Help customers" not in entry(root).read_bytes()


def test_the_state_directory_is_kept_out_of_git(tmp_path: Path) -> None:
    root = make(tmp_path)
    load(root, cache=True)
    assert (root / ".assistsync" / ".gitignore").read_text().splitlines()[-1] == "*"


EDITABLE = sorted(FILES)


@st.composite
def edits(draw: st.DrawFn) -> tuple[str, int, int]:
    name = draw(st.sampled_from(EDITABLE))
    offset = draw(st.integers(0, len(FILES[name]) - 1))
    byte = draw(st.integers(0, 255).filter(lambda b: b != FILES[name][offset]))
    return name, offset, byte


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(edit=edits())
def test_after_any_one_byte_edit_the_cache_gives_what_a_full_load_gives(
    tmp_path_factory: pytest.TempPathFactory, edit: tuple[str, int, int]
) -> None:
    # A byte of any input (the project file with its variables, a manifest, an instructions
    # or parameters file, a knowledge file named or globbed) changed after the entry was made.
    root = make(tmp_path_factory.mktemp("p"))
    first = load(root, cache=True)
    assert isinstance(first, Project)
    name, offset, byte = edit
    content = bytearray(FILES[name])
    content[offset] = byte
    (root / name).write_bytes(bytes(content))
    cached, full = load(root, cache=True), load(root, cache=False)
    assert cached == full
    assert cached != first, "every byte of these inputs counts"
    assert load(root, cache=True) == full  # and again, from the entry written after it


def test_files_that_appear_or_turn_into_links_are_seen(tmp_path: Path) -> None:
    root = make(tmp_path / "p")
    load(root, cache=True)
    (root / "docs/c.txt").write_bytes(b"gamma\n")  # a new match of ../docs/*.txt
    assert not hit(root)
    assert load(root, cache=True) == load(root, cache=False)
    assert hit(root)

    # the same content, now through a symlink leading out of the project: refused
    outside = tmp_path / "outside.md"
    outside.write_bytes(FILES["prompts/helper.md"])
    (root / "prompts/helper.md").unlink()
    (root / "prompts/helper.md").symlink_to(outside)
    result = load(root, cache=True)
    assert isinstance(result, str)
    assert "outside the project directory" in result
    assert result == load(root, cache=False)


def test_variables_from_the_process_environment_are_never_cached(tmp_path: Path) -> None:
    files = dict(FILES)
    files["assistants/b.yaml"] = (
        files["assistants/b.yaml"].replace(b"Add numbers.", b"x")
        + b"    description: Key ${SECRET_TOKEN}\n"
    )
    root = make(tmp_path, files)
    env = {"SECRET_TOKEN": "s3cr3t-value"}
    first = load(root, cache=True, env=env)
    assert isinstance(first, Project)
    assert first.desired.assistants["helper"].description == "Key s3cr3t-value"
    assert not entry(root).exists()
    for path in (root / ".assistsync").rglob("*") if (root / ".assistsync").exists() else []:
        assert b"s3cr3t" not in path.read_bytes()
    changed = load(root, cache=True, env={"SECRET_TOKEN": "other"})
    assert isinstance(changed, Project)
    assert changed.desired.assistants["helper"].description == "Key other"
    assert changed == load(root, cache=False, env={"SECRET_TOKEN": "other"})


def test_a_variable_in_the_project_file_is_never_cached(tmp_path: Path) -> None:
    files = dict(FILES)
    files["assistsync.yaml"] = CONFIG.replace("calm", '"${MOOD}"').encode()
    root = make(tmp_path, files)
    assert isinstance(load(root, cache=True, env={"MOOD": "calm"}), Project)
    assert not entry(root).exists()
    changed = load(root, cache=True, env={"MOOD": "stern"})
    assert isinstance(changed, Project)
    assert changed.desired.assistants["writer"].instructions == "Write in a stern voice."


def test_environments_have_entries_of_their_own(tmp_path: Path) -> None:
    config = CONFIG + "    lock: staging.lock\n  prod:\n    variables: {TONE: brisk, LEVEL: '3'}\n"
    root = make(tmp_path, {**FILES, "assistsync.yaml": config.encode()})
    staging = load_project(root, env={}, environment="staging", cache=True)
    prod = load_project(root, env={}, environment="prod", cache=True)
    assert cache_module.entry_path(root, "staging") != cache_module.entry_path(root, "prod")
    assert load_project(root, env={}, environment="staging", cache=True) == staging
    assert load_project(root, env={}, environment="prod", cache=True) == prod
    assert prod.desired.assistants["writer"].instructions == "Write in a brisk voice."


def _parts(path: Path) -> tuple[dict[str, Any], bytes]:
    """The record and the value of an entry."""
    body = path.read_bytes().split(b"\n", 2)[2]
    line, value = body.split(b"\n", 1)
    return dict(json.loads(line)), value


def _rewrite(path: Path, record: dict[str, Any], value: bytes | None = None) -> None:
    """An entry with ``record`` (and ``value``), its digest right (as a careful forger would
    write it)."""
    body = json.dumps(record).encode() + b"\n" + (_parts(path)[1] if value is None else value)
    digest = hashlib.sha256(body).hexdigest().encode()
    path.write_bytes(b"assistsync load cache\n" + digest + b"\n" + body)


def _edited(path: Path, **changes: Any) -> None:
    record = _parts(path)[0]
    record.update(changes)
    _rewrite(path, {k: v for k, v in record.items() if v is not None})


CORRUPTIONS = {
    "truncated": lambda p: p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2]),
    "empty": lambda p: p.write_bytes(b""),
    "a byte flipped": lambda p: p.write_bytes(
        p.read_bytes()[:-40] + bytes([p.read_bytes()[-40] ^ 1]) + p.read_bytes()[-39:]
    ),
    "not ours": lambda p: p.write_bytes(b"\x00\xff binary noise"),
    "another format": lambda p: _edited(p, format=cache_module.FORMAT + 1),
    "another loader": lambda p: _edited(p, code="0" * 64),
    "a wrong shape": lambda p: _edited(p, found=5),
    "an empty record": lambda p: _edited(p, found=[[]], expanded=[[1, 2]]),
    "a record missing": lambda p: _edited(p, texts=None),
    "no value": lambda p: _rewrite(p, _parts(p)[0], b""),
    "a value cut short": lambda p: _rewrite(p, _parts(p)[0], _parts(p)[1][:-5]),
    "a directory": lambda p: (p.unlink(), p.mkdir()),
}


@pytest.mark.parametrize("corruption", sorted(CORRUPTIONS))
def test_a_damaged_entry_is_ignored_and_replaced(tmp_path: Path, corruption: str) -> None:
    root = make(tmp_path)
    full = load(root, cache=False)
    load(root, cache=True)
    CORRUPTIONS[corruption](entry(root))
    assert not hit(root)
    assert load(root, cache=True) == full
    if corruption != "a directory":  # replaced by the next load
        assert hit(root)


def test_a_forged_desired_state_is_not_trusted(tmp_path: Path) -> None:
    # The desired state of an entry must still be a valid one: a description that is not text
    # fails the models' validation, and the entry is only a full load.
    root = make(tmp_path)
    full = load(root, cache=True)
    record, value = _parts(entry(root))
    desired = json.loads(value)
    desired["assistants"]["writer"]["description"] = 5
    _rewrite(entry(root), record, json.dumps(desired).encode())
    assert not hit(root)
    assert load(root, cache=True) == full


def test_deleting_the_cache_at_any_time_is_a_full_load(tmp_path: Path) -> None:
    root = make(tmp_path)
    full = load(root, cache=True)
    shutil.rmtree(root / ".assistsync" / "cache")
    assert load(root, cache=True) == full
    assert hit(root)
    shutil.rmtree(root / ".assistsync")
    assert load(root, cache=True) == full
    assert hit(root)


def test_a_project_whose_state_directory_cannot_be_made_loads_without_cache(
    tmp_path: Path,
) -> None:
    root = make(tmp_path)
    (root / ".assistsync").write_text("not a directory\n")
    assert load(root, cache=True) == load(root, cache=False)
    assert (root / ".assistsync").read_text() == "not a directory\n"


def test_a_project_with_problems_is_never_cached(tmp_path: Path) -> None:
    root = make(tmp_path)
    (root / "prompts/helper.md").unlink()
    result = load(root, cache=True)
    assert isinstance(result, str)
    assert "not found" in result
    assert not entry(root).exists()
    # an entry made before the problem is not used either: the problem is reported
    (root / "prompts/helper.md").write_bytes(FILES["prompts/helper.md"])
    load(root, cache=True)
    (root / "prompts/helper.md").unlink()
    assert load(root, cache=True) == result


@pytest.mark.skipif(os.geteuid() == 0, reason="permissions do not stop root")
def test_a_read_only_state_directory_is_left_alone(tmp_path: Path) -> None:
    root = make(tmp_path)
    (root / ".assistsync").mkdir()
    (root / ".assistsync").chmod(0o555)
    try:
        assert load(root, cache=True) == load(root, cache=False)
        assert list((root / ".assistsync").iterdir()) == []
    finally:
        (root / ".assistsync").chmod(0o755)


def test_what_a_killed_write_left_is_removed_later(tmp_path: Path) -> None:
    root = make(tmp_path)
    load(root, cache=True)
    folder = entry(root).parent
    old, recent = folder / ".load-killed.tmp", folder / ".load-writing.tmp"
    old.write_bytes(b"half an entry")
    recent.write_bytes(b"a write under way")
    long_ago = time.time() - 2 * cache_module.STALE_AFTER_S
    os.utime(old, (long_ago, long_ago))
    entry(root).unlink()
    load(root, cache=True)
    assert not old.exists()
    assert recent.exists()
    assert hit(root)
