"""Fixtures for the embedded server's tests (helpers live in ``server_testkit``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from openapi_core import OpenAPI
from server_testkit import SPEC, SPEC_MISSING, ServerFactory, checked_client

from assistsync.server import Faults, ServerHandle, start_server


@pytest.fixture(scope="session")
def spec() -> OpenAPI:
    """The spec validator; skips the test (visibly) when the spec is absent."""
    if SPEC is None:
        pytest.skip(SPEC_MISSING)
    return SPEC


@pytest.fixture
def make_server() -> Iterator[ServerFactory]:
    """Start servers with any ``start_server`` arguments; all are stopped after the test."""
    handles: list[ServerHandle] = []

    def make(**kwargs: Any) -> ServerHandle:
        handle = start_server(port=0, **kwargs)
        handles.append(handle)
        return handle

    yield make
    for handle in handles:
        handle.stop()


@pytest.fixture
def server(make_server: ServerFactory) -> ServerHandle:
    """A fresh in-memory server with a 1 MiB upload limit (so limit tests stay small)."""
    return make_server(faults=Faults(), max_upload_bytes=1024 * 1024)


@pytest.fixture
def client(server: ServerHandle) -> Iterator[httpx.Client]:
    """A checked client for the ``server`` fixture."""
    with checked_client(server) as c:
        yield c
