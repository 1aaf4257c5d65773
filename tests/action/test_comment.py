"""The pull-request comment against golden files, and the runner protocols it relies on.

Regenerate the golden files after an intended change with
``ASSISTSYNC_UPDATE_GOLDEN=1 pytest tests/action``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from actionkit import FakeGitHub, parse_commands, parse_output_file, serving

from assistsync.errors import Diagnostic
from assistsync.github.apply import commit_message
from assistsync.github.commands import (
    command,
    diagnostic_annotation,
    escape_data,
    escape_property,
    repo_path,
    write_outputs,
)
from assistsync.github.comment import COMMENT_LIMIT, error_comment, marker, plan_comment, shorten
from assistsync.github.rest import GitHubClient, GitHubError
from assistsync.model import (
    TAG_KEY,
    Desired,
    DesiredAssistant,
    Live,
    LiveAssistant,
    Lock,
    LockedAssistant,
    Plan,
    SourceLocation,
)
from assistsync.planner import make_plan

GOLDEN = Path(__file__).parent / "golden"
SRC = SourceLocation(file="assistants/bots.yaml", line=2, col=3)
INSTRUCTIONS = "Sort incoming tickets.\nBe brief.\nNever guess a ticket's owner.\n"
RUN_URL = "https://github.example/octo/assistants/actions/runs/4242"
COMMIT = "abcdef1234567890"


def _assistant(key: str, **fields: object) -> DesiredAssistant:
    base: dict[str, object] = {"model": "gpt-4-turbo", "name": key.replace("-", " ").title()}
    base.update(fields)
    return DesiredAssistant(key=key, source=SRC, **base)  # type: ignore[arg-type]


def _live(a: DesiredAssistant, id_: str) -> LiveAssistant:
    return LiveAssistant(
        id=id_,
        name=a.name,
        model=a.model,
        description=a.description,
        instructions=a.instructions,
        tools=a.tools,
        metadata={**a.metadata, TAG_KEY: a.key},
    )


def _applied(d: Desired, ids: dict[str, str]) -> Lock:
    return Lock(
        lineage="l",
        assistants={
            key: LockedAssistant(id=id_, applied=d.config_of(key).digest())
            for key, id_ in ids.items()
        },
    )


def plan_creates() -> Plan:
    bots = {
        "triage-bot": _assistant("triage-bot", instructions=INSTRUCTIONS),
        "returns-bot": _assistant("returns-bot", description="Returns, politely"),
    }
    return make_plan(Desired(assistants=bots), Live(), Lock(lineage=""))


def plan_updates() -> Plan:
    old = _assistant("triage-bot", instructions=INSTRUCTIONS)
    new = old.model_copy(
        update={"instructions": INSTRUCTIONS.replace("Be brief.", "Be brief and kind.")}
    )
    lock = _applied(Desired(assistants={"triage-bot": old}), {"triage-bot": "asst_1"})
    live = Live(assistants=(_live(old, "asst_1"),))
    return make_plan(Desired(assistants={"triage-bot": new}), live, lock)


def plan_destroys() -> Plan:
    gone = _assistant("returns-bot")
    kept = _assistant("triage-bot")
    d_old = Desired(assistants={"returns-bot": gone, "triage-bot": kept})
    lock = _applied(d_old, {"returns-bot": "asst_2", "triage-bot": "asst_1"})
    live = Live(assistants=(_live(kept, "asst_1"), _live(gone, "asst_2")))
    return make_plan(Desired(assistants={"triage-bot": kept}), live, lock)


def plan_no_changes() -> Plan:
    a = _assistant("triage-bot")
    d = Desired(assistants={"triage-bot": a})
    return make_plan(
        d, Live(assistants=(_live(a, "asst_1"),)), _applied(d, {"triage-bot": "asst_1"})
    )


def plan_huge() -> Plan:
    """300 assistants with 40-line instructions: about 200,000 characters of plan."""
    text = "".join(f"Rule {n}: answer tickets of kind {n} within {n} hours.\n" for n in range(40))
    bots = {f"bot-{n:03d}": _assistant(f"bot-{n:03d}", instructions=text) for n in range(300)}
    return make_plan(Desired(assistants=bots), Live(), Lock(lineage=""))


CASES: dict[str, Callable[[], Plan]] = {
    "creates": plan_creates,
    "updates": plan_updates,
    "destroys": plan_destroys,
    "no_changes": plan_no_changes,
    "truncated": plan_huge,
}


def _golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("ASSISTSYNC_UPDATE_GOLDEN"):
        path.parent.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"{path} is missing: run with ASSISTSYNC_UPDATE_GOLDEN=1"
    assert text == path.read_text(encoding="utf-8")


@pytest.mark.parametrize("case", sorted(CASES))
def test_comment_golden(case: str) -> None:
    body = plan_comment(CASES[case](), "infra", commit=COMMIT, run_url=RUN_URL)
    _golden(f"comment_{case}.md", body)


def test_error_comment_golden() -> None:
    body = error_comment(
        "infra",
        "The plan failed: 1 error in the manifests.",
        ["infra/assistants/bots.yaml:4:5: unknown field 'modle' (did you mean 'model'?)"],
        commit=COMMIT,
        run_url=RUN_URL,
    )
    _golden("comment_error.md", body)


def test_comment_starts_with_the_marker_and_shows_the_summary_line() -> None:
    body = plan_comment(plan_updates(), "infra")
    assert body.startswith(marker("infra") + "\n")
    fold = body.index("<details>")
    assert "**Plan: 0 to add, 1 to change, 0 to destroy.**" in body[:fold]
    assert "```diff" in body[fold:]


def test_destroys_are_above_the_fold() -> None:
    body = plan_comment(plan_destroys(), "infra")
    fold = body.index("<details>")
    assert "1 resource will be destroyed" in body[:fold]
    assert "`assistant.returns-bot`" in body[:fold]


def test_huge_plan_keeps_head_and_tail_under_the_limit() -> None:
    plan = plan_huge()
    body = plan_comment(plan, "infra", run_url=RUN_URL)
    assert len(body) <= COMMENT_LIMIT
    assert "bot-000" in body  # head
    assert "bot-299" in body  # tail
    assert "lines cut here; the full plan is in the job summary" in body
    fold = body.index("<details>")
    assert "too long for a comment" in body[:fold]
    assert f"**{plan.summary()}**" in body[:fold]
    assert body.count("```diff") == 1
    assert body.rstrip().splitlines()[-1].startswith("<sub>")


def test_shorten_never_exceeds_the_limit_even_with_huge_lines() -> None:
    lines = ["x" * 30_000, "y" * 30_000, "z" * 30_000]
    md = "\n".join(["### t", "", "<details>", "", "```diff", *lines, "```", "", "</details>"])
    for limit in (1_000, 20_000, 60_000):
        assert len(shorten(md, limit)) <= limit
    without_block = "\n".join(["a" * 500] * 300)
    cut = shorten(without_block, 10_000)
    assert len(cut) <= 10_000
    assert "cut" in cut


def test_workflow_command_escaping() -> None:
    assert escape_data("50% done\r\nnext") == "50%25 done%0D%0Anext"
    assert escape_property("a,b:c%") == "a%2Cb%3Ac%25"
    line = command("error", "bad\nvalue", file="dir, with: colon/x.yaml", line=3, col=None)
    assert line == "::error file=dir%2C with%3A colon/x.yaml,line=3::bad%0Avalue"
    [parsed] = parse_commands(line)
    assert parsed.props == {"file": "dir, with: colon/x.yaml", "line": "3"}
    assert parsed.message == "bad\nvalue"


def test_diagnostic_annotation_joins_the_working_directory() -> None:
    d = Diagnostic(file="assistants/../prompts/a.md", line=2, col=7, message="missing file")
    [parsed] = parse_commands(diagnostic_annotation("./infra/", d))
    assert parsed.props["file"] == "infra/prompts/a.md"
    assert (parsed.props["line"], parsed.props["col"]) == ("2", "7")
    assert repo_path(".", "assistsync.yaml") == "assistsync.yaml"
    assert repo_path("infra", ".") == "infra"


def test_outputs_survive_newlines_and_equals_signs(tmp_path: Path) -> None:
    out = tmp_path / "output"
    values = {"summary": "a=b\nsecond line\n", "exitcode": "2", "empty": ""}
    write_outputs(out, values)
    assert parse_output_file(out.read_text(encoding="utf-8")) == values


def test_client_follows_pagination_and_explains_permission_errors() -> None:
    fake = FakeGitHub(token="t", page_size=3)
    for n in range(7):
        fake.add(1, f"comment {n}")
    fake.add(1, "<!-- m -->\nold")
    with serving(fake.handle) as url:
        fake.url = url
        with GitHubClient(url, "t", fake.repository) as client:
            assert len(client.comments(1)) == 8
            comment, created = client.upsert_comment(1, "<!-- m -->", "<!-- m -->\nnew")
            assert not created
            assert comment.body == "<!-- m -->\nnew"
        with GitHubClient(url, "wrong", fake.repository) as client, pytest.raises(GitHubError) as e:
            client.comments(1)
    assert e.value.status == 401
    assert "pull-requests: write" in e.value.message
    assert [t for m, t in fake.requests if m == "GET"][:3] == [
        "/repos/octo/assistants/issues/1/comments?per_page=100",
        "/repos/octo/assistants/issues/1/comments?per_page=3&page=2",
        "/repos/octo/assistants/issues/1/comments?per_page=3&page=3",
    ]


def test_commit_message_says_what_was_applied() -> None:
    ok = commit_message(
        "Apply complete! Resources: 2 added, 0 changed, 0 destroyed.", "infra", None
    )
    assert ok.splitlines()[0] == (
        "assistsync: Apply complete! Resources: 2 added, 0 changed, 0 destroyed. [skip ci]"
    )
    failed = commit_message(
        "Apply failed: 1 change did not happen; Resources: 1 added, 0 changed, 0 destroyed. "
        "The lock records what succeeded; run apply again to retry the rest.",
        "infra",
        RUN_URL,
    )
    assert failed.splitlines()[0] == (
        "assistsync: apply partly failed; Resources: 1 added, 0 changed, 0 destroyed. [skip ci]"
    )
    assert RUN_URL in failed
