"""fetch_live against the real embedded server: the request floor and lock recovery."""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from assistsync.api import ApiClient
from assistsync.fetch import fetch_live, recovery_candidates
from assistsync.model import Desired, DesiredFile, LiveFile, Lock, LockedFile

MODEL = "gpt-4-turbo"
EMPTY_LOCK = Lock(lineage="test")


def _upload(client: ApiClient, tmp_path: Path, name: str, content: bytes) -> str:
    folder = tmp_path / hashlib.sha256(content).hexdigest()[:12]
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_bytes(content)
    return client.upload_file(path, name).id


def _desired(path: str, content: bytes) -> Desired:
    sha = hashlib.sha256(content).hexdigest()
    return Desired(files={path: DesiredFile(path=path, sha256=sha, size=len(content))})


def test_fetch_costs_the_request_floor(client: ApiClient, server: Any, tmp_path: Path) -> None:
    with ThreadPoolExecutor(max_workers=8) as pool:
        made = list(pool.map(lambda i: client.create_assistant({"model": MODEL}).id, range(150)))
    file_id = _upload(client, tmp_path, "a.md", b"alpha")
    client.modify_assistant(made[0], {"file_ids": [file_id]})
    client.stats.reset()
    server.stats.reset()

    live = fetch_live(client, Desired(), EMPTY_LOCK)

    assert client.stats.requests == 3, "ceil(150/100) pages + one /files"
    assert server.stats.requests == 3
    assert sorted(a.id for a in live.assistants) == sorted(made)
    assert live.assistant(made[0]) is not None
    assert live.assistant(made[0]).file_ids == (file_id,)  # type: ignore[union-attr]
    assert [f.id for f in live.files] == [file_id]
    assert live.file_sha256 == {}


def test_fetch_of_an_empty_account_costs_two_requests(client: ApiClient) -> None:
    live = fetch_live(client, Desired(), EMPTY_LOCK)
    assert live.assistants == ()
    assert live.files == ()
    assert client.stats.requests == 2


def test_lock_recovery_hashes_only_plausible_candidates(
    client: ApiClient, server: Any, tmp_path: Path
) -> None:
    content = b"# FAQ\nthe answer\n"
    twin = bytes(reversed(content))  # same name and size, other content: still a candidate
    match = _upload(client, tmp_path, "faq.md", content)
    same_size_twin = _upload(client, tmp_path, "faq.md", twin)
    _upload(client, tmp_path, "faq.md", content + b"longer")  # other size
    _upload(client, tmp_path, "other.md", content)  # other name
    owned = _upload(client, tmp_path, "faq.md", b"x" * len(content))
    lock = Lock(
        lineage="test",
        files={"old/faq.md": LockedFile(id=owned, sha256="0" * 64, size=len(content))},
    )
    client.stats.reset()

    live = fetch_live(client, _desired("docs/faq.md", content), lock)

    assert live.file_sha256 == {
        match: hashlib.sha256(content).hexdigest(),
        same_size_twin: hashlib.sha256(twin).hexdigest(),
    }
    assert client.stats.requests == 2 + 2, "the floor plus one download per candidate"


def test_no_recovery_when_the_lock_knows_the_content(client: ApiClient, tmp_path: Path) -> None:
    content = b"known"
    file_id = _upload(client, tmp_path, "k.md", content)
    sha = hashlib.sha256(content).hexdigest()
    lock = Lock(lineage="t", files={"k.md": LockedFile(id=file_id, sha256=sha, size=5)})
    client.stats.reset()

    live = fetch_live(client, _desired("k.md", content), lock)

    assert live.file_sha256 == {}
    assert client.stats.requests == 2


def test_recovery_candidates_are_unique_and_in_live_order() -> None:
    files = [
        LiveFile(id="file-b", filename="x.md", bytes=3),
        LiveFile(id="file-a", filename="x.md", bytes=3),
        LiveFile(id="file-c", filename="x.md", bytes=4),
    ]
    desired = Desired(
        files={
            "one/x.md": DesiredFile(path="one/x.md", sha256="1" * 64, size=3),
            "two/x.md": DesiredFile(path="two/x.md", sha256="2" * 64, size=3),
        }
    )
    assert recovery_candidates(desired, EMPTY_LOCK, files) == ["file-b", "file-a"]
