"""``assistsync server``: run the embedded Assistants API v1 server in the foreground."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from assistsync.server.backends import ChatBackend
    from assistsync.server.framework.routing import Route
    from assistsync.server.group import Context, Group

_INTRO = """Run a local Assistants API v1 server (the API is served under /v1).

\b
Point any Assistants v1 client at it, e.g.
  assistsync server --port 8787 --db dev.db
  OPENAI_BASE_URL=http://127.0.0.1:8787/v1 OPENAI_API_KEY=sk-local ...

"""

_AFTER_ENDPOINTS = """\b
* = requires the header 'OpenAI-Beta: assistants=v1'.
Lists take limit (1-100, default 20), order (asc|desc, default desc),
after and before. Every request needs 'Authorization: Bearer <key>' (any
non-empty key, or exactly --api-key when given). Errors use the hosted
API's envelope {"error": {"message", "type", "param", "code"}}; every
response has an x-request-id.

\b
Persistence: without --db everything lives in memory and is gone on exit. With --db FILE,
every object persists in that SQLite file, file contents in the directory FILE.files/
beside it.
"""

_FAULTS = """
\b
Fault injection (all off by default), for testing clients' retries and idempotence:
  --latency-ms N           sleep N ms before handling each request
  --rate-limit-rpm N       allow N requests per minute, spread evenly (N/60 per second);
                           excess requests get 429 with retry-after, retry-after-ms and
                           x-ratelimit-* headers
  --error-rate F           answer a fraction F of requests with 500 or 503
  --lost-response-rate F   for a fraction F of successful POST/DELETE requests, commit the
                           change and then close the connection without any response
  --seed N                 seed the random draws behind the rates (reproducible runs)

One log line per request goes to stderr: METHOD PATH STATUS ms. Stop with Ctrl-C.
"""

_CHAT = """
\b
Runs answered by a real model (default: every model name is answered by 'echo'):
  --chat-url URL           an OpenAI-compatible chat-completions API root (vLLM, Ollama,
                           llama.cpp's server, LiteLLM, LocalAI); runs POST URL/chat/completions
  --chat-key-env NAME      the environment variable holding the backend's key (the key is
                           never a flag, and never logged)
  --model NAME=BACKEND     map an assistant model name to the backend's (repeatable;
                           *=BACKEND for every other name; unmapped names pass through)
  --chat-concurrency N     backend calls in flight at once (more wait their turn)
Each also reads ASSISTSYNC_CHAT_URL, ASSISTSYNC_CHAT_KEY_ENV, ASSISTSYNC_CHAT_MODELS
(comma-separated NAME=BACKEND) and ASSISTSYNC_CHAT_CONCURRENCY, as the --sandbox server does.
"""


def endpoint_help(groups: Sequence[Group]) -> str:
    """The endpoint section of ``--help``, generated from the route table: per group, one line
    per path with its methods (``GET/POST /v1/assistants *``), then the group's notes."""
    width = max(len(group.title) for group in groups) + 2
    lines = ["\b", "Endpoints (as in the OpenAI spec of April 2024, assistants v1):"]
    for group in groups:
        paths: dict[str, list[Route[Context]]] = {}
        for route in group.routes:
            paths.setdefault(route.template, []).append(route)
        title = group.title
        for template, routes in paths.items():
            line = "/".join(r.method for r in routes) + f" {template}"
            if any(r.beta for r in routes):
                line += " *"
            notes = "; ".join(f"{r.method} {r.summary}" for r in routes if r.summary)
            if notes:
                line += f"  ({notes})"
            lines.append(f"  {title:<{width}}{line}")
            title = ""
        for note in group.notes:  # a group with tables only is shown by its notes
            lines.append(f"  {title:<{width}}{note}")
            title = ""
    return "\n".join(lines) + "\n"


class _ServerCommand(click.Command):
    """Builds the endpoint section of its help from the route table, only when asked (so
    ``assistsync --help`` does not import the server)."""

    def get_help(self, ctx: click.Context) -> str:
        if self.help is None:
            from assistsync.server.routes import GROUPS

            self.help = _INTRO + endpoint_help(GROUPS) + _AFTER_ENDPOINTS + _FAULTS + _CHAT
        return super().get_help(ctx)


def _log(line: str) -> None:
    click.echo(line, err=True)


@click.command(
    "server",
    cls=_ServerCommand,
    short_help="Run a local Assistants API v1 server (the API is served under /v1).",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option(
    "--port",
    default=8787,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="TCP port (0 picks a free one).",
)
@click.option(
    "--db",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="SQLite file to persist state in (default: memory only).",
)
@click.option(
    "--latency-ms",
    default=0.0,
    type=click.FloatRange(min=0),
    show_default=True,
    help="Added latency per request, in milliseconds.",
)
@click.option(
    "--rate-limit-rpm",
    default=0,
    type=click.IntRange(min=0),
    show_default=True,
    help="Requests per minute before 429s (0 = no limit).",
)
@click.option(
    "--error-rate",
    default=0.0,
    type=click.FloatRange(0, 1),
    show_default=True,
    help="Fraction of requests answered with 500/503.",
)
@click.option(
    "--lost-response-rate",
    default=0.0,
    type=click.FloatRange(0, 1),
    show_default=True,
    help="Fraction of successful mutations whose response is dropped after committing.",
)
@click.option("--seed", type=int, default=None, help="Seed for the fault rates.")
@click.option(
    "--max-concurrent-runs",
    type=click.IntRange(min=1),
    default=None,
    help="Runs executed at once; more wait queued (default: 4 per CPU core, 4 to 64).",
)
@click.option(
    "--run-expiry-s",
    type=click.IntRange(min=1),
    default=600,
    show_default=True,
    help="Seconds from a run's creation until it expires (expires_at).",
)
@click.option(
    "--api-key",
    default=None,
    envvar="ASSISTSYNC_SERVER_API_KEY",
    help="Require exactly this bearer key (env: ASSISTSYNC_SERVER_API_KEY; default: any).",
)
@click.option(
    "--chat-url",
    default=None,
    envvar="ASSISTSYNC_CHAT_URL",
    metavar="URL",
    help="Answer runs with this chat-completions API root (env: ASSISTSYNC_CHAT_URL).",
)
@click.option(
    "--chat-key-env",
    default=None,
    envvar="ASSISTSYNC_CHAT_KEY_ENV",
    metavar="NAME",
    help="Environment variable holding the chat backend's key (env: ASSISTSYNC_CHAT_KEY_ENV).",
)
@click.option(
    "--model",
    "models",
    multiple=True,
    metavar="NAME=BACKEND_NAME",
    help="Map an assistant model name to the backend's (repeatable; *=NAME is the default).",
)
@click.option(
    "--chat-concurrency",
    type=click.IntRange(min=1),
    default=None,
    envvar="ASSISTSYNC_CHAT_CONCURRENCY",
    metavar="N",
    help="Chat backend calls in flight at once (env: ASSISTSYNC_CHAT_CONCURRENCY; default 8).",
)
def server_command(
    host: str,
    port: int,
    db: Path | None,
    latency_ms: float,
    rate_limit_rpm: int,
    error_rate: float,
    lost_response_rate: float,
    seed: int | None,
    max_concurrent_runs: int | None,
    run_expiry_s: int,
    api_key: str | None,
    chat_url: str | None,
    chat_key_env: str | None,
    models: tuple[str, ...],
    chat_concurrency: int | None,
) -> None:
    from assistsync.server.app import serve_forever  # lazy: keep `assistsync --help` fast
    from assistsync.server.db import DatabaseUnavailable
    from assistsync.server.framework.faults import Faults
    from assistsync.server.routes import GROUPS
    from assistsync.server.runs.endpoints import RunOptions, configured

    faults = Faults(
        latency_ms=latency_ms,
        rate_limit_rpm=rate_limit_rpm,
        error_rate=error_rate,
        lost_response_rate=lost_response_rate,
        seed=seed,
    )
    backend = _chat_backend(chat_url, chat_key_env, models, chat_concurrency)
    try:
        options = RunOptions(
            max_concurrent_runs,
            run_expiry_s,
            models=backend.source if backend is not None else None,
        )
        groups = configured(GROUPS, options)
        serve_forever(host, port, db, api_key or None, faults, _log, groups=groups)
    except DatabaseUnavailable as exc:
        raise click.ClickException(str(exc)) from exc
    except OSError as exc:
        raise click.ClickException(f"cannot serve on {host}:{port}: {exc}") from exc
    finally:
        if backend is not None:
            backend.close()


def _chat_backend(
    url: str | None, key_env: str | None, models: tuple[str, ...], concurrency: int | None
) -> ChatBackend | None:
    """The chat backend the options ask for (None: echo answers runs); a usage error for
    settings that cannot work."""
    import os

    from assistsync.server.backends import ChatBackend, ChatSettings, ChatSettingsError
    from assistsync.server.backends.settings import DEFAULT_CONCURRENCY, ENV_MODELS, parse_models

    if not url:
        if models or key_env:
            raise click.UsageError("--model and --chat-key-env need --chat-url")
        return None
    if not models:
        models = tuple(part for part in os.environ.get(ENV_MODELS, "").split(",") if part.strip())
    try:
        settings = ChatSettings(
            url=url.strip(),
            key_env=key_env or None,
            models=parse_models(models),
            concurrency=concurrency or DEFAULT_CONCURRENCY,
        )
        backend = ChatBackend(settings, log=_log)
    except ChatSettingsError as exc:
        raise click.UsageError(str(exc)) from None
    mapped = ", ".join(f"{name} -> {to}" for name, to in settings.models) or "names as given"
    _log(
        f"assistsync server: runs answered by the chat backend at {settings.shown_url} "
        f"({mapped}; {settings.concurrency} calls at once)"
    )
    return backend
