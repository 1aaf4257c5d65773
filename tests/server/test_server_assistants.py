"""Assistants: create, read, modify, delete, and cursor pagination."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from server_testkit import checked_client, create_assistant, plain_client

from assistsync.server import ServerHandle, start_server

ASSISTANT_ID = re.compile(r"asst_[A-Za-z0-9]{24}")


def test_create_returns_the_full_assistant_with_defaults(client: httpx.Client) -> None:
    before = int(time.time())
    created = create_assistant(client)
    assert ASSISTANT_ID.fullmatch(created["id"])
    assert created["object"] == "assistant"
    assert before <= created["created_at"] <= int(time.time())
    assert created["model"] == "gpt-4"
    assert created["name"] is None
    assert created["description"] is None
    assert created["instructions"] is None
    assert created["tools"] == []
    assert created["file_ids"] == []
    assert created["metadata"] == {}
    assert created["temperature"] == 1.0
    assert created["top_p"] == 1.0
    assert created["response_format"] == "auto"


def test_create_stores_every_field_as_given(client: httpx.Client) -> None:
    tools = [
        {"type": "code_interpreter"},
        {"type": "retrieval"},
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather for a city",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            },
        },
        {"type": "function", "function": {"name": "no-params_2"}},
    ]
    fields: dict[str, Any] = {
        "name": "Support bot ✓",
        "description": "d" * 512,
        "instructions": "i" * 256_000,
        "tools": tools,
        "metadata": {"k" * 64: "v" * 512, "team": "support"},
        "temperature": 0.2,
        "top_p": 0.9,
        "response_format": {"type": "json_object"},
    }
    created = create_assistant(client, **fields)
    fetched = client.get(f"/assistants/{created['id']}").json()
    assert fetched == created
    for key, value in fields.items():
        assert fetched[key] == value, key


def test_get_unknown_assistant_is_404(client: httpx.Client) -> None:
    response = client.get("/assistants/asst_doesnotexist")
    assert response.status_code == 404
    assert "asst_doesnotexist" in response.json()["error"]["message"]


def test_modify_changes_only_the_given_fields(client: httpx.Client) -> None:
    created = create_assistant(client, name="a", instructions="be brief", metadata={"x": "1"})
    response = client.post(f"/assistants/{created['id']}", json={"name": "b", "model": "gpt-3.5"})
    assert response.status_code == 200
    modified = response.json()
    assert modified["name"] == "b"
    assert modified["model"] == "gpt-3.5"
    assert modified["instructions"] == "be brief"
    assert modified["metadata"] == {"x": "1"}
    assert modified["created_at"] == created["created_at"]
    assert client.get(f"/assistants/{created['id']}").json() == modified


def test_modify_with_nulls_clears_nullable_fields(client: httpx.Client) -> None:
    created = create_assistant(client, name="a", description="d", metadata={"x": "1"})
    modified = client.post(
        f"/assistants/{created['id']}",
        json={"name": None, "description": None, "metadata": None},
    ).json()
    assert modified["name"] is None
    assert modified["description"] is None
    assert modified["metadata"] == {}


def test_modify_empty_body_changes_nothing(client: httpx.Client) -> None:
    created = create_assistant(client, name="same")
    assert client.post(f"/assistants/{created['id']}", json={}).json() == created


def test_modify_unknown_assistant_is_404(client: httpx.Client) -> None:
    response = client.post("/assistants/asst_missing", json={"name": "x"})
    assert response.status_code == 404


def test_delete_then_everything_is_404(client: httpx.Client) -> None:
    created = create_assistant(client)
    response = client.delete(f"/assistants/{created['id']}")
    assert response.status_code == 200
    assert response.json() == {"id": created["id"], "object": "assistant.deleted", "deleted": True}
    assert client.get(f"/assistants/{created['id']}").status_code == 404
    assert client.post(f"/assistants/{created['id']}", json={}).status_code == 404
    assert client.delete(f"/assistants/{created['id']}").status_code == 404
    assert client.get(f"/assistants/{created['id']}/files").status_code == 404
    assert client.get("/assistants").json()["data"] == []


# -- pagination ---------------------------------------------------------------------------------

N = 250


@pytest.fixture(scope="module")
def paged() -> Iterator[tuple[ServerHandle, list[str]]]:
    """One server holding N assistants created in a known order, shared by the read-only
    pagination tests (most of the N share their created_at second, which is the point)."""
    with start_server() as handle, plain_client(handle) as c:
        ids = [
            c.post("/assistants", json={"model": "m", "name": f"n{i}"}).json()["id"]
            for i in range(N)
        ]
        yield handle, ids


@pytest.fixture
def many(paged: tuple[ServerHandle, list[str]]) -> list[str]:
    return paged[1]


@pytest.fixture
def pclient(paged: tuple[ServerHandle, list[str]]) -> Iterator[httpx.Client]:
    with checked_client(paged[0]) as c:
        yield c


def _walk(client: httpx.Client, order: str, limit: int, direction: str) -> list[str]:
    """Every id, following ``after`` (or ``before``, starting from the far end) to the end."""
    seen: list[str] = []
    params: dict[str, str | int] = {"order": order, "limit": limit}
    if direction == "before":
        # Start from the last page: the far end is reached by listing in the other order.
        other = "asc" if order == "desc" else "desc"
        last = client.get("/assistants", params={"order": other, "limit": 1}).json()["data"]
        seen = [last[0]["id"]]
        params["before"] = last[0]["id"]
    pages = 0
    while True:
        page = client.get("/assistants", params=params).json()
        pages += 1
        ids = [a["id"] for a in page["data"]]
        if not ids:
            assert page["first_id"] is None
            assert page["last_id"] is None
            assert page["has_more"] is False
            break
        assert page["first_id"] == ids[0]
        assert page["last_id"] == ids[-1]
        assert len(ids) <= limit
        if direction == "after":
            seen.extend(ids)
            params["after"] = ids[-1]
        else:
            seen[:0] = ids
            params["before"] = ids[0]
        if not page["has_more"]:
            break
    assert pages <= -(-N // limit) + 1
    return seen


@pytest.mark.parametrize("order", ["asc", "desc"])
@pytest.mark.parametrize("direction", ["after", "before"])
def test_pagination_visits_every_assistant_once_in_order(
    pclient: httpx.Client, many: list[str], order: str, direction: str
) -> None:
    expected = many if order == "asc" else many[::-1]
    assert _walk(pclient, order, 100, direction) == expected


def test_pagination_small_pages_and_has_more(pclient: httpx.Client, many: list[str]) -> None:
    first = pclient.get("/assistants", params={"limit": 7, "order": "asc"}).json()
    assert [a["id"] for a in first["data"]] == many[:7]
    assert first["has_more"] is True
    tail = pclient.get("/assistants", params={"limit": 7, "order": "asc", "after": many[-3]}).json()
    assert [a["id"] for a in tail["data"]] == many[-2:]
    assert tail["has_more"] is False


def test_default_page_is_20_newest_first(pclient: httpx.Client, many: list[str]) -> None:
    page = pclient.get("/assistants").json()
    assert [a["id"] for a in page["data"]] == many[::-1][:20]
    assert page["has_more"] is True


def test_after_and_before_together_give_the_window_between(
    pclient: httpx.Client, many: list[str]
) -> None:
    params: dict[str, str | int] = {"order": "asc", "after": many[10], "before": many[20]}
    page = pclient.get("/assistants", params=params).json()
    assert [a["id"] for a in page["data"]] == many[11:20]
    assert page["has_more"] is False


def test_before_pages_towards_the_start(pclient: httpx.Client, many: list[str]) -> None:
    page = pclient.get(
        "/assistants", params={"order": "asc", "before": many[50], "limit": 5}
    ).json()
    assert [a["id"] for a in page["data"]] == many[45:50]
    assert page["has_more"] is True
    page = pclient.get("/assistants", params={"order": "asc", "before": many[3], "limit": 5}).json()
    assert [a["id"] for a in page["data"]] == many[:3]
    assert page["has_more"] is False


def test_cursor_of_a_deleted_assistant_still_pages(client: httpx.Client) -> None:
    ids = [create_assistant(client)["id"] for _ in range(6)]
    assert client.delete(f"/assistants/{ids[2]}").status_code == 200
    page = client.get("/assistants", params={"order": "asc", "limit": 2, "after": ids[2]}).json()
    assert [a["id"] for a in page["data"]] == ids[3:5]
    page = client.get("/assistants", params={"order": "desc", "after": ids[2]}).json()
    assert [a["id"] for a in page["data"]] == ids[:2][::-1]


def test_unknown_cursor_is_400_naming_the_parameter(client: httpx.Client) -> None:
    for param in ("after", "before"):
        response = client.get("/assistants", params={param: "asst_nope"})
        assert response.status_code == 400
        assert response.json()["error"]["param"] == param


def test_empty_list(client: httpx.Client) -> None:
    assert client.get("/assistants").json() == {
        "object": "list",
        "data": [],
        "first_id": None,
        "last_id": None,
        "has_more": False,
    }
