"""Stable manifest keys from assistant names: slugified, unique, reported when changed."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

MAX_KEY = 64
FALLBACK = "assistant"
"""The key of an assistant whose name has no letter or digit in ASCII (or no name)."""

_NOT_KEY = re.compile(r"[^a-z0-9]+")


def slugify(name: str | None) -> str:
    """``Support Bot (EU)`` -> ``support-bot-eu``; accents folded (``Café`` -> ``cafe``);
    a name with nothing left (``""``, ``日本語``) -> ``assistant``. Always a valid key."""
    folded = unicodedata.normalize("NFKD", name or "").encode("ascii", "ignore").decode()
    slug = _NOT_KEY.sub("-", folded.lower()).strip("-")[:MAX_KEY].rstrip("-")
    return slug or FALLBACK


@dataclass(frozen=True)
class Chosen:
    """The key given to one name, and the slug it wanted when that was taken."""

    key: str
    wanted: str

    @property
    def renamed(self) -> bool:
        """True when the slug was taken and the key got a suffix."""
        return self.key != self.wanted


def unique_key(name: str | None, taken: set[str]) -> Chosen:
    """The slug of ``name``, or the slug with the first free ``-2``, ``-3``… suffix; added to
    ``taken``. Deterministic for the same names in the same order."""
    wanted = slugify(name)
    key = wanted
    n = 1
    while key in taken:
        n += 1
        suffix = f"-{n}"
        key = wanted[: MAX_KEY - len(suffix)].rstrip("-") + suffix
    taken.add(key)
    return Chosen(key, wanted)
