"""Fixtures: the embedded Assistants server, a fake GitHub API, a workspace, the action runner."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from actionkit import ActionRunner, FakeGitHub, serving
from actionproject import BOTS, PR, TOKEN, WD, Harness

from assistsync.server import ServerHandle, start_server


@pytest.fixture
def server() -> Iterator[ServerHandle]:
    with start_server(port=0) as handle:
        yield handle


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    fake = FakeGitHub(token=TOKEN)
    with serving(fake.handle) as url:
        fake.url = url
        yield fake


@pytest.fixture
def harness(tmp_path: Path, server: ServerHandle, github: FakeGitHub) -> Harness:
    workspace = tmp_path / "workspace"
    (workspace / WD).mkdir(parents=True)
    temp = tmp_path / "runner-temp"
    temp.mkdir()
    event_path = tmp_path / "event.json"
    runner = ActionRunner(
        workspace=workspace,
        temp=temp,
        token=TOKEN,
        env={
            "GITHUB_EVENT_PATH": str(event_path),
            "GITHUB_REPOSITORY": github.repository,
            "GITHUB_API_URL": github.url,
            "GITHUB_SERVER_URL": "https://github.example",
            "GITHUB_RUN_ID": "4242",
            "GITHUB_SHA": "0" * 40,
            "GITHUB_REF_NAME": "main",
        },
        # The install step is not run (the package is installed in this venv); the steps after
        # it run the same entry point through its output, `python -m assistsync.github`.
        skip={"install": {"python": sys.executable}},
    )
    h = Harness(workspace, runner, github, server, event_path)
    h.event(
        "pull_request",
        {"number": PR, "pull_request": {"number": PR, "head": {"sha": "abcdef1" + "0" * 33}}},
    )
    h.write("assistsync.yaml", "manifests:\n  - assistants/*.yaml\n")
    h.write("assistants/bots.yaml", BOTS)
    return h
