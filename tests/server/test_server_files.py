"""Files and assistant files: uploads, downloads, and attachments kept consistent both ways."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator

import httpx
import pytest
from server_testkit import ServerFactory, create_assistant, plain_client, upload

from assistsync.server import ServerHandle

FILE_ID = re.compile(r"file-[A-Za-z0-9]{24}")


def test_upload_returns_the_file_object(client: httpx.Client) -> None:
    created = upload(client, b"some bytes", filename="guide.md")
    assert FILE_ID.fullmatch(created["id"])
    assert created["object"] == "file"
    assert created["bytes"] == 10
    assert created["filename"] == "guide.md"
    assert created["purpose"] == "assistants"
    assert client.get(f"/files/{created['id']}").json() == created


def test_content_round_trips_arbitrary_bytes(client: httpx.Client) -> None:
    content = os.urandom(300_000) + b"\r\n--boundary-like\r\n" + bytes(range(256))
    created = upload(client, content, filename="blob.zip")
    response = client.get(f"/files/{created['id']}/content")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/octet-stream"
    assert response.content == content


def test_empty_file_is_accepted(client: httpx.Client) -> None:
    created = upload(client, b"")
    assert created["bytes"] == 0
    assert client.get(f"/files/{created['id']}/content").content == b""


def test_client_side_path_is_reduced_to_the_name(client: httpx.Client) -> None:
    assert upload(client, filename="C:\\Users\\me\\report.md")["filename"] == "report.md"


def test_chunked_upload_streams(client: httpx.Client) -> None:
    def body() -> Iterator[bytes]:
        yield b'--b\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nassistants\r\n'
        yield b'--b\r\nContent-Disposition: form-data; name="file"; filename="s.txt"\r\n\r\n'
        for _ in range(50):
            yield b"x" * 10_000
        yield b"\r\n--b--\r\n"

    response = client.post(
        "/files", content=body(), headers={"content-type": "multipart/form-data; boundary=b"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["bytes"] == 500_000


def test_list_files_all_and_by_purpose(client: httpx.Client) -> None:
    a = upload(client)
    b = upload(client, purpose="fine-tune")
    c = upload(client)
    listing = client.get("/files").json()
    assert listing["object"] == "list"
    assert [f["id"] for f in listing["data"]] == [c["id"], b["id"], a["id"]]
    only = client.get("/files", params={"purpose": "assistants"}).json()["data"]
    assert [f["id"] for f in only] == [c["id"], a["id"]]
    assert client.get("/files", params={"purpose": "fine-tune"}).json()["data"] == [b]
    assert client.get("/files", params={"purpose": "other"}).json()["data"] == []


def test_delete_file(client: httpx.Client) -> None:
    created = upload(client)
    response = client.delete(f"/files/{created['id']}")
    assert response.json() == {"id": created["id"], "object": "file", "deleted": True}
    assert client.get(f"/files/{created['id']}").status_code == 404
    assert client.get(f"/files/{created['id']}/content").status_code == 404
    assert client.delete(f"/files/{created['id']}").status_code == 404
    assert client.get("/files").json()["data"] == []


def test_files_need_no_beta_header(server: ServerHandle) -> None:
    with httpx.Client(base_url=server.base_url, headers={"Authorization": "Bearer k"}) as c:
        assert c.get("/files").status_code == 200


def test_upload_over_the_limit_keeps_the_connection_usable(client: httpx.Client) -> None:
    # The server fixture allows 1 MiB per file.
    response = client.post(
        "/files", files={"file": ("big", b"x" * (1024 * 1024 + 1))}, data={"purpose": "assistants"}
    )
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "file"
    assert upload(client, b"x" * (1024 * 1024))["bytes"] == 1024 * 1024


def test_huge_declared_upload_is_refused_without_reading_it(make_server: ServerFactory) -> None:
    # A body far over the limit is answered at once and the connection closed, so the client
    # gets its 400 instead of the server reading gigabytes first.
    handle = make_server(max_upload_bytes=10)
    with plain_client(handle) as c:
        body = b"x" * (80 * 1024 * 1024)
        try:
            response = c.post(
                "/files", files={"file": ("big", body)}, data={"purpose": "assistants"}
            )
        except httpx.TransportError:
            pytest.skip("the OS reset the connection before the 400 was read")
        assert response.status_code == 400
        assert response.headers["connection"] == "close"


# -- assistant files -------------------------------------------------------------------------------


def test_attach_get_list_detach(client: httpx.Client) -> None:
    assistant = create_assistant(client)
    file = upload(client)
    path = f"/assistants/{assistant['id']}/files"
    attached = client.post(path, json={"file_id": file["id"]}).json()
    assert attached["id"] == file["id"]
    assert attached["object"] == "assistant.file"
    assert attached["assistant_id"] == assistant["id"]
    assert isinstance(attached["created_at"], int)
    assert client.get(f"{path}/{file['id']}").json() == attached
    assert client.get(path).json()["data"] == [attached]
    assert client.get(f"/assistants/{assistant['id']}").json()["file_ids"] == [file["id"]]
    detached = client.delete(f"{path}/{file['id']}").json()
    assert detached == {"id": file["id"], "object": "assistant.file.deleted", "deleted": True}
    assert client.get(f"{path}/{file['id']}").status_code == 404
    assert client.delete(f"{path}/{file['id']}").status_code == 404
    assert client.get(f"/assistants/{assistant['id']}").json()["file_ids"] == []
    assert client.get(f"/files/{file['id']}").status_code == 200  # the file itself stays


def test_attachments_on_unknown_assistant_are_404(client: httpx.Client) -> None:
    file = upload(client)
    assert client.get("/assistants/asst_x/files").status_code == 404
    assert client.post("/assistants/asst_x/files", json={"file_id": file["id"]}).status_code == 404
    assert client.get(f"/assistants/asst_x/files/{file['id']}").status_code == 404
    assert client.delete(f"/assistants/asst_x/files/{file['id']}").status_code == 404


def test_modify_file_ids_replaces_the_attached_set(client: httpx.Client) -> None:
    a, b, c = (upload(client)["id"] for _ in range(3))
    assistant = create_assistant(client, file_ids=[a, b])
    path = f"/assistants/{assistant['id']}"
    modified = client.post(path, json={"file_ids": [b, c]}).json()
    assert modified["file_ids"] == [b, c]
    listed = client.get(f"{path}/files", params={"order": "asc"}).json()["data"]
    assert [f["id"] for f in listed] == [b, c]
    assert client.get(f"{path}/files/{a}").status_code == 404
    assert client.post(path, json={"file_ids": []}).json()["file_ids"] == []
    assert client.get(f"{path}/files").json()["data"] == []


def test_attach_via_endpoint_shows_in_file_ids_and_modify_keeps_it(client: httpx.Client) -> None:
    a, b = upload(client)["id"], upload(client)["id"]
    assistant = create_assistant(client, file_ids=[a])
    path = f"/assistants/{assistant['id']}"
    client.post(f"{path}/files", json={"file_id": b})
    assert client.get(path).json()["file_ids"] == [a, b]
    # A modify without file_ids leaves attachments alone.
    assert client.post(path, json={"name": "x"}).json()["file_ids"] == [a, b]


def test_at_most_20_attachments(client: httpx.Client) -> None:
    files = [upload(client)["id"] for _ in range(21)]
    assistant = create_assistant(client, file_ids=files[:20])
    response = client.post(f"/assistants/{assistant['id']}/files", json={"file_id": files[20]})
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "file_id"
    assert len(client.get(f"/assistants/{assistant['id']}").json()["file_ids"]) == 20


def test_deleting_a_file_detaches_it_everywhere(client: httpx.Client) -> None:
    shared, other = upload(client)["id"], upload(client)["id"]
    one = create_assistant(client, file_ids=[shared, other])
    two = create_assistant(client, file_ids=[shared])
    client.delete(f"/files/{shared}")
    assert client.get(f"/assistants/{one['id']}").json()["file_ids"] == [other]
    assert client.get(f"/assistants/{two['id']}").json()["file_ids"] == []
    assert client.get(f"/assistants/{two['id']}/files/{shared}").status_code == 404
    listed = client.get("/assistants").json()["data"]
    assert {a["id"]: a["file_ids"] for a in listed} == {one["id"]: [other], two["id"]: []}


def test_deleting_an_assistant_removes_its_attachments(client: httpx.Client) -> None:
    file = upload(client)["id"]
    first = create_assistant(client, file_ids=[file])
    client.delete(f"/assistants/{first['id']}")
    # The file is free again: a new assistant can take it, and it still exists.
    assert create_assistant(client, file_ids=[file])["file_ids"] == [file]
    assert client.get(f"/files/{file}").status_code == 200


def test_assistant_files_paginate_both_ways(client: httpx.Client) -> None:
    files = [upload(client)["id"] for _ in range(20)]
    assistant = create_assistant(client, file_ids=files)
    path = f"/assistants/{assistant['id']}/files"
    seen: list[str] = []
    params: dict[str, str | int] = {"order": "asc", "limit": 6}
    while True:
        page = client.get(path, params=params).json()
        seen += [f["id"] for f in page["data"]]
        if not page["has_more"]:
            break
        params["after"] = page["last_id"]
    assert seen == files
    page = client.get(path, params={"order": "desc", "limit": 6, "after": files[10]}).json()
    assert [f["id"] for f in page["data"]] == files[4:10][::-1]
    page = client.get(path, params={"order": "desc", "limit": 3, "before": files[10]}).json()
    assert [f["id"] for f in page["data"]] == files[13:10:-1]
    assert page["has_more"] is True
    bad = client.get(path, params={"after": "file-unattached"})
    assert bad.status_code == 400
    assert bad.json()["error"]["param"] == "after"
