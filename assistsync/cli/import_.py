"""``assistsync import``: write manifests from live assistants, record them, tag them."""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING

import click

from assistsync.cli.context import Settings, pass_settings
from assistsync.errors import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK

if TYPE_CHECKING:
    from assistsync.adopt import ImportResult, Target

_PHASES = {"download": "Downloading files", "tag": "Tagging assistants"}
_SHOWN = 20
"""Notes of one kind listed before "and N more"."""


def _pair(
    ctx: click.Context, param: click.Parameter, values: tuple[str, ...]
) -> tuple[tuple[str, str], ...]:
    out = []
    for value in values:
        key, eq, val = value.partition("=")
        if not eq or not key:
            raise click.BadParameter(f"{value!r} is not KEY=VALUE.", ctx, param)
        out.append((key, val))
    return tuple(out)


@contextmanager
def deferred_interrupt() -> Iterator[None]:
    """Hold Ctrl-C back while the import writes the project (files, manifests, lock), then
    act on it: the project is never left with manifests the lock does not match."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if caught:
        raise KeyboardInterrupt


class _Progress:
    """Progress on stderr: a line at every tenth of the way (and at the end)."""

    def __init__(self) -> None:
        self.shown: dict[str, int] = {}

    def __call__(self, phase: str, done: int, total: int) -> None:
        step = max(1, total // 10)
        if done == total or done // step > self.shown.get(phase, 0) // step:
            self.shown[phase] = done
            click.echo(f"{_PHASES.get(phase, phase)}: {done}/{total}", err=True)


@click.command("import")
@click.option("--all", "all_", is_flag=True, help="Import every assistant on the account.")
@click.option(
    "--id", "ids", multiple=True, metavar="ID", help="Import this assistant (repeatable)."
)
@click.option(
    "--name", "names", multiple=True, metavar="GLOB", help="Only assistants whose name matches."
)
@click.option(
    "--metadata",
    "metadata",
    multiple=True,
    metavar="KEY=VALUE",
    callback=_pair,
    help="Only assistants with this metadata pair (repeatable: all must match).",
)
@click.option(
    "--into",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Append every imported assistant to this manifest (default: one file per assistant).",
)
@click.option("--dry-run", is_flag=True, help="Show what would be written; change nothing.")
@click.option("--force", is_flag=True, help="Overwrite files that exist with other content.")
@click.option(
    "--concurrency",
    type=click.IntRange(1, 64),
    default=8,
    show_default=True,
    help="How many downloads or API calls run at once.",
)
@pass_settings
def import_command(
    settings: Settings,
    all_: bool,
    ids: tuple[str, ...],
    names: tuple[str, ...],
    metadata: tuple[tuple[str, str], ...],
    into: Path | None,
    dry_run: bool,
    force: bool,
    concurrency: int,
) -> int:
    """Adopt existing assistants: write their manifests, record them in the lock, tag them.

    Long instructions go to prompts/KEY.md, function schemas to functions/KEY/NAME.json,
    attached files to docs/KEY/ (each file downloaded once, however many assistants share
    it). Keys come from the names (slugified, made unique, reported). Assistants this project
    already manages are skipped; ones tagged by another project are reported and left alone.
    Existing files are never overwritten without --force. The next plan is empty.
    """
    from assistsync.adopt import Adopter, Criteria, Options, load_target, lock_location
    from assistsync.cli.context import open_client
    from assistsync.lockfile import exclusive

    criteria = Criteria(all=all_, ids=ids, names=names, metadata=metadata)
    criteria.check()
    options = Options(into=into, dry_run=dry_run, force=force, concurrency=concurrency)
    env = settings.environment
    lock_file = lock_location(settings.root, env)
    # a dry run writes nothing, not even the one-writer lock in .assistsync/
    writer = nullcontext() if dry_run else exclusive(lock_file)
    with writer, open_client(settings) as client:
        target = load_target(settings.root, env)
        adopter = Adopter(
            client, target, criteria, options, progress=_Progress(), shield=deferred_interrupt
        )
        result = adopter.run()
    return _report(target, result)


def _listed(title: str, lines: list[str], err: bool = False) -> None:
    if not lines:
        return
    click.echo(f"\n{title}", err=err)
    for line in lines[:_SHOWN]:
        click.echo(f"  {line}", err=err)
    if len(lines) > _SHOWN:
        click.echo(f"  ... and {len(lines) - _SHOWN} more", err=err)


def _report(target: Target, result: ImportResult) -> int:
    from assistsync.adopt.choose import label

    choice = result.choice
    verb = "Would import" if result.dry_run else "Imported"
    taken = []
    for t in choice.taken:
        note = f" (key {t.chosen.wanted} was taken)" if t.chosen.renamed else ""
        taken.append(f"+ {t.key}  <- {label(t.live)}{note}")
    if taken:
        click.echo(f"{verb} {len(taken)} assistant{'s' if len(taken) != 1 else ''}:")
        for line in taken:
            click.echo(f"  {line}")
    renamed = [t for t in choice.taken if t.chosen.renamed]
    if renamed:
        click.echo(
            f"\n{len(renamed)} key{'s were' if len(renamed) != 1 else ' was'} made unique with a "
            "suffix (names that slugify alike). Keys are identities: renaming one in a manifest "
            "later replaces its assistant with a new one (see them first with --dry-run)."
        )
    rel = [p.relative_to(target.root).as_posix() for p in result.files]
    if result.dry_run:
        _listed("Would write:", sorted(rel))
        if result.downloads:
            click.echo(
                f"\nWould download {result.downloads} file{'s' if result.downloads != 1 else ''}"
                f" ({result.download_bytes:,} bytes)."
            )
    _listed("Skipped (already managed):", [f"{label(p.live)}: {p.why}" for p in choice.managed])
    _listed("Not taken:", [f"{label(p.live)}: {p.why}" for p in choice.not_taken])
    _listed("Could not import:", [f"{label(p.live)}: {p.why}" for p in choice.refused], err=True)
    _listed("Failed:", result.failures, err=True)
    if result.interrupted:
        click.echo(
            "\nInterrupted: every imported assistant is recorded in the lock; run the same "
            "import again to tag the rest.",
            err=True,
        )
        return EXIT_INTERRUPTED
    if result.dry_run:
        click.echo("\nDry run: nothing was written.")
    elif choice.taken:
        click.echo(
            f"\nImport complete! {len(choice.taken)} imported, {len(rel)} files written, "
            f"{result.downloads} downloaded, {result.tagged} tagged. "
            "Run 'assistsync plan': it shows no changes."
        )
    elif not (choice.managed or choice.not_taken or choice.refused):
        click.echo("No assistant matches.")
    else:
        click.echo("\nNothing to import.")
    if choice.refused or result.failures:
        return EXIT_ERROR
    sys.stdout.flush()
    return EXIT_OK
