"""The citation pass on its own: however a model's answer is cut into deltas, markers naming a
passage become annotations with exact indices, markers naming none are dropped, and every other
character comes through unchanged and in order."""

from __future__ import annotations

import itertools
import re
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from assistsync.server.retrieval import Passage
from assistsync.server.runs.model import ModelEvent, TextDelta, Usage
from assistsync.server.runs.retrieval_step import (
    NO_RETRIEVAL,
    CitedText,
    Retrieved,
    annotations_of,
    context_blocks,
    numbered_passages,
)

PASSAGES = (
    Passage("file-a", 1, "Backups are kept for 35 days.", 3.0, 0, 29),
    Passage("file-b", 2, "Badges are renewed in January.", 2.0, 10, 40),
)
CITING = Retrieved(PASSAGES, active=True)
# A marker: its number, an optional ":k", a short label (usually "source").
VALID = re.compile(r"【[12](?::\d+)?†[^【】\n]{0,40}】")
ANY_MARKER = re.compile(r"【\d+(?::\d+)?†[^【】\n]{0,40}】")


def run(retrieved: Retrieved, chunks: list[str]) -> tuple[str, list[dict[str, Any]]]:
    events: list[ModelEvent] = [TextDelta(chunk) for chunk in chunks]
    events.append(Usage(1, 1))
    out = list(retrieved.cite(events))
    assert isinstance(out[-1], Usage)  # other events pass through, after the held text
    texts = [e for e in out if isinstance(e, TextDelta)]
    assert all(e.text for e in texts)  # no empty deltas
    return "".join(e.text for e in texts), [n for e in texts for n in annotations_of(e)]


def split(text: str, cuts: list[int]) -> list[str]:
    points = sorted({0, len(text), *(c % (len(text) + 1) for c in cuts)})
    return [text[a:b] for a, b in itertools.pairwise(points)]


pieces = st.lists(
    st.sampled_from(
        ["Backups ", "are kept ", "【1†source】", "【2†source】", "【3†source】", "【0†source】",
         "【1:0†source】", "【", "】", "†", "1", " 【 not a marker】", "\n", "é", "【12"]
    ),
    max_size=20,
)  # fmt: skip


@given(pieces, st.lists(st.integers(min_value=0, max_value=400), max_size=8))
def test_markers_become_exact_annotations_however_the_text_is_cut(
    parts: list[str], cuts: list[int]
) -> None:
    answer = "".join(parts)
    text, notes = run(CITING, split(answer, cuts))
    # the same as if it came in one piece: the cut never matters
    assert (text, notes) == run(CITING, [answer] if answer else [])
    assert text == ANY_MARKER.sub(
        lambda m: m.group(0) if VALID.fullmatch(m.group(0)) else "", answer
    )
    assert [n["text"] for n in notes] == VALID.findall(text)
    for note in notes:
        assert text[note["start_index"] : note["end_index"]] == note["text"]
        passage = PASSAGES[int(note["text"][1]) - 1]
        assert note["file_citation"] == {"file_id": passage.file_id, "quote": passage.text}
        assert note["type"] == "file_citation"


def test_a_marker_split_over_three_deltas_is_held_until_complete() -> None:
    events = list(
        CITING.cite([TextDelta("kept 35 days【"), TextDelta("1†sou"), TextDelta("rce】.")])
    )
    assert events == [
        CitedText("kept 35 days"),
        CitedText(
            "【1†source】.",
            (
                {
                    "type": "file_citation",
                    "text": "【1†source】",
                    "start_index": 12,
                    "end_index": 22,
                    "file_citation": {"file_id": "file-a", "quote": PASSAGES[0].text},
                },
            ),
        ),
    ]


def test_an_unfinished_marker_at_the_end_is_plain_text() -> None:
    assert run(CITING, ["see 【1†sou"]) == ("see 【1†sou", [])


def test_without_retrieval_markers_are_left_alone() -> None:
    events = [TextDelta("a【9†source】"), Usage(1, 2)]
    assert list(NO_RETRIEVAL.cite(events)) == events
    assert NO_RETRIEVAL.context == ()


def test_retrieval_with_nothing_found_drops_every_marker() -> None:
    assert run(Retrieved(active=True), ["a【1†source】b"]) == ("ab", [])


def test_the_context_numbers_passages_and_echo_reads_them_back() -> None:
    blocks = context_blocks(PASSAGES)
    assert blocks[1:] == (f"【1†source】\n{PASSAGES[0].text}", f"【2†source】\n{PASSAGES[1].text}")
    assert numbered_passages(blocks) == [(1, PASSAGES[0].text), (2, PASSAGES[1].text)]
    assert context_blocks(()) == ()
