"""Global settings and the API endpoint: the sandbox server or the configured one."""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from assistsync.errors import ConfigError

if TYPE_CHECKING:
    from assistsync.api import ApiClient

DEFAULT_BASE_URL = "https://api.openai.com/v1"
SANDBOX_KEY = "sk-sandbox"
"""The key sent to the embedded sandbox server, which accepts any bearer token."""


@dataclass(frozen=True)
class Settings:
    """Global options, given before the command or after it."""

    root: Path
    sandbox: bool = False
    no_color: bool = False
    debug: bool = False


def enable_debug() -> None:
    """``--debug``: log every HTTP request and retry to stderr (idempotent)."""
    import logging
    import sys

    logging.basicConfig(level=logging.INFO, format="debug: %(message)s", stream=sys.stderr)


def pass_settings(command: Callable[..., int]) -> Callable[..., int]:
    """Pass the global ``Settings`` to a command, and accept the global options after the
    command name too (``assistsync validate -C infra --no-color``): pre-commit and CI templates
    append arguments. An option given on either side counts; ``-C`` after the command wins."""

    @click.option(
        "-C",
        "--directory",
        "directory",
        type=click.Path(exists=True, file_okay=False, path_type=Path),
        default=None,
        help="Project directory (may also come before the command).",
    )
    @click.option(
        "--sandbox",
        "sandbox",
        is_flag=True,
        help="Use the embedded API server (may also come before the command).",
    )
    @click.option(
        "--no-color",
        "no_color",
        is_flag=True,
        help="Never colour output (also before the command).",
    )
    @click.option(
        "--debug",
        "debug",
        is_flag=True,
        help="Tracebacks and HTTP logging (also before the command).",
    )
    @click.pass_obj
    @functools.wraps(command)
    def wrapper(
        settings: Settings,
        directory: Path | None,
        sandbox: bool,
        no_color: bool,
        debug: bool,
        *args: Any,
        **kwargs: Any,
    ) -> int:
        settings = dataclasses.replace(
            settings,
            root=settings.root if directory is None else directory,
            sandbox=settings.sandbox or sandbox,
            no_color=settings.no_color or no_color,
            debug=settings.debug or debug,
        )
        if debug:
            enable_debug()
        return command(settings, *args, **kwargs)

    return wrapper


@contextmanager
def open_client(settings: Settings) -> Iterator[ApiClient]:
    """An API client for this run: the embedded sandbox server, or ``OPENAI_BASE_URL``.

    The sandbox server runs in-process on a free loopback port with its SQLite database in
    ``DIR/.assistsync/sandbox.db``, so state persists between commands.
    """
    from assistsync.api import ApiClient

    if settings.sandbox:
        from assistsync.lockfile import state_dir
        from assistsync.server import start_server

        db = state_dir(settings.root) / "sandbox.db"
        with (
            start_server(host="127.0.0.1", port=0, db=db) as server,
            ApiClient(server.base_url, SANDBOX_KEY) as client,
        ):
            yield client
        return
    key = os.environ.get("OPENAI_API_KEY", "").strip()
    if not key:
        raise ConfigError(
            "OPENAI_API_KEY is not set. Export the key of your Assistants-compatible server "
            "(and OPENAI_BASE_URL for its address), or use --sandbox to run against the "
            "embedded server."
        )
    base_url = os.environ.get("OPENAI_BASE_URL", "").strip()
    if not base_url:
        base_url = DEFAULT_BASE_URL
        click.echo(
            f"Note: OPENAI_BASE_URL is not set, so assistsync uses {DEFAULT_BASE_URL}, which "
            "retired the Assistants API on 2026-08-26. Point OPENAI_BASE_URL at your "
            "Assistants-compatible server.",
            err=True,
        )
    with ApiClient(
        base_url,
        key,
        organization=os.environ.get("OPENAI_ORG_ID") or None,
        project=os.environ.get("OPENAI_PROJECT_ID") or None,
    ) as client:
        yield client
