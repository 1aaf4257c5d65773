"""``assistsync apply``: make the live assistants match the manifests."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from assistsync.cli.context import Settings, pass_settings
from assistsync.errors import EXIT_ERROR, EXIT_OK, AssistsyncError


@click.command("apply")
@click.option("--auto-approve", is_flag=True, help="Apply without asking (needed without a TTY).")
@click.option(
    "--concurrency",
    type=click.IntRange(1, 64),
    default=8,
    show_default=True,
    help="How many API calls run at once.",
)
@click.argument("planfile", required=False, type=click.Path(dir_okay=False, path_type=Path))
@pass_settings
def apply_command(
    settings: Settings, auto_approve: bool, concurrency: int, planfile: Path | None
) -> int:
    """Create, update and delete assistants and files so the live state matches the manifests.

    Shows the plan and asks for 'yes' on a terminal; without a terminal it needs --auto-approve.
    With PLANFILE (from 'plan --out') it carries out exactly that plan without asking, and
    refuses it when the manifests, the lock or the live state changed since it was made.

    Every successful change is recorded in the lock file at once; a failed change does not stop
    independent ones, and the run then exits 1 listing each failure.
    """
    from assistsync.applier import Applier
    from assistsync.cli.context import open_client
    from assistsync.cli.output import echo_lines, progress
    from assistsync.cli.saved import check_fresh, load_plan
    from assistsync.cli.stages import compute
    from assistsync.lockfile import exclusive, with_lineage, write_lock
    from assistsync.manifest import locate_lock
    from assistsync.render import plan_lines

    saved = load_plan(planfile) if planfile is not None else None
    # Take the one-writer lock first (its path needs only assistsync.yaml), then read the live
    # state while the manifests load: nothing another apply does can slip in between.
    with exclusive(locate_lock(settings.root.resolve())), open_client(settings) as client:
        planned = compute(settings, client)
        plan, project = planned.plan, planned.project
        if saved is not None:
            check_fresh(saved, plan)
            plan = saved
        echo_lines(settings, plan_lines(plan))
        if not plan.has_changes and not plan.lock_only:
            return EXIT_OK
        if saved is None and not auto_approve:
            if not sys.stdin.isatty():
                raise AssistsyncError(
                    "apply needs confirmation: run it in a terminal, or pass --auto-approve "
                    "(for CI), or apply a reviewed plan file with 'assistsync apply FILE'."
                )
            click.echo("\nDo you want to perform these actions?")
            click.echo("  Only 'yes' will be accepted to approve.\n")
            answer = click.prompt("  Enter a value", default="", show_default=False)
            if answer.strip() != "yes":
                click.echo("\nApply cancelled.")
                return EXIT_ERROR
        click.echo("")
        lock_path = project.lock_path
        with progress(settings, "apply", plan.steps) as report:
            result = Applier(
                client,
                plan,
                project.desired,
                with_lineage(planned.lock),
                project.root,
                save=lambda lock: write_lock(lock_path, lock),
                concurrency=concurrency,
                progress=report,
            ).run()
    for failure in result.failures:
        click.echo(f"Error: {failure.address}: {failure.message}", err=True)
    if result.failures:
        n = len(result.failures)
        click.echo(
            f"\nApply failed: {n} change{'s' if n != 1 else ''} did not happen; "
            f"{result.resources()} "
            f"The lock records what succeeded; run apply again to retry the rest.",
            err=True,
        )
        return EXIT_ERROR
    click.echo(result.summary())
    return EXIT_OK
