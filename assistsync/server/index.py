"""Endpoint group ``server root``: ``GET /`` and ``GET /v1`` say where the API is.

A client configured with ``http://HOST:PORT`` instead of ``http://HOST:PORT/v1`` (or a person
with a browser) gets a hint instead of a bare 404. No API key is needed to read it.
"""

from __future__ import annotations

from assistsync.server.common import plain
from assistsync.server.framework.routing import Request, Response, Route
from assistsync.server.group import Context, Group

API_PREFIX = "/v1"


def _where(request: Request[Context]) -> Response:
    plain(request)
    host = request.headers.get("host") or "HOST:PORT"
    base = f"http://{host}{API_PREFIX}"
    return Response(
        {
            "object": "assistsync.server",
            "message": (
                f"This is assistsync's Assistants API v1 server. Its API is under {API_PREFIX}: "
                f"point clients at {base} (e.g. OPENAI_BASE_URL={base}), and send "
                "'Authorization: Bearer <key>' and 'OpenAI-Beta: assistants=v1'."
            ),
            "base_url": base,
        }
    )


GROUP = Group(
    title="server root",
    routes=(
        Route("GET", "/", _where, public=True),
        Route("GET", API_PREFIX, _where, public=True),
    ),
    notes=("say where the API is (no key needed); paths missing /v1 get a hint",),
)
