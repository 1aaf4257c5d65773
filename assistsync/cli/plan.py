"""``assistsync plan``: show what apply would change."""

from __future__ import annotations

import shlex
from pathlib import Path

import click

from assistsync.cli.context import Settings, pass_settings
from assistsync.errors import EXIT_CHANGES, EXIT_OK


def apply_command_line(settings: Settings, out: Path) -> str:
    """The command that applies a plan saved to ``out``, to copy as it is: it keeps ``-C``
    and ``--sandbox`` (a sandbox plan only applies to the sandbox)."""
    words = ["assistsync"]
    if settings.root != Path():
        words += ["-C", str(settings.root)]
    if settings.sandbox:
        words.append("--sandbox")
    if settings.environment:
        words += ["--env", settings.environment]
    words += ["apply", str(out)]
    return shlex.join(words)


@click.command("plan")
@click.option(
    "--detailed-exitcode",
    is_flag=True,
    help="Exit 0 when there are no changes, 2 when there are, 1 on error.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "markdown", "json"]),
    default="text",
    show_default=True,
    help="text for people, markdown for pull requests, json for scripts (Terraform's shape).",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Save the plan; 'assistsync apply FILE' carries out exactly this plan.",
)
@pass_settings
def plan_command(settings: Settings, detailed_exitcode: bool, fmt: str, out: Path | None) -> int:
    """Compare the manifests with the live assistants and show the changes.

    Reads the live state with the fewest requests the API allows (paged lists of 100 and one
    files list); never changes anything. Changes made outside assistsync since the last apply
    are shown apart, as drift.
    """
    from assistsync import pipeline
    from assistsync.cli.context import open_client
    from assistsync.cli.output import echo_lines
    from assistsync.cli.stages import endpoint
    from assistsync.planfile import save_plan
    from assistsync.render import iter_plan_lines, render_json, render_markdown

    env = settings.environment
    pipeline.lock_path(settings.root, env)  # a missing or broken assistsync.yaml is said first
    with open_client(settings) as client:
        planned = pipeline.plan(
            client, settings.root, endpoint=endpoint(settings, client.base_url), environment=env
        )
    plan = planned.plan
    if out is not None:
        save_plan(out, plan)  # before printing: an unwritable --out fails the command alone
    if fmt == "json":
        click.echo(render_json(plan), nl=False)
    elif fmt == "markdown":
        click.echo(render_markdown(plan), nl=False)
    else:
        echo_lines(settings, iter_plan_lines(plan))
    if out is not None and fmt == "text":
        click.echo(
            f"\nSaved the plan to {out}. To carry it out: {apply_command_line(settings, out)}"
        )
    if detailed_exitcode and plan.has_changes:
        return EXIT_CHANGES
    return EXIT_OK
