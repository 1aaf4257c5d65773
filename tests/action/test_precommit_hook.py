"""``.pre-commit-hooks.yaml``: the validate hook's metadata, and its entry run for real."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from actionkit import ROOT
from actionproject import BOTS
from ruamel.yaml import YAML


def _hook() -> dict[str, object]:
    hooks = YAML(typ="safe").load((ROOT / ".pre-commit-hooks.yaml").read_text(encoding="utf-8"))
    [hook] = hooks
    assert isinstance(hook, dict)
    return hook


def test_hook_metadata() -> None:
    hook = _hook()
    assert hook["id"] == "assistsync-validate"
    assert hook["language"] == "python"
    assert hook["pass_filenames"] is False
    files = re.compile(str(hook["files"]))
    for path in ("assistsync.yaml", "assistants/a.yml", "functions/f.json", "prompts/p.md"):
        assert files.search(path), path
    for path in ("main.py", "README.rst", "assistsync.lock"):
        assert not files.search(path), path


def test_hook_entry_validates_the_project(tmp_path: Path) -> None:
    (tmp_path / "assistants").mkdir()
    (tmp_path / "assistsync.yaml").write_text("manifests:\n  - assistants/*.yaml\n")
    bots = tmp_path / "assistants" / "bots.yaml"
    bots.write_text(BOTS, encoding="utf-8")
    entry = shlex.split(str(_hook()["entry"]))
    # pre-commit puts the hook's environment on PATH; here that is this interpreter's venv
    entry[0] = shutil.which(entry[0]) or str(Path(sys.executable).parent / entry[0])
    env = {**os.environ, "NO_COLOR": "1"}
    ok = subprocess.run(entry, cwd=tmp_path, capture_output=True, text=True, env=env, check=False)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith("Valid: 2 assistants")
    bots.write_text("assistants:\n  x:\n    modle: 1\n", encoding="utf-8")
    bad = subprocess.run(entry, cwd=tmp_path, capture_output=True, text=True, env=env, check=False)
    assert bad.returncode == 1
    assert "assistants/bots.yaml:3:5:" in bad.stderr
