"""Bad input never produces a 500 or a hung connection (property test over arbitrary JSON)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from server_testkit import plain_client

from assistsync.server import ServerHandle, start_server

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)
fields = st.sampled_from(
    ["model", "name", "description", "instructions", "tools", "file_ids", "metadata",
     "temperature", "top_p", "response_format", "file_id"]
)  # fmt: skip
tool_like = st.fixed_dictionaries(
    {"type": st.sampled_from(["function", "retrieval", "code_interpreter", "x"])},
    optional={
        "function": st.dictionaries(st.sampled_from(["name", "parameters", "x"]), json_values)
    },
)
bodies = st.one_of(
    json_values,
    st.dictionaries(fields, json_values, max_size=5),
    st.fixed_dictionaries({"model": st.text(max_size=5)}, optional={"tools": st.lists(tool_like)}),
)


@pytest.fixture(scope="module")
def fuzz_target() -> Iterator[tuple[ServerHandle, httpx.Client, str]]:
    with start_server() as handle, plain_client(handle) as client:
        assistant = client.post("/assistants", json={"model": "m"}).json()["id"]
        yield handle, client, assistant


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    body=bodies, target=st.sampled_from(["/assistants", "/assistants/{a}", "/assistants/{a}/files"])
)
def test_arbitrary_json_is_never_a_server_error(
    fuzz_target: tuple[ServerHandle, httpx.Client, str], body: Any, target: str
) -> None:
    _, client, assistant = fuzz_target
    response = client.post(target.format(a=assistant), json=body)
    assert response.status_code in (200, 400, 404), response.text
    assert response.json()


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(raw=st.binary(max_size=200), query=st.text(max_size=30))
def test_arbitrary_bytes_and_queries_are_never_a_server_error(
    fuzz_target: tuple[ServerHandle, httpx.Client, str], raw: bytes, query: str
) -> None:
    _, client, assistant = fuzz_target
    for path in ("/assistants", f"/assistants/{assistant}", "/files"):
        response = client.post(path, content=raw, headers={"content-type": "application/json"})
        assert response.status_code < 500, response.text
        response = client.post(
            "/files", content=raw, headers={"content-type": "multipart/form-data; boundary=b"}
        )
        assert response.status_code < 500, response.text
        response = client.get(path, params={"limit": query, "after": query, "purpose": query})
        assert response.status_code < 500, response.text
