"""``assistsync test``: conversation tests of assistants, as files next to the manifests.

- ``assistsync.model.testfile`` — the test-file schema (pydantic; in ``schemas/``);
- :mod:`.loader` — test files -> :class:`~.loader.TestCase` values through the manifest
  machinery (located errors, ``${VAR}``, path rules);
- :mod:`.assertions` — every assertion, evaluated purely against a turn's result;
- :mod:`.runner` — threads, streamed runs and stubbed function calls, tests in parallel;
- :mod:`.copies` — ``--planned``: temporary, tagged copies of the manifests' assistants;
- :mod:`.report` — results as pytest-like text, JUnit XML and JSON.
"""
