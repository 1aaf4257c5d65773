"""The client against the real embedded server over loopback: no mocks of our own code."""

from __future__ import annotations

import hashlib
import os
import socket
import tracemalloc
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from assistsync.api import ApiClient, ResponseLostError
from assistsync.errors import ApiError

MODEL = "gpt-4-turbo"


def _create_many(client: ApiClient, count: int, workers: int = 8) -> list[str]:
    with ThreadPoolExecutor(max_workers=workers) as pool:
        made = pool.map(
            lambda i: client.create_assistant({"model": MODEL, "name": f"bot-{i:03d}"}),
            range(count),
        )
        return [a.id for a in made]


def test_lists_250_assistants_in_3_pages(client: ApiClient, server: Any) -> None:
    ids = _create_many(client, 250)
    client.stats.reset()
    server.stats.reset()

    listed = client.list_assistants()

    assert sorted(a.id for a in listed) == sorted(ids)
    assert client.stats.requests == 3
    assert server.stats.requests == 3
    created = [a.created_at for a in listed]
    assert created == sorted(created), "order=asc gives oldest first"


def test_empty_account_costs_one_page(client: ApiClient) -> None:
    assert client.list_assistants() == []
    assert client.stats.requests == 1


def test_crud_round_trip(client: ApiClient) -> None:
    made = client.create_assistant(
        {"model": MODEL, "name": "a", "metadata": {"assistsync_key": "a"}}
    )
    assert made.tag == "a"
    changed = client.modify_assistant(made.id, {"instructions": "be brief"})
    assert changed.instructions == "be brief"
    assert client.get_assistant(made.id).instructions == "be brief"
    client.delete_assistant(made.id)
    client.delete_assistant(made.id)  # already gone: returns normally
    with pytest.raises(ApiError) as info:
        client.get_assistant(made.id)
    assert info.value.status == 404


def test_retries_server_errors(client: ApiClient, server: Any, sleeps: list[float]) -> None:
    server.faults.fail_next = 2

    assert client.list_assistants() == []

    assert client.stats.requests == 3
    assert client.stats.retries == 2
    assert len(sleeps) == 2
    assert 0.375 <= sleeps[0] <= 0.5
    assert 0.75 <= sleeps[1] <= 1.0


def test_gives_up_after_max_retries(client: ApiClient, server: Any) -> None:
    server.faults.fail_next = 3

    with pytest.raises(ApiError) as info:
        client.list_files()

    assert info.value.status == 500
    assert "after 2 retries" in str(info.value)
    assert info.value.method == "GET"
    assert info.value.path == "/v1/files"
    assert client.stats.requests == 3


def test_rate_limits_are_retried_patiently_honouring_retry_after(
    client: ApiClient, server: Any, sleeps: list[float]
) -> None:
    server.faults.rate_limit_next = 6  # more than max_retries: 429 has its own budget

    assert client.list_assistants() == []

    assert client.stats.retries == 6
    hint = server.faults.rate_limit_next_retry_ms / 1000
    assert len(sleeps) == 6
    for n, delay in enumerate(sleeps):
        # The hint is a floor; the random extra comes from a window doubling per retry.
        assert hint <= delay <= hint + min(0.5 * 2**n, 8)


def test_rate_limited_concurrent_creates_all_converge(client: ApiClient, server: Any) -> None:
    # Real sleeps here: 40 creates from 16 threads against 1200 requests/minute.
    with ApiClient(server.base_url, "sk-any") as real_time:
        server.faults.rate_limit_rpm = 1200
        ids = _create_many(real_time, 40, workers=16)
        server.faults.rate_limit_rpm = 0
        assert real_time.stats.retries > 0, "the limit was really hit"

    assert sorted(a.id for a in client.list_assistants()) == sorted(ids)


def test_create_is_retried_on_429_without_duplicates(client: ApiClient, server: Any) -> None:
    server.faults.rate_limit_next = 3

    made = client.create_assistant({"model": MODEL, "name": "once"})

    assert [a.id for a in client.list_assistants()] == [made.id]


def test_lost_create_raises_and_is_not_resent(client: ApiClient, server: Any) -> None:
    server.faults.lose_next = 1

    with pytest.raises(ResponseLostError) as info:
        client.create_assistant({"model": MODEL, "name": "lost"})

    assert client.stats.requests == 1, "a create must never be re-sent blindly"
    assert info.value.method == "POST"
    assert "not re-sent" in str(info.value)
    live = client.list_assistants()
    assert [a.name for a in live] == ["lost"], "the server did commit it"


def test_create_answered_500_raises_response_lost(client: ApiClient, server: Any) -> None:
    server.faults.fail_next = 1

    with pytest.raises(ResponseLostError) as info:
        client.create_assistant({"model": MODEL})

    assert info.value.status == 500
    assert client.stats.requests == 1


def test_modify_is_retried_after_a_lost_response(client: ApiClient, server: Any) -> None:
    made = client.create_assistant({"model": MODEL, "name": "before"})
    server.faults.lose_next = 1

    changed = client.modify_assistant(made.id, {"name": "after"})

    assert changed.name == "after"
    assert client.stats.retries == 1
    assert [a.name for a in client.list_assistants()] == ["after"]


def test_delete_after_a_lost_response_succeeds(client: ApiClient, server: Any) -> None:
    made = client.create_assistant({"model": MODEL})
    server.faults.lose_next = 1

    client.delete_assistant(made.id)  # the retry meets 404: already gone

    assert client.stats.retries == 1
    assert client.list_assistants() == []


def test_validation_error_carries_param(client: ApiClient) -> None:
    with pytest.raises(ApiError) as info:
        client.create_assistant({"model": MODEL, "name": "x" * 300})
    assert info.value.status == 400
    assert info.value.param == "name"
    assert client.stats.retries == 0
    assert not isinstance(info.value, ResponseLostError), "a 400 proves nothing was created"


def test_wrong_key_gives_a_clear_error_without_the_key(
    sleeps: list[float], api_key: str, server_mod: Any
) -> None:
    mod = server_mod
    with (
        mod.start_server(port=0, db=None, api_key="sk-right", faults=mod.Faults()) as h,
        ApiClient(h.base_url, api_key, sleep=sleeps.append) as client,
    ):
        with pytest.raises(ApiError) as info:
            client.list_assistants()

        error = info.value
        assert error.status == 401
        assert "rejected the key" in str(error)
        assert "Check OPENAI_API_KEY" in str(error)
        assert client.stats.retries == 0
        for text in (str(error), repr(error), repr(error.args), repr(client), repr(client.stats)):
            assert api_key not in text

        with ApiClient(h.base_url, "sk-right") as good:
            assert good.list_assistants() == []


def test_connection_refused_is_explained(sleeps: list[float], api_key: str) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    base_url = f"http://127.0.0.1:{port}/v1"

    with (
        ApiClient(base_url, api_key, sleep=sleeps.append) as client,
        pytest.raises(ApiError) as info,
    ):
        client.list_assistants()

    message = str(info.value)
    assert f"cannot reach {base_url}: connection refused" in message
    assert "Is the server running / OPENAI_BASE_URL right?" in message
    assert api_key not in message
    assert info.value.status is None
    assert client.stats.retries == 2


def test_create_is_retried_when_the_connection_cannot_be_opened(
    sleeps: list[float], api_key: str
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]

    with (
        ApiClient(f"http://127.0.0.1:{port}/v1", api_key, sleep=sleeps.append) as client,
        pytest.raises(ApiError) as info,
    ):
        client.create_assistant({"model": MODEL})

    assert not isinstance(info.value, ResponseLostError), "nothing was sent: nothing to lose"
    assert client.stats.retries == 2


def test_concurrent_calls_share_one_client(client: ApiClient, server: Any) -> None:
    ids = _create_many(client, 40)
    with ThreadPoolExecutor(max_workers=16) as pool:
        got = list(pool.map(client.get_assistant, ids))
    assert [a.id for a in got] == ids
    assert client.stats.requests == 80


def test_files_round_trip(client: ApiClient, tmp_path: Path) -> None:
    path = tmp_path / "faq.md"
    path.write_bytes(b"# FAQ\n\nAsk away.\n")

    uploaded = client.upload_file(path, "faq.md")

    assert uploaded.filename == "faq.md"
    assert uploaded.bytes == path.stat().st_size
    assert uploaded.purpose == "assistants"
    assert [f.id for f in client.list_files()] == [uploaded.id]
    assert client.file_sha256(uploaded.id) == hashlib.sha256(path.read_bytes()).hexdigest()
    client.delete_file(uploaded.id)
    client.delete_file(uploaded.id)  # already gone
    assert client.list_files() == []


def test_upload_is_retried_on_429(client: ApiClient, server: Any, tmp_path: Path) -> None:
    path = tmp_path / "b.zip"
    path.write_bytes(os.urandom(3 * 1024 * 1024))
    server.faults.rate_limit_next = 2

    uploaded = client.upload_file(path, "b.zip")

    assert client.stats.retries == 2
    assert [f.id for f in client.list_files()] == [uploaded.id]
    assert client.file_sha256(uploaded.id) == hashlib.sha256(path.read_bytes()).hexdigest()


def test_lost_upload_raises_and_is_not_resent(
    client: ApiClient, server: Any, tmp_path: Path
) -> None:
    path = tmp_path / "a.txt"
    path.write_bytes(b"a")
    server.faults.lose_next = 1

    with pytest.raises(ResponseLostError):
        client.upload_file(path, "a.txt")

    assert client.stats.requests == 1
    assert [f.filename for f in client.list_files()] == ["a.txt"]


def test_upload_and_hash_stream_in_constant_memory(
    tmp_path: Path, api_key: str, server_process: Any
) -> None:
    size = 50 * 1024 * 1024
    path = tmp_path / "big.zip"
    sha = hashlib.sha256()
    with path.open("wb") as fh:
        for _ in range(size // (1024 * 1024)):
            chunk = os.urandom(1024 * 1024)
            sha.update(chunk)
            fh.write(chunk)

    # The server runs in another process so only the client's allocations are traced.
    with (
        server_process(max_upload_bytes=2 * size) as base_url,
        ApiClient(base_url, api_key) as client,
    ):
        tracemalloc.start()
        try:
            uploaded = client.upload_file(path, "big.zip")
            _, upload_peak = tracemalloc.get_traced_memory()
            tracemalloc.reset_peak()
            digest = client.file_sha256(uploaded.id)
            _, download_peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()

    assert uploaded.bytes == size
    assert digest == sha.hexdigest()
    assert upload_peak < size / 10, f"upload peaked at {upload_peak} bytes"
    assert download_peak < size / 10, f"download peaked at {download_peak} bytes"
