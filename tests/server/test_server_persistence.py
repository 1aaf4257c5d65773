"""With ``db=`` everything survives a restart; without it nothing is left behind."""

from __future__ import annotations

from pathlib import Path

from server_testkit import ServerFactory, checked_client, create_assistant, upload


def test_state_survives_a_restart(make_server: ServerFactory, tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    first = make_server(db=db)
    with checked_client(first) as c:
        kept = upload(c, b"kept content")
        gone = upload(c, b"deleted")
        assistants = [create_assistant(c, name=f"a{i}", file_ids=[kept["id"]]) for i in range(3)]
        c.delete(f"/files/{gone['id']}")
        c.delete(f"/assistants/{assistants[0]['id']}")
        c.post(f"/assistants/{assistants[1]['id']}", json={"metadata": {"k": "v"}})
        before = c.get("/assistants").json()
        files_before = c.get("/files").json()
        attachment = c.get(f"/assistants/{assistants[2]['id']}/files/{kept['id']}").json()
    first.stop()

    second = make_server(db=db)
    with checked_client(second) as c:
        assert c.get("/assistants").json() == before
        assert c.get("/files").json() == files_before
        assert c.get(f"/files/{kept['id']}/content").content == b"kept content"
        assert c.get(f"/files/{gone['id']}").status_code == 404
        assert c.get(f"/assistants/{assistants[2]['id']}/files/{kept['id']}").json() == attachment
        # Cursors keep working across the restart, even one of a deleted assistant.
        page = c.get("/assistants", params={"order": "asc", "after": assistants[0]["id"]}).json()
        assert [a["id"] for a in page["data"]] == [assistants[1]["id"], assistants[2]["id"]]
        # And the restarted server accepts new work alongside the old.
        create_assistant(c, file_ids=[kept["id"]])
        assert len(c.get("/assistants").json()["data"]) == 3
    assert sorted(p.name for p in (tmp_path / "s.db.files").iterdir()) == [kept["id"]]


def test_memory_mode_leaves_nothing_behind(make_server: ServerFactory) -> None:
    handle = make_server()
    with checked_client(handle) as c:
        upload(c, b"temporary")
    content_dir = handle.context.db.directory("files")
    assert any(content_dir.iterdir())
    handle.stop()
    assert not content_dir.exists()


def test_failed_upload_leaves_no_temporary_file(make_server: ServerFactory, tmp_path: Path) -> None:
    handle = make_server(db=tmp_path / "s.db", max_upload_bytes=100)
    with checked_client(handle) as c:
        response = c.post(
            "/files", files={"file": ("a", b"x" * 101)}, data={"purpose": "assistants"}
        )
        assert response.status_code == 400
        response = c.post("/files", files={"file": ("a", b"x")}, data={"purpose": "nope"})
        assert response.status_code == 400
    assert list((tmp_path / "s.db.files").iterdir()) == []
