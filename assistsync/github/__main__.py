"""``python -m assistsync.github plan|apply|test``: the entry point ``action.yml`` runs.

Inputs come as options (the action passes them as quoted shell variables, never by expression
interpolation); the API key comes from ``OPENAI_API_KEY`` and the GitHub token from
``GITHUB_TOKEN``, so neither appears in a process list. The exit code is the step's: 0 for a plan
with or without changes (the ``exitcode`` output tells them apart: 0 or 2), 1 for an error.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

import click

from assistsync.errors import EXIT_BUG, AssistsyncError
from assistsync.github.commands import command

_DIR = click.option(
    "--working-directory",
    default=".",
    show_default=True,
    help="The project directory, relative to the workspace.",
)
_ENV = click.option(
    "--environment", default="", help="The environment of assistsync.yaml (empty: none)."
)


@click.group()
def main() -> None:
    """Run assistsync as a GitHub Action step."""


@main.command("plan")
@_DIR
@_ENV
@click.option("--comment", type=click.BOOL, default=True, help="Comment on the pull request.")
def plan_command(working_directory: str, environment: str, comment: bool) -> None:
    """Plan once; comment, summarise and set the step's outputs."""
    from assistsync.github.event import Runner
    from assistsync.github.plan import PlanInputs, run_plan

    inputs = PlanInputs(working_directory, comment, os.environ.get("GITHUB_TOKEN", ""), environment)
    sys.exit(_guard(lambda: run_plan(inputs, Runner.from_env(), click.echo)))


@main.command("apply")
@_DIR
@_ENV
@click.option("--commit-lock", type=click.BOOL, default=False, help="Commit and push the lock.")
def apply_command(working_directory: str, environment: str, commit_lock: bool) -> None:
    """Apply with --auto-approve; summarise, set outputs, commit the lock if asked."""
    from assistsync.github.apply import ApplyInputs, run_apply
    from assistsync.github.event import Runner

    inputs = ApplyInputs(working_directory, commit_lock, environment)
    sys.exit(_guard(lambda: run_apply(inputs, Runner.from_env(), click.echo)))


@main.command("test")
@_DIR
@_ENV
@click.option("--comment", type=click.BOOL, default=True, help="Comment on the pull request.")
@click.option("--planned", type=click.BOOL, default=False, help="Test copies of the manifests.")
def test_command(working_directory: str, environment: str, comment: bool, planned: bool) -> None:
    """Run the conversation tests; comment, summarise, annotate and set the step's outputs."""
    from assistsync.github.event import Runner
    from assistsync.github.test import TestInputs, run_test

    inputs = TestInputs(
        working_directory, comment, os.environ.get("GITHUB_TOKEN", ""), planned, environment
    )
    sys.exit(_guard(lambda: run_test(inputs, Runner.from_env(), click.echo)))


def _guard(run: Callable[[], int]) -> int:
    """Known errors become one ``::error::``; anything else is reported as a bug (exit 3)."""
    try:
        return run()
    except AssistsyncError as exc:
        click.echo(command("error", exc.message, title="assistsync"))
        return exc.exit_code
    except Exception as exc:  # the one place this entry point turns a bug into a message
        click.echo(
            command(
                "error",
                f"assistsync hit an internal error ({type(exc).__name__}: {exc}). "
                "This is a bug; please report it.",
                title="assistsync",
            )
        )
        return EXIT_BUG


if __name__ == "__main__":
    main()
