"""``assistsync plan``: show what apply would change."""

from __future__ import annotations

from pathlib import Path

import click

from assistsync.cli.context import Settings, pass_settings
from assistsync.errors import EXIT_CHANGES, EXIT_OK


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
    from assistsync.cli.context import open_client
    from assistsync.cli.output import echo_lines
    from assistsync.cli.saved import save_plan
    from assistsync.cli.stages import compute
    from assistsync.manifest import locate_lock
    from assistsync.render import plan_lines, render_json, render_markdown

    locate_lock(settings.root.resolve())  # a missing or broken assistsync.yaml is said first
    with open_client(settings) as client:
        planned = compute(settings, client)
    plan = planned.plan
    if fmt == "json":
        click.echo(render_json(plan), nl=False)
    elif fmt == "markdown":
        click.echo(render_markdown(plan), nl=False)
    else:
        echo_lines(settings, plan_lines(plan))
    if out is not None:
        save_plan(out, plan)
        if fmt == "text":
            click.echo(f"\nSaved the plan to {out}. To carry it out: assistsync apply {out}")
    if detailed_exitcode and plan.has_changes:
        return EXIT_CHANGES
    return EXIT_OK
