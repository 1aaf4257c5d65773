"""Start-up: ``assistsync --version`` answers before click is imported, with click's own text."""

from __future__ import annotations

import subprocess
import sys

FAST = """
import sys
sys.argv = ["assistsync", "--version"]
from assistsync.__main__ import run
try:
    run()
except SystemExit as exc:
    assert exc.code == 0, exc.code
print("click imported:", "click" in sys.modules)
"""

CLICK = """
import sys
from assistsync.cli.main import main
sys.exit(main(["--version"]))
"""


def _out(code: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    return proc.stdout


def test_version_is_answered_without_click_and_matches_clicks_text() -> None:
    fast = _out(FAST)
    assert fast.endswith("click imported: False\n")
    assert fast.removesuffix("click imported: False\n") == _out(CLICK)


def test_python_dash_m_prints_the_version() -> None:
    assert _out(
        "import runpy, sys; sys.argv = ['x', '--version']; "
        "runpy.run_module('assistsync', run_name='__main__')"
    ) == _out(CLICK)
