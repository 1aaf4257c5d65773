"""The official SDK for tests that act while a run streams: events reach it as they are sent.

:func:`runs_testkit.sdk_for` checks a streamed answer by reading it whole in its client's
response hook, before the SDK sees the first event — fine for a test that reads a stream to
its end, but a test that cancels (or moves the clock) once it has seen some event would wait
there for the run to end without it. :func:`live_sdk` checks the same things event by event
as the stream passes through (each event against the spec's event schemas, and ``done`` last
when it is read to its end), so the SDK iterates the events the moment they arrive.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterator

import httpx
from openai import OpenAI
from runs_testkit import check_any, event_schema_errors, parse_sse, sdk_for
from server_testkit import REQUEST_ID


class _CheckedEvents(httpx.SyncByteStream):
    """A response body passed on unchanged, each server-sent event checked as it completes."""

    def __init__(self, inner: httpx.SyncByteStream) -> None:
        self._inner = inner
        self._decode = codecs.getincrementaldecoder("utf-8")().decode
        self._text = ""
        self.events: list[str] = []

    def __iter__(self) -> Iterator[bytes]:
        for raw in self._inner:
            self._take(self._decode(raw))
            yield raw
        self._take(self._decode(b"", final=True))
        assert not self._text.strip(), f"the stream ended mid-event: {self._text!r}"
        assert self.events[-1:] == ["done"], self.events

    def _take(self, text: str) -> None:
        self._text += text
        while "\n\n" in self._text:
            block, self._text = self._text.split("\n\n", 1)
            for name, data in parse_sse(block):
                errors = event_schema_errors(name, data)
                assert not errors, (name, data, errors)
                self.events.append(name)

    def close(self) -> None:
        self._inner.close()


def check_live(response: httpx.Response) -> None:
    """``check_any``, but an event stream is checked as it is read, not read here."""
    if response.headers.get("content-type") != "text/event-stream":
        check_any(response)
        return
    assert response.status_code == 200
    assert REQUEST_ID.fullmatch(response.headers.get("x-request-id", ""))
    assert isinstance(response.stream, httpx.SyncByteStream)
    response.stream = _CheckedEvents(response.stream)


def live_sdk(base_url: str) -> OpenAI:
    """:func:`runs_testkit.sdk_for` with its streams checked as they pass (:func:`check_live`)."""
    return sdk_for(base_url, check_live)
