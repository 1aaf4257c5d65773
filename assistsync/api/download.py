"""``GET /files/{id}/content`` to a local file: streamed, hashed on the way, never whole in memory.

Kept beside the client rather than in it: only ``assistsync import`` downloads content to keep.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import httpx

from assistsync.api.client import ApiClient, _quote

_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class Downloaded:
    """What a download wrote: the content's sha256 (hex) and size in bytes."""

    sha256: str
    size: int


def download_file(client: ApiClient, file_id: str, dest: Path) -> Downloaded:
    """Write the content of file ``file_id`` to ``dest`` (created or truncated), return its
    hash and size. A retry after a cut-off body starts again from byte 0. Raises ``ApiError``
    (``status == 404`` when the file is gone) and ``OSError`` when ``dest`` cannot be written.
    """

    def write(response: httpx.Response) -> Downloaded:
        sha = hashlib.sha256()
        size = 0
        with dest.open("wb") as out:
            for chunk in response.iter_bytes(_CHUNK):
                sha.update(chunk)
                size += len(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())  # kept in the project once moved there: durable first
        return Downloaded(sha.hexdigest(), size)

    return client._call("GET", f"/files/{_quote(file_id)}/content", consume=write)
