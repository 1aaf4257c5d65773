"""Fault knobs and request statistics."""

from __future__ import annotations

import time

import httpx
import pytest
from server_testkit import ServerFactory, checked_client, create_assistant, plain_client

from assistsync.server import Faults, ServerHandle
from assistsync.server.framework.faults import RateLimiter, format_duration


def _ids(client: httpx.Client) -> list[str]:
    return [a["id"] for a in client.get("/assistants", params={"limit": 100}).json()["data"]]


def test_stats_count_every_request_by_route(server: ServerHandle, client: httpx.Client) -> None:
    created = create_assistant(client)
    client.get(f"/assistants/{created['id']}")
    client.get(f"/assistants/{created['id']}")
    client.get("/nope")
    client.get("/files", headers={"Authorization": ""})
    assert server.stats.requests == 5
    assert server.stats.by_route == {
        "POST /v1/assistants": 1,
        "GET /v1/assistants/{assistant_id}": 2,
        "GET (no route)": 1,
        "GET /v1/files": 1,
    }
    server.stats.reset()
    assert server.stats.requests == 0
    assert server.stats.by_route == {}


def test_fail_next_answers_500_before_doing_anything(
    server: ServerHandle, client: httpx.Client
) -> None:
    server.faults.fail_next = 2
    for _ in range(2):
        response = client.post("/assistants", json={"model": "m"})
        assert response.status_code == 500
        assert response.json()["error"]["type"] == "server_error"
    assert server.faults.fail_next == 0
    assert _ids(client) == []
    assert server.stats.by_route["POST /v1/assistants"] == 2


def test_error_rate_injects_500_and_503_reproducibly(make_server: ServerFactory) -> None:
    def statuses(seed: int) -> list[int]:
        handle = make_server(faults=Faults(error_rate=0.5, seed=seed))
        with checked_client(handle) as c:
            return [c.get("/files").status_code for _ in range(60)]

    first = statuses(7)
    assert set(first) == {200, 500, 503}
    assert first == statuses(7)
    assert first != statuses(8)


def test_error_rate_one_fails_everything(make_server: ServerFactory) -> None:
    handle = make_server(faults=Faults(error_rate=1.0, seed=1))
    with checked_client(handle) as c:
        assert {c.post("/assistants", json={"model": "m"}).status_code for _ in range(10)} <= {
            500,
            503,
        }
        handle.faults.error_rate = 0
        assert _ids(c) == []


def test_rate_limit_next_gives_429_with_retry_hints(
    server: ServerHandle, client: httpx.Client
) -> None:
    server.faults.rate_limit_next = 1
    response = client.post("/assistants", json={"model": "m"})
    assert response.status_code == 429
    error = response.json()["error"]
    assert error["code"] == "rate_limit_exceeded"
    assert response.headers["retry-after-ms"] == "20"
    assert response.headers["retry-after"] == "1"
    assert _ids(client) == []
    assert client.post("/assistants", json={"model": "m"}).status_code == 200


def test_rate_limit_rpm_headers_and_429(server: ServerHandle, client: httpx.Client) -> None:
    server.faults.rate_limit_rpm = 60  # one request per second, no burst
    ok = client.get("/files")
    assert ok.status_code == 200
    assert ok.headers["x-ratelimit-limit-requests"] == "60"
    assert ok.headers["x-ratelimit-remaining-requests"] == "0"
    assert ok.headers["x-ratelimit-reset-requests"].endswith("s")
    limited = client.get("/files")
    assert limited.status_code == 429
    assert 0 < int(limited.headers["retry-after-ms"]) <= 1000
    assert limited.headers["retry-after"] == "1"
    assert limited.headers["x-ratelimit-limit-requests"] == "60"
    assert limited.headers["x-ratelimit-remaining-requests"] == "0"
    server.faults.rate_limit_rpm = 0
    unlimited = client.get("/files")
    assert unlimited.status_code == 200
    assert "x-ratelimit-limit-requests" not in unlimited.headers


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_rate_limiter_converges_for_a_client_honouring_retry_after() -> None:
    clock = FakeClock()
    limiter = RateLimiter(clock)
    admitted = 0
    end = clock.now + 60
    while clock.now < end:
        verdict = limiter.check(120)
        if verdict.allowed:
            admitted += 1
        else:
            assert 0 < verdict.retry_after_s <= 0.5
            clock.now += verdict.retry_after_s
    # 120 per minute plus the initial bucket of two; never a burst of the whole minute.
    assert 120 <= admitted <= 122


def test_rate_limiter_spreads_requests_evenly() -> None:
    clock = FakeClock()
    limiter = RateLimiter(clock)
    assert [limiter.check(600).allowed for _ in range(12)] == [True] * 10 + [False] * 2
    clock.now += 0.1
    assert limiter.check(600).allowed
    assert not limiter.check(600).allowed


def test_format_duration() -> None:
    assert format_duration(0.012) == "12ms"
    assert format_duration(1.2) == "1.2s"
    assert format_duration(360) == "6m0s"


def test_latency_delays_every_request(make_server: ServerFactory) -> None:
    handle = make_server(faults=Faults(latency_ms=60))
    with checked_client(handle) as c:
        started = time.monotonic()
        c.get("/files")
        assert time.monotonic() - started >= 0.06


def test_lose_next_commits_then_drops_the_connection(
    server: ServerHandle, client: httpx.Client
) -> None:
    server.faults.lose_next = 1
    with pytest.raises(httpx.RemoteProtocolError):
        client.post("/assistants", json={"model": "m", "name": "lost"})
    listed = client.get("/assistants").json()["data"]
    assert [a["name"] for a in listed] == ["lost"]
    assert server.faults.lose_next == 0
    # A lost delete is committed too.
    server.faults.lose_next = 1
    with pytest.raises(httpx.RemoteProtocolError):
        client.delete(f"/assistants/{listed[0]['id']}")
    assert _ids(client) == []


def test_lose_next_spares_reads_and_failed_mutations(
    server: ServerHandle, client: httpx.Client
) -> None:
    server.faults.lose_next = 1
    assert client.get("/assistants").status_code == 200
    assert client.post("/assistants", json={}).status_code == 400
    assert server.faults.lose_next == 1


def test_lost_upload_is_committed(server: ServerHandle, client: httpx.Client) -> None:
    server.faults.lose_next = 1
    with pytest.raises(httpx.RemoteProtocolError):
        client.post("/files", files={"file": ("a.txt", b"abc")}, data={"purpose": "assistants"})
    assert [f["filename"] for f in client.get("/files").json()["data"]] == ["a.txt"]


def test_lost_response_rate(make_server: ServerFactory) -> None:
    handle = make_server(faults=Faults(lost_response_rate=1.0))
    with plain_client(handle) as c:
        for _ in range(3):
            with pytest.raises(httpx.RemoteProtocolError):
                c.post("/assistants", json={"model": "m"})
        assert len(_ids(c)) == 3
        handle.faults.lost_response_rate = 0
        assert c.post("/assistants", json={"model": "m"}).status_code == 200


def test_faults_take_counts_down_to_zero() -> None:
    faults = Faults(fail_next=2)
    assert faults.take("fail_next")
    assert faults.take("fail_next")
    assert not faults.take("fail_next")
    assert faults.fail_next == 0
