"""``assistsync``: the command group, global options, and the one error handler.

Exit codes (documented in ``--help`` and the README):

* 0 — success (and, with ``plan --detailed-exitcode``, no changes);
* 1 — an error: bad manifest, missing key, API failure, stale plan, a change that failed,
  a failed test;
* 2 — ``plan --detailed-exitcode`` only: changes are present;
* 3 — an internal error (a bug in assistsync);
* 130 — interrupted (Ctrl-C); every change that finished is in the lock.

Heavy modules (pydantic models, httpx, rich) are imported inside commands so that ``--help`` and
``--version`` start fast.
"""

from __future__ import annotations

import gc
import sys
from pathlib import Path

import click

from assistsync import __version__
from assistsync.cli.context import Settings, enable_debug, project_directory
from assistsync.errors import EXIT_BUG, EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK, AssistsyncError

EPILOG = """\b
Examples:
  assistsync --sandbox plan                try it on the embedded server, no account
  assistsync validate                      check the manifests locally
  assistsync plan --out plan.json          save a plan for review
  assistsync apply plan.json               carry out exactly that plan
  assistsync import --all --dry-run        adopt existing assistants (what would be written)
  assistsync --env prod plan               plan one environment of assistsync.yaml
  assistsync --sandbox test --planned      run tests/ against copies of the manifests
  assistsync server --db dev.db            run the Assistants API v1 server locally

\b
Exit codes:
  0    success (plan --detailed-exitcode: no changes)
  1    error: invalid manifest, missing API key, API failure, stale saved plan;
       test: a test failed
  2    plan --detailed-exitcode: changes are present
  3    internal error (a bug: please report it)
  130  interrupted (Ctrl-C); finished changes are recorded in the lock

\b
Environment:
  OPENAI_BASE_URL    the Assistants API v1 endpoint (default https://api.openai.com/v1)
  OPENAI_API_KEY     the key (never printed, logged or stored)
  OPENAI_ORG_ID      sent as OpenAI-Organization when set
  OPENAI_PROJECT_ID  sent as OpenAI-Project when set
  ASSISTSYNC_ENV     the environment to use (as --env NAME)
  NO_COLOR           disables colour
"""


COMMANDS = {
    "validate": "assistsync.cli.validate:validate_command",
    "plan": "assistsync.cli.plan:plan_command",
    "apply": "assistsync.cli.apply:apply_command",
    "import": "assistsync.cli.import_:import_command",
    "test": "assistsync.cli.test:test_command",
    "server": "assistsync.server.command:server_command",
}
"""Every command, by name: where it is defined (``module:attribute``)."""


class _Commands(click.Group):
    """The command group, importing a command's module only when the command is used.

    A run uses one command; building the others (their options, their modules' imports) is
    start-up time spent for nothing. ``--help`` lists them all, and so imports them all.
    """

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        where = COMMANDS.get(cmd_name)
        if where is None:
            return None
        import importlib

        module, _, attribute = where.partition(":")
        command = getattr(importlib.import_module(module), attribute)
        assert isinstance(command, click.Command), where
        return command


@click.group(cls=_Commands, epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "-C",
    "--directory",
    "directory",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=".",
    show_default=True,
    callback=project_directory,
    help="Project directory (the one holding assistsync.yaml).",
)
@click.option(
    "--sandbox",
    is_flag=True,
    help="Use the embedded API server with state in DIR/.assistsync/ (no account or key needed).",
)
@click.option("--no-color", is_flag=True, help="Never colour output (also: NO_COLOR, TERM=dumb).")
@click.option("--debug", is_flag=True, help="Show tracebacks and log every HTTP request.")
@click.option(
    "--env",
    "environment",
    envvar="ASSISTSYNC_ENV",
    default=None,
    metavar="NAME",
    help="The environment of assistsync.yaml to use (also: ASSISTSYNC_ENV).",
)
@click.version_option(__version__, "--version", prog_name="assistsync")
@click.pass_context
def cli(
    ctx: click.Context,
    directory: Path,
    sandbox: bool,
    no_color: bool,
    debug: bool,
    environment: str | None,
) -> None:
    """Keep Assistants API v1 assistants as code: validate, plan and apply YAML manifests."""
    ctx.obj = Settings(
        root=directory,
        sandbox=sandbox,
        no_color=no_color,
        debug=debug,
        environment=environment or None,
    )
    _shown_root.append(directory)
    if debug:
        enable_debug()


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and map every outcome to a documented exit code (see module docstring).

    Everything this handler prints goes through the key's redactor first, tracebacks under
    ``--debug`` included: an exception can carry the key from deep inside the transport.
    """
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    try:
        result = cli.main(args=argv, prog_name="assistsync", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("\nInterrupted.", err=True)
        return EXIT_INTERRUPTED
    except click.ClickException as exc:
        exc.show()
        return EXIT_ERROR
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except AssistsyncError as exc:
        _report(exc, f"Error: {exc.message}", debug)
        return exc.exit_code
    except KeyboardInterrupt:
        click.echo("\nInterrupted; every change that finished is recorded in the lock.", err=True)
        return EXIT_INTERRUPTED
    except Exception as exc:  # the one place that turns a bug into a message
        _report(
            exc,
            f"Error: assistsync hit an internal error ({type(exc).__name__}: {exc}). "
            "This is a bug; re-run with --debug for the traceback and report it.",
            debug,
        )
        return EXIT_BUG
    return int(result) if isinstance(result, int) else EXIT_OK


_shown_root: list[Path] = []
"""The project directory of this invocation, once the group callback has run: error messages
show paths inside it relative to it, wherever in assistsync they were raised."""


def _relative(message: str) -> str:
    """``message`` with the project directory's absolute prefix removed from every path in it.

    Deep modules raise errors naming the absolute paths they work on (the lock, the state
    directory, a saved plan); people read paths relative to the project, as manifest errors
    already print them. Doing it here, in the one handler, keeps every module honest about
    which file it means and every message consistent.
    """
    import os

    if not _shown_root:
        return message
    for root in {_shown_root[-1], _shown_root[-1].resolve()}:
        message = message.replace(f"{root}{os.sep}", "")
    return message


def _report(exc: BaseException, message: str, debug: bool) -> None:
    """Print ``message`` (and under ``--debug`` the traceback first), with the key scrubbed."""
    from assistsync.cli.context import redactor

    redact = redactor()
    if debug:
        import traceback

        click.echo(redact("".join(traceback.format_exception(exc))).rstrip("\n"), err=True)
    click.echo(redact(_relative(message)), err=True)


def entry() -> None:
    """Console-script entry point."""
    # A run builds hundreds of thousands of long-lived objects (YAML nodes, models) and frees
    # almost none before it ends; at the default threshold (700) the cyclic collector walks
    # them again and again, a cost that grows faster than the project. Collections are rarer,
    # not off: the few cycles a run makes are still freed.
    gc.set_threshold(100_000, 50, 100)
    # httpx imports its own command-line program (httpx._main: rich, pygments, click) whenever
    # those are installed, as they are here: a fifth of a plan's start-up, for a program this
    # process never runs. Without it httpx defines a stub ``main`` and nothing else changes.
    sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
    code = main()
    # What the run built is garbage now, and the interpreter's final collection would walk all
    # of it (20-30 ms of a plan at 1,000 assistants) to free memory the process returns to the
    # OS anyway; frozen objects are skipped. (apply freezes earlier, once its plan is made.)
    gc.freeze()
    sys.exit(code)
