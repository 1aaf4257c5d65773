"""Questions are free text: no input makes FTS5 fail, and matching forgives form and accents."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assistsync.server import retrieval

DOCS = {
    "file-menu": "Menu\n\nThe café serves crème brûlée on Sundays.\n\nRefunds are paid within "
    "14 days of a request.",
    "file-ops": 'Operations\n\nThe "NEAR" operator and (parentheses) appear in this text: '
    "col:value, prefix*, ^start, a-b, x+y, 'quotes', AND OR NOT.\n\nmax_upload_bytes is 512 MB.",
}


@pytest.fixture(scope="module")
def conn() -> Iterator[sqlite3.Connection]:
    db = sqlite3.connect(":memory:", check_same_thread=False)
    retrieval.create_schema(db)
    with db:
        for file_id, text in DOCS.items():
            retrieval.index_file(db, file_id, file_id + ".txt", text.encode())
    yield db
    db.close()


HOSTILE = [
    '"',
    '""',
    "'",
    "NEAR(",
    "NEAR(a b, 3)",
    "a AND",
    "OR",
    "NOT NOT",
    "*",
    "prefix*",
    "col:value",
    "text:café",
    "^start",
    "-x",
    "(",
    ")",
    "{a b}",
    "a + b",
    "\\",
    "\x00",
    ";DROP TABLE retrieval_chunks;--",
    "What's the \"NEAR\" operator (and 'quotes')?",
    "émoji 🎉 only",
    "",
    "   ",
    "?!.,",
]


@pytest.mark.parametrize("question", HOSTILE)
def test_hostile_questions_never_fail(conn: sqlite3.Connection, question: str) -> None:
    passages = retrieval.search(conn, list(DOCS), question, k=3)
    assert all(p.text == DOCS[p.file_id][p.start : p.end] for p in passages)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(question=st.text(max_size=200))
def test_any_text_is_a_valid_question(conn: sqlite3.Connection, question: str) -> None:
    retrieval.search(conn, list(DOCS), question, k=3)


def test_operators_in_a_question_are_words(conn: sqlite3.Connection) -> None:
    best = retrieval.search(conn, list(DOCS), 'What does the "NEAR" operator do?')[0]
    assert best.file_id == "file-ops"
    assert "NEAR" in best.text


def test_accents_and_word_forms_are_forgiven(conn: sqlite3.Connection) -> None:
    assert "café" in retrieval.search(conn, list(DOCS), "CAFE creme brulee")[0].text
    assert "Refunds" in retrieval.search(conn, list(DOCS), "refund paid")[0].text
    assert "Sundays" in retrieval.search(conn, list(DOCS), "sunday")[0].text


def test_identifiers_are_found_by_their_parts(conn: sqlite3.Connection) -> None:
    assert "512 MB" in retrieval.search(conn, list(DOCS), "max_upload_bytes")[0].text


def test_the_match_expression_quotes_words_and_drops_stop_words() -> None:
    assert retrieval.match_expression('What is the "NEAR" operator?') == '"near" OR "operator"'
    assert retrieval.match_expression("What is it?") == '"what" OR "is" OR "it"'
    assert retrieval.match_expression("?!") is None
    assert retrieval.match_expression("x_y c-d") == '"x" OR "y" OR "c" OR "d"'
    many = " ".join(f"w{i}" for i in range(100))
    assert retrieval.match_expression(many).count(" OR ") == retrieval.index.MAX_QUERY_TERMS - 1  # type: ignore[union-attr]


def test_k_limits_the_passages(conn: sqlite3.Connection) -> None:
    assert len(retrieval.search(conn, list(DOCS), "the", k=1)) == 1
    assert retrieval.search(conn, list(DOCS), "the", k=0) == []


def _index(texts: list[str]) -> sqlite3.Connection:
    db = sqlite3.connect(":memory:")
    retrieval.create_schema(db)
    with db:
        for n, text in enumerate(texts):
            retrieval.index_file(db, f"file-{n}", f"{n}.txt", text.encode())
    return db


def test_common_words_never_cost_a_passage() -> None:
    # "river" is in every chunk (so it carries no weight and is left out of the ranking query),
    # "zebra" in one: the zebra chunk comes first, and k passages still come back.
    texts = [f"The river passes mill number {n} on its way." for n in range(9)]
    texts.append("A zebra drinks from the river.")
    db = _index(texts)
    passages = retrieval.search(db, [f"file-{n}" for n in range(10)], "zebra river", k=5)
    assert len(passages) == 5
    assert passages[0].text == "A zebra drinks from the river."
    # Only common words: still an answer, not an empty list.
    assert len(retrieval.search(db, ["file-3"], "river mill way", k=5)) == 1
    assert retrieval.search(db, ["file-3"], "unicorn griffin", k=5) == []
    db.close()


def test_a_single_chunk_index_still_answers() -> None:
    db = _index(["Refunds are paid within 14 days."])
    assert retrieval.search(db, ["file-0"], "When are refunds paid?")[0].start == 0
    db.close()
