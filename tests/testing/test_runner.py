"""The runner against the real embedded server: streamed turns, stubs, a clock it is given."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from assistsync.api import ApiClient
from assistsync.api.runs import Conversations, PendingCall, _events
from assistsync.model.testfile import Assertion, Stub
from assistsync.server import ServerHandle, start_server
from assistsync.testing.loader import Attachment, Check, TestCase, TurnCase, Where
from assistsync.testing.runner import Files, Runner, stub_output

TOOL = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}


@pytest.fixture
def server() -> Iterator[ServerHandle]:
    with start_server(port=0) as handle:
        yield handle


@pytest.fixture
def client(server: ServerHandle) -> Iterator[ApiClient]:
    with ApiClient(server.base_url, "sk-test") as api:
        yield api


def turn(
    user: str, *expect: dict[str, object], stubs: dict[str, tuple[Stub, ...]] | None = None
) -> TurnCase:
    checks = tuple(
        Check(Assertion.model_validate(e), Where("t.yaml", 9, i + 1)) for i, e in enumerate(expect)
    )
    return TurnCase(user, Where("t.yaml", 5, 1), (), stubs or {}, checks)


def case(*turns: TurnCase, repeat: int = 1, needed: int = 1) -> TestCase:
    return TestCase("k", "bot", Where("t.yaml", 2, 3), turns, repeat, needed)


def runner(client: ApiClient, **kwargs: object) -> Runner:
    bot = client.create_assistant({"model": "gpt-4", "tools": [TOOL]})
    files = Files(known={}, upload=lambda a: client.upload_file(a.path, a.name).id)
    return Runner(Conversations(client), {"bot": bot.id}, files, **kwargs)  # type: ignore[arg-type]


def test_a_turn_is_one_request_and_a_call_round_one_more(client: ApiClient) -> None:
    run = runner(client)
    stubs = {"lookup": (Stub(output={"status": "shipped"}),)}
    client.stats.reset()
    [result] = run.run(
        [
            case(
                turn("hi", {"contains": "hi"}),
                turn("call lookup {}", {"contains": "shipped"}, stubs=stubs),
            )
        ]
    )
    assert result.passed
    # turn 1: create thread and run; turn 2: create run + submit outputs; then delete the thread
    assert client.stats.requests == 4
    turns = result.attempts[0].turns
    assert [t.text for t in turns] == ["echo: hi", 'echo: lookup returned {"status": "shipped"}']
    assert turns[0].tokens is not None


def test_time_comes_from_the_injected_clock(client: ApiClient) -> None:
    ticks = itertools.count(0, 10)
    run = runner(client, clock=lambda: float(next(ticks)))
    [result] = run.run([case(turn("hi", {"max_seconds": 5}))])
    assert not result.passed
    failure = result.attempts[0].failures[0]
    assert failure.message == "expected at most 5 s, the turn took 10.00 s"
    assert str(failure.where) == "t.yaml:9:1"


def test_repeats_pass_at_the_threshold(client: ApiClient) -> None:
    run = runner(client)
    [result] = run.run([case(turn("echo:fail server_error"), repeat=3, needed=1)])
    assert (result.passes, len(result.attempts), result.passed) == (0, 3, False)
    assert "the run ended failed: server_error" in result.attempts[0].failures[0].message


def test_attachments_are_uploaded_once(client: ApiClient, tmp_path: Path) -> None:
    doc = tmp_path / "a.md"
    doc.write_text("x")
    run = runner(client)
    attached = TurnCase("hi", Where("t.yaml", 5, 1), (Attachment("a.md", doc),), {}, ())
    results = run.run([case(attached, attached)])
    assert results[0].passed
    assert list(run.files.uploaded) == ["a.md"]
    assert run.files.cited([run.files.uploaded["a.md"], "file-x"]) == ("a.md", "file-x")


def test_stub_choice_by_argument_subset_with_a_fallback() -> None:
    stubs = [Stub(output="fallback"), Stub(when={"id": "1"}, output={"n": 1})]
    assert stub_output(stubs, PendingCall("c", "f", '{"id": "1", "x": 2}')) == '{"n": 1}'
    assert stub_output(stubs, PendingCall("c", "f", '{"id": "2"}')) == "fallback"
    assert stub_output(stubs[1:], PendingCall("c", "f", '{"id": "2"}')) is None


def test_server_sent_events_are_framed() -> None:
    lines = ["event: a", "data: {", "data: }", "", ": comment", "event: done", "data: [DONE]", ""]
    assert list(_events(iter(lines))) == [("a", "{\n}"), ("done", "[DONE]")]
    assert json.loads("{\n}") == {}
