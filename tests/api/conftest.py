"""Fixtures: the real embedded server over loopback, and clients that never really sleep."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import pytest

from assistsync.api import ApiClient

API_KEY = "sk-test-do-not-leak-0123456789"
"""The key every test client sends; tests assert it never shows in errors or reprs."""


def server_module() -> Any:
    """``assistsync.server``, or a visible skip while it does not offer ``start_server``."""
    mod = pytest.importorskip("assistsync.server", reason="the embedded server has not landed")
    if not hasattr(mod, "start_server"):
        pytest.skip("assistsync.server has no start_server yet")
    return mod


@pytest.fixture
def server_mod() -> Any:
    """The ``assistsync.server`` module, for tests that start a server of their own."""
    return server_module()


@pytest.fixture
def server() -> Iterator[Any]:
    """A fresh embedded server (empty store, no key check, no faults) for one test."""
    mod = server_module()
    with mod.start_server(port=0, db=None, api_key=None, faults=mod.Faults()) as handle:
        yield handle


@pytest.fixture
def api_key() -> str:
    return API_KEY


@pytest.fixture
def sleeps() -> list[float]:
    """Delays the client asked to sleep (``sleep=sleeps.append``: tests never really wait)."""
    return []


@pytest.fixture
def client(server: Any, sleeps: list[float]) -> Iterator[ApiClient]:
    """A client of ``server`` whose retry delays are recorded in ``sleeps`` instead of slept."""
    with ApiClient(server.base_url, API_KEY, sleep=sleeps.append) as api:
        yield api


@pytest.fixture
def server_process() -> Callable[[int], AbstractContextManager[str]]:
    """Starts the embedded server in a child process: ``with server_process(max_upload) as url``."""
    return _server_process


@contextmanager
def _server_process(max_upload_bytes: int) -> Iterator[str]:
    """The embedded server in a child process, so its memory is not traced with ours.

    Yields the base URL; the child exits when its stdin closes.
    """
    server_module()
    script = textwrap.dedent(
        f"""
        import sys
        from assistsync.server import Faults, start_server
        with start_server(port=0, db=None, api_key=None, faults=Faults(),
                          max_upload_bytes={max_upload_bytes}) as h:
            print(h.base_url, flush=True)
            sys.stdin.read()
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        base_url = proc.stdout.readline().strip()
        assert base_url.startswith("http://"), "the server process did not start"
        yield base_url
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        try:
            proc.wait(timeout=10)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()
