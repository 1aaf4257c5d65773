"""End-to-end fixtures: a fresh embedded server per test, and a project pointed at it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2ekit import Api, Project

from assistsync.server import ServerHandle, start_server


@pytest.fixture
def server() -> Iterator[ServerHandle]:
    with start_server(port=0) as handle:
        yield handle


@pytest.fixture
def api(server: ServerHandle) -> Iterator[Api]:
    client = Api(server.base_url)
    yield client
    client.http.close()


PARAMS = {
    "type": "object",
    "properties": {"order_id": {"type": "string", "description": "The order number"}},
    "required": ["order_id"],
}


@pytest.fixture
def project(tmp_path: Path, server: ServerHandle) -> Project:
    """A two-assistant project with a prompt file, a function schema file and two docs."""
    p = Project(tmp_path / "proj", server)
    p.write("assistsync.yaml", "manifests:\n  - assistants/*.yaml\n")
    p.write(
        "assistants/support.yaml",
        """\
        assistants:
          order-helper:
            name: Order Helper
            model: gpt-4-turbo
            description: Answers order questions
            instructions_file: ../prompts/helper.md
            tools:
              - type: retrieval
              - type: function
                function:
                  name: lookup_order
                  description: Look up an order
                  parameters_file: ../functions/lookup.json
            files:
              - ../docs/faq.md
            metadata:
              team: support
          returns-bot:
            name: Returns Bot
            model: gpt-4-turbo
            instructions: |
              You handle returns politely.
            files:
              - ../docs/*.md
        """,
    )
    p.write("prompts/helper.md", "You help customers with their orders.\nBe brief.\n")
    p.write("functions/lookup.json", json.dumps(PARAMS, indent=2))
    p.write("docs/faq.md", "# FAQ\n\nShipping takes 3 days.\n")
    p.write("docs/returns.md", "# Returns\n\n30 days, no questions asked.\n")
    return p
