"""Retrieval with a chat-completions backend: the stand-in backend (loopback, recording every
request) receives the numbered passages in its system message, and the markers of its streamed
answer — split across chunks, one naming no passage — become exact ``file_citation``
annotations, in the deltas the SDK 1.20 (strict) streams and in the stored message."""

from __future__ import annotations

from chat_fixtures import FUNCTIONS, ChatServer, chat, sdk, standin
from chat_testkit import StandIn, calls, text
from openai import OpenAI
from openai.types.beta.threads import FileCitationAnnotation
from rag_fixtures import stream_question

from assistsync.server.runs.retrieval_step import INSTRUCTION

__all__ = ["chat", "sdk", "standin"]  # fixtures

GUIDE = (
    "# Operations guide\n\n"
    "## Backups\n\nDatabase backups run nightly at 02:30 UTC and are kept for 35 days.\n\n"
    "## Access\n\nBadges are renewed every January at the front desk."
)
POLICY = "Shipping: the Lyon warehouse dispatches orders every Tuesday and Friday."


def test_the_backend_gets_numbered_passages_and_its_markers_become_citations(
    chat: ChatServer, standin: StandIn, sdk: OpenAI
) -> None:
    guide = sdk.files.create(file=("guide.md", GUIDE.encode()), purpose="assistants").id
    policy = sdk.files.create(file=("policy.txt", POLICY.encode()), purpose="assistants").id
    assistant = sdk.beta.assistants.create(
        model="gpt-4-turbo",
        instructions="Answer from the files.",
        tools=[{"type": "retrieval"}],
        file_ids=[guide, policy],
    )
    # The marker of passage 1 arrives in three pieces; 【7†source】 names no passage.
    standin.script(text("Backups are kept for 35 days【", "1†sou", "rce】, see【7†source】 it."))
    handler, (message,) = stream_question(sdk, assistant.id, "How long are database backups kept?")

    (sent,) = standin.wait_requests(1)
    system = sent["messages"][0]
    assert system["role"] == "system"
    head = f"Answer from the files.\n\n{INSTRUCTION}\n\n【1†source】\n"
    assert system["content"].startswith(head)
    first = system["content"][len(head) :].split("\n\n【2†source】\n")[0]
    assert "kept for 35 days" in first
    assert sent["messages"][1:] == [
        {"role": "user", "content": "How long are database backups kept?"}
    ]
    assert "tools" not in sent  # retrieval is the server's, not a function for the backend

    final = "Backups are kept for 35 days【1†source】, see it."
    (part,) = message.content
    assert part.type == "text"
    assert part.text.value == final
    (note,) = part.text.annotations
    assert isinstance(note, FileCitationAnnotation)
    assert final[note.start_index : note.end_index] == note.text == "【1†source】"
    assert note.file_citation.file_id == guide
    assert "kept for 35 days" in note.file_citation.quote
    assert note.file_citation.quote == first  # the passage the backend saw as number 1

    assert handler.text == final
    (streamed_note,) = [n for d in handler.deltas for n in d.annotations or []]
    assert streamed_note.index == 0
    assert (streamed_note.start_index, streamed_note.end_index) == (
        note.start_index,
        note.end_index,
    )
    assert streamed_note.file_citation is not None
    assert streamed_note.file_citation.quote == note.file_citation.quote


def test_a_tool_round_trip_keeps_the_passages_and_records_retrieval_once(
    chat: ChatServer, standin: StandIn, sdk: OpenAI
) -> None:
    guide = sdk.files.create(file=("guide.md", GUIDE.encode()), purpose="assistants").id
    assistant = sdk.beta.assistants.create(
        model="gpt-4-turbo",
        tools=[{"type": "retrieval"}, *FUNCTIONS],  # type: ignore[list-item]
        file_ids=[guide],
    )
    standin.script(calls(("lookup_order", '{"order": 7}')), text("Kept 35 days【1†source】."))
    thread = sdk.beta.threads.create(
        messages=[{"role": "user", "content": "How long are backups kept for order 7?"}]
    )
    run = sdk.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert run.status == "requires_action"
    assert run.required_action is not None
    (call,) = run.required_action.submit_tool_outputs.tool_calls
    run = sdk.beta.threads.runs.submit_tool_outputs_and_poll(
        thread_id=thread.id, run_id=run.id, tool_outputs=[{"tool_call_id": call.id, "output": "ok"}]
    )
    assert run.status == "completed"
    first, second = standin.wait_requests(2)
    # both turns get the passages; the retrieval step is no message of the conversation
    assert "kept for 35 days" in first["messages"][0]["content"]
    assert second["messages"][0] == first["messages"][0]
    assert [m["role"] for m in second["messages"]] == ["system", "user", "assistant", "tool"]
    assert [c["id"] for c in second["messages"][2]["tool_calls"]] == [call.id]
    steps = sdk.beta.threads.runs.steps.list(thread_id=thread.id, run_id=run.id, order="asc")
    kinds = [
        [c.type for c in s.step_details.tool_calls] if s.type == "tool_calls" else [s.type]  # type: ignore[union-attr]
        for s in steps.data
    ]
    assert kinds == [["retrieval"], ["function"], ["message_creation"]]
    (message,) = sdk.beta.threads.messages.list(thread_id=thread.id, run_id=run.id).data
    (part,) = message.content
    assert part.type == "text"
    (note,) = part.text.annotations
    assert part.text.value[note.start_index : note.end_index] == "【1†source】"
