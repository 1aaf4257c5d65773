"""The project the action tests work on (in ``infra/`` of a workspace) and its harness."""

from __future__ import annotations

import json
import subprocess
import textwrap
from dataclasses import dataclass
from pathlib import Path

from actionkit import ActionRun, ActionRunner, FakeGitHub

from assistsync.server import ServerHandle

API_KEY = "sk-action-secret-0123456789abcdef"
TOKEN = "ghs_fake_token_for_tests"
PR = 7
WD = "infra"
MARKER = f"<!-- assistsync plan: {WD} -->"

BOTS = """\
assistants:
  triage-bot:
    name: Triage Bot
    model: gpt-4-turbo
    instructions: |
      Sort incoming tickets.
      Be brief.
  returns-bot:
    name: Returns Bot
    model: gpt-4-turbo
    instructions: You handle returns politely.
"""


@dataclass
class Harness:
    """A workspace with a project in ``infra/``, the runner, and the fakes it talks to."""

    workspace: Path
    runner: ActionRunner
    github: FakeGitHub
    server: ServerHandle
    event_path: Path

    def write(self, rel: str, text: str) -> Path:
        path = self.workspace / WD / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return path

    def event(self, name: str, payload: dict[str, object]) -> None:
        self.event_path.write_text(json.dumps(payload), encoding="utf-8")
        self.runner.env["GITHUB_EVENT_NAME"] = name

    def run(self, **inputs: str) -> ActionRun:
        given = {
            "working-directory": WD,
            "openai-api-key": API_KEY,
            "openai-base-url": self.server.base_url,
        }
        given.update({k.replace("_", "-"): v for k, v in inputs.items()})
        result = self.runner.run(given)
        for line in result.log.splitlines():
            if API_KEY in line:
                assert line == f"::add-mask::{API_KEY}", "the API key leaked into the log"
        assert API_KEY not in result.summary
        assert "Traceback" not in result.log, result.log
        return result

    def git(self, *args: str, cwd: Path | None = None) -> str:
        return subprocess.run(
            ["git", *args],
            cwd=cwd or self.workspace,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
