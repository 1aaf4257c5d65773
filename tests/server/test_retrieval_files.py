"""Retrieval over real files made at test time: PDF (fpdf2), DOCX (python-docx), Markdown, HTML,
CSV, JSON, code and text. A question finds the passage holding its answer, the passage is the
exact slice of the extracted text, deleted files leave the results, and bad files get a typed
error naming the file.
"""

from __future__ import annotations

import io
import json
import random
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import docx
import pytest
from fpdf import FPDF
from hypothesis import given, settings
from hypothesis import strategies as st

from assistsync.server import retrieval
from assistsync.server.retrieval import (
    FileRejected,
    NotRetrievable,
    UnreadableFile,
    UnsupportedFileType,
)

_WORDS = """
    account agenda analysis answer approach area balance basis benefit budget campaign capacity
    chapter choice client column comment context contract control council course culture
    customer debate decade design detail device dialogue direction district document economy
    effort energy engine estate event evidence example factor feature figure finance focus
    format forum frame function future garden gesture growth guidance habit harbour heritage
    history horizon idea image impact income index industry insight instance interest issue
    journey kitchen label language layer league lesson level library limit margin market
    measure media member memory method metric model module moment motion network notion number
    object option order outcome output panel paper pattern period phase picture pilot plan
    platform player point policy portion practice pressure process profile program progress
    project property proposal quality quarter question range rate reason record region report
    request research resource result review rhythm river routine sample scale scheme screen
    season section sector segment series service session signal sketch source space speech
    stage standard status step story strategy stream structure style subject summary surface
    system table target task team theme theory thread topic track trade transfer trend update
    value version village vision volume window winter workshop
"""
_VOCABULARY = _WORDS.split()


def _filler(rng: random.Random, paragraphs: int) -> list[str]:
    """Paragraphs of plausible prose that share no word with any question below."""
    out = []
    for _ in range(paragraphs):
        sentences = []
        for _ in range(rng.randint(3, 7)):
            words = rng.choices(_VOCABULARY, k=rng.randint(6, 16))
            sentences.append(" ".join(words).capitalize() + ".")
        out.append(" ".join(sentences))
    return out


def _around(rng: random.Random, fact: str, before: int = 8, after: int = 8) -> list[str]:
    return [*_filler(rng, before), fact, *_filler(rng, after)]


def _pdf(rng: random.Random) -> bytes:
    pdf = FPDF()
    pdf.set_font("Helvetica", size=11)
    pdf.add_page()
    pdf.multi_cell(0, 6, "Operations handbook", new_x="LMARGIN", new_y="NEXT")
    for paragraph in _around(
        rng, "Shipping: the Lyon warehouse dispatches orders every Tuesday and Friday.", 14, 14
    ):
        pdf.multi_cell(0, 5, paragraph, new_x="LMARGIN", new_y="NEXT")
        pdf.ln(3)
    pdf.add_page()
    pdf.multi_cell(0, 5, "Appendix. " + " ".join(_filler(rng, 3)))
    return bytes(pdf.output())


def _docx(rng: random.Random) -> bytes:
    document = docx.Document()
    document.add_heading("Staff policy", level=1)
    for paragraph in _around(
        rng, "Employees may carry over at most 5 unused vacation days into the next year."
    ):
        document.add_paragraph(paragraph)
    table = document.add_table(rows=3, cols=2)
    for row, (team, phone) in zip(
        table.rows,
        [("Team", "Phone"), ("Payroll", "extension 2210"), ("Helpdesk", "extension 4417")],
        strict=True,
    ):
        row.cells[0].text, row.cells[1].text = team, phone
    for paragraph in _filler(rng, 4):
        document.add_paragraph(paragraph)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def _markdown(rng: random.Random) -> bytes:
    parts = ["# Operations guide"]
    for n, paragraph in enumerate(_filler(rng, 12)):
        parts.append(f"## Part {n}\n\n{paragraph}")
    parts.insert(
        6, "## Backups\n\nDatabase backups run nightly at 02:30 UTC and are kept for 35 days."
    )
    return "\n\n".join(parts).encode()


def _html(rng: random.Random) -> bytes:
    body = "".join(f"<p>{p}</p>\n" for p in _filler(rng, 8))
    return (
        "<!doctype html><html><head><title>FAQ</title><style>p { color: red }</style>"
        "<script>var hidden = 'kiwi';</script></head><body><h1>Frequently asked</h1>"
        f"{body}<div><p>The café on the third floor closes at 16:00 on Fridays.</p></div>"
        f"<div hidden>The secret word is kiwi.</div>{body}</body></html>"
    ).encode()


def _csv(rng: random.Random) -> bytes:
    rows = ["code,site,notes"]
    for i in range(400):
        rows.append(f"STN-{i:04d},{rng.choice(_VOCABULARY).title()},{rng.choice(_VOCABULARY)}")
    rows[43] = "STN-0042,Grenoble,elevation 214 m"
    return ("\n".join(rows) + "\n").encode()


def _text(rng: random.Random) -> bytes:
    paragraphs = _around(rng, "Note: the project codename is Bluefinch.")
    return "\r\n\r\n".join(paragraphs).encode("utf-16")  # BOM-marked UTF-16, CRLF newlines


def _json(rng: random.Random) -> bytes:
    items = [{"id": i, "summary": p} for i, p in enumerate(_filler(rng, 30))]
    items[17]["summary"] = "The staging cluster runs Kubernetes 1.29 in the Oslo region."
    return json.dumps(items, separators=(",", ":")).encode()  # minified: one long line


def _code(rng: random.Random) -> bytes:
    functions = [
        f"def step_{n}():\n    '''{p[:120]}'''\n    return {n}\n"
        for n, p in enumerate(_filler(rng, 40))
    ]
    functions[21] = (
        "def retry_delay(attempt):\n"
        "    '''Exponential backoff capped at 90 seconds.'''\n"
        "    return min(90, 2 ** attempt)\n"
    )
    return "\n\n".join(functions).encode()


FILES = {
    "handbook.pdf": _pdf,
    "policy.docx": _docx,
    "guide.md": _markdown,
    "faq.html": _html,
    "stations.csv": _csv,
    "notes.txt": _text,
    "inventory.json": _json,
    "backoff.py": _code,
}

QUESTIONS = [
    ("handbook.pdf", "Which days does the Lyon warehouse dispatch orders?", "Tuesday and Friday"),
    ("policy.docx", "How many vacation days can I carry over?", "at most 5 unused vacation days"),
    ("policy.docx", "What's the Helpdesk's phone extension?", "4417"),
    ("guide.md", "How long are database backups kept?", "kept for 35 days"),
    ("faq.html", "When does the cafe close on Friday?", "16:00"),
    ("stations.csv", "What is the elevation of the Grenoble station?", "elevation 214 m"),
    ("notes.txt", "What's the project's codename?", "Bluefinch"),
    ("inventory.json", "Which Kubernetes version does the staging cluster run?", "1.29"),
    ("backoff.py", "What is the retry delay cap (backoff)?", "capped at 90 seconds"),
]


def _file_id(name: str) -> str:
    return "file-" + name.replace(".", "-")


@pytest.fixture(scope="module")
def corpus() -> dict[str, bytes]:
    rng = random.Random(1234)
    return {name: make(rng) for name, make in FILES.items()}


@pytest.fixture
def conn(corpus: dict[str, bytes]) -> Iterator[sqlite3.Connection]:
    db = sqlite3.connect(":memory:")
    retrieval.create_schema(db)
    with db:
        for name, data in corpus.items():
            retrieval.index_file(db, _file_id(name), name, data)
    yield db
    db.close()


@pytest.mark.parametrize(("name", "question", "answer"), QUESTIONS)
def test_the_best_passage_holds_the_answer_and_is_an_exact_slice(
    conn: sqlite3.Connection, corpus: dict[str, bytes], name: str, question: str, answer: str
) -> None:
    passages = retrieval.search(conn, [_file_id(n) for n in FILES], question, k=5)
    best = passages[0]
    assert (best.file_id, answer in best.text) == (_file_id(name), True), passages
    extracted = retrieval.extract(name, corpus[name]).text
    for passage in passages:
        source = next(n for n in FILES if _file_id(n) == passage.file_id)
        text = extracted if source == name else retrieval.extract(source, corpus[source]).text
        assert text[passage.start : passage.end] == passage.text
    assert [p.score for p in passages] == sorted((p.score for p in passages), reverse=True)


def test_every_file_is_chunked_into_several_passages(conn: sqlite3.Connection) -> None:
    counts = dict(conn.execute("SELECT file_id, chunks FROM retrieval_files").fetchall())
    assert all(counts[_file_id(name)] >= 3 for name in FILES), counts


def test_search_only_sees_the_files_it_is_given(conn: sqlite3.Connection) -> None:
    question = "Which days does the Lyon warehouse dispatch orders?"
    others = [_file_id(n) for n in FILES if n != "handbook.pdf"]
    assert all(
        p.file_id != _file_id("handbook.pdf") for p in retrieval.search(conn, others, question)
    )
    assert retrieval.search(conn, [], question) == []
    assert retrieval.search(conn, ["file-unknown"], question) == []


def test_a_removed_file_leaves_the_results(conn: sqlite3.Connection) -> None:
    pdf = _file_id("handbook.pdf")
    every = [_file_id(n) for n in FILES]
    question = "Lyon warehouse dispatch"
    assert retrieval.search(conn, every, question)[0].file_id == pdf
    with conn:
        assert retrieval.remove_file(conn, pdf) is True
    assert all(p.file_id != pdf for p in retrieval.search(conn, every, question, k=50))
    assert not retrieval.is_indexed(conn, pdf)
    assert retrieval.remove_file(conn, pdf) is False
    # The full-text index agrees with its content table (an external-content index can drift).
    conn.execute("INSERT INTO retrieval_fts (retrieval_fts) VALUES ('integrity-check')")
    assert conn.execute(
        "SELECT count(*) FROM retrieval_chunks WHERE file_id = ?", (pdf,)
    ).fetchone() == (0,)
    # The other files are untouched.
    assert retrieval.search(conn, every, "database backups kept")[0].file_id == _file_id("guide.md")


def test_indexing_a_file_again_replaces_it(conn: sqlite3.Connection) -> None:
    notes = _file_id("notes.txt")
    with conn:
        retrieval.index_file(conn, notes, "notes.txt", b"The codename is now Redwing.")
    assert retrieval.search(conn, [notes], "Bluefinch") == []
    assert retrieval.search(conn, [notes], "codename")[0].text == "The codename is now Redwing."
    conn.execute("INSERT INTO retrieval_fts (retrieval_fts) VALUES ('integrity-check')")


def test_html_text_is_only_what_a_reader_sees(corpus: dict[str, bytes]) -> None:
    text = retrieval.extract("faq.html", corpus["faq.html"]).text
    assert "Frequently asked" in text
    assert "The café on the third floor closes at 16:00 on Fridays." in text
    for invisible in ("kiwi", "color: red", "<p>", "FAQ"):
        assert invisible not in text


def test_html_keeps_preformatted_text_as_it_is() -> None:
    html = b"<p>Intro   text</p><pre>def f():\n    return 1\n</pre>after <b>it</b><p>x<br>  y</p>"
    text = retrieval.extract("code.html", html).text
    assert text == "Intro text\n\ndef f():\n    return 1\n\nafter it\n\nx\ny"


def test_docx_keeps_tables_and_document_order(corpus: dict[str, bytes]) -> None:
    text = retrieval.extract("policy.docx", corpus["policy.docx"]).text
    assert text.startswith("Staff policy\n\n")
    assert "Helpdesk | extension 4417" in text
    assert text.index("vacation days") < text.index("Helpdesk")


def test_the_index_persists_in_a_database_file(tmp_path: Path, corpus: dict[str, bytes]) -> None:
    path = tmp_path / "server.db"
    with sqlite3.connect(path) as db:
        retrieval.create_schema(db)
        retrieval.index_file(db, "file-a", "guide.md", corpus["guide.md"])
    db.close()
    with sqlite3.connect(path) as db:
        retrieval.create_schema(db)  # idempotent: the db layer may run it on every open
        assert "35 days" in retrieval.search(db, ["file-a"], "backups retention")[0].text
    db.close()


def test_files_without_an_extension_are_sniffed(corpus: dict[str, bytes]) -> None:
    assert retrieval.extract("scan", corpus["handbook.pdf"]).kind == "pdf"
    assert retrieval.extract("letter", corpus["policy.docx"]).kind == "docx"
    assert retrieval.extract("README", b"plain words\n").kind == "text"


def _truncated_pdf(corpus: dict[str, bytes]) -> bytes:
    return corpus["handbook.pdf"][:300]


@pytest.mark.parametrize(
    ("name", "make", "error", "says"),
    [
        ("report.pdf", lambda c: b"%PDF-1.7\n" + bytes(range(256)) * 8, UnreadableFile, "as PDF"),
        ("report.pdf", _truncated_pdf, UnreadableFile, "as PDF"),
        ("report.pdf", lambda c: c["policy.docx"], UnreadableFile, "does not start with %PDF-"),
        ("policy.docx", lambda c: c["handbook.pdf"], UnreadableFile, "as DOCX"),
        ("notes.txt", lambda c: c["handbook.pdf"], UnreadableFile, "not UTF-8 or UTF-16"),
        ("notes.txt", lambda c: b"ok\x00\x01\x02", UnreadableFile, "binary data"),
        ("notes.txt", lambda c: "caf\xe9".encode("latin-1"), UnreadableFile, "Save it as UTF-8"),
        ("photo.png", lambda c: b"\x89PNG\r\n\x1a\n", NotRetrievable, "[.png] are not supported"),
        ("tool.exe", lambda c: b"MZ\x90\x00", UnsupportedFileType, "Invalid extension exe."),
        ("blob", lambda c: b"\x89PNG\r\n\x1a\n\x00", UnsupportedFileType, "has no extension"),
    ],
)
def test_bad_files_get_one_typed_error_naming_them(
    corpus: dict[str, bytes], name: str, make: object, error: type[FileRejected], says: str
) -> None:
    data = make(corpus)  # type: ignore[operator]
    with pytest.raises(error) as caught:
        retrieval.prepare(name, data)
    assert says in caught.value.message
    assert caught.value.status == 400
    assert caught.value.param == "file"
    assert caught.value.filename == name
    if error is UnreadableFile:
        assert f"'{name}'" in caught.value.message


def test_upload_check_refuses_only_what_the_hosted_api_refused() -> None:
    for accepted in (
        "a.pdf",
        "b.PNG",
        "c.xlsx",
        "d.md",
        "e.go",
        "README",
        "f.tar.gz".replace(".gz", ""),
    ):
        retrieval.check_upload(accepted)
    with pytest.raises(UnsupportedFileType) as caught:
        retrieval.check_upload("setup.exe")
    assert caught.value.message.startswith('Invalid extension exe. Supported formats: "adoc",')
    assert retrieval.is_retrievable("x.docx")
    assert not retrieval.is_retrievable("x.png")


_NAMES = ["a.txt", "a.md", "a.html", "a.json", "a.csv", "a.py", "a.pdf", "a.docx", "a.png", "a"]
_PREFIXES = [b"", b"%PDF-1.4\n", b"PK\x03\x04", b"\xef\xbb\xbf", b"\xff\xfe", b"<html><body>", b"{"]


@settings(max_examples=200, deadline=None)
@given(
    name=st.sampled_from(_NAMES),
    prefix=st.sampled_from(_PREFIXES),
    body=st.binary(max_size=600) | st.text(max_size=300).map(str.encode),
)
def test_any_bytes_give_text_or_one_typed_error(name: str, prefix: bytes, body: bytes) -> None:
    rejected: FileRejected | None = None
    try:
        prepared = retrieval.prepare(name, prefix + body)
    except FileRejected as exc:  # anything else (a parser's own exception) fails the test
        rejected = exc
    if rejected is not None:
        assert rejected.message
        assert rejected.filename == name
        return
    for chunk in prepared.chunks:
        assert prepared.text[chunk.start : chunk.end] == chunk.text


def test_uploads_are_indexed_as_the_hosted_api_decided(corpus: dict[str, bytes]) -> None:
    prepared = retrieval.prepare_upload("handbook.pdf", "assistants", corpus["handbook.pdf"])
    assert prepared is not None
    assert "Lyon warehouse" in prepared.text
    # Fine-tuning data is never searched; images are kept for code interpreter, unindexed.
    assert retrieval.prepare_upload("train.jsonl", "fine-tune", b"{}") is None
    assert retrieval.prepare_upload("chart.png", "assistants", b"\x89PNG\r\n") is None
    with pytest.raises(UnsupportedFileType):
        retrieval.prepare_upload("tool.exe", "assistants", b"MZ")
    with pytest.raises(UnreadableFile):
        retrieval.prepare_upload("broken.pdf", "assistants", _truncated_pdf(corpus))


@pytest.mark.parametrize("name", ["notes.txt", "handbook.pdf", "policy.docx"])
def test_more_text_than_retrieval_reads_is_refused(corpus: dict[str, bytes], name: str) -> None:
    data = corpus[name]
    length = len(retrieval.extract(name, data).text)
    assert retrieval.prepare(name, data, max_chars=length).text  # exactly the limit is fine
    with pytest.raises(retrieval.TextTooLong) as caught:
        retrieval.prepare(name, data, max_chars=length - 1)
    assert f"'{name}'" in caught.value.message
    assert "Split it into smaller files" in caught.value.message


def test_a_huge_text_file_is_refused_before_it_is_decoded() -> None:
    with pytest.raises(retrieval.TextTooLong) as caught:
        retrieval.extract("big.txt", b"\xff" * 8000, max_chars=1000)  # never decoded: not UTF-8
    assert "at least 2,000 characters" in caught.value.message
