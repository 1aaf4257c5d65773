"""What the user's environment can refuse while a project loads (names too long for the file
system, FIFOs, undecodable names and variables, nesting past Python's limits) ends in a located
``ManifestError`` (exit 1), never another exception (which the CLI reports as a bug, exit 3)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from assistsync.errors import AssistsyncError, ManifestError
from assistsync.manifest import load_project, locate_lock

CONFIG = "manifests: [assistants/*.yaml]\n"
BOT = "assistants:\n  bot:\n    model: gpt-4\n"
LONG = "n" * 300  # longer than any file system's name limit (255 bytes)


def make(root: Path, manifest: str, config: str = CONFIG) -> Path:
    (root / "assistants").mkdir(parents=True, exist_ok=True)
    (root / "assistsync.yaml").write_text(config, encoding="utf-8")
    (root / "assistants" / "a.yaml").write_text(textwrap.dedent(manifest), encoding="utf-8")
    return root


def errors(root: Path, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ManifestError) as info:
        load_project(root, env=env or {})
    return [str(d) for d in info.value.diagnostics]


def function(entry: str) -> str:
    return (
        BOT + f"    tools:\n      - type: function\n        function:\n          name: f\n{entry}"
    )


@pytest.mark.parametrize(
    ("manifest", "expected"),
    [
        (
            BOT + f"    instructions_file: {LONG}.md\n",
            f"assistants/a.yaml:4:24: instructions_file '{LONG}.md' cannot be used: "
            "File name too long",
        ),
        (
            function(f"          parameters_file: {LONG}.json\n"),
            f"assistants/a.yaml:8:28: parameters_file '{LONG}.json' cannot be used: "
            "File name too long",
        ),
        (
            BOT + f"    files: [{LONG}.md]\n",
            f"assistants/a.yaml:4:13: file '{LONG}.md' cannot be used: File name too long",
        ),
        (
            BOT + f"    files: ['{LONG}/*.md']\n",
            f"assistants/a.yaml:4:13: file '{LONG}/*.md' matches no file",
        ),
    ],
)
def test_a_name_too_long_for_the_file_system(tmp_path: Path, manifest: str, expected: str) -> None:
    assert errors(make(tmp_path, manifest)) == [expected]


def test_a_lock_name_too_long_for_the_file_system(tmp_path: Path) -> None:
    make(tmp_path, BOT, CONFIG + f"lock: {LONG}\n")
    expected = [f"assistsync.yaml:2:7: lock '{LONG}' cannot be used: File name too long"]
    assert errors(tmp_path) == expected
    with pytest.raises(ManifestError) as info:
        locate_lock(tmp_path, env={})
    assert [str(d) for d in info.value.diagnostics] == expected


@pytest.mark.parametrize("root", [LONG, "a\0b"])
def test_a_project_directory_the_file_system_refuses(tmp_path: Path, root: str) -> None:
    with pytest.raises(AssistsyncError, match="as a project directory: ") as info:
        load_project(tmp_path / root, env={})
    assert not isinstance(info.value, ManifestError)


def test_a_project_file_that_is_a_directory(tmp_path: Path) -> None:
    (tmp_path / "assistsync.yaml").mkdir()
    with pytest.raises(AssistsyncError, match=r"assistsync\.yaml in .* is not a file$"):
        load_project(tmp_path, env={})


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("instructions_file: ../docs/pipe.md", "instructions_file '../docs/pipe.md' is not "),
        ("files: [../docs/pipe.md]", "file '../docs/pipe.md' is not "),
    ],
)
def test_a_fifo_is_not_read(tmp_path: Path, entry: str, expected: str) -> None:
    # Reading a FIFO would block for ever; it is named as what it is, not "not found".
    make(tmp_path, BOT + f"    {entry}\n")
    (tmp_path / "docs").mkdir()
    os.mkfifo(tmp_path / "docs" / "pipe.md")
    (found,) = errors(tmp_path)
    assert found.endswith(expected + "a regular file")


def test_a_file_name_that_is_not_utf8(tmp_path: Path) -> None:
    make(tmp_path, BOT + "    files: [../docs/*.md]\n")
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "ok.md").write_text("ok")
    with open(os.fsencode(tmp_path / "docs") + b"/caf\xe9.md", "wb") as f:
        f.write(b"x")
    with open(os.fsencode(tmp_path / "assistants") + b"/\xff.yaml", "wb") as f:
        f.write(b"assistants: {}\n")
    assert errors(tmp_path) == [
        "assistants/a.yaml:4:13: file '../docs/*.md' matches 'docs/caf\\udce9.md', whose name is "
        "not valid UTF-8; rename it",
        "assistsync.yaml:1:13: manifest glob 'assistants/*.yaml' matches "
        "'assistants/\\udcff.yaml', whose name is not valid UTF-8; rename it",
    ]


def test_an_environment_variable_that_is_not_utf8(tmp_path: Path) -> None:
    make(tmp_path, BOT + "    instructions: ${PROMPT}\n    files: ['${DOC}']\n")
    env = {"PROMPT": "caf\udce9", "DOC": "caf\udce9.md"}
    assert errors(tmp_path, env) == [
        "assistants/a.yaml:4:19: environment variable PROMPT is not valid UTF-8",
        "assistants/a.yaml:5:13: environment variable DOC is not valid UTF-8",
    ]


@pytest.mark.parametrize(
    "metadata", ["[" * 3000 + "]" * 3000, "\n" + "".join(" " * i + "- \n" for i in range(6, 3000))]
)
def test_yaml_nested_past_the_limit(tmp_path: Path, metadata: str) -> None:
    make(tmp_path, BOT + f"    metadata: {metadata}\n")
    assert errors(tmp_path) == ["assistants/a.yaml:1:1: YAML nested too deeply to read"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[" * 100_000 + "]" * 100_000, "1:1: JSON nested too deeply"),
        ('{"not": ' * 300 + "{}" + "}" * 300, "1:1: invalid JSON Schema"),
        (
            '{\n  "description": "ok \\ud83d\\ude00 then \\udead"\n}',
            "2:40: invalid JSON (parameters_file of assistants/a.yaml:8:28): a \\u escape for "
            "half of a UTF-16 surrogate pair, alone, is not a character",
        ),
    ],
)
def test_json_the_api_could_not_take(tmp_path: Path, text: str, expected: str) -> None:
    make(tmp_path, function("          parameters_file: ../f.json\n"))
    (tmp_path / "f.json").write_text(text, encoding="utf-8")
    (found,) = errors(tmp_path)
    assert found.startswith(f"f.json:{expected}")


Setup = Callable[[Path], None]


def _long_name(root: Path) -> None:
    make(root, BOT + f"    instructions_file: {LONG}.md\n")


def _deep_yaml(root: Path) -> None:
    make(root, BOT + "    metadata: " + "[" * 3000 + "]" * 3000 + "\n")


@pytest.mark.parametrize("setup", [_long_name, _deep_yaml])
def test_the_cli_exits_1_without_a_traceback(tmp_path: Path, setup: Setup) -> None:
    setup(tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    result = subprocess.run(
        [sys.executable, "-m", "assistsync", "-C", str(tmp_path), "validate"],
        capture_output=True,
        text=True,
        env={**env, "NO_COLOR": "1"},
        timeout=120,
        check=False,
    )
    assert result.returncode == 1, result.stderr
    assert "assistants/a.yaml:" in result.stderr
    assert "Traceback" not in result.stderr
    assert "bug" not in result.stderr
