"""Global settings and the API endpoint: the sandbox server or the configured one."""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from assistsync.errors import ConfigError

if TYPE_CHECKING:
    import logging

    from assistsync.api import ApiClient, Redactor
    from assistsync.server import ServerHandle
    from assistsync.server.runs.model import ModelSource

DEFAULT_BASE_URL = "https://api.openai.com/v1"
KEY_VARIABLE = "OPENAI_API_KEY"
SANDBOX_KEY = "sk-sandbox"
"""The key sent to the embedded sandbox server, which accepts any bearer token."""


@dataclass(frozen=True)
class Settings:
    """Global options, given before the command or after it."""

    root: Path
    sandbox: bool = False
    no_color: bool = False
    debug: bool = False
    environment: str | None = None
    """The environment chosen with ``--env`` or ``ASSISTSYNC_ENV`` (None: not chosen)."""


def project_directory(
    ctx: click.Context, param: click.Parameter, value: Path | None
) -> Path | None:
    """``-C DIR`` (or the current directory) as a usable project directory, else a usage error.

    Runs after click's own existence check, for what the environment can still get wrong: a
    current directory deleted under the shell, a directory that cannot be listed.
    """
    if value is None:
        return None
    try:
        value.resolve(strict=True)
        with os.scandir(value):
            pass
    except OSError as exc:
        shown = "the current directory" if str(value) == "." else str(value)
        raise click.BadParameter(
            f"cannot use {shown} as the project directory: {exc.strerror or exc}.", ctx, param
        ) from None
    return value


def enable_debug() -> None:
    """``--debug``: log every HTTP request and retry to stderr, the key scrubbed (idempotent)."""
    import logging
    import sys

    root = logging.getLogger()
    if any(isinstance(f, _Scrub) for h in root.handlers for f in h.filters):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("debug: %(message)s"))
    handler.addFilter(_Scrub())
    root.addHandler(handler)
    root.setLevel(logging.INFO)


class _Scrub:
    """A logging filter that removes the key from every record before it is written."""

    def __init__(self) -> None:
        self._redact = redactor()

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self._redact(record.getMessage())
        record.args = None
        if record.exc_info:
            import traceback

            record.exc_text = self._redact("".join(traceback.format_exception(*record.exc_info)))
            record.exc_info = None
        return True


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
        callback=project_directory,
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
    @click.option(
        "--env",
        "environment",
        default=None,
        metavar="NAME",
        help="The environment to use (also before the command, or ASSISTSYNC_ENV).",
    )
    @click.pass_obj
    @functools.wraps(command)
    def wrapper(
        settings: Settings,
        directory: Path | None,
        sandbox: bool,
        no_color: bool,
        debug: bool,
        environment: str | None,
        *args: Any,
        **kwargs: Any,
    ) -> int:
        settings = dataclasses.replace(
            settings,
            root=settings.root if directory is None else directory,
            sandbox=settings.sandbox or sandbox,
            no_color=settings.no_color or no_color,
            debug=settings.debug or debug,
            environment=environment or settings.environment,
        )
        if debug:
            enable_debug()
        return command(settings, *args, **kwargs)

    return wrapper


def api_key() -> str:
    """``OPENAI_API_KEY`` without the surrounding whitespace a ``$(cat key.txt)`` leaves."""
    return os.environ.get(KEY_VARIABLE, "").strip()


def redactor() -> Redactor:
    """Scrubs every form of the configured key from text (see ``assistsync.api.secrets``)."""
    from assistsync.api import Redactor

    return Redactor(os.environ.get(KEY_VARIABLE, ""))


def _check_header_variable(name: str, value: str, what: str) -> None:
    """Refuse a variable that cannot be sent as a header: say which and why, never its value."""
    from assistsync.api import header_problem

    problem = header_problem(value)
    if problem:
        raise ConfigError(
            f"{name} is not a usable {what}: it {problem}. It must be printable ASCII without "
            f"spaces; set it again from where you got it (its value is not shown)."
        )


@contextmanager
def open_client(settings: Settings) -> Iterator[ApiClient]:
    """An API client for this run: the embedded sandbox server, or ``OPENAI_BASE_URL``.

    The sandbox server runs in-process on a free loopback port with its SQLite database in
    ``DIR/.assistsync/sandbox.db``, so state persists between commands. Settings that cannot
    work (a key that cannot be sent, a state directory that cannot be created) are refused
    before any request with a ``ConfigError`` naming them.
    """
    from assistsync.api import ApiClient

    if settings.sandbox:
        with ExitStack() as stack:
            server = stack.enter_context(sandbox(settings.root, environment=settings.environment))
            yield stack.enter_context(ApiClient(server.base_url, SANDBOX_KEY))
        return
    key = api_key()
    if not key:
        raise ConfigError(
            f"{KEY_VARIABLE} is not set. Export the key of your Assistants-compatible server "
            "(and OPENAI_BASE_URL for its address), or use --sandbox to run against the "
            "embedded server."
        )
    _check_header_variable(KEY_VARIABLE, key, "API key")
    organization = os.environ.get("OPENAI_ORG_ID", "").strip() or None
    project = os.environ.get("OPENAI_PROJECT_ID", "").strip() or None
    for name, value in (("OPENAI_ORG_ID", organization), ("OPENAI_PROJECT_ID", project)):
        if value:
            _check_header_variable(name, value, "id")
    base_url = os.environ.get("OPENAI_BASE_URL", "").strip()
    if not base_url:
        base_url = DEFAULT_BASE_URL
        click.echo(
            f"Note: OPENAI_BASE_URL is not set, so assistsync uses {DEFAULT_BASE_URL}, which "
            "retired the Assistants API on 2026-08-26. Point OPENAI_BASE_URL at your "
            "Assistants-compatible server.",
            err=True,
        )
    with ApiClient(base_url, key, organization=organization, project=project) as client:
        yield client


def sandbox_db_name(environment: str | None) -> str:
    """The sandbox database in ``.assistsync/``: one per environment, so each has its state."""
    return f"sandbox.{environment}.db" if environment else "sandbox.db"


@contextmanager
def _sandbox(
    root: Path, groups: tuple[Any, ...], environment: str | None = None
) -> Iterator[ServerHandle]:
    """The embedded server on its state in ``root/.assistsync/``; its setup errors mapped."""
    import sqlite3

    from assistsync.lockfile import STATE_DIR, state_dir
    from assistsync.server import DatabaseUnavailable, start_server

    name = sandbox_db_name(environment)
    where = f"{STATE_DIR}/{name}"
    with ExitStack() as stack:
        try:
            db = state_dir(root) / name
            server = stack.enter_context(
                start_server(host="127.0.0.1", port=0, db=db, groups=groups)
            )
        except OSError as exc:
            raise ConfigError(
                f"cannot keep the sandbox state in {where}: {exc.strerror or exc}. "
                f"Make {STATE_DIR}/ a writable directory of the project (or remove what is "
                "in its place)."
            ) from exc
        except (sqlite3.DatabaseError, DatabaseUnavailable) as exc:
            raise ConfigError(
                f"the sandbox state {where} is not a usable database ({exc}). Remove it to "
                "start the sandbox afresh."
            ) from exc
        yield server


@contextmanager
def sandbox(
    root: Path,
    wrap: Callable[[ModelSource], ModelSource] | None = None,
    environment: str | None = None,
) -> Iterator[ServerHandle]:
    """The embedded server on the project's sandbox state, its runs answered by the chat
    backend that ``ASSISTSYNC_CHAT_URL`` (and ``ASSISTSYNC_CHAT_KEY_ENV``,
    ``ASSISTSYNC_CHAT_MODELS``, ``ASSISTSYNC_CHAT_CONCURRENCY``) name, else by ``echo``.

    ``wrap`` decorates whatever answers runs (``assistsync test --record/--replay`` puts its
    recorder there). Each ``environment`` has a state of its own. Setup errors are mapped to
    :class:`ConfigError`; the backend is closed after the server stops.
    """
    from assistsync.server.backends import ChatBackend, ChatSettingsError, from_env
    from assistsync.server.routes import GROUPS
    from assistsync.server.runs.echo import EchoModel
    from assistsync.server.runs.endpoints import RunOptions, configured

    try:
        chat = from_env()
    except ChatSettingsError as exc:
        raise ConfigError(f"sandbox chat backend: {exc}") from None
    with ExitStack() as stack:
        source: ModelSource | None = None
        if chat is not None:
            backend = ChatBackend(chat)
            stack.callback(backend.close)  # runs after the server below has stopped
            source = backend.source
        if wrap is not None:
            if source is None:
                echo = EchoModel()
                source = lambda name: echo  # noqa: E731 - echo answers every model name
            source = wrap(source)
        groups = tuple(GROUPS) if source is None else configured(GROUPS, RunOptions(models=source))
        yield stack.enter_context(_sandbox(root, groups, environment))
