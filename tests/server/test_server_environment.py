"""What the server's environment can get wrong is a plain error, never a crash or a hint-less 404.

``assistsync server --db`` on a bad path exits 1 with one sentence (exit 3 means a bug of
ours); a database or content directory that stops accepting writes at run time is a 5xx with a
message for the operator; a client pointed at the server root learns where the API is.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from server_testkit import (
    AUTH,
    BETA,
    REQUEST_ID,
    ServerFactory,
    checked_client,
    plain_client,
    upload,
)

from assistsync.server import DatabaseUnavailable, start_server

REPO = Path(__file__).resolve().parents[2]
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def run_server_command(*args: str) -> subprocess.CompletedProcess[str]:
    """``assistsync server ARGS`` through the real entry point (it must exit, not serve)."""
    return subprocess.run(
        [sys.executable, "-c", "from assistsync.cli.main import entry; entry()", "server", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=60,
        check=False,
    )


def assert_plain_error(result: subprocess.CompletedProcess[str], *phrases: str) -> None:
    assert result.returncode == 1, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr
    assert "bug" not in result.stderr
    assert result.stderr.startswith("Error: "), result.stderr
    for phrase in phrases:
        assert phrase in result.stderr, result.stderr


def test_db_that_is_not_a_database(tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("these are my notes, not a database\n" * 200)
    result = run_server_command("--port", "0", "--db", str(notes))
    assert_plain_error(result, str(notes), "is not an assistsync server database")
    assert notes.read_text().startswith("these are my notes")  # untouched


def test_db_in_a_directory_that_does_not_exist(tmp_path: Path) -> None:
    db = tmp_path / "typo" / "state.db"
    result = run_server_command("--port", "0", "--db", str(db))
    assert_plain_error(result, str(db.parent), "does not exist")
    assert not db.parent.exists()  # no longer created silently


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc")
def test_db_where_nothing_can_be_written() -> None:
    result = run_server_command("--port", "0", "--db", "/proc/assistsync-test.db")
    assert_plain_error(result, "/proc/assistsync-test.db", "choose a writable location")


@pytest.mark.skipif(IS_ROOT, reason="root ignores directory permissions")
def test_db_in_a_read_only_directory(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        result = run_server_command("--port", "0", "--db", str(locked / "s.db"))
    finally:
        locked.chmod(0o700)
    assert_plain_error(result, str(locked / "s.db"))


def test_start_server_raises_one_error_type_and_leaves_nothing_open(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    (tmp_path / "s.db.files").write_text("a file where the content directory belongs")
    with pytest.raises(DatabaseUnavailable, match="cannot create the directory"):
        start_server(port=0, db=db)
    # The database was closed again: it can be opened (and removed) at once.
    (tmp_path / "s.db.files").unlink()
    with start_server(port=0, db=db) as handle, checked_client(handle) as c:
        assert c.get("/files").status_code == 200


def test_a_full_database_is_a_server_error_that_changes_nothing(
    make_server: ServerFactory,
) -> None:
    handle = make_server()
    with checked_client(handle) as c:
        c.post("/assistants", json={"model": "gpt-4"})
        with handle.context.db.read() as db:
            pages = db.execute("PRAGMA page_count").fetchone()[0]
            # SQLite's own limit: the next page it needs is refused as "disk is full".
            db.execute(f"PRAGMA max_page_count = {pages}")
        before = c.get("/assistants").json()
        response = c.post("/assistants", json={"model": "gpt-4", "instructions": "x" * 100_000})
        assert response.status_code == 500
        error = response.json()["error"]
        assert error["type"] == "server_error"
        assert "cannot write its database" in error["message"]
        assert "full" in error["message"]
        assert c.get("/assistants").json() == before  # nothing half-written, still serving


def test_an_upload_the_disk_refuses_is_a_server_error(make_server: ServerFactory) -> None:
    handle = make_server()
    with checked_client(handle) as c:
        shutil.rmtree(handle.context.db.directory("files"))  # the content directory vanished
        response = c.post("/files", files={"file": ("a.txt", b"x")}, data={"purpose": "assistants"})
        assert response.status_code == 500
        error = response.json()["error"]
        assert error["type"] == "server_error"
        assert "could not store the upload" in error["message"]
        assert c.get("/files").json()["data"] == []


# -- the server root --------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/v1"])
def test_the_root_says_where_the_api_is_without_a_key(
    make_server: ServerFactory, path: str
) -> None:
    handle = make_server()
    root = handle.base_url.removesuffix("/v1")
    response = httpx.get(root + path)  # no key, no beta header: a browser or a curl
    assert response.status_code == 200
    assert REQUEST_ID.fullmatch(response.headers["x-request-id"])
    body = response.json()
    assert body["base_url"] == handle.base_url
    assert f"OPENAI_BASE_URL={handle.base_url}" in body["message"]


def test_a_client_without_v1_gets_a_hint(make_server: ServerFactory) -> None:
    handle = make_server()
    root = handle.base_url.removesuffix("/v1")
    with httpx.Client(base_url=root, headers={**AUTH, **BETA}) as c:
        response = c.get("/assistants")
        assert response.status_code == 404
        message = response.json()["error"]["message"]
        assert message.startswith("Invalid URL (GET /assistants)")
        assert "did you mean /v1/assistants?" in message
        thread = c.post("/threads/thread_1/messages", json={})
        assert "did you mean /v1/threads/thread_1/messages?" in thread.json()["error"]["message"]
    with plain_client(handle) as c:
        # A path that exists nowhere gets no hint.
        response = c.get(root + "/nothing/here")
        assert response.status_code == 404
        assert "did you mean" not in response.json()["error"]["message"]


def test_content_removed_behind_the_servers_back_is_a_server_error(
    make_server: ServerFactory,
) -> None:
    handle = make_server()
    with checked_client(handle) as c:
        file = upload(c, b"bytes")
        (handle.context.db.directory("files") / file["id"]).unlink()
        response = c.get(f"/files/{file['id']}/content")
        assert response.status_code == 500
        error = response.json()["error"]
        assert error["type"] == "server_error"
        assert file["id"] in error["message"]
        assert c.get(f"/files/{file['id']}").status_code == 200  # the metadata is still served
