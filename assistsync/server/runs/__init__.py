"""Runs: the engine that executes them, its clock, the model interface and the echo model.

- :mod:`.clock` — real and manual clocks (tests move time instead of sleeping);
- :mod:`.model` — the interface every model backend implements;
- :mod:`.echo` — the built-in ``echo`` model and its documented rules;
- :mod:`.events` — run events and the subscriptions that stream them;
- :mod:`.engine` — the run lifecycle, a bounded worker pool, persistence and expiry.

HTTP handlers call the engine's short transactional methods; only its workers talk to models.
"""
