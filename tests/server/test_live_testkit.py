"""The live stream check (:mod:`live_testkit`) passes events on as they arrive and still
catches what the whole-stream check catches: an event the spec does not allow, an event cut
off, a stream that ends without ``done``."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
from live_testkit import check_live
from openapi_core import OpenAPI

RUN = {"id": "run_1", "object": "thread.run"}  # not a whole run: the spec refuses it
DONE = "event: done\ndata: [DONE]\n\n"


class _Pieces(httpx.SyncByteStream):
    """A body sent in these pieces; ``sent`` counts the pieces handed out so far."""

    def __init__(self, *pieces: str) -> None:
        self.pieces = [piece.encode() for piece in pieces]
        self.sent = 0

    def __iter__(self) -> Iterator[bytes]:
        for piece in self.pieces:
            self.sent += 1
            yield piece


def _response(body: _Pieces) -> httpx.Response:
    response = httpx.Response(
        200,
        headers={"content-type": "text/event-stream", "x-request-id": "req_" + "0" * 16},
        stream=body,
    )
    check_live(response)
    return response


def test_events_pass_on_as_they_arrive(spec: OpenAPI) -> None:
    # An event split across pieces (as TCP may split it), then done.
    body = _Pieces("event: do", "ne\ndata: [DO", "NE]\n\n")
    response = _response(body)
    pieces = response.iter_raw()
    assert next(pieces) == b"event: do"
    assert body.sent == 1  # the check did not read ahead to see the end
    assert b"".join(pieces) == b"ne\ndata: [DONE]\n\n"


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (f"event: thread.run.created\ndata: {json.dumps(RUN)}\n\n{DONE}", "thread.run.created"),
        ("event: done\ndata: [DONE]\n\nevent: thread.run.created\ndata: {", "mid-event"),
        ("", r"\[\]"),
    ],
    ids=["off-spec", "cut-off", "no-done"],
)
def test_a_wrong_stream_fails_the_test(spec: OpenAPI, body: str, why: str) -> None:
    response = _response(_Pieces(body))
    with pytest.raises(AssertionError, match=why):
        response.read()
