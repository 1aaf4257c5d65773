"""Retrieval with citations through the whole server, driven by the official SDK 1.20 (strict
response validation, every response and stream event also checked against the spec).

Real PDF (fpdf2), DOCX (python-docx), Markdown and text files are uploaded over HTTP (indexed
at upload), attached to an assistant with the ``retrieval`` tool (or to a message), and the
``echo`` model answers with the best passage and its marker: the cited passage holds the answer,
the annotation's indices are exact in the final text and in the streamed deltas, a deleted file
leaves the results, and a run without retrieval records no retrieval step.
"""

from __future__ import annotations

import random
from typing import Any

import pytest
from openai import OpenAI
from openai.types.beta import Assistant
from openai.types.beta.threads import FileCitationAnnotation, Message, Run
from openai.types.beta.threads.runs import RetrievalToolCall, RunStep, ToolCallsStepDetails
from rag_fixtures import runs, sdk, stream_question
from runs_testkit import FUNCTIONS
from test_retrieval_files import FILES

Json = dict[str, Any]

QUESTIONS = [
    ("handbook.pdf", "Which days does the Lyon warehouse dispatch orders?", "Tuesday and Friday"),
    ("policy.docx", "How many vacation days can I carry over?", "at most 5 unused vacation days"),
    ("guide.md", "How long are database backups kept?", "kept for 35 days"),
    ("notes.txt", "What's the project's codename?", "Bluefinch"),
]
__all__ = ["runs", "sdk"]  # fixtures
NAMES = [name for name, _, _ in QUESTIONS]


@pytest.fixture(scope="module")
def corpus() -> dict[str, bytes]:
    rng = random.Random(1234)
    made = {name: make(rng) for name, make in FILES.items()}
    return {name: made[name] for name in NAMES}


@pytest.fixture
def files(sdk: OpenAI, corpus: dict[str, bytes]) -> dict[str, str]:
    """Each file of the corpus uploaded (and so indexed): name -> file id."""
    return {
        name: sdk.files.create(file=(name, data), purpose="assistants").id
        for name, data in corpus.items()
    }


@pytest.fixture
def librarian(sdk: OpenAI, files: dict[str, str]) -> Assistant:
    return sdk.beta.assistants.create(
        model="gpt-4-turbo",
        instructions="Answer from the files.",
        tools=[{"type": "retrieval"}],
        file_ids=list(files.values()),
    )


def ask(sdk: OpenAI, assistant_id: str, question: str, **run: Any) -> tuple[Run, Message]:
    thread = sdk.beta.threads.create(messages=[{"role": "user", "content": question}])
    done = sdk.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant_id, poll_interval_ms=10, **run
    )
    assert done.status == "completed", done.last_error
    answer = sdk.beta.threads.messages.list(thread_id=thread.id, run_id=done.id).data
    assert len(answer) == 1
    return done, answer[0]


def steps_of(sdk: OpenAI, run: Run) -> list[RunStep]:
    return list(sdk.beta.threads.runs.steps.list(run.id, thread_id=run.thread_id, order="asc"))


def citations(message: Message) -> tuple[str, list[FileCitationAnnotation]]:
    (part,) = message.content
    assert part.type == "text"
    notes = [n for n in part.text.annotations if isinstance(n, FileCitationAnnotation)]
    assert len(notes) == len(part.text.annotations)
    return part.text.value, notes


def retrieval_calls(step: RunStep) -> list[RetrievalToolCall]:
    details = step.step_details
    assert isinstance(details, ToolCallsStepDetails)
    return [call for call in details.tool_calls if isinstance(call, RetrievalToolCall)]


@pytest.mark.parametrize(("name", "question", "answer"), QUESTIONS)
def test_the_cited_passage_holds_the_answer(
    sdk: OpenAI,
    files: dict[str, str],
    librarian: Assistant,
    name: str,
    question: str,
    answer: str,
) -> None:
    run, message = ask(sdk, librarian.id, question)
    text, (note,) = citations(message)
    assert note.file_citation.file_id == files[name]
    assert answer in note.file_citation.quote
    assert text[note.start_index : note.end_index] == note.text == "【1†source】"
    assert text == f"echo: {question}\n\n{note.file_citation.quote}{note.text}"
    # the quote is the passage exactly as the file's extracted text holds it
    assert note.file_citation.quote in text
    retrieval_step, answer_step = steps_of(sdk, run)
    assert retrieval_step.type == "tool_calls"
    assert retrieval_step.status == "completed"
    (call,) = retrieval_calls(retrieval_step)
    assert call.id.startswith("call_")
    assert call.retrieval == {}
    assert retrieval_step.completed_at is not None
    assert answer_step.type == "message_creation"
    assert answer_step.step_details.message_creation.message_id == message.id  # type: ignore[union-attr]


def test_message_files_are_searched_too(sdk: OpenAI, files: dict[str, str]) -> None:
    bare = sdk.beta.assistants.create(model="gpt-4-turbo", tools=[{"type": "retrieval"}])
    thread = sdk.beta.threads.create(
        messages=[
            {
                "role": "user",
                "content": "How long are database backups kept?",
                "file_ids": [files["guide.md"]],
            }
        ]
    )
    run = sdk.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=bare.id, poll_interval_ms=10
    )
    (message,) = sdk.beta.threads.messages.list(thread_id=thread.id, run_id=run.id).data
    _, (note,) = citations(message)
    assert note.file_citation.file_id == files["guide.md"]
    assert "kept for 35 days" in note.file_citation.quote


def test_deleting_a_file_removes_it_from_the_results(
    sdk: OpenAI, files: dict[str, str], librarian: Assistant
) -> None:
    question = "How long are database backups kept?"
    _, before = ask(sdk, librarian.id, question)
    assert citations(before)[1][0].file_citation.file_id == files["guide.md"]
    assert sdk.files.delete(files["guide.md"]).deleted
    _, after = ask(sdk, librarian.id, question)
    text, notes = citations(after)
    assert all(note.file_citation.file_id != files["guide.md"] for note in notes)
    assert "35 days" not in text


def test_a_run_without_retrieval_has_no_retrieval_step(
    sdk: OpenAI, files: dict[str, str], librarian: Assistant
) -> None:
    question = "How long are database backups kept?"
    run, message = ask(sdk, librarian.id, question, tools=FUNCTIONS)
    assert citations(message) == (f"echo: {question}", [])
    assert [step.type for step in steps_of(sdk, run)] == ["message_creation"]
    # tool_choice "none": the model may use no tool, retrieval included
    run, message = ask(sdk, librarian.id, question, tool_choice="none")
    assert citations(message) == (f"echo: {question}", [])
    assert [step.type for step in steps_of(sdk, run)] == ["message_creation"]


def test_nothing_found_answers_without_a_citation(sdk: OpenAI, librarian: Assistant) -> None:
    run, message = ask(sdk, librarian.id, "zyzzyva quokka")
    assert citations(message) == ("echo: zyzzyva quokka", [])
    # the files were searched: the step is there, it just found nothing to cite
    assert [step.type for step in steps_of(sdk, run)] == ["tool_calls", "message_creation"]


def test_streamed_deltas_carry_the_same_annotations(
    sdk: OpenAI, files: dict[str, str], librarian: Assistant
) -> None:
    recorder, final = stream_question(
        sdk, librarian.id, "Which days does the Lyon warehouse dispatch?"
    )
    streamed = recorder.text
    notes = [note for delta in recorder.deltas for note in delta.annotations or []]
    (note,) = notes
    assert note.type == "file_citation"
    assert note.index == 0
    assert note.start_index is not None
    assert note.end_index is not None
    assert streamed[note.start_index : note.end_index] == note.text == "【1†source】"
    assert note.file_citation is not None
    assert "Tuesday and Friday" in (note.file_citation.quote or "")
    (message,) = final
    text, (stored,) = citations(message)
    assert text == streamed
    assert stored.model_dump() == {
        "type": "file_citation",
        "text": note.text,
        "start_index": note.start_index,
        "end_index": note.end_index,
        "file_citation": {"file_id": files["handbook.pdf"], "quote": note.file_citation.quote},
    }
    # the retrieval step comes (and ends) before the step that writes the answer
    assert [step.type for step in recorder.steps] == ["tool_calls", "message_creation"]
    assert retrieval_calls(recorder.steps[0])[0].retrieval == {}
    first_delta = recorder.events.index("thread.message.delta")
    assert recorder.events.index("thread.run.step.completed") < first_delta
