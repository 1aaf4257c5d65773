"""Streaming ``multipart/form-data`` uploads for ``POST /v1/files`` (the files group).

The body goes through python-multipart's push parser one 1 MiB chunk at a time; the ``file``
part is written straight into a temporary file the caller provides, so memory use
does not grow with the upload. The whole body is read even after an error is found (when its
size is bounded), so the 400 reaches a client that is still sending instead of a reset socket.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import IO, Any

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from assistsync.server.framework.errors import ApiError, bad_request
from assistsync.server.framework.routing import Request

MULTIPART_OVERHEAD = 64 * 1024
"""Bytes allowed beyond the file itself: boundaries, part headers and the purpose field."""
_CHUNK = 1 << 20
_MAX_PURPOSE = 256


@dataclass
class Upload:
    """A received upload: its bytes are in the file at ``path`` (owned by the caller)."""

    path: str
    filename: str
    purpose: str
    size: int


@dataclass
class _Part:
    headers: dict[str, str] = field(default_factory=dict)
    name: str = ""
    filename: str | None = None
    field_buf: bytearray = field(default_factory=bytearray)
    header_field: bytearray = field(default_factory=bytearray)
    header_value: bytearray = field(default_factory=bytearray)


class _Receiver:
    """python-multipart callbacks that collect ``purpose`` and stream ``file`` to disk."""

    def __init__(
        self, new_upload: Callable[[], IO[bytes]], discard: Callable[[str], None], limit: int
    ) -> None:
        self.new_upload = new_upload
        self.discard_path = discard
        self.limit = limit
        self.part = _Part()
        self.error: ApiError | None = None
        self.sink: IO[bytes] | None = None
        self.upload_path: str | None = None
        self.filename: str | None = None
        self.size = 0
        self.purpose: str | None = None
        self.ended = False

    def fail(self, error: ApiError) -> None:
        # Only the first problem is reported; later parts are still parsed (and ignored).
        if self.error is None:
            self.error = error

    def on_part_begin(self) -> None:
        self.part = _Part()

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self.part.header_field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self.part.header_value += data[start:end]

    def on_header_end(self) -> None:
        name = self.part.header_field.decode("latin-1").strip().lower()
        self.part.headers[name] = self.part.header_value.decode("utf-8", "replace")
        self.part.header_field.clear()
        self.part.header_value.clear()

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self.part.headers.get("content-disposition"))
        self.part.name = options.get(b"name", b"").decode("utf-8", "replace")
        raw_filename = options.get(b"filename")
        if raw_filename is not None:
            self.part.filename = raw_filename.decode("utf-8", "replace")
        if self.part.name == "file":
            if self.sink is not None or self.upload_path is not None:
                self.fail(bad_request("The 'file' field was sent more than once.", "file"))
                return
            self.sink = self.new_upload()
            self.upload_path = self.sink.name
            # Browsers may send a full client-side path; only the last component is a name.
            name = (self.part.filename or "file").replace("\\", "/").rsplit("/", 1)[-1]
            self.filename = name or "file"
        elif self.part.name != "purpose":
            self.fail(
                bad_request(
                    f"Unrecognized request argument supplied: {self.part.name}", self.part.name
                )
            )

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self.part.name == "file" and self.sink is not None:
            self.size += end - start
            if self.size > self.limit:
                self.fail(
                    bad_request(
                        f"File too large: the limit is {self.limit} bytes per file.", "file"
                    )
                )
                return
            if self.error is None:
                self.sink.write(data[start:end])
        elif self.part.name == "purpose":
            self.part.field_buf += data[start:end]
            if len(self.part.field_buf) > _MAX_PURPOSE:
                self.fail(bad_request("Invalid 'purpose': value too long.", "purpose"))
                self.part.field_buf.clear()

    def on_part_end(self) -> None:
        if self.part.name == "file" and self.sink is not None:
            self.sink.close()
            self.sink = None
        elif self.part.name == "purpose":
            self.purpose = self.part.field_buf.decode("utf-8", "replace")

    def on_end(self) -> None:
        self.ended = True

    def discard(self) -> None:
        if self.sink is not None:
            self.sink.close()
            self.sink = None
        if self.upload_path is not None:
            self.discard_path(self.upload_path)
            self.upload_path = None


def receive_upload(
    request: Request[Any],
    *,
    new_upload: Callable[[], IO[bytes]],
    discard: Callable[[str], None],
    max_bytes: int,
    purposes: Sequence[str],
) -> Upload:
    """Parse the multipart body into an :class:`Upload`, or raise the first 400 found.

    ``new_upload`` opens the temporary file the ``file`` part is written to; ``discard``
    deletes one by name. The caller must keep ``Upload.path`` (move it) or ``discard`` it.
    """
    media, options = parse_options_header(request.headers.get("content-type"))
    boundary = options.get(b"boundary")
    if media != b"multipart/form-data" or not boundary:
        shown = request.headers.get("content-type") or "none"
        raise bad_request(
            f"Invalid Content-Type header ({shown}): uploads must be sent as multipart/form-data"
            " with the fields 'file' and 'purpose'."
        )
    ceiling = max_bytes + MULTIPART_OVERHEAD
    length = request.body.length
    if length is not None and length > ceiling:
        raise bad_request(
            f"File too large: the request body has {length} bytes and the limit is "
            f"{max_bytes} bytes per file.",
            "file",
        )
    receiver = _Receiver(new_upload, discard, max_bytes)
    try:
        parser = MultipartParser(
            boundary,
            {
                "on_part_begin": receiver.on_part_begin,
                "on_part_data": receiver.on_part_data,
                "on_part_end": receiver.on_part_end,
                "on_header_field": receiver.on_header_field,
                "on_header_value": receiver.on_header_value,
                "on_header_end": receiver.on_header_end,
                "on_headers_finished": receiver.on_headers_finished,
                "on_end": receiver.on_end,
            },
        )
        try:
            while chunk := request.body.read(_CHUNK):
                if request.body.consumed > ceiling:
                    # Only reachable with a chunked body of unknown size: stop reading here
                    # (the connection gets closed because the body was not drained).
                    raise bad_request(
                        f"File too large: the limit is {max_bytes} bytes per file.",
                        "file",
                    )
                parser.write(chunk)
            parser.finalize()
        except MultipartParseError as exc:
            raise bad_request(f"Malformed multipart/form-data body: {exc}.") from None
        if receiver.error is not None:
            raise receiver.error
        if not receiver.ended:
            raise bad_request(
                "Malformed multipart/form-data body: the closing boundary is missing."
            )
        if receiver.purpose is None:
            raise bad_request("Missing required parameter: 'purpose'.", "purpose")
        if receiver.purpose not in purposes:
            allowed = ", ".join(f"'{p}'" for p in purposes)
            raise bad_request(
                f"Invalid value for 'purpose': {receiver.purpose!r}. Supported values are: "
                f"{allowed}.",
                "purpose",
            )
        if receiver.upload_path is None or receiver.filename is None:
            raise bad_request("Missing required parameter: 'file'.", "file")
        upload = Upload(receiver.upload_path, receiver.filename, receiver.purpose, receiver.size)
        receiver.upload_path = None  # ownership passes to the caller
        return upload
    finally:
        receiver.discard()
