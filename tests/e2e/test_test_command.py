"""``assistsync test`` end to end: the real CLI against the real embedded server (echo model)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, ClassVar

import pytest
from e2ekit import API_KEY, Api, Project, stub_server

from assistsync.server import ServerHandle

EVERY_KIND = """\
tests:
  passing:
    assistant: order-helper
    turns:
      - user: Hello there
        expect:
          - equals: "echo: Hello there"
          - contains: Hello
          - icontains: HELLO THERE
          - regex: "^echo: H.llo"
          - no_calls: true
          - status: completed
          - max_tokens: 200
          - max_seconds: 60
          - not: {contains: goodbye}
      - user: 'call lookup_order {"order_id": "42"}'
        tools:
          lookup_order:
            - when: {order_id: "7"}
              output: {status: lost}
            - when: {order_id: "42"}
              output: {status: shipped}
            - output: {error: not found}
        expect:
          - calls: lookup_order
            with: {order_id: "42"}
            times: 1
          - calls: lookup_order
            schema: {type: object, required: [order_id]}
          - regex: "(?i)shipped"
          - not: {calls: lookup_order, with: {order_id: "7"}}
  json-answer:
    assistant: returns-bot
    turns:
      - user: '{"a": 1}'
        expect:
          - not: {json: true}
  failing-equals:
    assistant: returns-bot
    turns:
      - user: hi
        expect:
          - equals: "hi"
  failing-contains:
    assistant: returns-bot
    turns:
      - user: hi
        expect:
          - contains: HI
  failing-icontains:
    assistant: returns-bot
    turns:
      - user: hi
        expect:
          - icontains: bye
  failing-regex:
    assistant: returns-bot
    turns:
      - user: hi
        expect:
          - regex: "^hi$"
  failing-json:
    assistant: returns-bot
    turns:
      - user: hi
        expect:
          - json: true
  failing-calls:
    assistant: order-helper
    turns:
      - user: hi
        expect:
          - calls: lookup_order
  failing-with:
    assistant: order-helper
    turns:
      - user: 'call lookup_order {"order_id": "1"}'
        tools:
          lookup_order:
            - output: fine
        expect:
          - calls: lookup_order
            with: {order_id: "2"}
  failing-no-calls:
    assistant: order-helper
    turns:
      - user: 'call lookup_order {"order_id": "1"}'
        tools:
          lookup_order:
            - output: fine
        expect:
          - no_calls: true
  failing-cites:
    assistant: order-helper
    turns:
      - user: hi
        expect:
          - cites: ../docs/faq.md
  failing-status:
    assistant: returns-bot
    turns:
      - user: "echo:fail rate_limit_exceeded"
        expect:
          - status: completed
  passing-status-failed:
    assistant: returns-bot
    turns:
      - user: "echo:fail rate_limit_exceeded"
        expect:
          - status: failed
  failing-max-tokens:
    assistant: returns-bot
    turns:
      - user: a long question that costs more than one token
        expect:
          - max_tokens: 1
  failing-not:
    assistant: returns-bot
    turns:
      - user: hi
        expect:
          - not: {contains: hi}
  failing-second-turn:
    assistant: returns-bot
    turns:
      - user: first
        expect:
          - contains: first
      - user: second
        expect:
          - contains: first
"""


def _json(result: Any) -> dict[str, Any]:
    return dict(json.loads(result.out))


def _by_key(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {t["key"]: t for t in report["tests"]}


@pytest.fixture
def applied(project: Project) -> Project:
    assert project.run("apply", "--auto-approve").code == 0
    return project


def test_every_assertion_kind_passes_and_fails(applied: Project) -> None:
    applied.write("tests/kinds.yaml", EVERY_KIND)
    result = applied.run("test", "--format", "json")
    assert result.code == 1, result.all
    tests = _by_key(_json(result))
    passing = {"passing", "json-answer", "passing-status-failed"}
    assert {k for k, t in tests.items() if t["passed"]} == passing
    for key, test in tests.items():
        if key in passing:
            continue
        failure = test["attempts"][0]["failures"][0]
        assert failure["file"] == "tests/kinds.yaml"
        assert failure["line"] > 1
    # the second turn saw the first: one thread, turns in order
    second = tests["failing-second-turn"]["attempts"][0]
    assert [t["assistant"] for t in second["turns"]] == ["echo: first", "echo: second"]
    assert second["failures"][0]["message"] == "expected 'first' in 'echo: second'"
    # stubs chosen by argument subset, the fallback last
    calls = tests["passing"]["attempts"][0]["turns"][1]["calls"]
    assert calls == [
        {
            "name": "lookup_order",
            "arguments": '{"order_id": "42"}',
            "output": '{"status": "shipped"}',
        }
    ]
    assert "fine" in tests["failing-with"]["attempts"][0]["turns"][0]["assistant"]


def test_text_output_pytest_like(applied: Project) -> None:
    applied.write("tests/kinds.yaml", EVERY_KIND)
    result = applied.run("test", "--concurrency", "3")
    assert result.code == 1
    lines = result.out.splitlines()
    assert lines[-1] == "3 passed, 13 failed"
    assert "PASSED passing (order-helper)" in lines
    assert "FAILED failing-regex (returns-bot)" in lines
    # a failure shows the transcript and the assertion at FILE:LINE:COL
    block = result.out.split("___ failing-with ___")[1].split("___")[0]
    assert '  user: call lookup_order {"order_id": "1"}' in block
    assert '  tool call: lookup_order({"order_id": "1"}) -> fine' in block
    assert "  assistant: echo: lookup_order returned fine" in block
    line = EVERY_KIND.splitlines().index('            with: {order_id: "2"}')  # the line above
    assert f"tests/kinds.yaml:{line}:13: expected a call of lookup_order with arguments" in block


def test_missing_stub_repeats_and_k(applied: Project) -> None:
    applied.write(
        "tests/t.yaml",
        """\
        tests:
          no-stub:
            assistant: order-helper
            turns:
              - user: 'call lookup_order {"order_id": "9"}'
                tools:
                  lookup_order:
                    - when: {order_id: "1"}
                      output: one
          flaky-ok:
            assistant: returns-bot
            repeat: 3
            pass: 2
            turns:
              - user: hi
                expect: [{contains: hi}]
        """,
    )
    result = applied.run("test", "-k", "no-*", "--junit", str(applied.root / "junit.xml"))
    assert result.code == 1
    assert (
        'the assistant called lookup_order with arguments {"order_id": "9"}, and this turn has '
        "no stub output for it" in result.out
    )
    assert result.out.splitlines()[-1] == "0 passed, 1 failed"
    junit = (applied.root / "junit.xml").read_text()
    assert junit.count("<testcase ") == 1
    assert 'name="no-stub"' in junit
    assert "<failure" in junit
    ok = applied.run("test", "-k", "flaky")
    assert ok.code == 0, ok.all
    assert "PASSED flaky-ok (returns-bot) [3/3 passed, 2 needed]" in ok.out
    assert ok.out.splitlines()[-1] == "1 passed, 0 failed (3/3 repeats passed)"


def test_live_says_when_the_plan_is_not_empty(applied: Project) -> None:
    applied.write(
        "tests/t.yaml", "tests:\n  a:\n    assistant: returns-bot\n    turns: [{user: hi}]\n"
    )
    quiet = applied.run("test")
    assert quiet.code == 0
    assert "plan is not empty" not in quiet.err
    applied.write("prompts/helper.md", "Changed.\n")
    noisy = applied.run("test")
    assert noisy.code == 0
    assert "Note: the plan is not empty, so you are testing what is live" in noisy.err


def test_unapplied_assistant_is_a_clear_error(project: Project) -> None:
    project.write(
        "tests/t.yaml", "tests:\n  a:\n    assistant: returns-bot\n    turns: [{user: hi}]\n"
    )
    result = project.run("test")
    assert result.code == 1
    assert "no live assistant for returns-bot" in result.err
    assert "plan is not empty" not in result.err  # the error says it all
    assert "assistsync test --planned" in result.err


def _snapshot(api: Api) -> tuple[list[dict[str, Any]], list[str]]:
    return api.assistants(), sorted(f["id"] for f in api.files())


def test_planned_leaves_nothing_behind_and_never_touches_managed(
    applied: Project, api: Api
) -> None:
    applied.write("prompts/helper.md", "Edited in the pull request.\n")
    applied.write("docs/new.md", "A new file only the manifests know.\n")
    manifest = (applied.root / "assistants/support.yaml").read_text()
    applied.write(
        "assistants/support.yaml",
        manifest.replace("  - ../docs/faq.md\n", "  - ../docs/faq.md\n      - ../docs/new.md\n", 1),
    )
    before = _snapshot(api)
    applied.write(
        "tests/t.yaml",
        """\
        tests:
          sees-the-manifest:
            assistant: order-helper
            turns:
              - user: hi
                expect: [{contains: hi}]
          fails:
            assistant: returns-bot
            turns:
              - user: hi
                expect: [{contains: nope}]
        """,
    )
    result = applied.run("test", "--planned")
    assert result.code == 1, result.all
    assert "PASSED sees-the-manifest (order-helper)" in result.out
    assert _snapshot(api) == before
    assert applied.run("plan", "--detailed-exitcode").code == 2  # still pending, untouched


def test_planned_cleans_up_after_ctrl_c(applied: Project, api: Api, server: ServerHandle) -> None:
    before = _snapshot(api)
    applied.write(
        "tests/t.yaml",
        'tests:\n  slow:\n    assistant: returns-bot\n    turns: [{user: "echo:sleep 30"}]\n',
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    env.update({"OPENAI_BASE_URL": server.base_url, "OPENAI_API_KEY": API_KEY, "NO_COLOR": "1"})
    proc = subprocess.Popen(
        [sys.executable, "-m", "assistsync", "-C", str(applied.root), "test", "--planned"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        # wait (by observing the server, not the clock) until the copy exists and runs
        deadline = time.monotonic() + 60
        while len(api.assistants()) == len(before[0]):
            assert time.monotonic() < deadline, "the test copy never appeared"
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert _snapshot(api) == before


def test_record_then_replay_without_the_backend(tmp_path: Path) -> None:
    from e2ekit import Project as P

    class Nowhere:
        base_url = "http://127.0.0.1:9/v1"

    project = P(tmp_path / "q", Nowhere())
    example = Path(__file__).parents[2] / "examples/quickstart"
    for path in example.rglob("*"):
        rel = path.relative_to(example)
        skip = {".assistsync", "tests"} & set(rel.parts) or rel.name == "assistsync.lock"
        if path.is_file() and not skip:
            project.write(str(rel), path.read_text())
    project.write(
        "tests/rec.yaml",
        """\
        tests:
          greets:
            assistant: order-helper
            turns:
              - user: Hello
                expect: [{contains: Hello}]
              - user: 'call lookup_order {"order_number": "NW-1"}'
                tools: {lookup_order: [{output: {status: shipped}}]}
                expect: [{contains: shipped}]
        """,
    )
    assert project.run("--sandbox", "apply", "--auto-approve").code == 0
    recorded = project.run("--sandbox", "test", "--record", "--format", "json")
    assert recorded.code == 0, recorded.all
    files = sorted((project.root / "tests/recordings").glob("*.json"))
    assert len(files) == 3  # two answers and one call
    assert any("echo: Hello" in f.read_text() for f in files)
    replayed = project.run("--sandbox", "test", "--replay", "--format", "json")
    assert replayed.code == 0, replayed.all
    strip = lambda r: [  # noqa: E731
        [(t["assistant"], t["calls"], t["status"]) for t in a["turns"]]
        for x in json.loads(r.out)["tests"]
        for a in x["attempts"]
    ]
    assert strip(replayed) == strip(recorded)
    # replay never asks the model: answers recorded by hand come back as written
    for f in files:
        f.write_text(f.read_text().replace("Hello", "Howdy"))
    tampered = project.run("--sandbox", "test", "--replay", "--format", "json")
    turns = json.loads(tampered.out)["tests"][0]["attempts"][0]["turns"]
    assert turns[0]["assistant"] == "echo: Howdy"
    project.write(
        "tests/rec.yaml",
        (project.root / "tests/rec.yaml").read_text().replace("user: Hello", "user: Hello again"),
    )
    changed = project.run("--sandbox", "test", "--replay")
    assert changed.code == 1
    assert (
        "the conversation or prompt changed since it was recorded; re-record with --record"
        in changed.out
    )
    rerecorded = project.run("--sandbox", "test", "--record")
    assert rerecorded.code == 0, rerecorded.all
    # the answers to the old conversation are gone: the directory holds today's answers only
    assert "Removed 3 recordings no test asks for any more." in rerecorded.err
    now = sorted((project.root / "tests/recordings").glob("*.json"))
    assert len(now) == 3
    assert not set(now) & set(files)  # every request changed with the first message


def test_validate_locates_test_file_errors(project: Project) -> None:
    project.write(
        "tests/bad.yaml",
        """\
        tests:
          a:
            assistant: order-helpr
            turns:
              - user: hi
                expect:
                  - contains: x
          b:
            assistant: returns-bot
            turns:
              - user: hi
                files: [../docs/missing.md]
                tools:
                  lookup_order: [{output: x}]
                expect:
                  - cites: ../prompts/helper.md
                  - regex: "("
                  - calls: nope
          c:
            assistant: ${UNSET_VARIABLE_FOR_TEST}
            turns: [{user: hi}]
          d:
            assistant: returns-bot
            turns: [{user: hi, expect: [{icontain: x}]}]
        """,
    )
    result = project.run("validate")
    assert result.code == 1
    err = result.err
    assert (
        "tests/bad.yaml:3:16: unknown assistant 'order-helpr': not a key in the manifests; "
        "did you mean 'order-helper'?" in err
    )
    assert "tests/bad.yaml:24:33: unknown assertion 'icontain'; did you mean 'icontains'?" in err
    assert "not a key in the manifests; expected one of" not in err  # the unset variable is enough
    assert err.rstrip().endswith("8 errors in the test files.")
    assert "tests/bad.yaml:12:17: file '../docs/missing.md' not found" in err
    assert "tests/bad.yaml:14:11: assistant 'returns-bot' has no function 'lookup_order'" in err
    assert (
        "tests/bad.yaml:16:20: cites '../prompts/helper.md' (prompts/helper.md), which is not "
        "a file of assistant 'returns-bot'" in err
    )
    assert "tests/bad.yaml:17:20: invalid regular expression" in err
    assert "tests/bad.yaml:18:20: assistant 'returns-bot' has no function 'nope'" in err
    assert "tests/bad.yaml:20:16: environment variable UNSET_VARIABLE_FOR_TEST is not set" in err


def test_rubric_without_a_judge_is_a_located_error(applied: Project) -> None:
    applied.write(
        "tests/r.yaml",
        "tests:\n  r:\n    assistant: returns-bot\n    turns:\n      - user: hi\n"
        "        expect:\n          - rubric: polite\n",
    )
    result = applied.run("test")
    assert result.code == 1
    assert "tests/r.yaml:7:13: rubric needs a judge model, and none is configured" in result.err


def test_the_quickstart_tests_pass_on_the_sandbox(tmp_path: Path) -> None:
    import shutil

    root = tmp_path / "quickstart"
    example = Path(__file__).parents[2] / "examples" / "quickstart"
    shutil.copytree(example, root, ignore=shutil.ignore_patterns(".assistsync", "assistsync.lock*"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "assistsync", "-C", str(root), "--sandbox", *args]
        return subprocess.run(argv, capture_output=True, text=True, env=env, check=False)

    assert cli("apply", "--auto-approve").returncode == 0
    result = cli("test")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[-1] == "3 passed, 0 failed (2/2 repeats passed)"
    assert "Traceback" not in result.stderr
    planned = cli("test", "--planned", "--format", "json")
    assert json.loads(planned.stdout)["passed"] == 3


def test_a_test_copy_left_behind_is_invisible_to_plan_and_apply(applied: Project, api: Api) -> None:
    """A copy whose process was killed before it could delete it carries only the copy tag,
    never the ownership tag: plan neither adopts nor destroys it."""
    from assistsync.testing.copies import COPY_TAG

    left = api.create(
        {"model": "gpt-4", "name": "Order Helper", "metadata": {COPY_TAG: "order-helper"}}
    )
    plan = applied.run("plan", "--detailed-exitcode")
    assert plan.code == 0, plan.all
    assert "No changes." in plan.out
    assert applied.run("apply", "--auto-approve").code == 0
    assert left["id"] in {a["id"] for a in api.assistants()}
    assert "assistsync_key" not in left["metadata"]


def test_attachments_reuse_uploads_by_content_and_remove_their_own(
    applied: Project, api: Api, server: ServerHandle
) -> None:
    applied.write("notes/receipt.txt", "Receipt 42\n")
    applied.write("notes/faq-copy.md", (applied.root / "docs/faq.md").read_text())
    applied.write(
        "tests/t.yaml",
        """\
        tests:
          attached:
            assistant: returns-bot
            turns:
              - user: Here is my receipt and the FAQ
                files: [../notes/receipt.txt, ../docs/faq.md, ../notes/faq-copy.md]
                expect: [{contains: receipt}]
        """,
    )
    before = sorted(f["id"] for f in api.files())
    server.stats.reset()
    uploads = applied.run("test")
    assert uploads.code == 0, uploads.all
    assert server.stats.by_route["POST /v1/files"] == 1
    assert server.stats.by_route["DELETE /v1/files/{file_id}"] == 1
    # the FAQ (and a copy of it elsewhere) went by the lock's upload; the receipt was uploaded
    # for the test, then deleted
    assert sorted(f["id"] for f in api.files()) == before


class _Judge(BaseHTTPRequestHandler):
    """A chat-completions server that grades 0.9 when the rubric asks for an echo, else 0.2,
    and records what it was asked."""

    asked: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).asked.append(
            {"path": self.path, "auth": self.headers.get("Authorization"), **body}
        )
        prompt = body["messages"][-1]["content"]
        grade = 0.9 if "echoes" in prompt else 0.2
        content = json.dumps({"grade": grade, "reason": "as asked"})
        answer = json.dumps({"choices": [{"message": {"role": "assistant", "content": content}}]})
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer.encode())

    def log_message(self, *args: Any) -> None:
        pass


def test_rubric_is_graded_by_the_configured_judge(applied: Project) -> None:
    applied.write(
        "tests/r.yaml",
        """\
        tests:
          judged:
            assistant: returns-bot
            turns:
              - user: hi
                expect:
                  - rubric: The answer echoes the question
                  - not: {rubric: The answer is rude, threshold: 0.5}
          judged-harshly:
            assistant: returns-bot
            turns:
              - user: hi
                expect:
                  - rubric: The answer is warm and helpful
                    threshold: 0.8
        """,
    )
    _Judge.asked.clear()
    with stub_server(_Judge) as judge:
        result = applied.run(
            "test",
            env={
                "ASSISTSYNC_JUDGE_MODEL": "grader-1",
                "ASSISTSYNC_JUDGE_URL": judge.base_url,
                "ASSISTSYNC_JUDGE_KEY_ENV": "JUDGE_KEY",
                "JUDGE_KEY": "sk-judge-secret",
            },
        )
    assert result.code == 1, result.all
    assert "PASSED judged (returns-bot)" in result.out
    assert "FAILED judged-harshly (returns-bot)" in result.out
    assert "the judge graded 0.20 against the rubric, below 0.8" in result.out
    assert "sk-judge-secret" not in result.all
    asked = _Judge.asked[0]
    assert asked["path"] == "/v1/chat/completions"
    assert asked["auth"] == "Bearer sk-judge-secret"
    assert asked["model"] == "grader-1"
    assert "assistant: echo: hi" in asked["messages"][-1]["content"]


def test_cites_passes_when_the_answer_cites_the_file(applied: Project) -> None:
    """Retrieval end to end: the test command's ``cites`` sees the ``file_citation`` the
    server made of echo's marker, mapped back to the project file."""
    applied.write(
        "tests/cites.yaml",
        """\
        tests:
          cites-the-faq:
            assistant: order-helper
            turns:
              - user: How long does shipping take?
                expect:
                  - cites: ../docs/faq.md
                  - contains: Shipping takes 3 days.
          cites-without-retrieval:
            assistant: returns-bot
            turns:
              - user: How long does shipping take?
                expect:
                  - cites: ../docs/faq.md
        """,
    )
    result = applied.run("test", "--format", "json")
    assert result.code == 1, result.all
    tests = _by_key(_json(result))
    assert tests["cites-the-faq"]["passed"] is True
    turn = tests["cites-the-faq"]["attempts"][0]["turns"][0]
    assert turn["citations"] == ["docs/faq.md"]
    # the same files, but no retrieval tool: nothing is searched, nothing cited
    failure = tests["cites-without-retrieval"]["attempts"][0]["failures"][0]
    assert failure["message"] == "expected a citation of docs/faq.md, got no citations"
