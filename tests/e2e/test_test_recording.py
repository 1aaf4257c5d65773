"""Recorded answers end to end with a real chat backend: ``assistsync --sandbox test --record``
with the sandbox's runs answered by the loopback stand-in chat backend (``ASSISTSYNC_CHAT_*``),
then ``--replay`` with the backend stopped; and the ``rubric:`` judge through the same stand-in.

The real CLI runs in a subprocess; the stand-in is ``tests/server/chat_testkit.py``, a real HTTP
server that records what it was asked and answers from a script.
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest
from e2ekit import Project

REPLAY_MISS = "the conversation or prompt changed since it was recorded; re-record with --record"
CHAT_KEY = "sk-chat-secret-4242"
JUDGE_KEY = "sk-judge-secret-4242"


def _testkit() -> ModuleType:
    """``tests/server/chat_testkit.py`` (the server tests import it by name; e2e tests load it
    from its path, once)."""
    if "chat_testkit" not in sys.modules:
        path = Path(__file__).parents[1] / "server" / "chat_testkit.py"
        spec = importlib.util.spec_from_file_location("chat_testkit", path)
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules["chat_testkit"] = module  # its dataclasses look their module up by name
        spec.loader.exec_module(module)
    return sys.modules["chat_testkit"]


kit = _testkit()


class _Nowhere:
    """Every command here runs on the sandbox: nothing may reach OPENAI_BASE_URL."""

    base_url = "http://127.0.0.1:9/v1"


MANIFEST = """\
assistants:
  order-helper:
    name: Order Helper
    model: gpt-4-turbo
    instructions: Answer questions about orders. Be brief.
    tools:
      - type: function
        function:
          name: lookup_order
          parameters:
            type: object
            properties: {order_id: {type: string}}
            required: [order_id]
"""

TESTS = """\
tests:
  returns:
    assistant: order-helper
    turns:
      - user: How long do I have to return an item?
        expect: [{icontains: 30 days}]
      - user: Where is order 42?
        tools:
          lookup_order:
            - when: {order_id: "42"}
              output: {status: shipped}
            - output: {error: not found}
        expect:
          - calls: lookup_order
            with: {order_id: "42"}
          - regex: "(?i)shipped"
  strict:
    assistant: order-helper
    turns:
      - user: Do you ship abroad?
        expect: [{contains: "Yes"}]
"""


@pytest.fixture
def project(tmp_path: Path) -> Project:
    p = Project(tmp_path / "proj", _Nowhere())
    p.write("assistsync.yaml", "manifests:\n  - assistants/*.yaml\n")
    p.write("assistants/support.yaml", MANIFEST)
    p.write("tests/orders.yaml", TESTS)
    return p


def _script(standin: object, *, chunked: bool = True) -> None:
    """The backend's answers, in the order the tests ask (concurrency 1): a text answer, a call
    and then the answer after its output, and an answer that fails ``strict``. ``chunked``
    streams the texts in pieces, else each in one chunk (the same answers, streamed otherwise)."""

    def text(*pieces: str) -> object:
        return kit.text(*pieces) if chunked else kit.text("".join(pieces))

    standin.script(  # type: ignore[attr-defined]
        text("You have ", "30 days ", "to return an item."),
        kit.calls(("lookup_order", '{"order_id": "42"}')),
        text("Order 42 has ", "shipped."),
        text("Only within ", "the EU."),
    )


def _chat_env(url: str) -> dict[str, str]:
    return {
        "ASSISTSYNC_CHAT_URL": url,
        "ASSISTSYNC_CHAT_MODELS": "*=served-model",
        "ASSISTSYNC_CHAT_KEY_ENV": "CHAT_KEY",
        "CHAT_KEY": CHAT_KEY,
    }


def _recordings(project: Project) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(project.root.glob("tests/recordings/*.json"))}


def _timeless(out: str) -> str:
    """Text output without the wall times in its transcripts."""
    return re.sub(r"\d+\.\d+ s\b", "S s", out)


def _results(out: str) -> list[object]:
    """The json report without the wall times."""
    tests = json.loads(out)["tests"]
    for test in tests:
        test.pop("seconds", None)
        for attempt in test["attempts"]:
            attempt.pop("seconds", None)
            for turn in attempt["turns"]:
                turn.pop("seconds", None)
    return list(tests)


def test_record_then_replay_with_the_backend_stopped(project: Project) -> None:
    standin = kit.StandIn()
    try:
        _script(standin)
        env = _chat_env(standin.url)
        args = ("--sandbox", "test", "--planned", "--concurrency", "1")
        first = project.run(*args, "--record", env=env)
        assert first.code == 1, first.all  # `strict` fails on what the backend said
        recorded = _recordings(project)
        _script(standin, chunked=False)
        again = project.run(*args, "--record", "--format", "json", env=env)
    finally:
        standin.close()

    # what the backend was asked, and the results it led to
    assert [r["model"] for r in standin.requests] == ["served-model"] * 8
    assert {h["authorization"] for h in standin.headers} == {f"Bearer {CHAT_KEY}"}
    lines = first.out.splitlines()
    assert "PASSED returns (order-helper)" in lines
    assert "FAILED strict (order-helper)" in lines
    assert "  assistant: Only within the EU." in lines
    assert "1 passed, 1 failed" in first.out

    # readable, stable files: one per model request, byte-identical when recorded twice (even
    # though the backend streamed the same answers in other pieces the second time)
    assert len(recorded) == 4
    assert _recordings(project) == recorded
    texts = [raw.decode() for raw in recorded.values()]
    answers = sorted(json.loads(t)["answer"] for t in texts)
    assert answers == [
        "",
        "Only within the EU.",
        "Order 42 has shipped.",
        "You have 30 days to return an item.",
    ]
    for t in texts:
        assert t.startswith('{\n  "answer": ')  # indented, keys sorted
        assert t.endswith("}\n")
        # nothing that changes per run or is secret: no ids, no key, no backend model name
        assert not re.search(r"(asst|thread|run|msg|step|call)_|chatcmpl|backend-", t)
        assert CHAT_KEY not in t
        assert "served-model" not in t
    window = next(json.loads(t) for t in texts if "30 days" in json.loads(t)["answer"])
    assert window["events"] == [
        {"type": "TextDelta", "text": "You have 30 days to return an item."},
        {"type": "Usage", "prompt_tokens": 11, "completion_tokens": 7},
    ]
    assert window["request"]["config"]["instructions"] == "Answer questions about orders. Be brief."
    call = next(json.loads(t) for t in texts if json.loads(t)["answer"] == "")
    assert call["events"][0] == {
        "type": "ToolCallRequest",
        "name": "lookup_order",
        "arguments": '{"order_id": "42"}',
    }

    # the backend is gone (its URL still configured): replay gives the same lines and results
    args = ("--sandbox", "test", "--planned", "--concurrency", "1", "--replay")
    replayed = project.run(*args, env=_chat_env(standin.url))
    assert replayed.code == 1, replayed.all
    assert _timeless(replayed.out) == _timeless(first.out)
    as_json = project.run(*args, "--format", "json", env=_chat_env(standin.url))
    assert _results(as_json.out) == _results(again.out)
    assert len(standin.requests) == 8  # replay asked the backend nothing
    assert _recordings(project) == recorded  # and wrote nothing

    # a changed prompt: every turn of the assistant misses its recording
    manifest = project.root / "assistants/support.yaml"
    manifest.write_text(manifest.read_text().replace("Be brief.", "Be very brief."))
    changed = project.run(*args, env=_chat_env(standin.url))
    assert changed.code == 1, changed.all
    assert "FAILED returns (order-helper)" in changed.out
    assert REPLAY_MISS in changed.out
    assert "0 passed, 2 failed" in changed.out
    assert CHAT_KEY not in changed.all + first.all + replayed.all


RUBRICS = """\
tests:
  states-window:
    assistant: order-helper
    turns:
      - user: How long do I have to return an item?
        expect:
          - rubric: The answer states the return window
            threshold: 0.7
  will-apologise:
    assistant: order-helper
    turns:
      - user: How long do I have to return an item?
        expect:
          - rubric: The answer apologises for the delay
            threshold: 0.7
"""


def _grade(value: float) -> object:
    return kit.text(json.dumps({"grade": value, "reason": "as graded"}))


def test_rubrics_are_graded_through_the_chat_backend(project: Project) -> None:
    project.write("tests/orders.yaml", RUBRICS)
    standin = kit.StandIn()
    try:
        # answers and grades share one backend: each test's answer, then its grade
        standin.script(kit.text("30 days."), _grade(0.9), kit.text("30 days."), _grade(0.3))
        env = {
            **_chat_env(standin.url),
            "ASSISTSYNC_JUDGE_MODEL": "grader-1",
            "ASSISTSYNC_JUDGE_KEY_ENV": "JUDGE_KEY",
            "JUDGE_KEY": JUDGE_KEY,
        }
        result = project.run("--sandbox", "test", "--planned", "--concurrency", "1", env=env)
        # a judge that refuses the key and repeats it: said, the key scrubbed
        standin.script(kit.text("30 days."), kit.error(401, f"invalid key {JUDGE_KEY}"))
        refused = project.run("--sandbox", "test", "--planned", "-k", "states-window", env=env)
    finally:
        standin.close()
    assert result.code == 1, result.all
    assert "PASSED states-window (order-helper)" in result.out
    assert "FAILED will-apologise (order-helper)" in result.out
    assert "the judge graded 0.30 against the rubric, below 0.7" in result.out
    graded = [r for r in standin.requests if r["model"] == "grader-1"]
    assert len(graded) == 3  # two grades, then the refused one
    assert "The answer states the return window" in graded[0]["messages"][-1]["content"]
    assert "assistant: 30 days." in graded[0]["messages"][-1]["content"]
    judged = [
        h
        for r, h in zip(standin.requests, standin.headers, strict=True)
        if r["model"] == "grader-1"
    ]
    assert {h["authorization"] for h in judged} == {f"Bearer {JUDGE_KEY}"}
    assert JUDGE_KEY not in result.all
    assert CHAT_KEY not in result.all
    assert refused.code == 1, refused.all
    assert "the judge model grader-1 at" in refused.all
    assert "answered HTTP 401" in refused.all
    assert JUDGE_KEY not in refused.all
    assert CHAT_KEY not in refused.all


JUDGE_REPLAY_MISS = (
    "the judge's grade of this turn was not recorded (the rubric or the turn changed since "
    "--record); re-record with --record"
)


def test_judge_grades_are_recorded_and_replayed_without_a_judge(project: Project) -> None:
    project.write("tests/orders.yaml", RUBRICS)
    standin = kit.StandIn()
    env = {
        **_chat_env(standin.url),
        "ASSISTSYNC_JUDGE_MODEL": "grader-1",
        "ASSISTSYNC_JUDGE_KEY_ENV": "JUDGE_KEY",
        "JUDGE_KEY": JUDGE_KEY,
    }
    args = ("--sandbox", "test", "--planned", "--concurrency", "1")
    try:
        standin.script(kit.text("30 days."), _grade(0.9), kit.text("30 days."), _grade(0.3))
        first = project.run(*args, "--record", env=env)
        grades = {
            p.name: p.read_bytes() for p in sorted(project.root.glob("tests/recordings/judge/*"))
        }
        standin.script(kit.text("30 days."), _grade(0.9), kit.text("30 days."), _grade(0.3))
        again = project.run(*args, "--record", env=env)
    finally:
        standin.close()
    assert first.code == again.code == 1, first.all + again.all
    assert "the judge graded 0.30 against the rubric, below 0.7" in first.out
    # one file per graded turn, byte-identical when recorded again (no timings, no ids)
    assert len(grades) == 2
    again_grades = {
        p.name: p.read_bytes() for p in sorted(project.root.glob("tests/recordings/judge/*"))
    }
    assert again_grades == grades
    bodies = [json.loads(raw) for raw in grades.values()]
    assert sorted(b["grade"] for b in bodies) == [0.3, 0.9]
    window = next(b for b in bodies if b["grade"] == 0.9)
    assert window["rubric"] == "The answer states the return window"
    assert window["turn"]["answer"] == "30 days."
    for raw in grades.values():
        text = raw.decode()
        assert JUDGE_KEY not in text
        assert "grader-1" not in text
        assert not re.search(r"(asst|thread|run|msg|call)_", text)
    # the model's answers stay beside them, and the model recorder leaves the grades alone
    assert len(_recordings(project)) == 1  # both tests asked the same question

    # replay: no backend, no judge configured; the same results
    replayed = project.run(*args, "--replay")
    assert replayed.code == 1, replayed.all
    assert _timeless(replayed.out) == _timeless(first.out)
    assert len(standin.requests) == 8  # replay asked nobody anything

    # a changed rubric has no recorded grade: that assertion fails, saying to re-record
    project.write(
        "tests/orders.yaml", RUBRICS.replace("states the return window", "states the window")
    )
    changed = project.run(*args, "--replay")
    assert changed.code == 1, changed.all
    assert "FAILED states-window (order-helper)" in changed.out
    assert JUDGE_REPLAY_MISS in changed.out

    # a full re-record prunes the grade nobody asks for any more
    standin = kit.StandIn()
    try:
        standin.script(kit.text("30 days."), _grade(0.8), kit.text("30 days."), _grade(0.3))
        rerecorded = project.run(*args, "--record", env={**env, **_chat_env(standin.url)})
    finally:
        standin.close()
    assert "Removed 1 judge's grade no test asks for any more." in rerecorded.err
    assert len(list(project.root.glob("tests/recordings/judge/*.json"))) == 2


def test_recording_without_the_sandbox_points_at_the_server_options(project: Project) -> None:
    result = project.run("test", "--replay")
    assert result.code == 1, result.all
    assert "add --sandbox, or run 'assistsync server --record DIR' (or '--replay DIR')" in (
        result.err
    )
