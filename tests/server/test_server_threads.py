"""Threads, messages and message files: behaviour, 404s, cursors both ways, the run hooks.

Every response comes through the checked client, so each one (and the request that produced
it) is also validated against the published spec.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from server_testkit import ServerFactory, checked_client, upload

from assistsync.server import ServerHandle
from assistsync.server.messages import insert_message, update_message

NOW = 1_700_000_000


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = NOW + 0.75) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def tserver(make_server: ServerFactory, clock: Clock) -> ServerHandle:
    return make_server(clock=clock)


@pytest.fixture
def tclient(tserver: ServerHandle) -> Iterator[httpx.Client]:
    with checked_client(tserver) as c:
        yield c


def ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def new_thread(client: httpx.Client, **body: Any) -> dict[str, Any]:
    return ok(client.post("/threads", json=body))


def say(client: httpx.Client, thread_id: str, content: str, **extra: Any) -> dict[str, Any]:
    body = {"role": "user", "content": content, **extra}
    return ok(client.post(f"/threads/{thread_id}/messages", json=body))


# -- threads --------------------------------------------------------------------------------------


def test_create_thread_without_a_body(tserver: ServerHandle, tclient: httpx.Client) -> None:
    # The spec does not require a body on POST /threads; some clients send none.
    thread = ok(tclient.post("/threads"))
    assert thread == {
        "id": thread["id"],
        "object": "thread",
        "created_at": NOW,
        "metadata": {},
    }
    assert thread["id"].startswith("thread_")
    assert ok(tclient.post("/threads", json={}))["metadata"] == {}
    assert ok(tclient.post("/threads", json={"metadata": None}))["metadata"] == {}


def test_create_thread_with_messages_and_metadata(tclient: httpx.Client) -> None:
    file = upload(tclient)["id"]
    thread = new_thread(
        tclient,
        metadata={"team": "support"},
        messages=[
            {"role": "user", "content": "first", "file_ids": [file]},
            {"role": "user", "content": "second", "metadata": {"n": "2"}},
        ],
    )
    assert thread["metadata"] == {"team": "support"}
    page = ok(tclient.get(f"/threads/{thread['id']}/messages", params={"order": "asc"}))
    first, second = page["data"]
    assert [m["content"][0]["text"]["value"] for m in page["data"]] == ["first", "second"]
    assert first["file_ids"] == [file]
    assert second["metadata"] == {"n": "2"}
    assert first["thread_id"] == thread["id"]


def test_get_modify_delete_thread(tclient: httpx.Client, clock: Clock) -> None:
    thread = new_thread(tclient, metadata={"a": "1"})
    tid = thread["id"]
    assert ok(tclient.get(f"/threads/{tid}")) == thread
    clock.now += 100
    changed = ok(tclient.post(f"/threads/{tid}", json={"metadata": {"b": "2"}}))
    assert changed == {**thread, "metadata": {"b": "2"}}  # replaced, created_at kept
    assert ok(tclient.post(f"/threads/{tid}", json={"metadata": None})) == changed
    assert ok(tclient.post(f"/threads/{tid}", json={})) == changed
    say(tclient, tid, "hello")
    deleted = ok(tclient.delete(f"/threads/{tid}"))
    assert deleted == {"id": tid, "object": "thread.deleted", "deleted": True}
    assert tclient.get(f"/threads/{tid}").status_code == 404
    assert tclient.get(f"/threads/{tid}/messages").status_code == 404
    assert tclient.delete(f"/threads/{tid}").status_code == 404


def test_deleting_a_thread_deletes_its_messages_and_their_files(tserver: ServerHandle) -> None:
    with checked_client(tserver) as c:
        file = upload(c)["id"]
        tid = new_thread(c, messages=[{"role": "user", "content": "x", "file_ids": [file]}])["id"]
        ok(c.delete(f"/threads/{tid}"))
    with tserver.context.db.read() as db:
        assert db.execute("SELECT count(*) FROM messages").fetchone()[0] == 0
        assert db.execute("SELECT count(*) FROM message_files").fetchone()[0] == 0


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/threads/thread_nope"),
        ("POST", "/threads/thread_nope"),
        ("DELETE", "/threads/thread_nope"),
        ("GET", "/threads/thread_nope/messages"),
        ("POST", "/threads/thread_nope/messages"),
        ("GET", "/threads/thread_nope/messages/msg_1"),
        ("POST", "/threads/thread_nope/messages/msg_1"),
        ("GET", "/threads/thread_nope/messages/msg_1/files"),
        ("GET", "/threads/thread_nope/messages/msg_1/files/file-1"),
    ],
)
def test_unknown_thread_is_404(tclient: httpx.Client, method: str, path: str) -> None:
    # A missing thread is a 404 even when the body is also wrong.
    response = tclient.request(method, path, json={"bogus": 1} if method == "POST" else None)
    assert response.status_code == 404
    assert response.json()["error"]["message"] == "No thread found with id 'thread_nope'."


def test_unknown_message_and_message_file_are_404(tclient: httpx.Client) -> None:
    tid = new_thread(tclient)["id"]
    other = new_thread(tclient)["id"]
    mid = say(tclient, tid, "hi")["id"]
    for method, path in [
        ("GET", f"/threads/{tid}/messages/msg_nope"),
        ("POST", f"/threads/{tid}/messages/msg_nope"),
        ("GET", f"/threads/{tid}/messages/msg_nope/files"),
        # a message is found only in its own thread
        ("GET", f"/threads/{other}/messages/{mid}"),
    ]:
        response = tclient.request(method, path, json={} if method == "POST" else None)
        assert response.status_code == 404, path
        assert "msg_" in response.json()["error"]["message"]
    response = tclient.get(f"/threads/{tid}/messages/{mid}/files/file-nope")
    assert response.status_code == 404
    assert "file-nope" in response.json()["error"]["message"]


# -- messages -------------------------------------------------------------------------------------


def test_create_message_returns_the_whole_message(tclient: httpx.Client) -> None:
    tid = new_thread(tclient)["id"]
    file = upload(tclient)["id"]
    message = say(tclient, tid, "What is 2+2?", file_ids=[file], metadata={"k": "v"})
    assert message == {
        "id": message["id"],
        "object": "thread.message",
        "created_at": NOW,
        "thread_id": tid,
        "status": "completed",
        "incomplete_details": None,
        "completed_at": NOW,
        "incomplete_at": None,
        "role": "user",
        "content": [{"type": "text", "text": {"value": "What is 2+2?", "annotations": []}}],
        "assistant_id": None,
        "run_id": None,
        "file_ids": [file],
        "metadata": {"k": "v"},
    }
    assert message["id"].startswith("msg_")
    assert ok(tclient.get(f"/threads/{tid}/messages/{message['id']}")) == message
    # null metadata is absent; an empty file list is valid (the spec's correction)
    plain = say(tclient, tid, "x", metadata=None, file_ids=[])
    assert (plain["metadata"], plain["file_ids"]) == ({}, [])


def test_modify_message_changes_only_metadata(tclient: httpx.Client) -> None:
    tid = new_thread(tclient)["id"]
    message = say(tclient, tid, "x", metadata={"a": "1"})
    path = f"/threads/{tid}/messages/{message['id']}"
    changed = ok(tclient.post(path, json={"metadata": {"b": "2"}}))
    assert changed == {**message, "metadata": {"b": "2"}}
    assert ok(tclient.post(path, json={"metadata": None})) == changed
    assert ok(tclient.get(path)) == changed


def test_message_files_list_and_get(tclient: httpx.Client) -> None:
    tid = new_thread(tclient)["id"]
    files = [upload(tclient, f"f{i}".encode())["id"] for i in range(10)]
    message = say(tclient, tid, "files", file_ids=files)
    base = f"/threads/{tid}/messages/{message['id']}/files"
    page = ok(tclient.get(base, params={"order": "asc"}))
    assert [f["id"] for f in page["data"]] == files
    assert page["data"][0] == {
        "id": files[0],
        "object": "thread.message.file",
        "created_at": NOW,
        "message_id": message["id"],
    }
    assert ok(tclient.get(f"{base}/{files[3]}")) == page["data"][3]
    first = ok(tclient.get(base, params={"order": "asc", "limit": 4}))
    assert first["has_more"] is True
    after = ok(tclient.get(base, params={"order": "asc", "after": files[3], "limit": 100}))
    assert [f["id"] for f in after["data"]] == files[4:]
    before = ok(tclient.get(base, params={"order": "asc", "before": files[3]}))
    assert [f["id"] for f in before["data"]] == files[:3]


def test_a_run_active_on_the_thread_refuses_new_messages(
    tserver: ServerHandle, tclient: httpx.Client
) -> None:
    tid = new_thread(tclient)["id"]
    asked: list[str] = []

    def active(db: object, thread_id: str) -> str | None:
        asked.append(thread_id)
        return "run_abc123"

    tserver.context.hooks.active_run = active
    response = tclient.post(f"/threads/{tid}/messages", json={"role": "user", "content": "x"})
    assert response.status_code == 400
    assert response.json()["error"] == {
        "message": f"Can't add messages to {tid} while a run run_abc123 is active.",
        "type": "invalid_request_error",
        "param": None,
        "code": None,
    }
    assert asked == [tid]
    assert ok(tclient.get(f"/threads/{tid}/messages"))["data"] == []


def test_assistant_messages_written_by_a_run(
    tserver: ServerHandle, tclient: httpx.Client, clock: Clock
) -> None:
    tid = new_thread(tclient, messages=[{"role": "user", "content": "hi"}])["id"]
    db_layer = tserver.context.db
    with db_layer.write() as db:
        started = insert_message(
            db,
            db_layer.now(),
            tid,
            role="assistant",
            text=None,
            assistant_id="asst_1",
            run_id="run_1",
            status="in_progress",
        )
    assert started["content"] == []
    path = f"/threads/{tid}/messages/{started['id']}"
    shown = ok(tclient.get(path))
    assert (shown["status"], shown["completed_at"], shown["run_id"]) == (
        "in_progress",
        None,
        "run_1",
    )
    clock.now += 3
    note = {
        "type": "file_citation",
        "text": "【1†source】",
        "start_index": 5,
        "end_index": 15,
        "file_citation": {"file_id": "file-1", "quote": "q"},
    }
    with db_layer.write() as db:
        update_message(db, db_layer.now(), started["id"], text="Hello")
        update_message(
            db, db_layer.now(), started["id"], text="Hello【1†source】", annotations=[note]
        )
        update_message(db, db_layer.now(), started["id"], status="completed")
    done = ok(tclient.get(path))
    assert done["status"] == "completed"
    assert done["completed_at"] == NOW + 3
    assert done["content"] == [
        {"type": "text", "text": {"value": "Hello【1†source】", "annotations": [note]}}
    ]
    with db_layer.write() as db:
        cut = insert_message(
            db, db_layer.now(), tid, role="assistant", text="par", status="in_progress"
        )
        update_message(
            db, db_layer.now(), cut["id"], status="incomplete", incomplete_reason="run_cancelled"
        )
    cut = ok(tclient.get(f"/threads/{tid}/messages/{cut['id']}"))
    assert cut["status"] == "incomplete"
    assert cut["incomplete_details"] == {"reason": "run_cancelled"}
    assert cut["incomplete_at"] == NOW + 3


# -- cursors --------------------------------------------------------------------------------------


def walk(
    client: httpx.Client, path: str, order: str, limit: int, direction: str, **extra: str
) -> list[str]:
    """Every id of a cursor list, following ``after`` (or ``before`` from the far end)."""
    params: dict[str, str | int] = {"order": order, "limit": limit, **extra}
    seen: list[str] = []
    if direction == "before":
        other = "asc" if order == "desc" else "desc"
        last = ok(client.get(path, params={**params, "order": other, "limit": 1}))["data"]
        if not last:
            return []
        seen = [last[0]["id"]]
        params["before"] = last[0]["id"]
    while True:
        page = ok(client.get(path, params=params))
        ids = [m["id"] for m in page["data"]]
        assert page["first_id"] == (ids[0] if ids else None)
        assert page["last_id"] == (ids[-1] if ids else None)
        if direction == "after":
            seen.extend(ids)
            if ids:
                params["after"] = ids[-1]
        else:
            seen[:0] = ids
            if ids:
                params["before"] = ids[0]
        if not page["has_more"]:
            return seen


@pytest.fixture
def conversation(tserver: ServerHandle) -> tuple[str, list[str], list[str]]:
    """A thread of 23 messages sharing one created_at second; every third one from run_1."""
    with checked_client(tserver) as c:
        tid = new_thread(c)["id"]
    all_ids: list[str] = []
    run_ids: list[str] = []
    db_layer = tserver.context.db
    with db_layer.write() as db:
        for n in range(23):
            from_run = n % 3 == 0
            message = insert_message(
                db,
                db_layer.now(),
                tid,
                role="assistant" if from_run else "user",
                text=f"m{n}",
                run_id="run_1" if from_run else None,
            )
            all_ids.append(message["id"])
            if from_run:
                run_ids.append(message["id"])
    return tid, all_ids, run_ids


@pytest.mark.parametrize("order", ["asc", "desc"])
@pytest.mark.parametrize("direction", ["after", "before"])
@pytest.mark.parametrize("limit", [1, 5, 100])
def test_message_cursors_both_ways(
    tclient: httpx.Client,
    conversation: tuple[str, list[str], list[str]],
    order: str,
    direction: str,
    limit: int,
) -> None:
    tid, all_ids, run_ids = conversation
    path = f"/threads/{tid}/messages"
    expected = all_ids if order == "asc" else all_ids[::-1]
    assert walk(tclient, path, order, limit, direction) == expected
    expected_run = run_ids if order == "asc" else run_ids[::-1]
    assert walk(tclient, path, order, limit, direction, run_id="run_1") == expected_run


def test_message_list_defaults_and_run_filter(
    tclient: httpx.Client, conversation: tuple[str, list[str], list[str]]
) -> None:
    tid, all_ids, run_ids = conversation
    page = ok(tclient.get(f"/threads/{tid}/messages"))
    assert [m["id"] for m in page["data"]] == all_ids[::-1][:20]  # 20, newest first
    assert page["has_more"] is True
    # A cursor outside the filter still marks a position in the thread.
    window = ok(
        tclient.get(
            f"/threads/{tid}/messages",
            params={"order": "asc", "run_id": "run_1", "after": all_ids[1]},
        )
    )
    assert [m["id"] for m in window["data"]] == run_ids[1:]
    assert ok(tclient.get(f"/threads/{tid}/messages", params={"run_id": "run_2"}))["data"] == []
    between = ok(
        tclient.get(
            f"/threads/{tid}/messages",
            params={"order": "asc", "after": all_ids[2], "before": all_ids[6]},
        )
    )
    assert [m["id"] for m in between["data"]] == all_ids[3:6]


def test_a_cursor_from_another_thread_is_400(
    tclient: httpx.Client, conversation: tuple[str, list[str], list[str]]
) -> None:
    _, all_ids, _ = conversation
    other = new_thread(tclient)["id"]
    response = tclient.get(f"/threads/{other}/messages", params={"after": all_ids[0]})
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "after"


# -- persistence ----------------------------------------------------------------------------------


def test_threads_and_messages_survive_a_restart(make_server: ServerFactory, tmp_path: Any) -> None:
    db = tmp_path / "s.db"
    first = make_server(db=db)
    with checked_client(first) as c:
        file = upload(c)["id"]
        kept = new_thread(c, metadata={"k": "v"}, messages=[{"role": "user", "content": "a"}])
        gone = new_thread(c)
        say(c, kept["id"], "b", file_ids=[file])
        ok(c.delete(f"/threads/{gone['id']}"))
        messages = ok(c.get(f"/threads/{kept['id']}/messages"))
        last = messages["data"][0]
        files = ok(c.get(f"/threads/{kept['id']}/messages/{last['id']}/files"))
    first.stop()
    second = make_server(db=db)
    with checked_client(second) as c:
        assert ok(c.get(f"/threads/{kept['id']}")) == kept
        assert c.get(f"/threads/{gone['id']}").status_code == 404
        assert ok(c.get(f"/threads/{kept['id']}/messages")) == messages
        assert ok(c.get(f"/threads/{kept['id']}/messages/{last['id']}/files")) == files
        oldest = messages["data"][-1]["id"]
        page = ok(
            c.get(f"/threads/{kept['id']}/messages", params={"after": oldest, "order": "asc"})
        )
        assert [m["id"] for m in page["data"]] == [last["id"]]
        say(c, kept["id"], "c")
        assert len(ok(c.get(f"/threads/{kept['id']}/messages"))["data"]) == 3
