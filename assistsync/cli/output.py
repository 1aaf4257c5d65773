"""Terminal output: colour decisions, coloured plans, apply's live lines and progress."""

from __future__ import annotations

import itertools
import os
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, TextIO

import click

from assistsync.cli.context import Settings
from assistsync.render import Line, line_text

if TYPE_CHECKING:
    from assistsync.applier import ApplyResult, Event, Failure

STYLES = {"+": "green", "-": "red", "~": "yellow"}
PROGRESS_THRESHOLD = 5
"""Applies with more steps than this show a progress bar on a terminal."""


def use_color(settings: Settings, stream: TextIO) -> bool:
    """Colour only on a TTY, never with ``--no-color``, ``NO_COLOR`` or ``TERM=dumb``."""
    if settings.no_color or os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    return stream.isatty()


CHUNK_LINES = 1024
"""Printed plans go out in writes of this many lines (~80 KB): one write per line would be a
system call per line, one write of the whole plan would hold it all in memory at once."""


def echo_lines(settings: Settings, lines: Iterable[Line]) -> None:
    """Print rendered plan lines to stdout as they come, coloured by their symbol when colour
    is on: each line ends with a newline, written ``CHUNK_LINES`` at a time."""
    text_of: Callable[[Line], str] = _styled if use_color(settings, sys.stdout) else line_text
    source = iter(lines)
    wrote = False
    while chunk := list(itertools.islice(source, CHUNK_LINES)):
        click.echo("\n".join(map(text_of, chunk)))
        wrote = True
    if not wrote:  # no lines at all still prints the one empty line
        click.echo("")


def _styled(line: Line) -> str:
    text = line_text(line)
    if line.sym == "#":
        return click.style(text, bold=True)
    if line.sym in STYLES:
        return click.style(text, fg=STYLES[line.sym])
    return text


def duration(seconds: float) -> str:
    """A duration as Terraform shows one, with tenths under ten seconds: ``0.4s``, ``12s``,
    ``1m5s``."""
    if seconds < 10:
        return f"{seconds:.1f}s"
    whole = round(seconds)
    minutes, rest = divmod(whole, 60)
    return f"{minutes}m{rest}s" if minutes else f"{rest}s"


_STARTING = {
    "create": "Creating...",
    "update": "Modifying...",
    "delete": "Destroying...",
    "upload": "Uploading...",
    "import": "Importing...",
}
_FINISHED = {
    "create": "Creation complete",
    "update": "Modifications complete",
    "delete": "Destruction complete",
    "upload": "Upload complete",
    "import": "Import complete",
}


def event_line(event: Event) -> str | None:
    """Terraform's line for one step of an apply, or ``None`` for steps it does not show
    (lock-only records, failures: those are reported at the end)."""
    if event.verb == "record" or event.phase == "failed":
        return None
    ident = f" [id={event.id}]" if event.id else ""
    if event.phase == "start":
        shown = ident if event.verb in ("update", "delete", "import") else ""
        return f"{event.address}: {_STARTING[event.verb]}{shown}"
    if event.verb == "delete":
        ident = ""
    return f"{event.address}: {_FINISHED[event.verb]} after {duration(event.elapsed)}{ident}"


@contextmanager
def apply_events(settings: Settings, total: int) -> Iterator[Callable[[Event], None]]:
    """An event callback that prints one line per resource as it goes (stdout), and on a
    terminal keeps a progress bar below them as a live summary (stderr, removed at the end)."""
    mutex = threading.Lock()
    # the bar only when both streams are the terminal: lines redirected to a file stay plain
    if total > PROGRESS_THRESHOLD and use_color(settings, sys.stderr) and sys.stdout.isatty():
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            console=Console(stderr=True),
            transient=True,
        ) as bar:
            task = bar.add_task("apply", total=total)

            def live(event: Event) -> None:
                line = event_line(event)
                with mutex:
                    if line is not None:
                        bar.console.print(line, markup=False, highlight=False)
                    bar.update(task, completed=event.done)

            yield live
        return

    def plain(event: Event) -> None:
        line = event_line(event)
        if line is not None:
            with mutex:
                click.echo(line)

    yield plain


GROUP_AT = 3
"""This many failures of one cause are told as one message with the addresses."""


def failure_lines(failures: Sequence[Failure], shown: int = 5) -> list[str]:
    """One ``Error:`` line per failure; failures of one cause (a server gone mid-apply) as one
    message with the count and the addresses in short."""
    by_cause: dict[str, list[Failure]] = {}
    for f in failures:
        by_cause.setdefault(f.cause or f.message, []).append(f)
    out: list[str] = []
    for group in by_cause.values():
        if len(group) < GROUP_AT:
            out += [f"Error: {f.address}: {f.message}" for f in group]
            continue
        addresses = sorted(f.address for f in group)
        more = f" and {len(addresses) - shown} more" if len(addresses) > shown else ""
        out.append(
            f"Error: {len(group)} changes failed the same way: {group[0].message}\n"
            f"  ({', '.join(addresses[:shown])}{more})"
        )
    return out


def outcome_lines(result: ApplyResult) -> list[str]:
    """What to say after an apply that did not complete: failures, then what to do."""
    out = failure_lines(result.failures)
    if result.lock_error is not None:
        todo = (
            "free space"
            if "space" in result.lock_error.reason.lower()
            else "make the lock file writable"
        )
        out.append(f"Error: {result.lock_error.message}")
        out.append(
            f"{result.made} change{'s' if result.made != 1 else ''} made, {result.recorded} "
            f"recorded; {todo} and run apply again (it finds the changes the lock missed by "
            "their tags)."
        )
    elif result.interrupted:
        out.append(
            f"Interrupted: {result.made} change{'s' if result.made != 1 else ''} finished and "
            f"{'are' if result.made != 1 else 'is'} recorded in the lock; {result.not_started} "
            "did not start. Run 'assistsync apply' again to finish the job."
        )
    elif result.failures:
        n = len(result.failures)
        out.append(
            f"\nApply failed: {n} change{'s' if n != 1 else ''} did not happen; "
            f"{result.resources()} The lock records what succeeded; run apply again to retry "
            "the rest."
        )
    return out
