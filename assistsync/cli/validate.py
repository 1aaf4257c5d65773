"""``assistsync validate``: check the manifests locally, report every error at once."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from assistsync.cli.context import Settings, pass_settings

if TYPE_CHECKING:
    from assistsync.manifest import Project


@click.command("validate")
@pass_settings
def validate_command(settings: Settings) -> int:
    """Check assistsync.yaml and every manifest without calling the API.

    Reports every problem at once as FILE:LINE:COL: message — unknown fields (with a "did you
    mean"), wrong types, missing files, paths leaving the project, duplicate keys across files,
    and every limit the API enforces; then the test files (unknown assistants, functions and
    cited files, bad regexes and schemas). A project with environments is checked in every one
    of them (or in the one --env names): an error that only some environments have says which.
    Exit 0 when valid, 1 otherwise.
    """
    from assistsync.cli.environments import load_every_environment
    from assistsync.testing.loader import load_tests

    projects = load_every_environment(settings)
    project: Project = next(iter(projects.values()))
    suite = load_tests(project)
    n = len(project.desired.assistants)
    f = len(project.desired.files)
    where = ""
    named = [name for name in projects if name]
    if named:
        where = (
            f" (environment {named[0]})"
            if len(named) == 1
            else f" in each of {len(named)} environments ({', '.join(named)})"
        )
    click.echo(
        f"Valid: {n} assistant{'s' if n != 1 else ''} and {f} knowledge file"
        f"{'s' if f != 1 else ''} in {len(project.manifest_paths)} manifest"
        f"{'s' if len(project.manifest_paths) != 1 else ''}{where}."
    )
    if suite.files:
        t, f = len(suite.tests), len(suite.files)
        click.echo(
            f"Valid: {t} test{'s' if t != 1 else ''} in {f} test file{'s' if f != 1 else ''}."
        )
    return 0
