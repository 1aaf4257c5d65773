"""The README's examples are consistent with themselves and with the repository."""

from __future__ import annotations

import posixpath
import re
import subprocess
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _section(title: str) -> str:
    start = README.index(f"\n## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start : end if end >= 0 else None]


def _blocks(text: str, lang: str) -> list[str]:
    return re.findall(rf"^```{lang}\n(.*?)^```$", text, flags=re.S | re.M)


def test_the_project_layout_names_every_file_the_manifest_example_reads() -> None:
    section = _section("A project")
    layout = {
        line.split("#")[0].strip()
        for line in _blocks(section, "")[0].splitlines()[1:]
        if line.split("#")[0].strip() and not line.split("#")[0].strip().endswith("/")
    }
    manifest = next(b for b in _blocks(section, "yaml") if b.startswith("assistants:"))
    [here] = [p for p in layout if p.startswith("assistants/")]
    assert here == "assistants/support.yaml"
    named: list[str] = []
    for assistant in YAML(typ="safe").load(manifest)["assistants"].values():
        named.append(assistant["instructions_file"])
        named += [
            t["function"]["parameters_file"]
            for t in assistant.get("tools", [])
            if "parameters_file" in t.get("function", {})
        ]
        named += assistant.get("files", [])
    resolved = {posixpath.normpath(posixpath.join(posixpath.dirname(here), p)) for p in named}
    assert resolved, "the example names no files"
    assert resolved <= layout, (
        f"named by the manifest, missing from the layout: {resolved - layout}"
    )


def _tags() -> set[str]:
    proc = subprocess.run(
        ["git", "tag", "--list"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    return set(proc.stdout.split()) if proc.returncode == 0 else set()


def test_pre_commit_snippets_promise_no_tag_that_does_not_exist() -> None:
    texts: dict[str, Any] = {
        "README.md": README,
        ".pre-commit-hooks.yaml": (ROOT / ".pre-commit-hooks.yaml").read_text(encoding="utf-8"),
    }
    tags = _tags()
    for name, text in texts.items():
        revs = re.findall(r"^[#\s]*rev:\s*(\S+)", text, flags=re.M)
        assert revs, f"{name} shows no rev:"
        for rev in revs:
            if re.fullmatch(r"v\d+(\.\d+)*|\d+(\.\d+)+", rev):  # a version tag
                assert rev in tags, f"{name} pins rev: {rev}, a tag that does not exist"


def test_global_options_may_follow_the_command_says_the_readme() -> None:
    assert "Global options come before the command" not in README
    assert "may also\nfollow `validate`, `plan` and `apply`" in README
