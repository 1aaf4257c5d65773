"""Every invalid thread or message request: a 400 naming ``param``, and the spec's verdict.

As in ``test_server_validation``: ``spec_rejects`` is True where the published spec expresses
the rule (its request validation must reject the request too), False where only the hosted
API enforced it (the spec accepts it; the server is deliberately stricter).
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from openapi_core import OpenAPI
from server_testkit import Case, assert_rejected, assert_spec_verdict, upload

from assistsync.server import ServerHandle

THREADS = "/threads"
THREAD = "/threads/{thread}"
MESSAGES = "/threads/{thread}/messages"
MESSAGE = "/threads/{thread}/messages/{msg}"
MESSAGE_FILES = "/threads/{thread}/messages/{msg}/files"

U = {"role": "user", "content": "hello"}
TOO_MANY = {f"k{i}": "v" for i in range(17)}


def in_thread(**message: Any) -> dict[str, Any]:
    return {"messages": [{**U, **message}]}


CASES = [
    # -- create thread ----------------------------------------------------------------------------
    Case("thread-unknown-field", "POST", THREADS, "foo", True, json={"foo": 1}),
    Case("thread-metadata-type", "POST", THREADS, "metadata", True, json={"metadata": "x"}),
    Case("thread-metadata-17", "POST", THREADS, "metadata", False, json={"metadata": TOO_MANY}),
    Case(
        "thread-metadata-value", "POST", THREADS, "metadata.a", False, json={"metadata": {"a": 1}}
    ),
    Case("thread-messages-object", "POST", THREADS, "messages", True, json={"messages": U}),
    Case("thread-messages-null", "POST", THREADS, "messages", True, json={"messages": None}),
    Case(
        "thread-message-no-content",
        "POST",
        THREADS,
        "messages[0].content",
        True,
        json={"messages": [{"role": "user"}]},
    ),
    Case(
        "thread-message-role-system",
        "POST",
        THREADS,
        "messages[0].role",
        True,
        json=in_thread(role="system"),
    ),
    Case(
        "thread-message-content-256001",
        "POST",
        THREADS,
        "messages[0].content",
        True,
        json=in_thread(content="c" * 256_001),
    ),
    Case(
        "thread-message-content-empty",
        "POST",
        THREADS,
        "messages[0].content",
        True,
        json=in_thread(content=""),
    ),
    Case(
        "thread-message-extra",
        "POST",
        THREADS,
        "messages[0].foo",
        True,
        json=in_thread(foo=1),
    ),
    Case(
        "thread-message-11-files",
        "POST",
        THREADS,
        "messages[0].file_ids",
        True,
        json=in_thread(file_ids=["{file}"] * 11),
    ),
    Case(
        "thread-message-unknown-file",
        "POST",
        THREADS,
        "messages[0].file_ids[0]",
        False,
        json=in_thread(file_ids=["file-nope"]),
    ),
    Case(
        "thread-message-fine-tune-file",
        "POST",
        THREADS,
        "messages[0].file_ids[0]",
        False,
        json=in_thread(file_ids=["{ft_file}"]),
    ),
    Case(
        "thread-message-duplicate-file",
        "POST",
        THREADS,
        "messages[0].file_ids[1]",
        False,
        json=in_thread(file_ids=["{file}", "{file}"]),
    ),
    Case(
        "thread-message-metadata-17",
        "POST",
        THREADS,
        "messages[0].metadata",
        False,
        json=in_thread(metadata=TOO_MANY),
    ),
    Case(
        "thread-second-message-bad",
        "POST",
        THREADS,
        "messages[1].content",
        True,
        json={"messages": [U, {"role": "user", "content": 5}]},
    ),
    Case("thread-query", "POST", THREADS, "x", False, json={}, params={"x": "1"}),
    # -- modify thread ----------------------------------------------------------------------------
    Case("modify-thread-unknown", "POST", THREAD, "messages", True, json={"messages": []}),
    Case("modify-thread-metadata-type", "POST", THREAD, "metadata", True, json={"metadata": []}),
    Case(
        "modify-thread-metadata-long-key",
        "POST",
        THREAD,
        "metadata",
        False,
        json={"metadata": {"k" * 65: "v"}},
    ),
    Case("modify-thread-no-body", "POST", THREAD, None, True),
    # -- create message ---------------------------------------------------------------------------
    Case("message-no-role", "POST", MESSAGES, "role", True, json={"content": "x"}),
    Case("message-no-content", "POST", MESSAGES, "content", True, json={"role": "user"}),
    Case("message-content-type", "POST", MESSAGES, "content", True, json={**U, "content": 5}),
    Case(
        "message-content-list",
        "POST",
        MESSAGES,
        "content",
        True,
        json={**U, "content": [{"type": "text", "text": "x"}]},
    ),
    Case(
        "message-content-256001",
        "POST",
        MESSAGES,
        "content",
        True,
        json={**U, "content": "c" * 256_001},
    ),
    Case("message-content-empty", "POST", MESSAGES, "content", True, json={**U, "content": ""}),
    Case("message-file-ids-null", "POST", MESSAGES, "file_ids", True, json={**U, "file_ids": None}),
    Case(
        "message-11-files",
        "POST",
        MESSAGES,
        "file_ids",
        True,
        json={**U, "file_ids": ["{file}"] * 11},
    ),
    Case(
        "message-file-id-type",
        "POST",
        MESSAGES,
        "file_ids[0]",
        True,
        json={**U, "file_ids": [5]},
    ),
    Case(
        "message-unknown-file",
        "POST",
        MESSAGES,
        "file_ids[1]",
        False,
        json={**U, "file_ids": ["{file}", "file-nope"]},
    ),
    Case(
        "message-metadata-value-513",
        "POST",
        MESSAGES,
        "metadata.k",
        False,
        json={**U, "metadata": {"k": "v" * 513}},
    ),
    Case(
        "message-unknown-field",
        "POST",
        MESSAGES,
        "assistant_id",
        True,
        json={**U, "assistant_id": "a"},
    ),
    Case("message-json-array", "POST", MESSAGES, None, True, json=[U]),
    # -- modify message ---------------------------------------------------------------------------
    Case("modify-message-content", "POST", MESSAGE, "content", True, json={"content": "x"}),
    Case(
        "modify-message-metadata-17",
        "POST",
        MESSAGE,
        "metadata",
        False,
        json={"metadata": TOO_MANY},
    ),
    # -- lists ------------------------------------------------------------------------------------
    Case("messages-limit-0", "GET", MESSAGES, "limit", False, params={"limit": 0}),
    Case("messages-limit-101", "GET", MESSAGES, "limit", False, params={"limit": 101}),
    Case("messages-order", "GET", MESSAGES, "order", True, params={"order": "up"}),
    Case("messages-unknown-param", "GET", MESSAGES, "role", False, params={"role": "user"}),
    Case("messages-unknown-cursor", "GET", MESSAGES, "after", False, params={"after": "msg_x"}),
    # An empty filter is refused like an empty cursor, not read as "messages of no run".
    Case("messages-after-empty", "GET", MESSAGES, "after", True, params={"after": ""}),
    Case("messages-run-id-empty", "GET", MESSAGES, "run_id", True, params={"run_id": ""}),
    Case("message-files-limit-101", "GET", MESSAGE_FILES, "limit", False, params={"limit": 101}),
    Case("message-files-order", "GET", MESSAGE_FILES, "order", True, params={"order": "new"}),
    Case(
        "message-files-unknown-cursor",
        "GET",
        MESSAGE_FILES,
        "before",
        False,
        params={"before": "file-x"},
    ),
]


@pytest.fixture
def ids(client: httpx.Client) -> dict[str, str]:
    file = upload(client)["id"]
    ft_file = upload(client, b'{"prompt": "a"}\n', purpose="fine-tune")["id"]
    thread = client.post("/threads", json={"messages": [U]}).json()["id"]
    msg = client.get(f"/threads/{thread}/messages").json()["data"][0]["id"]
    return {"file": file, "ft_file": ft_file, "thread": thread, "msg": msg}


def _state(client: httpx.Client, ids: dict[str, str]) -> Any:
    thread = client.get(f"/threads/{ids['thread']}").json()
    messages = client.get(f"/threads/{ids['thread']}/messages").json()
    return thread, messages


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_server_rejects(
    case: Case, client: httpx.Client, server: ServerHandle, ids: dict[str, str]
) -> None:
    before = _state(client, ids)
    with server.context.db.read() as db:
        threads_before = db.execute("SELECT count(*) FROM threads").fetchone()[0]
    assert_rejected(client, server.base_url, case, ids)
    # Nothing was changed by a rejected request (not even half a thread).
    assert _state(client, ids) == before
    with server.context.db.read() as db:
        assert db.execute("SELECT count(*) FROM threads").fetchone()[0] == threads_before


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_spec_agrees(case: Case, spec: OpenAPI) -> None:
    ids = {"file": "file-1", "ft_file": "file-2", "thread": "thread_1", "msg": "msg_1"}
    assert_spec_verdict(spec, case, ids)


def test_boundary_values_are_accepted(client: httpx.Client) -> None:
    files = [upload(client, f"{i}".encode())["id"] for i in range(10)]
    metadata = {f"k{i}".ljust(64, "x"): "v" * 512 for i in range(16)}
    thread = client.post(
        "/threads",
        json={
            "metadata": metadata,
            "messages": [{**U, "content": "c" * 256_000, "file_ids": files, "metadata": metadata}],
        },
    )
    assert thread.status_code == 200, thread.text
    tid = thread.json()["id"]
    message = client.get(f"/threads/{tid}/messages").json()["data"][0]
    assert len(message["content"][0]["text"]["value"]) == 256_000
    assert message["file_ids"] == files
    one = client.post(f"/threads/{tid}/messages", json={**U, "content": "x"})
    assert one.status_code == 200


def test_assistant_messages_are_accepted(client: httpx.Client) -> None:
    """The spec's role enum is [user, assistant]: a client may seed the assistant's side."""
    said = {"role": "assistant", "content": "How can I help?"}
    thread = client.post("/threads", json={"messages": [U, said]})
    assert thread.status_code == 200, thread.text
    tid = thread.json()["id"]
    added = client.post(f"/threads/{tid}/messages", json=said)
    assert added.status_code == 200, added.text
    listed = client.get(f"/threads/{tid}/messages", params={"order": "asc"}).json()["data"]
    assert [m["role"] for m in listed] == ["user", "assistant", "assistant"]
    for message in listed[1:]:
        assert message["content"][0]["text"]["value"] == "How can I help?"
        assert message["assistant_id"] is None
        assert message["run_id"] is None
        assert message["status"] == "completed"
