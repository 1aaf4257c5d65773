"""Endpoint group ``runs``: runs and run steps, and the engine that executes them.

The engine side (no HTTP in it; a test enforces this):

- :mod:`.clock` — real and manual clocks (tests move time instead of sleeping);
- :mod:`.model` — the interface every model backend implements (config + conversation in,
  a stream of text deltas, tool calls, usage or a failure out);
- :mod:`.echo` — the built-in ``echo`` model and its documented rules;
- :mod:`.events` — run events and the subscriptions that stream them;
- :mod:`.ports` — what the engine needs from the threads and messages groups;
- :mod:`.engine` — the run lifecycle, a bounded worker pool, persistence, expiry, restarts.

The HTTP side: :mod:`.requests` (request bodies, effective run settings), :mod:`.conversation`
(the ports over the server's threads and messages groups) and :mod:`.endpoints` (handlers,
server-sent events, the :data:`~.endpoints.GROUP`). Handlers call the engine's short
transactional methods; only its workers talk to models.
"""
