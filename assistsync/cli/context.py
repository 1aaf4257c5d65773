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
    """Global options, as given before the command."""

    root: Path
    sandbox: bool = False
    no_color: bool = False
    debug: bool = False


def pass_settings(command: Callable[..., int]) -> Callable[..., int]:
    """Pass the global ``Settings`` to a command, and accept ``-C DIR`` after the command name
    too (``assistsync validate -C infra``): pre-commit and other tools append arguments."""

    @click.option(
        "-C",
        "--directory",
        "directory",
        type=click.Path(exists=True, file_okay=False, path_type=Path),
        default=None,
        help="Project directory (may also come before the command).",
    )
    @click.pass_obj
    @functools.wraps(command)
    def wrapper(settings: Settings, directory: Path | None, *args: Any, **kwargs: Any) -> int:
        if directory is not None:
            settings = dataclasses.replace(settings, root=directory)
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
            _sandbox_models() as groups,
            start_server(host="127.0.0.1", port=0, db=db, groups=groups) as server,
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


@contextmanager
def _sandbox_models() -> Iterator[tuple[Any, ...]]:
    """The sandbox server's endpoint groups: runs answered by the chat backend that
    ``ASSISTSYNC_CHAT_URL`` (and ``ASSISTSYNC_CHAT_KEY_ENV``, ``ASSISTSYNC_CHAT_MODELS``,
    ``ASSISTSYNC_CHAT_CONCURRENCY``) name, else by ``echo``. The backend is closed after the
    server stops."""
    from assistsync.server.backends import ChatBackend, ChatSettingsError, from_env
    from assistsync.server.routes import GROUPS
    from assistsync.server.runs.endpoints import RunOptions, configured

    try:
        chat = from_env()
        backend = ChatBackend(chat) if chat is not None else None
    except ChatSettingsError as exc:
        raise ConfigError(f"sandbox chat backend: {exc}") from None
    if backend is None:
        yield tuple(GROUPS)
        return
    try:
        yield configured(GROUPS, RunOptions(models=backend.source))
    finally:
        backend.close()
