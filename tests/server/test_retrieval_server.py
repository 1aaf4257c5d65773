"""The index inside the real server: its tables come with the database, a file deleted through
``DELETE /v1/files/{id}`` leaves every search (by trigger, in the delete's transaction), and the
index survives a restart of a persistent server."""

from __future__ import annotations

from pathlib import Path

import httpx
from server_testkit import ServerFactory, plain_client, upload

from assistsync.server import ServerHandle, retrieval

GUIDE = b"# Guide\n\nDatabase backups run nightly and are kept for 35 days.\n\nAnother paragraph."


def _index_upload(server: ServerHandle, client: httpx.Client, name: str, data: bytes) -> str:
    """Upload over HTTP, then index the stored bytes as the files endpoint will at upload."""
    file_id: str = upload(client, data, filename=name)["id"]
    stored = client.get(f"/files/{file_id}/content").content
    prepared = retrieval.prepare(name, stored)  # outside the database lock
    with server.context.db.write() as db:
        retrieval.store(db, file_id, prepared)
    return file_id


def _search(server: ServerHandle, file_ids: list[str], question: str) -> list[retrieval.Passage]:
    with server.context.db.read() as db:
        return retrieval.search(db, file_ids, question)


def test_deleting_a_file_over_http_removes_it_from_the_index(
    server: ServerHandle, client: httpx.Client
) -> None:
    guide = _index_upload(server, client, "guide.md", GUIDE)
    other = _index_upload(server, client, "other.txt", b"Backups of laptops are kept for a year.")
    assert "kept for 35 days" in _search(server, [guide], "how long are backups kept")[0].text
    assert client.delete(f"/files/{guide}").json()["deleted"] is True
    assert [p.file_id for p in _search(server, [guide, other], "backups kept")] == [other]
    with server.context.db.read() as db:
        assert not retrieval.is_indexed(db, guide)
        assert (
            db.execute(
                "SELECT count(*) FROM retrieval_chunks WHERE file_id = ?", (guide,)
            ).fetchone()[0]
            == 0
        )
        db.execute("INSERT INTO retrieval_fts (retrieval_fts) VALUES ('integrity-check')")


def test_the_index_survives_a_restart(tmp_path: Path, make_server: ServerFactory) -> None:
    db_path = tmp_path / "server.db"
    first = make_server(db=db_path)
    with plain_client(first) as client:
        guide = _index_upload(first, client, "guide.md", GUIDE)
    first.stop()
    second = make_server(db=db_path)
    assert "35 days" in _search(second, [guide], "backup retention")[0].text
    with second.context.db.read() as db:
        version = db.execute(
            "SELECT version FROM schema_versions WHERE name = 'retrieval'"
        ).fetchone()[0]
    assert version == 2  # the tables, then the trigger that follows file deletions
