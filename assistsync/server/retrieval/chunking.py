"""Chunking: extracted text -> overlapping passages, each an exact ``[start, end)`` slice.

A chunk ends at the best boundary in the second half of its window, in this order: before a
Markdown heading (Markdown only), a blank line (paragraph), a line end, a sentence end, a space;
a hard cut only where none exists. The next chunk starts at the earliest good boundary within
the last ``overlap`` characters of the previous one, so a sentence cut at a chunk's end is whole
at the next one's start. Code and CSV break at lines (a row is never split when it fits).

Every chunk is trimmed of surrounding whitespace and is never empty, so
``text[chunk.start:chunk.end]`` is exactly the passage a citation quotes.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from assistsync.server.retrieval.extract import Kind

MAX_CHARS = 1200
"""Default chunk size: about 300 tokens, small enough to quote, large enough to answer from."""
OVERLAP_CHARS = 200
"""Default overlap: about two sentences carried from one chunk into the next."""

_NON_SPACE = re.compile(r"\S")
_SENTENCE_END = re.compile(r"[.!?;:][)\"'\]]*\s")


@dataclass(frozen=True, slots=True)
class Chunk:
    """One passage: ``text == extracted[start:end]``."""

    start: int
    end: int
    text: str


def chunk_text(
    text: str, kind: Kind = "text", *, max_chars: int = MAX_CHARS, overlap: int = OVERLAP_CHARS
) -> list[Chunk]:
    """Split ``text`` into overlapping chunks of at most ``max_chars`` characters."""
    if max_chars < 2 or not 0 <= overlap < max_chars // 2:
        raise ValueError("need max_chars >= 2 and 0 <= overlap < max_chars / 2")
    return list(_chunks(text, kind, max_chars, overlap))


def _chunks(text: str, kind: Kind, max_chars: int, overlap: int) -> Iterator[Chunk]:
    size = len(text)
    headings = kind == "markdown"
    start = _skip_space(text, 0, size)
    while start < size:
        limit = start + max_chars
        if limit >= size:
            end = size
        else:
            end = _break_before(text, start + max_chars // 2, limit, headings)
        stop = _trim_end(text, start, end)
        if stop > start:
            yield Chunk(start, stop, text[start:stop])
        if end >= size:
            return
        following = _skip_space(
            text, _overlap_start(text, max(start + 1, end - overlap), end), size
        )
        # Progress is guaranteed: the next start lies after this one.
        start = following if following > start else _skip_space(text, end, size)


def _break_before(text: str, low: int, high: int, headings: bool) -> int:
    """The best position in ``(low, high]`` to end a chunk (the chunk is ``[.., pos)``)."""
    if headings:
        found = text.rfind("\n#", low, high)
        if found > low:
            return found + 1
    for mark in ("\n\n", "\n"):
        found = text.rfind(mark, low, high)
        if found > low:
            return found + 1
    ends = [m.end() for m in _SENTENCE_END.finditer(text, low, high)]
    if ends:
        return ends[-1]
    found = text.rfind(" ", low, high)
    return found + 1 if found > low else high


def _overlap_start(text: str, low: int, high: int) -> int:
    """The earliest good boundary in ``[low, high)`` to start the next chunk at."""
    for mark in ("\n\n", "\n"):
        found = text.find(mark, low, high)
        if found >= 0:
            return found + len(mark)
    first = _SENTENCE_END.search(text, low, high)
    if first is not None:
        return first.end()
    found = text.find(" ", low, high)
    return found + 1 if found >= 0 else high


def _skip_space(text: str, pos: int, size: int) -> int:
    # A regex, not a loop: a file may hold megabytes of blank space.
    found = _NON_SPACE.search(text, pos)
    return found.start() if found is not None else size


def _trim_end(text: str, start: int, end: int) -> int:
    while end > start and text[end - 1].isspace():
        end -= 1
    return end
