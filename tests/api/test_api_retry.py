"""Unit tests of the retry policy and of headers/edge cases a real server cannot produce.

The policy is pure, so most of these are plain function calls. The few that need a response the
embedded server never sends (an HTTP-date ``retry-after``, ``x-should-retry``, an HTML error page)
or need to see the headers the client sends use ``httpx.MockTransport``; everything else is
tested against the real server in ``test_client.py``.
"""

from __future__ import annotations

import email.utils
import json
from typing import Any

import httpx
import pytest

from assistsync.api import ApiClient, ResponseLostError, RetryPolicy, parse_retry_after
from assistsync.errors import ApiError

NOW = 1_700_000_000.0
POLICY = RetryPolicy()


# ------------------------------------------------------------------ parse_retry_after


def test_retry_after_ms_wins_over_retry_after() -> None:
    assert parse_retry_after({"retry-after-ms": "250", "retry-after": "3"}, NOW) == 0.25


def test_retry_after_seconds() -> None:
    assert parse_retry_after({"retry-after": "3"}, NOW) == 3.0


def test_retry_after_http_date_is_relative_to_now() -> None:
    date = email.utils.formatdate(NOW + 7, usegmt=True)
    assert parse_retry_after({"retry-after": date}, NOW) == pytest.approx(7.0)


def test_unreadable_retry_after_is_ignored() -> None:
    assert parse_retry_after({"retry-after": "soon"}, NOW) is None
    assert parse_retry_after({}, NOW) is None


def test_bad_retry_after_ms_falls_back_to_retry_after() -> None:
    assert parse_retry_after({"retry-after-ms": "x", "retry-after": "2"}, NOW) == 2.0


# ---------------------------------------------------------------------------- delay


@pytest.mark.parametrize(("retries_done", "expected"), [(0, 0.5), (1, 1.0), (2, 2.0), (5, 8.0)])
def test_backoff_without_hint_doubles_up_to_8_s(retries_done: int, expected: float) -> None:
    assert POLICY.delay(retries_done, None, now=NOW, random_value=0.0) == expected


def test_jitter_shortens_by_at_most_a_quarter() -> None:
    assert POLICY.delay(1, None, now=NOW, random_value=0.999999) == pytest.approx(0.75, abs=1e-5)


def test_hint_in_range_is_used_as_is() -> None:
    assert POLICY.delay(3, {"retry-after": "60"}, now=NOW, random_value=0.5) == 60.0
    assert POLICY.delay(0, {"retry-after-ms": "20"}, now=NOW, random_value=0.5) == 0.02


@pytest.mark.parametrize("hint", ["0", "-1", "61", "3600"])
def test_hint_out_of_range_falls_back_to_backoff(hint: str) -> None:
    assert POLICY.delay(0, {"retry-after": hint}, now=NOW, random_value=0.0) == 0.5


# -------------------------------------------------------------------- what to retry


@pytest.mark.parametrize(
    ("status", "retry"),
    [
        *[(status, True) for status in (408, 409, 429, 500, 503, 599)],
        *[(status, False) for status in (400, 401, 403, 404, 422)],
    ],
)
def test_retryable_statuses_match_the_sdk(status: int, retry: bool) -> None:
    assert POLICY.status_is_retryable(status, {}) is retry


def test_x_should_retry_overrides_the_status() -> None:
    assert POLICY.status_is_retryable(400, {"x-should-retry": "true"}) is True
    assert POLICY.status_is_retryable(503, {"x-should-retry": "false"}) is False


def test_rate_limits_are_bounded_by_time_waited_not_by_count() -> None:
    assert POLICY.budget_left(rate_limited=True, rate_limit_waited=119.0, other_retries=2)
    assert not POLICY.budget_left(rate_limited=True, rate_limit_waited=120.0, other_retries=0)
    assert POLICY.budget_left(rate_limited=False, rate_limit_waited=500.0, other_retries=1)
    assert not POLICY.budget_left(rate_limited=False, rate_limit_waited=0.0, other_retries=2)


def test_insufficient_quota_is_not_a_rate_limit() -> None:
    assert POLICY.status_is_retryable(429, {}, "rate_limit_exceeded")
    assert not POLICY.status_is_retryable(429, {}, "insufficient_quota")


def test_rate_limit_hint_is_a_floor_with_a_growing_random_extra() -> None:
    hint = {"retry-after-ms": "20"}
    assert POLICY.delay(0, hint, now=NOW, random_value=0.0, rate_limited=True) == 0.02
    assert POLICY.delay(0, hint, now=NOW, random_value=0.5, rate_limited=True) == 0.27
    assert POLICY.delay(3, hint, now=NOW, random_value=0.5, rate_limited=True) == 2.02
    assert POLICY.delay(9, hint, now=NOW, random_value=0.5, rate_limited=True) == 4.02


# ------------------------------------------------ client behaviour on crafted responses


def _client(handler: httpx.MockTransport, sleeps: list[float] | None = None) -> ApiClient:
    return ApiClient(
        "http://api.test/v1",
        "sk-unit-secret",
        transport=handler,
        sleep=(sleeps if sleeps is not None else []).append,
    )


def _page() -> httpx.Response:
    body: dict[str, Any] = {
        "object": "list",
        "data": [],
        "first_id": None,
        "last_id": None,
        "has_more": False,
    }
    return httpx.Response(200, json=body)


def test_headers_sent() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return _page()

    transport = httpx.MockTransport(handler)
    with _client(transport) as client:
        client.list_assistants()
        client.list_files()
    with ApiClient(
        "http://api.test/v1", "k", organization="org-1", project="proj-1", transport=transport
    ) as client:
        client.list_files()

    assistants, files, scoped = seen
    assert assistants.url.path == "/v1/assistants"
    assert assistants.url.params["limit"] == "100"
    assert assistants.url.params["order"] == "asc"
    assert assistants.headers["authorization"] == "Bearer sk-unit-secret"
    assert assistants.headers["openai-beta"] == "assistants=v1"
    assert assistants.headers["user-agent"].startswith("assistsync/")
    assert "openai-organization" not in assistants.headers
    assert "openai-project" not in assistants.headers
    assert "openai-beta" not in files.headers
    assert files.url.params["purpose"] == "assistants"
    assert scoped.headers["openai-organization"] == "org-1"
    assert scoped.headers["openai-project"] == "proj-1"


def test_http_date_retry_after_in_the_past_falls_back_to_backoff() -> None:
    responses = iter(
        [
            httpx.Response(
                429,
                headers={"retry-after": email.utils.formatdate(usegmt=True, timeval=None)},
                json={"error": {"message": "slow down"}},
            ),
            _page(),
        ]
    )
    # A date "now" rounds to <= 0 s away, which is out of (0, 60]: the backoff applies.
    sleeps: list[float] = []
    with _client(httpx.MockTransport(lambda r: next(responses)), sleeps) as client:
        assert client.list_assistants() == []
        assert client.stats.requests == 2
        assert client.stats.retries == 1
    assert 0.375 <= sleeps[0] <= 0.5


def test_http_date_retry_after_in_future() -> None:
    import time

    date = email.utils.formatdate(time.time() + 30, usegmt=True)
    responses = iter([httpx.Response(429, headers={"retry-after": date}), _page()])
    sleeps: list[float] = []
    with _client(httpx.MockTransport(lambda r: next(responses)), sleeps) as client:
        client.list_assistants()
    assert 28 <= sleeps[0] <= 30 + 0.5  # the hint, plus up to the first jitter window


def test_insufficient_quota_fails_at_once() -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        body: dict[str, Any] = {
            "error": {"message": "You exceeded your current quota", "code": "insufficient_quota"}
        }
        return httpx.Response(429, json=body)

    with _client(httpx.MockTransport(handler)) as client, pytest.raises(ApiError) as info:
        client.list_assistants()
    assert calls == 1
    assert info.value.code == "insufficient_quota"


def test_x_should_retry_false_stops_retries() -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return httpx.Response(503, headers={"x-should-retry": "false"}, json={"error": {}})

    with _client(httpx.MockTransport(handler)) as client, pytest.raises(ApiError) as info:
        client.list_files()
    assert calls == 1
    assert info.value.status == 503


def test_non_json_error_body_is_shown_briefly() -> None:
    page = "<html><body><h1>502 Bad Gateway</h1></body></html>" + " " * 100_000

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            502,
            headers={"content-type": "text/html", "x-request-id": "req_42"},
            content=page.encode(),
        )

    with _client(httpx.MockTransport(handler)) as client, pytest.raises(ApiError) as info:
        client.list_files()
    message = str(info.value)
    assert "502 Bad Gateway" in message
    assert "req_42" in message
    assert "after 2 retries" in message
    assert len(message) < 500
    assert info.value.request_id == "req_42"
    assert info.value.path == "/v1/files"


def test_error_envelope_fields_are_carried_and_key_redacted() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        body = {
            "error": {
                "message": "Incorrect API key provided: sk-unit-secret",
                "type": "invalid_request_error",
                "param": None,
                "code": "invalid_api_key",
            }
        }
        return httpx.Response(401, content=json.dumps(body).encode())

    with _client(httpx.MockTransport(handler)) as client, pytest.raises(ApiError) as info:
        client.get_assistant("asst_1")
    assert info.value.code == "invalid_api_key"
    assert "sk-unit-secret" not in str(info.value)
    assert "Check OPENAI_API_KEY" in str(info.value)


def test_create_with_unreadable_success_body_is_a_lost_response() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"not json")

    with _client(httpx.MockTransport(handler)) as client, pytest.raises(ResponseLostError):
        client.create_assistant({"model": "gpt-4"})


def test_ids_cannot_escape_their_path_segment() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.raw_path.decode())
        return httpx.Response(200, json={"id": "x", "model": "m"})

    with _client(httpx.MockTransport(handler)) as client:
        client.get_assistant("../files?purpose=x")
    assert seen == ["/v1/assistants/..%2Ffiles%3Fpurpose%3Dx"]


def test_rejects_a_base_url_without_scheme() -> None:
    from assistsync.errors import ConfigError

    with pytest.raises(ConfigError, match="OPENAI_BASE_URL"):
        ApiClient("localhost:8080/v1", "k")
