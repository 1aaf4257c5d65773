"""The HTTP framework under the embedded server: it knows HTTP, not the Assistants API.

Nothing here imports a domain module (an endpoint group, the database, the run engine); a test
enforces it. What it offers the layers above:

- :mod:`.routing`: :class:`~.routing.Request` / :class:`~.routing.Response` values, request
  bodies (Content-Length or chunked), and a :class:`~.routing.Router` over a table of
  :class:`~.routing.Route` rows. A handler is a plain function ``(Request[C]) -> Response``;
  ``C`` is whatever context object the composition root hands every request (the framework
  never looks inside it).
- :mod:`.http`: the HTTP/1.1 server (keep-alive; quick requests served by one loop thread,
  every other connection by a thread of its own), and per request: faults, auth, routing,
  ``OpenAI-Beta`` check, the handler, the error envelope, and writing the response — a JSON
  value, a file (``sendfile``), or a stream of chunks (``text/event-stream``) written and
  flushed chunk by chunk.
- :mod:`.errors`: :class:`~.errors.ApiError`, the one error type handlers raise.
- :mod:`.validation`: JSON bodies and query strings, and pydantic's errors turned into one 400
  with ``param``.
- :mod:`.faults`: latency, rate limits, injected 5xx and lost responses, request counts.

A handler may block (e.g. a GET that waits briefly for a condition): its connection has a
thread of its own, and no lock of the framework is held while it runs. Only a route marked
``quick`` (:class:`~.routing.Route`) promises not to: it is served by the loop, or in turns.
"""
