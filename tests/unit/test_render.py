"""Rendered plans against golden files, so reviewers see every output change in a diff.

Regenerate after an intended change with ``ASSISTSYNC_UPDATE_GOLDEN=1 pytest tests/unit``.
"""

from __future__ import annotations

import inspect
import json
import os
from collections.abc import Generator
from pathlib import Path

import pytest

from assistsync.model import (
    TAG_KEY,
    Desired,
    DesiredAssistant,
    DesiredFile,
    Live,
    LiveAssistant,
    LiveFile,
    Lock,
    LockedAssistant,
    LockedFile,
    Plan,
    SourceLocation,
)
from assistsync.planner import make_plan
from assistsync.render import iter_plan_lines, line_text, render_json, render_markdown, render_text

GOLDEN = Path(__file__).parent.parent / "golden"
SRC = SourceLocation(file="assistants/support.yaml", line=2, col=3)
LOOKUP = {
    "type": "function",
    "function": {
        "name": "lookup_order",
        "description": "Look up an order",
        "parameters": {
            "type": "object",
            "properties": {"order_id": {"type": "string"}},
            "required": ["order_id"],
        },
    },
}
INSTRUCTIONS = "You help customers with orders.\nBe brief.\nNever guess an order status.\n"


def _assistant(key: str, **fields: object) -> DesiredAssistant:
    base: dict[str, object] = {"model": "gpt-4-turbo", "name": key.replace("-", " ").title()}
    base.update(fields)
    return DesiredAssistant(key=key, source=SRC, **base)  # type: ignore[arg-type]


def _live(a: DesiredAssistant, id_: str, file_ids: tuple[str, ...] = ()) -> LiveAssistant:
    return LiveAssistant(
        id=id_,
        name=a.name,
        model=a.model,
        description=a.description,
        instructions=a.instructions,
        tools=a.tools,
        file_ids=file_ids,
        metadata={**a.metadata, TAG_KEY: a.key},
    )


FAQ = DesiredFile(path="docs/faq.md", sha256="1" * 64, size=1200)
FAQ_OLD = DesiredFile(path="docs/faq.md", sha256="0" * 64, size=1100)


def plan_creates() -> Plan:
    helper = _assistant(
        "order-helper",
        description="Answers order questions",
        instructions=INSTRUCTIONS,
        tools=({"type": "retrieval"}, LOOKUP),
        files=("docs/faq.md",),
        metadata={"team": "support", "cost_center": "4711"},
    )
    d = Desired(assistants={"order-helper": helper}, files={"docs/faq.md": FAQ})
    return make_plan(d, Live(), Lock(lineage=""))


def plan_updates() -> Plan:
    old = _assistant(
        "order-helper", instructions=INSTRUCTIONS, tools=(LOOKUP,), files=("docs/faq.md",)
    )
    new_tool = json.loads(json.dumps(LOOKUP))
    new_tool["function"]["parameters"]["properties"]["order_id"]["type"] = "integer"
    new_tool["function"]["parameters"]["properties"]["verbose"] = {"type": "boolean"}
    new = old.model_copy(
        update={
            "name": "Order Helper 2",
            "instructions": INSTRUCTIONS.replace("Be brief.", "Be brief and friendly."),
            "tools": (new_tool,),
        }
    )
    d_old = Desired(assistants={"order-helper": old}, files={"docs/faq.md": FAQ_OLD})
    d_new = Desired(assistants={"order-helper": new}, files={"docs/faq.md": FAQ})
    lock = Lock(
        lineage="l",
        serial=3,
        assistants={
            "order-helper": LockedAssistant(
                id="asst_1", applied=d_old.config_of("order-helper").digest()
            )
        },
        files={"docs/faq.md": LockedFile(id="file-old", sha256=FAQ_OLD.sha256, size=FAQ_OLD.size)},
    )
    drifted = _live(old, "asst_1", ("file-old",)).model_copy(
        update={"description": "edited in a dashboard"}
    )
    live = Live(
        assistants=(drifted,),
        files=(LiveFile(id="file-old", bytes=1100, filename="faq.md", purpose="assistants"),),
    )
    return make_plan(d_new, live, lock)


def plan_destroys() -> Plan:
    gone = _assistant("returns-bot")
    d_old = Desired(assistants={"returns-bot": gone})
    lock = Lock(
        lineage="l",
        assistants={
            "returns-bot": LockedAssistant(
                id="asst_2", applied=d_old.config_of("returns-bot").digest()
            )
        },
    )
    return make_plan(Desired(), Live(assistants=(_live(gone, "asst_2"),)), lock)


def plan_no_changes() -> Plan:
    a = _assistant("order-helper")
    d = Desired(assistants={"order-helper": a})
    lock = Lock(
        lineage="l",
        assistants={
            "order-helper": LockedAssistant(
                id="asst_1", applied=d.config_of("order-helper").digest()
            )
        },
    )
    return make_plan(d, Live(assistants=(_live(a, "asst_1"),)), lock)


CASES = {
    "creates": plan_creates,
    "updates": plan_updates,
    "destroys": plan_destroys,
    "no_changes": plan_no_changes,
}
RENDERERS = {"txt": render_text, "md": render_markdown, "json": render_json}


@pytest.mark.parametrize("ext", sorted(RENDERERS))
@pytest.mark.parametrize("case", sorted(CASES))
def test_golden(case: str, ext: str) -> None:
    text = RENDERERS[ext](CASES[case]())
    path = GOLDEN / f"plan_{case}.{ext}"
    if os.environ.get("ASSISTSYNC_UPDATE_GOLDEN"):
        path.parent.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"{path} is missing: run with ASSISTSYNC_UPDATE_GOLDEN=1"
    assert text == path.read_text(encoding="utf-8")


def test_update_shows_line_diff_and_schema_field_diff() -> None:
    text = render_text(plan_updates())
    assert "          - Be brief.\n" in text
    assert "+ Be brief and friendly." in text
    assert 'tools[0].function.parameters.properties.order_id.type: "string" -> "integer"' in text
    assert "Objects have changed outside of assistsync" in text
    assert text.rstrip().splitlines()[-1] == "Plan: 1 to add, 1 to change, 1 to destroy."


def test_markdown_calls_out_destroys_above_the_fold() -> None:
    md = render_markdown(plan_destroys())
    fold = md.index("<details>")
    assert md.index("will be destroyed") < fold
    assert "`assistant.returns-bot`" in md[:fold]
    assert "```diff" in md


def test_json_has_terraform_shape() -> None:
    data = json.loads(render_json(plan_creates()))
    assert data["format_version"] == "1.0"
    by_address = {c["address"]: c for c in data["resource_changes"]}
    assert by_address["assistant.order-helper"]["change"]["actions"] == ["create"]
    assert by_address["assistant.order-helper"]["change"]["after"]["files"] == ["docs/faq.md"]
    assert by_address["file.docs/faq.md"]["change"]["actions"] == ["create"]


def _equals_columns(text: str, start: str) -> set[int]:
    """The columns of ``=`` in the lines of the block that opens with ``start``."""
    lines = text.splitlines()
    first = next(i for i, line in enumerate(lines) if start in line) + 1
    block = lines[first : next(i for i in range(first, len(lines)) if lines[i].strip() == "}")]
    return {line.index(" = ") for line in block}


def test_metadata_keys_align_their_equals_signs_as_terraform_does() -> None:
    created = render_text(plan_creates())
    assert '+ cost_center = "4711"' in created
    assert '+ team        = "support"' in created
    assert len(_equals_columns(created, "metadata     = {")) == 1

    a = _assistant("bot", metadata={"team": "support", "x": "1", "tier": "gold"})
    d = Desired(assistants={"bot": a})
    lock = Lock(
        lineage="l",
        assistants={"bot": LockedAssistant(id="asst_1", applied=d.config_of("bot").digest())},
    )
    changed = a.model_copy(update={"metadata": {"team": "sales", "x": "1", "cost_center": "9"}})
    live = Live(assistants=(_live(a, "asst_1"),))
    updated = render_text(make_plan(Desired(assistants={"bot": changed}), live, lock))
    assert '+ cost_center = "9"' in updated
    assert '~ team        = "support" -> "sales"' in updated
    assert '- tier        = "gold"' in updated
    assert " x " not in updated  # unchanged pairs are not shown
    assert len(_equals_columns(updated, "metadata     = {")) == 1


def test_the_plan_is_rendered_one_resource_at_a_time() -> None:
    # a printer that writes as it goes must hold one assistant's block, not the whole plan's
    keys = ("bot-a", "bot-b", "bot-c")
    d = Desired(assistants={k: _assistant(k, instructions=INSTRUCTIONS) for k in keys})
    plan = make_plan(d, Live(), Lock(lineage=""))
    lines = iter_plan_lines(plan)
    assert isinstance(lines, Generator)
    taken = []
    for line in lines:
        taken.append(line_text(line))
        if line.text == "}":  # the end of the first assistant's block
            break
    assert 'assistant "bot-a" {' in "\n".join(taken)
    # suspended inside the first assistant: the next two are not rendered yet
    assert inspect.getgeneratorstate(lines) == inspect.GEN_SUSPENDED
    assert inspect.getgeneratorlocals(lines)["a"].key == "bot-a"
    rest = [line_text(line) for line in lines]
    assert 'assistant "bot-b" {' in "\n".join(rest)
    assert 'assistant "bot-c" {' in "\n".join(rest)
    assert "".join(t + "\n" for t in taken + rest) == render_text(plan)


def test_printing_in_chunks_gives_the_same_bytes_as_the_whole_text(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from assistsync.cli.context import Settings
    from assistsync.cli.output import CHUNK_LINES, echo_lines

    # enough assistants that the printed plan spans several chunks
    many = "\n".join(f"Rule {i}: answer in one line." for i in range(200)) + "\n"
    n = CHUNK_LINES // 200 * 3 + 2
    d = Desired(
        assistants={f"bot-{i:03}": _assistant(f"bot-{i:03}", instructions=many) for i in range(n)}
    )
    plan = make_plan(d, Live(), Lock(lineage=""))
    echo_lines(Settings(root=Path(), no_color=True), iter_plan_lines(plan))
    printed = capsys.readouterr().out
    assert printed.count("\n") > 3 * CHUNK_LINES
    assert printed == render_text(plan)

    echo_lines(Settings(root=Path(), no_color=True), iter([]))
    assert capsys.readouterr().out == "\n"  # as click.echo("") of an empty plan would
