"""The action's ``test`` command: comment, job summary, annotations and outputs, for real
(simulated runner, embedded server running the echo model, fake GitHub API)."""

from __future__ import annotations

from actionproject import PR, WD, Harness

TEST_MARKER = f"<!-- assistsync test: {WD} -->"
PLAN_MARKER = f"<!-- assistsync plan: {WD} -->"

TESTS = """\
tests:
  greets:
    assistant: triage-bot
    turns:
      - user: Hello
        expect:
          - contains: Hello
  politeness:
    assistant: returns-bot
    turns:
      - user: Can I return this?
        expect:
          - contains: sorry
"""


def test_planned_tests_comment_summarise_annotate_and_leave_nothing(harness: Harness) -> None:
    harness.write("tests/bots.yaml", TESTS)
    before = harness.server.stats.requests
    result = harness.run(command="test", planned="true")
    assert result.code == 1, result.log
    assert result.outputs["tests-passed"] == "1"
    assert result.outputs["tests-failed"] == "1"
    assert result.outputs["exitcode"] == "1"
    assert result.outputs["summary"] == "1 passed, 1 failed"
    [error] = [a for a in result.annotations("error") if "sorry" in a.message]
    assert error.props["file"] == f"{WD}/tests/bots.yaml"
    assert error.props["line"] == "13"
    assert error.props["col"] == "13"
    assert "politeness" in error.props["title"]
    [posted] = harness.github.ours(PR, TEST_MARKER)
    body = posted["body"]
    assert "**1 passed, 1 failed**" in body
    assert "| `politeness` | `returns-bot` | **failed** |" in body
    assert "user: Can I return this?" in body
    assert "assistant: echo: Can I return this?" in body
    assert f"{WD}/tests/bots.yaml:13:13: expected 'sorry' in" in body
    assert "**1 passed, 1 failed**" in result.summary
    assert harness.github.ours(PR, PLAN_MARKER) == []  # a comment of its own
    # --planned: the copies and nothing else were made, and all are gone
    assert harness.server.stats.requests > before
    import httpx

    listed = httpx.get(
        f"{harness.server.base_url}/assistants",
        headers={"Authorization": "Bearer x", "OpenAI-Beta": "assistants=v1"},
    ).json()
    assert listed["data"] == []

    # the next push updates the same comment
    harness.write("tests/bots.yaml", TESTS.replace("sorry", "return"))
    again = harness.run(command="test", planned="true")
    assert again.code == 0, again.log
    assert again.outputs["tests-failed"] == "0"
    [updated] = harness.github.ours(PR, TEST_MARKER)
    assert updated["id"] == posted["id"]
    assert "**2 passed, 0 failed**" in updated["body"]


def test_invalid_test_file_is_annotated(harness: Harness) -> None:
    harness.write("tests/bots.yaml", TESTS.replace("triage-bot", "triage-bott"))
    result = harness.run(command="test", planned="true")
    assert result.code == 1
    [error] = result.annotations("error")
    assert error.props["file"] == f"{WD}/tests/bots.yaml"
    assert error.props["line"] == "3"
    assert "unknown assistant 'triage-bott'" in error.message
    assert result.outputs["tests-failed"] == "0"


def test_live_tests_need_the_assistants_applied_first(harness: Harness) -> None:
    harness.write("tests/bots.yaml", TESTS)
    result = harness.run(command="test")
    assert result.code == 1
    [error] = result.annotations("error")
    assert "no live assistant for returns-bot, triage-bot" in error.message
    assert harness.run(command="apply").code == 0
    live = harness.run(command="test")
    assert live.outputs["summary"] == "1 passed, 1 failed"
