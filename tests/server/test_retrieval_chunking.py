"""Chunking keeps exact offsets, respects paragraphs, rows and headings, and overlaps."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from assistsync.server.retrieval import Chunk, chunk_text

_PIECES = st.sampled_from(
    ["word", "Word.", "para", "\n", "\n\n", " ", "  ", "# Head", "x" * 50, "é", "end!", "\t"]
)
_TEXTS = st.lists(_PIECES, max_size=300).map("".join) | st.text(max_size=2000)


def _paragraph(n: int) -> str:
    return " ".join(f"Sentence {n}.{i} says something about topic {n}." for i in range(6))


@settings(max_examples=300, deadline=None)
@given(text=_TEXTS, max_chars=st.integers(20, 400), ratio=st.floats(0, 0.49))
def test_chunks_are_exact_trimmed_bounded_and_cover_the_text(
    text: str, max_chars: int, ratio: float
) -> None:
    overlap = min(int(max_chars * ratio), max_chars // 2 - 1)
    chunks = chunk_text(text, "markdown", max_chars=max_chars, overlap=overlap)
    covered = [False] * len(text)
    for before, chunk in zip([None, *chunks], chunks, strict=False):
        assert text[chunk.start : chunk.end] == chunk.text
        assert chunk.text
        assert chunk.text == chunk.text.strip()
        assert len(chunk.text) <= max_chars
        if before is not None:
            assert chunk.start > before.start
            assert chunk.start >= before.end - overlap  # overlap is bounded
        for i in range(chunk.start, chunk.end):
            covered[i] = True
    assert all(covered[i] or ch.isspace() for i, ch in enumerate(text))


def test_chunks_end_at_paragraph_ends_when_paragraphs_fit() -> None:
    paragraphs = [_paragraph(n) for n in range(20)]
    text = "\n\n".join(paragraphs)
    ends = {text.index(p) + len(p) for p in paragraphs}
    chunks = chunk_text(text, "text", max_chars=1200, overlap=200)
    assert len(chunks) > 3
    assert all(chunk.end in ends for chunk in chunks)


def test_the_next_chunk_repeats_the_last_sentences_of_the_previous() -> None:
    text = " ".join(f"Fact number {i} is true." for i in range(400))
    chunks = chunk_text(text, "text", max_chars=500, overlap=120)
    for before, after in itertools.pairwise(chunks):
        shared = text[after.start : before.end]
        assert 0 < len(shared) <= 120
        # Whole sentences are carried over: the overlap starts a sentence.
        assert shared.startswith("Fact number ")
        assert before.text.endswith(".")


def test_markdown_chunks_start_at_headings() -> None:
    sections = [f"## Section {n}\n\n{_paragraph(n)}" for n in range(10)]
    text = "# Guide\n\n" + "\n\n".join(sections)
    chunks = chunk_text(text, "markdown", max_chars=700, overlap=0)
    assert all(chunk.text.startswith("#") for chunk in chunks)


def test_csv_chunks_hold_whole_rows() -> None:
    rows = ["id,name,city"] + [
        f"{i},Person {i} with a longer name,City {i % 17}" for i in range(300)
    ]
    text = "\n".join(rows) + "\n"
    chunks = chunk_text(text, "csv", max_chars=400, overlap=80)
    wanted = set(rows)
    for chunk in chunks:
        assert set(chunk.text.split("\n")) <= wanted


def test_a_word_longer_than_a_chunk_is_cut_hard() -> None:
    text = "start " + "z" * 1000 + " end"
    chunks = chunk_text(text, "text", max_chars=300, overlap=50)
    assert all(len(c.text) <= 300 for c in chunks)
    assert "".join(c.text for c in chunks).count("z") >= 1000
    assert chunks[-1].text.endswith("end")


def test_empty_and_blank_text_have_no_chunks() -> None:
    assert chunk_text("") == []
    assert chunk_text(" \n\n\t ") == []
    assert chunk_text("  one  ") == [Chunk(2, 5, "one")]
