"""``assistsync server``: run the embedded Assistants API v1 server in the foreground."""

from __future__ import annotations

from pathlib import Path

import click

_HELP = """Run a local Assistants API v1 server (the API is served under /v1).

\b
Point any Assistants v1 client at it, e.g.
  assistsync server --port 8787 --db dev.db
  OPENAI_BASE_URL=http://127.0.0.1:8787/v1 OPENAI_API_KEY=sk-local ...

\b
Endpoints (as in the OpenAI spec of April 2024, assistants v1):
  assistants       GET/POST /v1/assistants
                   GET/POST/DELETE /v1/assistants/{assistant_id}
  assistant files  GET/POST /v1/assistants/{assistant_id}/files
                   GET/DELETE /v1/assistants/{assistant_id}/files/{file_id}
  files            GET /v1/files[?purpose=...], POST /v1/files (multipart: file, purpose)
                   GET/DELETE /v1/files/{file_id}, GET /v1/files/{file_id}/content
Lists take limit (1-100, default 20), order (asc|desc, default desc), after and before,
except GET /v1/files, which returns every file at once. /v1/assistants* require the header
'OpenAI-Beta: assistants=v1'; every request needs 'Authorization: Bearer <key>' (any
non-empty key, or exactly --api-key when given). Errors use the hosted API's envelope
{"error": {"message", "type", "param", "code"}}; every response has an x-request-id.

\b
Persistence: without --db everything lives in memory and is gone on exit. With --db FILE,
assistants, attachments and files persist in that SQLite file, file contents in the
directory FILE.files/ beside it.

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


def _log(line: str) -> None:
    click.echo(line, err=True)


@click.command("server", help=_HELP)
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
    "--api-key",
    default=None,
    envvar="ASSISTSYNC_SERVER_API_KEY",
    help="Require exactly this bearer key (env: ASSISTSYNC_SERVER_API_KEY; default: any).",
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
    api_key: str | None,
) -> None:
    from assistsync.server.app import serve_forever  # lazy: keep `assistsync --help` fast
    from assistsync.server.faults import Faults

    faults = Faults(
        latency_ms=latency_ms,
        rate_limit_rpm=rate_limit_rpm,
        error_rate=error_rate,
        lost_response_rate=lost_response_rate,
        seed=seed,
    )
    try:
        serve_forever(host, port, db, api_key or None, faults, _log)
    except OSError as exc:
        raise click.ClickException(f"cannot serve on {host}:{port}: {exc}") from exc
