"""Keys that cannot be sent are refused up front; every form of a key is scrubbed from text."""

from __future__ import annotations

import pytest

from assistsync.api import ApiClient, Redactor, header_problem
from assistsync.errors import ConfigError

KEY = "sk-unit-0123456789abcdef\nXYZW"


def test_header_problem_names_the_kind_and_position_never_the_value() -> None:
    assert header_problem("sk-fine_key.0-9~") is None
    assert header_problem("ab\ncd") == "contains a line break (character 3 of 5)"
    assert header_problem("abé") == "contains a non-ASCII character (character 3 of 3)"
    assert header_problem("a\x00") == "contains a control character (character 2 of 2)"
    assert header_problem("a\x7f") == "contains a control character (character 2 of 2)"
    assert header_problem("a b") == "contains whitespace (character 2 of 3)"
    assert header_problem("a\udcff") == "contains bytes that are not valid UTF-8 (character 2 of 2)"


@pytest.mark.parametrize(
    "text",
    [
        f"Illegal header value b'Bearer {KEY.encode()!r}'",  # the transport's message
        f"Illegal header value b{('Bearer ' + KEY).encode()!r}",
        f"header {KEY!r} refused",
        f"raw {KEY} raw",
        '{"key": "sk-unit-0123456789abcdef\\nXYZW"}',
        "key starts sk-unit-01234…",  # a long prefix
        "first line: sk-unit-0123456789abcdef",
    ],
)
def test_every_form_of_the_key_is_redacted(text: str) -> None:
    redacted = Redactor(KEY)(text)
    assert "sk-unit-01234" not in redacted
    assert "0123456789abcdef" not in redacted
    assert "<api key>" in redacted


def test_redactor_leaves_other_text_and_tiny_keys_alone() -> None:
    assert Redactor(KEY)("GET /v1/assistants failed") == "GET /v1/assistants failed"
    assert Redactor("x")("example text") == "example text"
    assert repr(Redactor(KEY)) == "Redactor(<hidden>)"


@pytest.mark.parametrize("key", [KEY, "sk-é", "sk-\x01"])
def test_the_client_refuses_a_key_it_cannot_send_without_showing_it(key: str) -> None:
    with pytest.raises(ConfigError) as info:
        ApiClient("http://127.0.0.1:9/v1", key)
    assert "the API key contains" in info.value.message
    assert key not in info.value.message
    assert "sk-unit" not in info.value.message


def test_the_client_refuses_an_organization_it_cannot_send() -> None:
    with pytest.raises(ConfigError, match="organization id contains a non-ASCII"):
        ApiClient("http://127.0.0.1:9/v1", "sk-ok", organization="orgé")


@pytest.mark.parametrize("url", ["http://a\x00b/v1", "http://[::1/v1", "http://\udcff/v1"])
def test_an_unparseable_base_url_is_a_config_error(url: str) -> None:
    with pytest.raises(ConfigError, match="OPENAI_BASE_URL"):
        ApiClient(url, "sk-ok")
