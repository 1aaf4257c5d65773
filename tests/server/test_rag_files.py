"""Which files retrieval takes, and where a file it cannot take is refused, as the hosted API
did: an unknown extension (or, since the index is built then, unreadable content) at upload;
a type retrieval does not read (an image, an archive) only when it meets the ``retrieval``
tool on an assistant — created, modified (new tools or new files) or given one more file.
Driven by the SDK 1.20 (strict), every response checked against the spec."""

from __future__ import annotations

import io
from typing import Any

import docx
import openai
import pytest
from fpdf import FPDF
from openai import OpenAI
from rag_fixtures import runs, sdk
from runs_testkit import RunServer

from assistsync.server import retrieval

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
RETRIEVAL: list[Any] = [{"type": "retrieval"}]
__all__ = ["runs", "sdk"]  # fixtures


def refusal(exc: pytest.ExceptionInfo[openai.BadRequestError]) -> tuple[str, str | None]:
    body = exc.value.body
    assert isinstance(body, dict)
    assert body["type"] == "invalid_request_error"
    return body["message"], body["param"]


def _pdf(text: str) -> bytes:
    pdf = FPDF()
    pdf.set_font("Helvetica", size=11)
    pdf.add_page()
    pdf.multi_cell(0, 6, text)
    return bytes(pdf.output())


def _docx(text: str) -> bytes:
    document = docx.Document()
    document.add_paragraph(text)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def test_uploads_are_indexed_when_they_are_created(runs: RunServer, sdk: OpenAI) -> None:
    made = {
        "a.pdf": _pdf("Invoices are due within 30 days."),
        "b.docx": _docx("Invoices are due within 45 days."),
        "c.md": b"# Invoices\n\nDue within 60 days.",
        "d.txt": b"Invoices are due within 90 days.",
    }
    ids = {
        name: sdk.files.create(file=(name, data), purpose="assistants").id
        for name, data in made.items()
    }
    other = sdk.files.create(file=("e.jsonl", b'{"a": "invoices"}\n'), purpose="fine-tune").id
    image = sdk.files.create(file=("f.png", PNG), purpose="assistants").id
    with runs.handle.context.db.read() as db:
        assert all(retrieval.is_indexed(db, file_id) for file_id in ids.values())
        assert not retrieval.is_indexed(db, other)  # only assistants files are searched
        assert not retrieval.is_indexed(db, image)  # accepted (code interpreter), not read
        found = retrieval.search(db, list(ids.values()), "when are invoices due", k=10)
    assert {p.file_id for p in found} == set(ids.values())


@pytest.mark.parametrize(
    ("name", "data", "start"),
    [
        ("blob.bin", b"\x00\x01", "Invalid extension bin. Supported formats: "),
        ("report.pdf", b"not a pdf", "Invalid file 'report.pdf': it could not be read as PDF"),
    ],
)
def test_what_retrieval_cannot_take_is_refused_at_upload(
    sdk: OpenAI, name: str, data: bytes, start: str
) -> None:
    with pytest.raises(openai.BadRequestError) as exc:
        sdk.files.create(file=(name, data), purpose="assistants")
    message, param = refusal(exc)
    assert message.startswith(start)
    assert param == "file"
    assert sdk.files.list().data == []  # nothing was kept
    # the same upload with purpose fine-tune is nobody's concern here
    assert sdk.files.create(file=(name, data), purpose="fine-tune").id


def test_types_retrieval_does_not_read_meet_the_tool_with_a_400(sdk: OpenAI) -> None:
    image = sdk.files.create(file=("chart.png", PNG), purpose="assistants").id
    guide = sdk.files.create(file=("guide.md", b"# Guide"), purpose="assistants").id
    expected = retrieval.not_retrievable_message(["png"])
    assert expected.startswith("Files with extensions [.png] are not supported for retrieval.")

    with pytest.raises(openai.BadRequestError) as exc:
        sdk.beta.assistants.create(model="gpt-4-turbo", tools=RETRIEVAL, file_ids=[guide, image])
    assert refusal(exc) == (expected, "file_ids")
    assert sdk.beta.assistants.list().data == []

    # without retrieval (code interpreter reads images), the same files attach
    plain = sdk.beta.assistants.create(
        model="gpt-4-turbo", tools=[{"type": "code_interpreter"}], file_ids=[guide, image]
    )
    # turning retrieval on with the image still attached is refused, and changes nothing
    with pytest.raises(openai.BadRequestError) as exc:
        sdk.beta.assistants.update(plain.id, tools=RETRIEVAL)
    assert refusal(exc) == (expected, "file_ids")
    assert sdk.beta.assistants.retrieve(plain.id).tools[0].type == "code_interpreter"
    # ... and accepted once the image goes in the same request
    updated = sdk.beta.assistants.update(plain.id, tools=RETRIEVAL, file_ids=[guide])
    assert updated.file_ids == [guide]

    with pytest.raises(openai.BadRequestError) as exc:
        sdk.beta.assistants.update(plain.id, file_ids=[guide, image])
    assert refusal(exc) == (expected, "file_ids")
    with pytest.raises(openai.BadRequestError) as exc:
        sdk.beta.assistants.files.create(plain.id, file_id=image)
    assert refusal(exc) == (expected, "file_id")
    assert sdk.beta.assistants.retrieve(plain.id).file_ids == [guide]


def test_a_file_without_an_extension_counts_by_its_content(sdk: OpenAI) -> None:
    notes = sdk.files.create(file=("NOTES", b"Plain text notes."), purpose="assistants").id
    assistant = sdk.beta.assistants.create(model="gpt-4-turbo", tools=RETRIEVAL, file_ids=[notes])
    assert assistant.file_ids == [notes]
