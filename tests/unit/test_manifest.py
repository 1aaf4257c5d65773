"""The manifest loader: projects built in tmp_path, loaded, and every problem located."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tempfile
import textwrap
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from assistsync.errors import AssistsyncError, ManifestError
from assistsync.manifest import files as files_module
from assistsync.manifest import load_project
from assistsync.manifest import loader as loader_module
from assistsync.manifest import messages as messages_module
from assistsync.manifest import source as source_module
from assistsync.model import TAG_KEY
from assistsync.model.manifest import RESERVED_METADATA_KEY

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "quickstart"

CONFIG = "manifests:\n  - assistants/*.yaml\n"


def make(root: Path, files: dict[str, str | bytes]) -> Path:
    """Write a project; ``assistsync.yaml`` defaults to one glob over assistants/*.yaml."""
    files = {"assistsync.yaml": CONFIG, **files}
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(textwrap.dedent(content), encoding="utf-8")
    return root


def errors(root: Path, env: dict[str, str] | None = None) -> list[str]:
    """The ``FILE:LINE:COL: message`` lines of the ManifestError loading ``root`` raises."""
    with pytest.raises(ManifestError) as info:
        load_project(root, env={} if env is None else env)
    return [str(d) for d in info.value.diagnostics]


def one_error(root: Path, env: dict[str, str] | None = None) -> str:
    found = errors(root, env)
    assert len(found) == 1, found
    return found[0]


def bot(**fields: str | None) -> str:
    """A manifest with one assistant ``bot``: name, model, instructions (lines 3-5), then fields.

    A field given replaces the default in place; ``None`` drops it.
    """
    base: dict[str, str | None] = {
        "name": "Bot",
        "model": "gpt-4-turbo",
        "instructions": "Be brief.",
    }
    merged = {**base, **fields}
    body = "".join(f"    {k}: {v}\n" for k, v in merged.items() if v is not None)
    return "assistants:\n  bot:\n" + body


# -- the example ---------------------------------------------------------------------------


def test_quickstart_example_loads() -> None:
    project = load_project(EXAMPLE, env={})
    desired = project.desired
    assert project.root == EXAMPLE
    assert project.lock_path == EXAMPLE / "assistsync.lock"
    assert project.manifest_paths == (EXAMPLE / "assistants" / "support.yaml",)
    assert sorted(desired.assistants) == ["order-helper", "returns-bot"]
    helper = desired.assistants["order-helper"]
    assert helper.instructions == (EXAMPLE / "prompts" / "order-helper.md").read_text()
    function = helper.tools[1]["function"]
    assert function["name"] == "lookup_order"
    assert function["parameters"] == json.loads(
        (EXAMPLE / "functions" / "lookup_order.json").read_text()
    )
    assert "parameters_file" not in function
    assert helper.source.file == "assistants/support.yaml"
    assert (helper.source.line, helper.source.col) == (5, 3)
    assert desired.assistants["returns-bot"].files == ("docs/faq.md", "docs/returns-policy.md")
    assert set(desired.files) == {"docs/faq.md", "docs/returns-policy.md"}
    faq = (EXAMPLE / "docs" / "faq.md").read_bytes()
    assert desired.files["docs/faq.md"].sha256 == hashlib.sha256(faq).hexdigest()
    assert desired.files["docs/faq.md"].size == len(faq)


def test_example_yaml_files_point_editors_at_the_schemas() -> None:
    for path in [EXAMPLE / "assistsync.yaml", *sorted((EXAMPLE / "assistants").glob("*.yaml"))]:
        first = path.read_text().splitlines()[0]
        prefix = "# yaml-language-server: $schema="
        assert first.startswith(prefix), path
        assert (path.parent / first[len(prefix) :]).resolve().is_file(), first


def test_loading_never_writes(tmp_path: Path) -> None:
    project = shutil.copytree(EXAMPLE, tmp_path / "p")
    before = {p: p.stat().st_mtime_ns for p in project.rglob("*")}
    load_project(project, env={})
    assert {p: p.stat().st_mtime_ns for p in project.rglob("*")} == before


def test_reserved_metadata_key_is_the_tag() -> None:
    assert RESERVED_METADATA_KEY == TAG_KEY


def test_project_file_itself_may_be_given(tmp_path: Path) -> None:
    make(tmp_path, {"assistants/a.yaml": bot()})
    assert load_project(tmp_path / "assistsync.yaml", env={}).root == tmp_path.resolve()


def test_pure_python_parser_gives_the_same_project(monkeypatch: pytest.MonkeyPatch) -> None:
    fast = load_project(EXAMPLE, env={})
    monkeypatch.setattr(source_module, "_default_yaml", lambda: YAML(typ="safe", pure=True))
    assert load_project(EXAMPLE, env={}) == fast


# -- the project file ------------------------------------------------------------------------


def test_no_project_file(tmp_path: Path) -> None:
    with pytest.raises(
        AssistsyncError, match=r"no assistsync\.yaml in .*: run assistsync in a project directory"
    ):
        load_project(tmp_path, env={})


def test_manifest_glob_matching_nothing_is_an_error(tmp_path: Path) -> None:
    make(
        tmp_path,
        {
            "assistsync.yaml": "manifests:\n  - assistants/*.yaml\n  - other/*.yml\n",
            "assistants/a.yaml": bot(),
        },
    )
    assert one_error(tmp_path) == (
        "assistsync.yaml:3:5: manifest glob 'other/*.yml' matches no file"
    )


def test_default_glob_matching_nothing_says_so(tmp_path: Path) -> None:
    make(tmp_path, {"assistsync.yaml": "lock: state.lock\n"})
    assert "no manifests: the default glob 'assistants/**/*.yaml'" in one_error(tmp_path)


def test_yml_files_beside_a_yaml_glob_matching_nothing_are_mentioned(tmp_path: Path) -> None:
    make(
        tmp_path,
        {
            "assistsync.yaml": "lock: state.lock\n",
            "assistants/a.yml": bot(),
            "assistants/t/b.yml": "",
        },
    )
    assert one_error(tmp_path) == (
        "assistsync.yaml:1:1: no manifests: the default glob 'assistants/**/*.yaml' matches no "
        "file; add manifests there or list globs under 'manifests:'; 'assistants/**/*.yml' "
        "matches 2 files (assistants/a.yml, assistants/t/b.yml): rename them to .yaml or list "
        "that glob under 'manifests:'"
    )
    make(tmp_path, {"assistsync.yaml": "manifests: [assistants/*.yaml]\n"})
    assert one_error(tmp_path) == (
        "assistsync.yaml:1:13: manifest glob 'assistants/*.yaml' matches no file; "
        "'assistants/*.yml' matches 1 file (assistants/a.yml): rename it to .yaml or add that "
        "glob to 'manifests:'"
    )


def test_default_glob_is_recursive(tmp_path: Path) -> None:
    make(tmp_path, {"assistsync.yaml": "", "assistants/team/deep/a.yaml": bot()})
    project = load_project(tmp_path, env={})
    assert project.config.manifests == ["assistants/**/*.yaml"]
    assert [project.relative(p) for p in project.manifest_paths] == ["assistants/team/deep/a.yaml"]


def test_unknown_config_field_and_escaping_lock(tmp_path: Path) -> None:
    make(tmp_path, {"assistsync.yaml": "manifest:\n  - a/*.yaml\n"})
    assert one_error(tmp_path) == (
        "assistsync.yaml:1:1: unknown field 'manifest'; did you mean 'manifests'?"
    )
    make(tmp_path, {"assistsync.yaml": CONFIG + "lock: ../x.lock\n", "assistants/a.yaml": bot()})
    assert one_error(tmp_path) == (
        "assistsync.yaml:3:7: lock '../x.lock' leaves the project directory"
    )


def test_errors_say_which_kind_of_file_they_are_in(tmp_path: Path) -> None:
    make(tmp_path, {"assistsync.yaml": "manifest: []\n"})
    with pytest.raises(ManifestError) as info:
        load_project(tmp_path, env={})
    assert str(info.value).endswith("\n1 error in the project file (assistsync.yaml).")
    make(
        tmp_path,
        {
            "assistsync.yaml": "manifests: [a/*.yaml, b/*.yaml]\n",
            "a/x.yaml": "assistants: {}\nx: 1\n",
        },
    )
    with pytest.raises(ManifestError) as info:
        load_project(tmp_path, env={})
    assert str(info.value).endswith(
        "\n2 errors in the project file (assistsync.yaml) and the manifests."
    )
    make(tmp_path, {"assistsync.yaml": "manifests: [a/*.yaml]\n"})
    with pytest.raises(ManifestError) as info:
        load_project(tmp_path, env={})
    assert str(info.value).endswith("\n1 error in the manifests.")


def test_config_glob_may_not_escape(tmp_path: Path) -> None:
    make(tmp_path / "p", {"assistsync.yaml": "manifests:\n  - ../*.yaml\n"})
    assert one_error(tmp_path / "p").endswith(
        "manifest glob '../*.yaml' leaves the project directory"
    )


# -- YAML ----------------------------------------------------------------------------------


def test_yaml_syntax_error_has_the_parsers_position(tmp_path: Path) -> None:
    make(tmp_path, {"assistants/a.yaml": "assistants:\n  bot:\n    name: a: b\n"})
    assert one_error(tmp_path).startswith(
        "assistants/a.yaml:3:12: YAML syntax error: mapping values are not allowed"
    )


def test_duplicate_yaml_key(tmp_path: Path) -> None:
    make(tmp_path, {"assistants/a.yaml": bot() + "    name: Again\n"})
    assert one_error(tmp_path) == (
        "assistants/a.yaml:6:5: duplicate key 'name' (first defined at line 3:5)"
    )


@pytest.mark.parametrize(
    "text",
    [
        "assistants:\n  bot:\n\tmodel: gpt-4\n",
        "assistants:\n  bot:\n  \tmodel: gpt-4\n",
        "assistants:\n  bot:\n    model: gpt-4\n\tname: x\n",
    ],
)
@pytest.mark.parametrize("pure", [False, True])
def test_tab_indentation_is_named_at_the_tab(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, pure: bool
) -> None:
    if pure:
        monkeypatch.setattr(source_module, "_default_yaml", lambda: YAML(typ="safe", pure=True))
    make(tmp_path, {"assistants/a.yaml": text})
    line = next(i for i, t in enumerate(text.splitlines(), 1) if "\t" in t)
    col = text.splitlines()[line - 1].index("\t") + 1
    assert one_error(tmp_path) == (
        f"assistants/a.yaml:{line}:{col}: tabs are not allowed for indentation in YAML"
    )


def test_a_tab_inside_a_block_scalar_is_text(tmp_path: Path) -> None:
    make(tmp_path, {"assistants/a.yaml": bot(instructions="|\n      a\n      \tb")})
    assert load_project(tmp_path, env={}).desired.assistants["bot"].instructions == "a\n\tb\n"


@pytest.mark.parametrize("pure", [False, True])
@pytest.mark.parametrize(
    ("value", "message"),
    [
        ('"Bot', "the quoted string opened here is never closed"),
        ("'Bot", "the quoted string opened here is never closed"),
        # A bracket may span lines: only one still open at the end of the file is pointed at.
        ("[a, b", "the '[' opened here is never closed"),
        ("{a: b", "the '{' opened here is never closed"),
    ],
)
def test_unclosed_quote_points_where_it_opens(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pure: bool, value: str, message: str
) -> None:
    if pure:
        monkeypatch.setattr(source_module, "_default_yaml", lambda: YAML(typ="safe", pure=True))
    rest = "    name: Bot\n" if value[0] in "'\"" else ""
    make(tmp_path, {"assistants/a.yaml": bot(name=None, description=value) + rest})
    assert one_error(tmp_path) == f"assistants/a.yaml:5:18: YAML syntax error: {message}"


def test_manifest_not_utf8_points_at_the_bad_byte(tmp_path: Path) -> None:
    make(tmp_path, {"assistants/a.yaml": b"assistants:\n  bot:\n    name: \xff\n"})
    assert one_error(tmp_path) == (
        "assistants/a.yaml:3:11: not valid UTF-8: byte 0xff cannot be decoded; "
        "save the file as UTF-8"
    )


# -- shape ---------------------------------------------------------------------------------


def test_unknown_field_with_did_you_mean(tmp_path: Path) -> None:
    make(tmp_path, {"assistants/a.yaml": bot(descripton="typo")})
    assert one_error(tmp_path) == (
        "assistants/a.yaml:6:5: unknown field 'descripton'; did you mean 'description'?"
    )


def test_unknown_field_in_a_function_lists_choices(tmp_path: Path) -> None:
    manifest = bot() + (
        "    tools:\n"
        "      - type: function\n"
        "        function:\n"
        "          name: f\n"
        "          zzz: 1\n"
    )
    make(tmp_path, {"assistants/a.yaml": manifest})
    assert one_error(tmp_path) == (
        "assistants/a.yaml:10:11: unknown field 'zzz'; expected one of: "
        "name, description, parameters, parameters_file"
    )


def test_unknown_tool_type(tmp_path: Path) -> None:
    make(tmp_path, {"assistants/a.yaml": bot() + "    tools:\n      - type: retreival\n"})
    assert one_error(tmp_path) == (
        "assistants/a.yaml:7:9: unknown tool type 'retreival'; did you mean 'retrieval'?"
    )


def test_wrong_type(tmp_path: Path) -> None:
    make(tmp_path, {"assistants/a.yaml": bot(metadata="{priority: 1}", files="docs/a.md")})
    assert errors(tmp_path) == [
        "assistants/a.yaml:6:26: metadata value of 'priority' must be a string, not a number "
        "(metadata values are strings: quote it, '1')",
        "assistants/a.yaml:7:12: 'files' must be a list, not a string",
    ]


def test_missing_required_field_points_at_the_assistant(tmp_path: Path) -> None:
    make(
        tmp_path, {"assistants/a.yaml": "assistants:\n  bot:\n    name: Bot\n    instructions: x\n"}
    )
    assert one_error(tmp_path) == "assistants/a.yaml:2:3: missing required field 'model'"


def test_instructions_not_both(tmp_path: Path) -> None:
    make(
        tmp_path,
        {
            "assistants/a.yaml": "assistants:\n  bot:\n    model: m\n"
            "    instructions: x\n    instructions_file: p.md\n",
            "assistants/p.md": "text",
        },
    )
    assert "not both" in one_error(tmp_path)


def test_name_and_instructions_are_optional(tmp_path: Path) -> None:
    make(tmp_path, {"assistants/a.yaml": "assistants:\n  bot:\n    model: m\n"})
    bot = load_project(tmp_path).desired.assistants["bot"]
    assert (bot.name, bot.instructions) == (None, None)


@pytest.mark.parametrize(
    "text", ["", "\n\n", "# all commented out\n#assistants:\n", "---\n", "\ufeff# bom\n"]
)
def test_an_empty_manifest_is_an_error_saying_how_to_declare_none(
    tmp_path: Path, text: str
) -> None:
    make(tmp_path, {"assistants/a.yaml": bot(), "assistants/b.yaml": text})
    assert one_error(tmp_path) == (
        "assistants/b.yaml:1:1: empty manifest: write 'assistants: {}' to declare no assistants "
        "(an empty file is refused so that a truncated manifest cannot destroy its assistants)"
    )


def test_assistants_empty_mapping_declares_none(tmp_path: Path) -> None:
    make(tmp_path, {"assistants/a.yaml": "# nothing here yet\nassistants: {}\n"})
    assert load_project(tmp_path, env={}).desired.assistants == {}


def test_assistants_key_is_required_and_not_null(tmp_path: Path) -> None:
    make(tmp_path, {"assistants/a.yaml": "$schema: ../schemas/manifest.schema.json\n"})
    assert one_error(tmp_path) == (
        "assistants/a.yaml:1:1: missing required field 'assistants' "
        "(write 'assistants: {}' to declare no assistants)"
    )
    make(tmp_path, {"assistants/a.yaml": "assistants:\n"})
    assert one_error(tmp_path) == (
        "assistants/a.yaml:1:12: 'assistants' must be a mapping, not null "
        "(write 'assistants: {}' to declare no assistants)"
    )


def test_a_number_as_a_key_says_to_quote_it(tmp_path: Path) -> None:
    manifest = "assistants:\n  123:\n    model: m\n  1.5:\n    model: m\n  true:\n    model: m\n"
    make(tmp_path, {"assistants/a.yaml": manifest + bot().removeprefix("assistants:\n")})
    make(tmp_path, {"assistants/b.yaml": bot(metadata="{7: x}").replace("bot:", "other:")})
    assert errors(tmp_path) == [
        "assistants/a.yaml:2:3: assistant key 123 must be a string, not a number (quote it: '123')",
        "assistants/a.yaml:4:3: assistant key 1.5 must be a string, not a number "
        "(quote it to make it a string)",
        "assistants/a.yaml:6:3: assistant key True must be a string, not a boolean "
        "(quote it to make it a string)",
        "assistants/b.yaml:6:16: key 7 must be a string, not a number (quote it: '7')",
    ]


def test_locating_a_key_error_never_raises() -> None:
    data, _ = source_module.read_yaml("assistants:\n  1: {}\n", env={})
    assert messages_module.locate(data, ("assistants", 1, "[key]"), "string_type", 1) == (2, 3)
    unhashable = ("assistants", 1, "[key]"), "string_type", [1]
    assert messages_module.locate(data, *unhashable) == (2, 3)


def test_invalid_assistant_key(tmp_path: Path) -> None:
    manifest = bot().replace("  bot:", "  Order Helper:")
    make(tmp_path, {"assistants/a.yaml": manifest})
    assert one_error(tmp_path).startswith(
        "assistants/a.yaml:2:3: invalid assistant key 'Order Helper'"
    )


def test_several_errors_at_once_across_files(tmp_path: Path) -> None:
    make(
        tmp_path,
        {
            "assistants/a.yaml": bot(colour="red", instructions_file="missing.md"),
            "assistants/b.yaml": "assistants:\n  Bad: {}\n  ok:\n    name: m\n",
        },
    )
    found = errors(tmp_path)
    assert len(found) >= 4
    assert any(f.startswith("assistants/a.yaml:6:5: unknown field 'colour'") for f in found)
    assert any(f.startswith("assistants/b.yaml:2:3: invalid assistant key 'Bad'") for f in found)
    assert "assistants/b.yaml:3:3: missing required field 'model'" in found


def test_valid_assistants_beside_a_broken_one_are_still_checked(tmp_path: Path) -> None:
    manifest = bot(files="[nothing/*.md]") + "  broken:\n    name: 5\n"
    make(tmp_path, {"assistants/a.yaml": manifest})
    found = errors(tmp_path)
    assert "assistants/a.yaml:6:13: file 'nothing/*.md' matches no file" in found
    assert "assistants/a.yaml:7:3: missing required field 'model'" in found


def test_duplicate_assistant_key_across_files(tmp_path: Path) -> None:
    make(tmp_path, {"assistants/a.yaml": bot(), "assistants/b.yaml": "\n" + bot()})
    assert one_error(tmp_path) == (
        "assistants/b.yaml:3:3: duplicate assistant key 'bot': "
        "already declared at assistants/a.yaml:2:3"
    )


# -- environment variables -----------------------------------------------------------------


def test_env_vars(tmp_path: Path) -> None:
    make(tmp_path, {"assistants/a.yaml": bot(model="${MODEL}", description="'cost $${X} ${A}'")})
    desired = load_project(tmp_path, env={"MODEL": "gpt-4", "A": "b"}).desired
    assert desired.assistants["bot"].model == "gpt-4"
    assert desired.assistants["bot"].description == "cost ${X} b"


def test_unset_env_var_names_it(tmp_path: Path) -> None:
    make(
        tmp_path,
        {
            "assistants/a.yaml": bot(
                model="${MODEL}", instructions=None, instructions_file="${DIR}/p.md"
            )
        },
    )
    assert errors(tmp_path, env={}) == [
        "assistants/a.yaml:4:12: environment variable MODEL is not set",
        "assistants/a.yaml:5:24: environment variable DIR is not set",
    ]


def test_env_defaults_to_the_process_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make(tmp_path, {"assistants/a.yaml": bot(description="${ASSISTSYNC_TEST_DESC}")})
    monkeypatch.setenv("ASSISTSYNC_TEST_DESC", "from env")
    assert load_project(tmp_path).desired.assistants["bot"].description == "from env"


# -- paths ---------------------------------------------------------------------------------


def test_missing_files_are_located(tmp_path: Path) -> None:
    manifest = bot(instructions=None, instructions_file="../prompts/nope.md") + (
        "    tools:\n"
        "      - type: function\n"
        "        function:\n"
        "          name: f\n"
        "          parameters_file: ../functions/nope.json\n"
        "    files:\n"
        "      - ../docs/nope.md\n"
        "      - ../docs/*.pdf\n"
    )
    make(tmp_path, {"assistants/a.yaml": manifest, "docs/a.md": "a"})
    assert errors(tmp_path) == [
        "assistants/a.yaml:5:24: instructions_file '../prompts/nope.md' not found",
        "assistants/a.yaml:10:28: parameters_file '../functions/nope.json' not found",
        "assistants/a.yaml:12:9: file '../docs/nope.md' not found",
        "assistants/a.yaml:13:9: file '../docs/*.pdf' matches no file",
    ]


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("../../etc/passwd", "file '../../etc/passwd' leaves the project directory"),
        ("/etc/passwd", "file '/etc/passwd' is absolute"),
        ("../../*", "file '../../*' leaves the project directory"),
        ("C:/x.md", "file 'C:/x.md' is absolute"),
    ],
)
def test_paths_may_not_leave_the_project(tmp_path: Path, entry: str, message: str) -> None:
    make(tmp_path, {"assistants/a.yaml": bot(files=f"['{entry}']")})
    assert one_error(tmp_path).startswith(f"assistants/a.yaml:6:13: {message}")


def test_symlinks_out_of_the_project_are_rejected(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.md").write_text("secret")
    project = make(
        tmp_path / "p",
        {
            "assistants/a.yaml": bot(
                instructions=None,
                instructions_file="../docs/link.md",
                files="['../docs/*.md', '../dirlink/secret.md']",
            ),
            "docs/ok.md": "ok",
        },
    )
    (project / "docs" / "link.md").symlink_to(outside / "secret.md")
    (project / "dirlink").symlink_to(outside)
    found = errors(project)
    assert found == [
        "assistants/a.yaml:5:24: instructions_file '../docs/link.md' is a symlink to "
        "../outside/secret.md, outside the project directory",
        "assistants/a.yaml:6:13: file '../docs/link.md' is a symlink to ../outside/secret.md, "
        "outside the project directory",
        "assistants/a.yaml:6:29: file '../dirlink/secret.md' is a symlink to "
        "../outside/secret.md, outside the project directory",
    ]
    # Paths in messages are relative to the project, never absolute.
    assert not any(str(tmp_path) in line for line in found)


def test_symlinks_inside_the_project_are_fine(tmp_path: Path) -> None:
    project = make(tmp_path, {"assistants/a.yaml": bot(files="[../docs/link.md]"), "d/x.md": "x"})
    (project / "docs").mkdir()
    (project / "docs" / "link.md").symlink_to(project / "d" / "x.md")
    desired = load_project(project, env={}).desired
    assert desired.assistants["bot"].files == ("docs/link.md",)
    assert desired.files["docs/link.md"].size == 1


def test_globs_expand_and_dedupe(tmp_path: Path) -> None:
    make(
        tmp_path,
        {
            "assistants/a.yaml": bot(files="['../docs/**/*.md', '../docs/a.md', ../docs/b.txt]"),
            "docs/a.md": "a",
            "docs/sub/deeper/c.md": "c",
            "docs/b.txt": "b",
            "docs/.hidden.md": "h",
        },
    )
    desired = load_project(tmp_path, env={}).desired
    assert desired.assistants["bot"].files == ("docs/a.md", "docs/b.txt", "docs/sub/deeper/c.md")


def test_a_directory_is_not_a_file(tmp_path: Path) -> None:
    make(tmp_path, {"assistants/a.yaml": bot(files="[../docs]"), "docs/a.md": "a"})
    assert one_error(tmp_path) == "assistants/a.yaml:6:13: file '../docs' is a directory"


# -- limits --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "limit"), [("name", 256), ("description", 512), ("instructions", 256_000)]
)
def test_text_limits_at_the_boundary(tmp_path: Path, field: str, limit: int) -> None:
    make(tmp_path, {"assistants/a.yaml": bot(**{field: "x" * limit})})
    assert len(getattr(load_project(tmp_path, env={}).desired.assistants["bot"], field)) == limit
    make(tmp_path, {"assistants/a.yaml": bot(**{field: "x" * (limit + 1)})})
    assert one_error(tmp_path) == (
        f"assistants/a.yaml:{ {'name': 3, 'description': 6, 'instructions': 5}[field] }:"
        f"{7 + len(field)}: '{field}' is {limit + 1:,} characters; "
        f"the API allows at most {limit:,}"
    )


def test_instructions_file_limit_counts_characters_after_reading(tmp_path: Path) -> None:
    manifest = bot(instructions=None, instructions_file="../p.md")
    make(tmp_path, {"assistants/a.yaml": manifest, "p.md": "é" * 256_000})
    assert len(load_project(tmp_path, env={}).desired.assistants["bot"].instructions or "") == (
        256_000
    )
    make(tmp_path, {"p.md": "é" * 256_001})
    assert one_error(tmp_path) == (
        "assistants/a.yaml:5:24: instructions in '../p.md' are 256,001 characters; "
        "the API allows at most 256,000"
    )


def test_instructions_file_must_be_utf8_pointed_at_the_bad_byte_once(tmp_path: Path) -> None:
    manifest = bot(instructions=None, instructions_file="../p.md")
    other = manifest.replace("bot:", "other:")
    text = "ok\nbad é".encode() + b" \xe9 here\n"
    make(tmp_path, {"assistants/a.yaml": manifest, "assistants/b.yaml": other, "p.md": text})
    assert one_error(tmp_path) == (
        "p.md:2:7: not valid UTF-8 (instructions_file of assistants/a.yaml:5:24): "
        "byte 0xe9 cannot be decoded; save the file as UTF-8"
    )


def tools_yaml(count: int, kind: str = "code_interpreter") -> str:
    return "\n" + "".join(f"      - type: {kind}\n" for _ in range(count)).rstrip("\n")


def test_tool_count_limit(tmp_path: Path) -> None:
    make(tmp_path, {"assistants/a.yaml": bot(tools=tools_yaml(128))})
    assert len(load_project(tmp_path, env={}).desired.assistants["bot"].tools) == 128
    make(tmp_path, {"assistants/a.yaml": bot(tools=tools_yaml(129))})
    assert one_error(tmp_path) == "assistants/a.yaml:6:5: 129 tools; the API allows at most 128"


def function_tools(*names: str) -> str:
    return "\n" + "\n".join(
        f"      - type: function\n        function:\n          name: {n}" for n in names
    )


def test_function_names(tmp_path: Path) -> None:
    ok = "a" * 64
    make(tmp_path, {"assistants/a.yaml": bot(tools=function_tools(ok, "B_-9"))})
    assert load_project(tmp_path, env={}).desired.assistants["bot"].tools[0] == {
        "type": "function",
        "function": {"name": ok},
    }
    make(tmp_path, {"assistants/a.yaml": bot(tools=function_tools("a" * 65, "has space"))})
    found = errors(tmp_path)
    assert [f[:34] for f in found] == [
        "assistants/a.yaml:9:17: invalid fu",
        "assistants/a.yaml:12:17: invalid f",
    ]
    make(tmp_path, {"assistants/a.yaml": bot(tools=function_tools("dup", "other", "dup"))})
    assert one_error(tmp_path) == (
        "assistants/a.yaml:15:17: function name 'dup' is already used by this assistant "
        "(at line 9:17); names must be unique per assistant"
    )


def test_parameters_must_be_a_json_object(tmp_path: Path) -> None:
    tools = function_tools("f") + "\n          parameters: [1, 2]"
    make(tmp_path, {"assistants/a.yaml": bot(tools=tools)})
    assert one_error(tmp_path) == (
        "assistants/a.yaml:10:11: 'parameters' must be a mapping, not a list"
    )
    tools = function_tools("f") + "\n          parameters: {since: 2024-01-01}"
    make(tmp_path, {"assistants/a.yaml": bot(tools=tools)})
    assert "parameters must be JSON" in one_error(tmp_path)
    tools = function_tools("f") + "\n          parameters_file: ../f.json"
    make(tmp_path, {"assistants/a.yaml": bot(tools=tools), "f.json": "[1]"})
    assert one_error(tmp_path) == (
        "assistants/a.yaml:10:28: parameters_file '../f.json' must hold a JSON object "
        "(a JSON Schema), not an array"
    )


def test_parameters_file_json_error_points_into_the_json_file(tmp_path: Path) -> None:
    tools = function_tools("f") + "\n          parameters_file: ../functions/f.json"
    bad = '{\n  "type": "object",\n  "properties": {,}\n}\n'
    make(tmp_path, {"assistants/a.yaml": bot(tools=tools), "functions/f.json": bad})
    assert one_error(tmp_path) == (
        "functions/f.json:3:18: invalid JSON (parameters_file of assistants/a.yaml:10:28): "
        "Expecting property name enclosed in double quotes"
    )


def test_parameters_file_must_be_a_valid_json_schema_all_errors_located(tmp_path: Path) -> None:
    tools = function_tools("f") + "\n          parameters_file: ../functions/f.json"
    make(
        tmp_path,
        {
            "assistants/a.yaml": bot(tools=tools),
            "functions/f.json": '{"type":"objekt","required":"q"}',
        },
    )
    assert errors(tmp_path) == [
        "functions/f.json:1:9: invalid JSON Schema (parameters_file of assistants/a.yaml:10:28): "
        "unknown type 'objekt'; did you mean 'object'?",
        "functions/f.json:1:29: invalid JSON Schema (parameters_file of assistants/a.yaml:10:28): "
        "'q' is not of type 'array'",
    ]


def test_parameters_file_errors_are_located_in_a_pretty_printed_file(tmp_path: Path) -> None:
    schema = {
        "type": "object",
        "properties": {
            "when": {"type": ["string", "nul"], "description": "a } and a ] inside text"},
            "count": 5,
            "size": {"type": "integer", "minimum": "1"},
        },
        "required": ["when"],
    }
    text = json.dumps(schema, indent=4)
    tools = function_tools("f") + "\n          parameters_file: ../f.json"
    make(tmp_path, {"assistants/a.yaml": bot(tools=tools), "f.json": text})
    of = "invalid JSON Schema (parameters_file of assistants/a.yaml:10:28)"
    assert errors(tmp_path) == [
        f"f.json:7:17: {of}: unknown type 'nul'; did you mean 'null'?",
        f"f.json:11:18: {of}: 5 is not of type 'object', 'boolean'",
        f"f.json:14:24: {of}: '1' is not of type 'number'",
    ]


def test_inline_parameters_must_be_a_valid_json_schema(tmp_path: Path) -> None:
    tools = function_tools("f") + (
        "\n          parameters:\n            type: objekt\n            required: q"
    )
    make(tmp_path, {"assistants/a.yaml": bot(tools=tools)})
    assert errors(tmp_path) == [
        "assistants/a.yaml:11:19: invalid JSON Schema in parameters: "
        "unknown type 'objekt'; did you mean 'object'?",
        "assistants/a.yaml:12:23: invalid JSON Schema in parameters: 'q' is not of type 'array'",
    ]


def test_a_schema_names_its_own_draft(tmp_path: Path) -> None:
    # Tuple-form items: valid in draft-07 (the default), not in draft 2020-12.
    tuple_items = {"type": "array", "items": [{"type": "string"}]}
    tools = function_tools("f") + f"\n          parameters: {json.dumps(tuple_items)}"
    make(tmp_path, {"assistants/a.yaml": bot(tools=tools)})
    load_project(tmp_path, env={})
    draft = {"$schema": "https://json-schema.org/draft/2020-12/schema", **tuple_items}
    tools = function_tools("f") + f"\n          parameters: {json.dumps(draft)}"
    make(tmp_path, {"assistants/a.yaml": bot(tools=tools)})
    assert "invalid JSON Schema in parameters: [{'type': 'string'}] is not of type" in (
        one_error(tmp_path)
    )


def test_an_invalid_schema_shared_by_a_yaml_alias_is_reported_once(tmp_path: Path) -> None:
    fn = "\n      - type: function\n        function:\n          name: f\n          parameters: "
    manifest = (
        bot(tools=fn + "&p {type: objekt}") + "  other:\n    model: gpt-4\n    tools:" + fn + "*p\n"
    )
    make(tmp_path, {"assistants/a.yaml": manifest})
    assert one_error(tmp_path) == (
        "assistants/a.yaml:10:33: invalid JSON Schema in parameters: "
        "unknown type 'objekt'; did you mean 'object'?"
    )


def test_a_schema_file_named_twice_is_reported_once(tmp_path: Path) -> None:
    tools = function_tools("f") + "\n          parameters_file: ../f.json"
    other = bot(tools=tools).replace("bot:", "other:")
    make(
        tmp_path,
        {
            "assistants/a.yaml": bot(tools=tools),
            "assistants/b.yaml": other,
            "f.json": '{"type": 1}',
        },
    )
    assert errors(tmp_path) == [
        "f.json:1:10: invalid JSON Schema (parameters_file of assistants/a.yaml:10:28): "
        "1 is not one of ['array', 'boolean', 'integer', 'null', 'number', 'object', 'string']",
    ]


def test_parameters_both_inline_and_file(tmp_path: Path) -> None:
    tools = function_tools("f") + "\n          parameters: {}\n          parameters_file: x.json"
    make(tmp_path, {"assistants/a.yaml": bot(tools=tools)})
    assert one_error(tmp_path) == (
        "assistants/a.yaml:8:9: set either 'parameters' or 'parameters_file', not both"
    )


def test_file_count_limit_applies_after_expansion(tmp_path: Path) -> None:
    docs = {f"docs/{i:02}.md": str(i) for i in range(21)}
    make(tmp_path, {"assistants/a.yaml": bot(files="['../docs/0*.md', '../docs/1*.md']"), **docs})
    assert len(load_project(tmp_path, env={}).desired.assistants["bot"].files) == 20
    make(tmp_path, {"assistants/a.yaml": bot(files="['../docs/*.md']")})
    assert one_error(tmp_path) == (
        "assistants/a.yaml:6:5: 21 files after expanding globs; an assistant may have at most 20"
    )


def test_too_many_file_entries_is_one_error(tmp_path: Path) -> None:
    docs = {f"docs/{i:02}.md": str(i) for i in range(21)}
    entries = ", ".join(f"../{name}" for name in docs)
    make(tmp_path, {"assistants/a.yaml": bot(files=f"[{entries}]"), **docs})
    assert one_error(tmp_path) == (
        "assistants/a.yaml:6:5: 21 file entries; an assistant may have at most 20 files"
    )


def test_file_size_limit(tmp_path: Path) -> None:
    make(tmp_path, {"assistants/a.yaml": bot(files="[../big.bin, ../max.bin]")})
    # Sparse files: the size is what counts, and nothing is read when the limit is exceeded.
    with (tmp_path / "big.bin").open("wb") as f:
        f.truncate(512 * 1024 * 1024 + 1)
    with (tmp_path / "max.bin").open("wb") as f:
        f.truncate(512 * 1024 * 1024)
    assert one_error(tmp_path) == (
        "assistants/a.yaml:6:13: file 'big.bin' is 536,870,913 bytes; "
        "the API accepts files up to 512 MB (536,870,912 bytes)"
    )


def metadata_yaml(pairs: dict[str, str]) -> str:
    return "\n" + "\n".join(f"      {k}: '{v}'" for k, v in pairs.items())


def test_metadata_limits(tmp_path: Path) -> None:
    fifteen = {f"k{i}": "v" for i in range(14)} | {"k" * 64: "v" * 512}
    make(tmp_path, {"assistants/a.yaml": bot(metadata=metadata_yaml(fifteen))})
    assert load_project(tmp_path, env={}).desired.assistants["bot"].metadata == fifteen
    make(tmp_path, {"assistants/a.yaml": bot(metadata=metadata_yaml(fifteen | {"x": "y"}))})
    assert one_error(tmp_path) == (
        "assistants/a.yaml:6:5: 16 metadata pairs; at most 15 are allowed (the API allows 16 "
        "and assistsync reserves one for its 'assistsync_key' tag)"
    )
    bad = {"k" * 65: "v", "ok": "v" * 513, "assistsync_key": "x"}
    make(tmp_path, {"assistants/a.yaml": bot(metadata=metadata_yaml(bad))})
    assert errors(tmp_path) == [
        f"assistants/a.yaml:7:7: metadata key '{'k' * 65}' is 65 characters; "
        "the API allows at most 64",
        "assistants/a.yaml:8:11: metadata value of 'ok' is 513 characters; "
        "the API allows at most 512",
        "assistants/a.yaml:9:7: metadata key 'assistsync_key' is reserved: assistsync sets it "
        "to the assistant's manifest key to recognise the assistants it owns",
    ]


# -- files and hashing -----------------------------------------------------------------------


def test_multi_chunk_file_hash(tmp_path: Path) -> None:
    data = os.urandom(3 * files_module.CHUNK_BYTES + 17)
    make(tmp_path, {"assistants/a.yaml": bot(files="[../big.bin]"), "big.bin": data})
    desired = load_project(tmp_path, env={}).desired
    assert desired.files["big.bin"].sha256 == hashlib.sha256(data).hexdigest()
    assert desired.files["big.bin"].size == len(data)


def test_shared_files_are_hashed_once_and_not_on_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[Path] = []
    real = loader_module.sha256_file

    def counting(path: Path) -> tuple[str, int]:
        calls.append(path)
        return real(path)

    monkeypatch.setattr(loader_module, "sha256_file", counting)
    two = bot(files="[../docs/a.md]") + bot(files="[../docs/a.md]").replace(
        "assistants:\n  bot:", "  other:"
    )
    make(tmp_path, {"assistants/a.yaml": two, "docs/a.md": "a"})
    desired = load_project(tmp_path, env={}).desired
    assert calls == [tmp_path.resolve() / "docs" / "a.md"]
    assert desired.assistants["other"].files == ("docs/a.md",)
    calls.clear()
    make(tmp_path, {"assistants/b.yaml": bot(colour="red").replace("bot:", "third:")})
    errors(tmp_path)
    assert calls == []


# -- property: valid manifests round-trip ------------------------------------------------------

_CHAR = st.characters(codec="utf-8", exclude_categories=("Cs", "Cc", "Cf", "Co", "Cn", "Zl", "Zp"))
_TEXT = st.lists(
    _CHAR | st.sampled_from(["\n", "$", "${", "$${X}", "${Y}", "#", ": ", "- ", "yes", "1"]),
    max_size=20,
).map("".join)
_KEY = st.from_regex(r"\A[a-z0-9][a-z0-9_-]{0,20}\Z")
_FUNCTION = st.fixed_dictionaries(
    {"name": st.from_regex(r"\A[A-Za-z0-9_-]{1,20}\Z")},
    optional={
        "description": _TEXT,
        "parameters": st.fixed_dictionaries(
            {"type": st.just("object")},
            optional={"properties": st.dictionaries(_KEY, st.just({"type": "string"}), max_size=3)},
        ),
    },
)
_TOOL = st.one_of(
    st.just({"type": "retrieval"}),
    st.just({"type": "code_interpreter"}),
    st.builds(lambda f: {"type": "function", "function": f}, _FUNCTION),
)
_ASSISTANT = st.fixed_dictionaries(
    {
        "name": _TEXT,
        "model": _TEXT.filter(bool),
        "instructions": _TEXT,
        "tools": st.lists(_TOOL, max_size=4).filter(
            lambda tools: (
                len({t["function"]["name"] for t in tools if "function" in t})
                == sum("function" in t for t in tools)
            )
        ),
        "metadata": st.dictionaries(
            st.text(_CHAR, min_size=1, max_size=10).filter(lambda k: k != "assistsync_key"),
            _TEXT,
            max_size=5,
        ),
    },
    optional={"description": _TEXT},
)


def _escape(value: object) -> object:
    """What a user writes for a literal value: ``${`` escaped as ``$${``."""
    if isinstance(value, str):
        return value.replace("${", "$${")
    if isinstance(value, dict):
        return {k: _escape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_escape(v) for v in value]
    return value


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(_KEY, _ASSISTANT, min_size=1, max_size=4))
def test_valid_manifests_round_trip(assistants: dict[str, dict[str, object]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make(root, {})
        stream = io.StringIO()
        dumper = YAML(typ="safe", pure=True)
        dumper.default_flow_style = False  # block style, as people write manifests
        dumper.dump({"assistants": _escape(assistants)}, stream)
        (root / "assistants").mkdir()
        (root / "assistants" / "a.yaml").write_text(stream.getvalue(), encoding="utf-8")
        desired = load_project(root, env={}).desired
    assert set(desired.assistants) == set(assistants)
    for key, spec in assistants.items():
        got = desired.assistants[key]
        assert got.name == spec["name"]
        assert got.model == spec["model"]
        assert got.description == spec.get("description")
        assert got.instructions == spec["instructions"]
        assert list(got.tools) == spec["tools"]
        assert got.metadata == spec["metadata"]
        assert got.files == ()


def test_libyaml_parser_is_in_use() -> None:
    import ruamel.yaml.main

    if ruamel.yaml.main.CParser is None:
        pytest.skip("ruamel.yaml.clib is not installed: manifests load with the ~5x slower parser")
    assert source_module._default_yaml().Parser is ruamel.yaml.main.CParser
