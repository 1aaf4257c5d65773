"""Concurrent clients: no lost writes, no duplicate ids, consistent attachments."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from server_testkit import plain_client, upload

from assistsync.server import ServerHandle


def test_parallel_creates_are_all_kept(server: ServerHandle) -> None:
    def worker(n: int) -> list[str]:
        with plain_client(server) as c:
            ids = []
            for i in range(25):
                response = c.post("/assistants", json={"model": "m", "name": f"w{n}-{i}"})
                assert response.status_code == 200, response.text
                ids.append(response.json()["id"])
            return ids

    with ThreadPoolExecutor(8) as pool:
        created = [i for ids in pool.map(worker, range(8)) for i in ids]
    assert len(created) == len(set(created)) == 200
    with plain_client(server) as c:
        listed: list[str] = []
        params: dict[str, str | int] = {"limit": 100}
        while True:
            page = c.get("/assistants", params=params).json()
            listed += [a["id"] for a in page["data"]]
            if not page["has_more"]:
                break
            params["after"] = page["last_id"]
    assert sorted(listed) == sorted(created)
    assert server.stats.by_route["POST /v1/assistants"] == 200


def test_parallel_attaches_never_exceed_20(server: ServerHandle) -> None:
    with plain_client(server) as c:
        files = [upload(c)["id"] for _ in range(40)]
        assistant = c.post("/assistants", json={"model": "m"}).json()["id"]

    def attach(file_id: str) -> int:
        with plain_client(server) as c:
            return c.post(f"/assistants/{assistant}/files", json={"file_id": file_id}).status_code

    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(attach, files))
    assert statuses.count(200) == 20
    assert statuses.count(400) == 20
    with plain_client(server) as c:
        assert len(c.get(f"/assistants/{assistant}").json()["file_ids"]) == 20
