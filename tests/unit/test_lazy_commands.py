"""A run imports the command it runs, not the others, and not httpx's command-line program."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import click
import pytest

from assistsync.cli.main import COMMANDS, cli

# Runs the console script's entry point, then reports which modules were imported.
REPORT = """
import json, sys
sys.argv = ["assistsync", *json.loads(sys.argv[1])]
from assistsync.__main__ import run
try:
    run()
except SystemExit as exc:
    code = exc.code
print(json.dumps({"code": code, "modules": sorted(k for k, v in sys.modules.items() if v)}))
"""


def _imported(argv: list[str], cwd: Path) -> tuple[int, set[str]]:
    proc = subprocess.run(
        [sys.executable, "-c", REPORT, json.dumps(argv)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=60,
        check=False,
    )
    report = json.loads(proc.stdout.splitlines()[-1])
    return report["code"], set(report["modules"])


def test_every_command_is_found_under_its_own_name() -> None:
    with cli.make_context("assistsync", [], resilient_parsing=True) as ctx:
        assert cli.list_commands(ctx) == sorted(COMMANDS)
        for name in COMMANDS:
            command = cli.get_command(ctx, name)
            assert isinstance(command, click.Command)
            assert command.name == name
        assert cli.get_command(ctx, "nope") is None


def test_validate_imports_neither_the_other_commands_nor_httpxs_program(tmp_path: Path) -> None:
    (tmp_path / "assistsync.yaml").write_text("manifests:\n  - assistants.yaml\n")
    (tmp_path / "assistants.yaml").write_text(
        "assistants:\n  helper:\n    name: Helper\n    model: gpt-4-turbo\n"
    )
    code, modules = _imported(["validate"], tmp_path)
    assert code == 0
    assert "assistsync.cli.validate" in modules
    others = {"assistsync.cli.plan", "assistsync.cli.apply", "assistsync.cli.import_"}
    others |= {"assistsync.cli.test", "assistsync.server.command"}
    assert not modules & others
    # validate only loads: neither the HTTP side (httpx, TLS, the client) nor httpx's CLI
    assert not {"httpx", "ssl", "assistsync.api", "assistsync.applier"} & modules
    assert not {"httpx._main", "rich", "pygments"} & modules


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_an_unknown_option_of_each_command_is_reported_by_click(name: str, tmp_path: Path) -> None:
    # the command is found (imported on use) and parses its own options
    code, modules = _imported([name, "--no-such-option"], tmp_path)
    assert code == 1  # a usage error, as every error
    module = COMMANDS[name].partition(":")[0]
    assert module in modules
