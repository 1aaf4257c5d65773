"""The official SDK of the v1 era (openai 1.20, strict response validation) on threads and
messages: every object it parses must have exactly the shape it expects."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from assistsync.server import ServerHandle

openai = pytest.importorskip("openai", reason="openai (the v1 SDK) is not installed")


@pytest.fixture
def sdk(server: ServerHandle) -> Iterator[Any]:
    with httpx.Client() as http:
        yield openai.OpenAI(
            base_url=server.base_url,
            api_key="sk-test",
            http_client=http,
            _strict_response_validation=True,
            max_retries=0,
        )


def test_threads_and_messages_through_the_sdk(sdk: Any) -> None:
    upload = sdk.files.create(file=("notes.txt", b"notes"), purpose="assistants")
    thread = sdk.beta.threads.create(
        messages=[{"role": "user", "content": "first", "file_ids": [upload.id]}],
        metadata={"team": "support"},
    )
    assert thread.object == "thread"
    assert thread.metadata == {"team": "support"}
    for n in range(2, 26):
        sdk.beta.threads.messages.create(thread.id, role="user", content=f"message {n}")
    # Auto-paging follows the cursors: 25 messages in pages of 10.
    texts = [
        m.content[0].text.value
        for m in sdk.beta.threads.messages.list(thread.id, order="asc", limit=10)
    ]
    assert texts == ["first"] + [f"message {n}" for n in range(2, 26)]
    newest = sdk.beta.threads.messages.list(thread.id, limit=1).data[0]
    assert newest.content[0].text.value == "message 25"
    first = sdk.beta.threads.messages.list(thread.id, order="asc", limit=1).data[0]
    assert first.file_ids == [upload.id]
    files = sdk.beta.threads.messages.files.list(first.id, thread_id=thread.id)
    assert [f.id for f in files.data] == [upload.id]
    one = sdk.beta.threads.messages.files.retrieve(
        upload.id, thread_id=thread.id, message_id=first.id
    )
    assert one.message_id == first.id
    changed = sdk.beta.threads.messages.update(first.id, thread_id=thread.id, metadata={"k": "v"})
    assert changed.metadata == {"k": "v"}
    assert sdk.beta.threads.messages.retrieve(first.id, thread_id=thread.id) == changed
    assert sdk.beta.threads.update(thread.id, metadata={"b": "2"}).metadata == {"b": "2"}
    assert sdk.beta.threads.delete(thread.id).deleted is True
    with pytest.raises(openai.NotFoundError):
        sdk.beta.threads.retrieve(thread.id)


def test_sdk_sees_limits_as_bad_requests(sdk: Any) -> None:
    thread = sdk.beta.threads.create()
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.beta.threads.messages.create(thread.id, role="user", content="x" * 256_001)
    assert caught.value.body["param"] == "content"
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.beta.threads.messages.create(thread.id, role="user", content="x", file_ids=["file-x"])
    assert caught.value.body["param"] == "file_ids[0]"
