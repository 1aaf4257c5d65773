"""API keys: what makes one unusable in a header, and scrubbing every form of it from text.

A key is sent as ``Authorization: Bearer <key>``. A key pasted with a line break, a non-ASCII
character or a control character in it cannot be sent: the transport either fails deep inside
with the key in its message (``Illegal header value b'Bearer …'``) or with a ``UnicodeEncodeError``.
:func:`header_problem` finds that before any request and says what is wrong without showing the
value; :class:`Redactor` is the second line of defence for any text that reaches a person.
"""

from __future__ import annotations

import json
import re
import urllib.parse

__all__ = ["REDACTED", "Redactor", "header_problem"]

REDACTED = "<api key>"

PREFIX = 12
"""Characters of a key's start that are enough to redact it: a message that cuts a key short
(or shows it up to a line break) still leaks that much."""

MIN_SECRET = 6
"""Shorter values are not scrubbed from text: a key of ``x`` (accepted by local servers that ignore
keys) would otherwise blank every ``x`` in the output, and protects nothing."""

_BREAKS = re.compile(r"[\s\x00-\x1f\x7f]+")


def header_problem(value: str) -> str | None:
    """What makes ``value`` unusable as an HTTP header value, or None when it is fine.

    Allowed: printable ASCII without spaces (``!`` to ``~``), which every bearer token, key and
    id of the Assistants API is. The answer names the kind of character and its position (1-based)
    and never the character itself, so it is safe to show for a secret.
    """
    for position, char in enumerate(value, start=1):
        code = ord(char)
        if 0x21 <= code <= 0x7E:
            continue
        if char in "\r\n":
            what = "a line break"
        elif char in " \t":
            what = "whitespace"
        elif 0xDC80 <= code <= 0xDCFF:  # how Python keeps bytes of the environment that are not
            what = "bytes that are not valid UTF-8"  # text (surrogateescape)
        elif code > 0x7E and code != 0x7F:
            what = "a non-ASCII character"
        else:
            what = "a control character"
        return f"contains {what} (character {position} of {len(value)})"
    return None


def _forms(secret: str) -> set[str]:
    """The ways ``secret`` can appear in text: raw, escaped as Python, bytes, JSON and URLs
    write it, and each of its parts between line breaks or spaces."""
    raw = secret.encode("utf-8", "surrogateescape")
    forms = {
        secret,
        secret.strip(),
        repr(secret)[1:-1],
        ascii(secret)[1:-1],
        repr(raw)[2:-1],
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
        urllib.parse.quote(raw, safe=""),
        raw.decode("utf-8", "replace"),
        raw.decode("latin-1"),
    }
    forms.update(_BREAKS.split(secret))
    return {form for form in forms if len(form) >= MIN_SECRET}


class Redactor:
    """Removes every form of the given secrets from text before it can reach a person.

    Each form (see :func:`_forms`) is removed wherever its first :data:`PREFIX` characters
    appear, together with as much of the rest as follows, so a key cut short is removed too.
    """

    def __init__(self, *secrets: str) -> None:
        forms: set[str] = set()
        for secret in secrets:
            if secret:
                forms |= _forms(secret)
        # Longest first: a part of the key must not break up a longer match of the whole.
        self._forms = sorted(forms, key=len, reverse=True)

    def __repr__(self) -> str:
        return "Redactor(<hidden>)"

    def __bool__(self) -> bool:
        return bool(self._forms)

    def __call__(self, text: str) -> str:
        """``text`` with every form of every secret (or a long enough start of one) replaced."""
        for form in self._forms:
            text = _scrub(text, form)
        return text


def _scrub(text: str, form: str) -> str:
    head = form[:PREFIX]
    start = text.find(head)
    if start < 0:
        return text
    out: list[str] = []
    done = 0
    while start >= 0:
        end = start + len(head)
        while end - start < len(form) and end < len(text) and text[end] == form[end - start]:
            end += 1
        out += [text[done:start], REDACTED]
        done = end
        start = text.find(head, end)
    out.append(text[done:])
    return "".join(out)
