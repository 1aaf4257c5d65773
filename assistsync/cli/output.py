"""Terminal output: colour decisions, coloured plans, progress on stderr."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TextIO

import click

from assistsync.cli.context import Settings
from assistsync.render import Line, line_text

STYLES = {"+": "green", "-": "red", "~": "yellow"}
PROGRESS_THRESHOLD = 5
"""Runs with more calls than this show progress on stderr."""


def use_color(settings: Settings, stream: TextIO) -> bool:
    """Colour only on a TTY, never with ``--no-color``, ``NO_COLOR`` or ``TERM=dumb``."""
    if settings.no_color or os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    return stream.isatty()


def echo_lines(settings: Settings, lines: list[Line]) -> None:
    """Print rendered plan lines to stdout, coloured by their symbol when colour is on."""
    color = use_color(settings, sys.stdout)
    out = []
    for line in lines:
        text = line_text(line)
        if color and line.sym == "#":
            text = click.style(text, bold=True)
        elif color and line.sym in STYLES:
            text = click.style(text, fg=STYLES[line.sym])
        out.append(text)
    click.echo("\n".join(out))


@contextmanager
def progress(
    settings: Settings, label: str, total: int
) -> Iterator[Callable[[int, int, str], None]]:
    """A progress callback ``(done, total, address)`` that reports on stderr.

    A rich progress bar on a TTY; in CI logs, one line per tenth of the work. Small runs print
    nothing.
    """
    if total <= PROGRESS_THRESHOLD:
        yield lambda done, total, address: None
        return
    if use_color(settings, sys.stderr):
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[address]}"),
            console=Console(stderr=True),
            transient=True,
        ) as bar:
            task = bar.add_task(label, total=total, address="")

            def update(done: int, total: int, address: str) -> None:
                bar.update(task, completed=done, address=address)

            yield update
        return
    step = max(1, total // 10)

    def log(done: int, total: int, address: str) -> None:
        if done % step == 0 or done == total:
            click.echo(f"{label}: {done}/{total} done", err=True)

    yield log
