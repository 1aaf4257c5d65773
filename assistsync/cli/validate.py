"""``assistsync validate``: check the manifests locally, report every error at once."""

from __future__ import annotations

import click

from assistsync.cli.context import Settings, pass_settings


@click.command("validate")
@pass_settings
def validate_command(settings: Settings) -> int:
    """Check assistsync.yaml and every manifest without calling the API.

    Reports every problem at once as FILE:LINE:COL: message — unknown fields (with a "did you
    mean"), wrong types, missing files, paths leaving the project, duplicate keys across files,
    and every limit the API enforces; then the test files (unknown assistants, functions and
    cited files, bad regexes and schemas). Exit 0 when valid, 1 otherwise.
    """
    from assistsync.cli.stages import load
    from assistsync.testing.loader import load_tests

    project = load(settings)
    suite = load_tests(project)
    n = len(project.desired.assistants)
    f = len(project.desired.files)
    click.echo(
        f"Valid: {n} assistant{'s' if n != 1 else ''} and {f} knowledge file"
        f"{'s' if f != 1 else ''} in {len(project.manifest_paths)} manifest"
        f"{'s' if len(project.manifest_paths) != 1 else ''}."
    )
    if suite.files:
        t, f = len(suite.tests), len(suite.files)
        click.echo(
            f"Valid: {t} test{'s' if t != 1 else ''} in {f} test file{'s' if f != 1 else ''}."
        )
    return 0
