"""``assistsync apply``: make the live assistants match the manifests."""

from __future__ import annotations

import contextlib
import gc
import sys
import time
from pathlib import Path

import click

from assistsync.cli.context import Settings, pass_settings
from assistsync.errors import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK, AssistsyncError


def _confirmed() -> bool:
    """Ask for 'yes' on the terminal. End of input (Ctrl-D) is a no; Ctrl-C interrupts."""
    click.echo("\nDo you want to perform these actions?")
    click.echo("  Only 'yes' will be accepted to approve.\n")
    click.echo("  Enter a value: ", nl=False)
    answer = sys.stdin.readline()
    if not answer:
        click.echo("")  # Ctrl-D left the cursor after the prompt
    return answer.strip() == "yes"


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
    refuses it when the manifests, the lock or the live state changed since it was made, or
    when it was made against another endpoint.

    Prints one line per resource as it goes. Every successful change is recorded in the lock
    file at once; a failed change does not stop independent ones, and the run then exits 1
    listing each failure. Ctrl-C lets the changes in flight finish, records them, and exits 130.
    """
    from assistsync import pipeline
    from assistsync.applier import Background, HeldEvents
    from assistsync.cli.context import open_client
    from assistsync.cli.output import apply_events, duration, echo_lines, outcome_lines
    from assistsync.cli.stages import endpoint
    from assistsync.planfile import check_fresh, load_plan
    from assistsync.render import iter_plan_lines

    saved = load_plan(planfile) if planfile is not None else None
    # Take the one-writer lock first (its path needs only assistsync.yaml), then read the live
    # state while the manifests load: nothing another apply does can slip in between.
    env = settings.environment
    with (
        pipeline.writing(settings.root, env) as lock_file,
        open_client(settings) as client,
        contextlib.ExitStack() as running_apply,
    ):
        planned = pipeline.plan(
            client, settings.root, endpoint=endpoint(settings, client.base_url), environment=env
        )
        plan = planned.plan
        if saved is not None:
            plan = check_fresh(saved, plan)
        # What is loaded and planned now lives until the process ends. Frozen, the cyclic
        # collector no longer walks it: not during the apply, and not in the full collection
        # of the interpreter's shutdown, which took 0.3-0.8 s of the wall time of a 1,000-
        # assistant apply (a heap of ~150 MB) after the last line was printed.
        gc.freeze()
        held = HeldEvents()

        def start() -> Background:
            # leaving this block on an error stops the apply and waits for what is in flight
            return running_apply.enter_context(
                pipeline.start_apply(
                    client,
                    plan,
                    lock_file,
                    concurrency=concurrency,
                    events=held,
                    clock=time.monotonic,
                )
            )

        running: Background | None = None
        refused: AssistsyncError | None = None
        if (plan.has_changes or plan.lock_only) and (saved is not None or auto_approve):
            # Approved already: the changes start now, while the plan is printed; their lines
            # are held until it has been, so the output is what it is without the overlap.
            try:
                running = start()
            except AssistsyncError as exc:  # told after the plan, as when it came later
                refused = exc
        try:
            echo_lines(settings, iter_plan_lines(plan))
        except KeyboardInterrupt:
            if running is None:
                raise
            running.interrupt()  # as Ctrl-C during the apply: report what finished
        if not plan.has_changes and not plan.lock_only:
            return EXIT_OK
        if saved is None and not auto_approve:
            if not sys.stdin.isatty():
                raise AssistsyncError(
                    "apply needs confirmation: run it in a terminal, or pass --auto-approve "
                    "(for CI), or apply a reviewed plan file with 'assistsync apply FILE'."
                )
            if not _confirmed():
                click.echo("\nApply cancelled.")
                return EXIT_ERROR
        click.echo("")
        if refused is not None:
            raise refused
        if running is None:
            running = start()
        with apply_events(settings, plan.steps) as events:
            held.release(events)
            result = running.result()
    lines = outcome_lines(result)
    if lines:
        click.echo("\n".join(lines), err=True)
    if result.interrupted:
        return EXIT_INTERRUPTED
    if not result.ok:
        return EXIT_ERROR
    click.echo(f"\n{result.summary()} Elapsed: {duration(result.elapsed)}.")
    return EXIT_OK
