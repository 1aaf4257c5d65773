"""The HTTP front end's own request parsing, against the standard library it replaced.

Header blocks are split by :func:`parse_header_lines` (a fast path for plain lines, the e-mail
parser for anything else); a property test checks it gives exactly what
``http.client.parse_headers`` (what ``BaseHTTPRequestHandler`` used) gives, for generated
blocks full of the awkward cases: folded lines, bare CRs, lines without a colon, spaces and
tabs around values, non-ASCII bytes. The protocol rules kept from ``BaseHTTPRequestHandler``
(request-line limits, versions, ``Expect: 100-continue``, ``Connection``) are driven over a
real socket.
"""

from __future__ import annotations

import io
import re
import socket
from http.client import HTTPException, parse_headers

import pytest
from hypothesis import given
from hypothesis import strategies as st
from server_testkit import REQUEST_ID
from test_server_http import _raw

from assistsync.server import ServerHandle
from assistsync.server.framework.http import MAX_HEADERS, MAX_LINE, parse_header_lines, plain_head


def _stdlib(lines: list[bytes]) -> list[tuple[str, str]]:
    message = parse_headers(io.BytesIO(b"".join(lines) + b"\r\n"))
    return [(name, str(value)) for name, value in message.items()]


_pieces = st.sampled_from(
    [
        b"Host",
        b"X-A",
        b"content-type",
        b":",
        b": ",
        b" ",
        b"\t",
        b"\r",
        b"v",
        b"\xe9",
        b"From ",
        b"a=b",
        b"\x7f",
        b"\x00",
        b"Bearer k",
    ]
)
_line = st.builds(
    lambda parts, end: b"".join(parts) + end,
    st.lists(_pieces, max_size=6),
    st.sampled_from([b"\r\n", b"\n"]),
).filter(lambda line: line not in (b"\r\n", b"\n"))
_plain = st.builds(
    lambda name, space, value, end: name + b":" + space + value + end,
    st.from_regex(rb"\A[!-9;-~]{1,12}\Z"),
    st.sampled_from([b"", b" ", b"  ", b"\t"]),
    st.from_regex(rb"\A[ -~\x80-\xff]{0,20}\Z"),
    st.sampled_from([b"\r\n", b"\n"]),
)


@given(st.lists(_plain | _line, max_size=8))
def test_header_lines_parse_as_the_standard_library_does(lines: list[bytes]) -> None:
    assert parse_header_lines(lines) == _stdlib(lines)


@given(st.lists(_plain, min_size=1, max_size=8))
def test_plain_header_lines_take_the_fast_path(lines: list[bytes]) -> None:
    # Same answer as the standard library, and these are the lines a client normally sends.
    assert parse_header_lines(lines) == _stdlib(lines)
    assert all(name for name, _ in parse_header_lines(lines))


GET = b"GET /v1/files HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k\r\n"


def _statuses(raw: bytes) -> list[int]:
    return [int(status) for status in re.findall(rb"HTTP/1\.1 (\d{3}) [^\r\n]*\r\n", raw)]


@pytest.mark.parametrize(
    ("raw", "status", "words"),
    [
        (b"GET /" + b"a" * MAX_LINE + b" HTTP/1.1\r\n\r\n", 414, "Request-URI Too Long"),
        (GET + b"X: " + b"a" * MAX_LINE + b"\r\n\r\n", 431, "Line too long"),
        (GET + b"X: y\r\n" * MAX_HEADERS + b"\r\n", 431, "Too many headers"),
        (b"GET /v1/files HTTP/2.0\r\n\r\n", 505, "Invalid HTTP version (2.0)"),
        (b"GET /v1/files HTTP/1.x\r\n\r\n", 400, "Bad request version ('HTTP/1.x')"),
        (b"GET /v1/files HTTP/1.1 extra\r\n\r\n", 400, "Bad request version ('extra')"),
        (b"GET / x HTTP/1.1\r\n\r\n", 400, "Bad request syntax ('GET / x HTTP/1.1')"),
        (b"POST /v1/files\r\n\r\n", 400, "Bad HTTP/0.9 request type ('POST')"),
        (b"BREW /v1/files HTTP/1.1\r\n\r\n", 501, "Unsupported method ('BREW')"),
    ],
    ids=[
        "uri-too-long",
        "line-too-long",
        "too-many-headers",
        "http2",
        "bad-version",
        "four-words",
        "bad-syntax",
        "http09-post",
        "method",
    ],
)
def test_protocol_errors_close_with_an_envelope(
    server: ServerHandle, raw: bytes, status: int, words: str
) -> None:
    answer = _raw(server, raw + GET + b"\r\n")  # a second request that is never read
    assert _statuses(answer) == [status]
    assert words.encode() in answer
    assert REQUEST_ID.search(answer.decode("latin-1"))
    assert b"connection: close" in answer


def test_the_most_headers_allowed_are_served(server: ServerHandle) -> None:
    # MAX_HEADERS counts the blank line that ends them, as the standard library does: GET's
    # two lines, the filler and Connection make 99 lines, and the blank line the hundredth.
    filler = b"X: y\r\n" * (MAX_HEADERS - 4)
    assert _statuses(_raw(server, GET + filler + b"Connection: close\r\n\r\n")) == [200]
    with pytest.raises(HTTPException, match="more than 100 headers"):
        parse_headers(io.BytesIO(GET.split(b"\r\n", 1)[1] + filler + b"X: y\r\n" * 2 + b"\r\n"))
    answer = _raw(server, GET + filler + b"X: y\r\nConnection: close\r\n\r\n")
    assert _statuses(answer) == [431]


def test_keep_alive_serves_pipelined_requests_in_order(server: ServerHandle) -> None:
    answer = _raw(server, GET + b"\r\n" + b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n" + GET
                       + b"Connection: close\r\n\r\n")  # fmt: skip
    assert _statuses(answer) == [200, 401, 200]


def test_http_1_0_closes_unless_asked_to_keep_alive(server: ServerHandle) -> None:
    old = b"GET /v1/files HTTP/1.0\r\nAuthorization: Bearer k\r\n"
    assert _statuses(_raw(server, old + b"\r\n" + old + b"\r\n")) == [200]
    kept = old + b"Connection: keep-alive\r\n\r\n"
    assert _statuses(_raw(server, kept + old + b"\r\n")) == [200, 200]


def test_expect_100_continue_is_answered_before_the_body(server: ServerHandle) -> None:
    body = b'{"model": "gpt-4"}'
    head = (
        b"POST /v1/assistants HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k\r\n"
        b"OpenAI-Beta: assistants=v1\r\nContent-Type: application/json\r\n"
        b"Expect: 100-continue\r\nConnection: close\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
    )
    host, port = server.base_url.split("//")[1].split("/")[0].split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(head)
        assert sock.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(body)
        rest = b""
        while chunk := sock.recv(65536):
            rest += chunk
    assert rest.startswith(b"HTTP/1.1 200 OK\r\n")


def test_folded_and_repeated_headers_reach_the_handler(server: ServerHandle) -> None:
    # A folded OpenAI-Beta value, and a repeated one (joined with ", "), both carry the beta.
    for beta in (b"OpenAI-Beta: other=1,\r\n assistants=v1\r\n",
                 b"OpenAI-Beta: other=1\r\nOpenAI-Beta: assistants=v1\r\n"):  # fmt: skip
        raw = GET.replace(b"/files", b"/assistants") + beta + b"Connection: close\r\n\r\n"
        assert _statuses(_raw(server, raw)) == [200]
    # Without it, the same request is refused: the headers above were what made it pass.
    raw = GET.replace(b"/files", b"/assistants") + b"Connection: close\r\n\r\n"
    assert _statuses(_raw(server, raw)) == [400]


def test_a_blank_request_line_closes_quietly(server: ServerHandle) -> None:
    assert _raw(server, b"\r\n" + GET + b"\r\n") == b""


_request_line = st.sampled_from(
    [b"GET /v1/files HTTP/1.1", b"POST /v1/assistants HTTP/1.1", b"GET //x HTTP/1.1",
     b"GET /v1/files HTTP/1.0", b"BREW / HTTP/1.1", b"GET  /a HTTP/1.1", b"GET /\xa0 HTTP/1.1",
     b"GET http://x/ HTTP/1.1", b"GET /a HTTP/1.1 x"]
)  # fmt: skip


@given(_request_line, st.lists(_plain | _line, max_size=8))
def test_the_loops_plain_heads_parse_as_the_standard_library_does(
    request_line: bytes, lines: list[bytes]
) -> None:
    head = b"\r\n".join([request_line, *(line.removesuffix(b"\n").removesuffix(b"\r")
                                          for line in lines)])  # fmt: skip
    found = plain_head(head)
    if found is None:
        return  # not plain: the connection goes to a thread, which the tests above cover
    words, pairs = found
    assert words == request_line.decode("iso-8859-1").split()
    blocks = [line + b"\r\n" for line in head.split(b"\r\n")[1:]]
    assert pairs == _stdlib(blocks)


def test_plain_heads_are_recognised() -> None:
    head = b"GET /v1/files?x=1 HTTP/1.1\r\nHost: x\r\nX-Empty:\r\nAuthorization:  \tBearer k"
    assert plain_head(head) == (
        ["GET", "/v1/files?x=1", "HTTP/1.1"],
        [("Host", "x"), ("X-Empty", ""), ("Authorization", "Bearer k")],
    )
    for odd in (b"Host x", b": v", b"Bad Name: v", b"X: a\rb", b"X: a\nb", b" folded"):
        assert plain_head(b"GET / HTTP/1.1\r\nHost: x\r\n" + odd) is None
