"""The pure parts of ``assistsync import``: keys, selection, layout, manifest text."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from assistsync.adopt.choose import Criteria, choose
from assistsync.adopt.keys import slugify, unique_key
from assistsync.adopt.layout import literal, safe_filename
from assistsync.adopt.target import covered, manifest_dir
from assistsync.adopt.yamlio import appended, new_manifest
from assistsync.errors import AssistsyncError
from assistsync.manifest.source import read_yaml
from assistsync.model import AssistantConfig, LiveAssistant, Lock, LockedAssistant


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("Support Bot (EU)", "support-bot-eu"),
        ("Café Crème", "cafe-creme"),
        ("日本語", "assistant"),
        ("", "assistant"),
        (None, "assistant"),
        ("--Already-a-key--", "already-a-key"),
        ("x" * 100, "x" * 64),
    ],
)
def test_slugify(name: str | None, key: str) -> None:
    assert slugify(name) == key


def test_unique_keys_get_suffixes_that_fit() -> None:
    taken = {"bot"}
    assert unique_key("Bot", taken).key == "bot-2"
    assert unique_key("bot!", taken).key == "bot-3"
    long = "y" * 70
    first, second = unique_key(long, taken), unique_key(long, taken)
    assert first.key == "y" * 64
    assert second.key == "y" * 62 + "-2"
    assert second.renamed
    assert not first.renamed


def live(id_: str, **fields: Any) -> LiveAssistant:
    return LiveAssistant.model_validate({"id": id_, "model": "gpt-4", **fields})


def test_choose_sorts_taken_managed_foreign_and_refused() -> None:
    applied = AssistantConfig(model="gpt-4")
    lock = Lock(lineage="x", assistants={"kept": LockedAssistant(id="a1", applied=applied)})
    account = [
        live("a1", name="Kept"),  # managed, tag missing: tagged again
        live("a2", name="Theirs", metadata={"assistsync_key": "theirs"}),
        live("a3", name="Ours later", metadata={"assistsync_key": "declared"}),
        live("a4", name="Full", metadata={f"k{i}": "v" for i in range(16)}),
        live("a5", name="New tool", tools=[{"type": "file_search"}]),
        live("a6", name="Theirs"),  # slug taken by a live tag
        live(
            "a7",
            tools=[{"type": "function", "function": {"name": "f", "parameters": {"type": 5}}}],
        ),
    ]
    choice = choose(account, Criteria(all=True), lock, {"declared"}, None)
    assert [p.live.id for p in choice.managed] == ["a1"]
    assert [(k, a.id) for k, a in choice.retag] == [("kept", "a1")]
    assert [p.live.id for p in choice.not_taken] == ["a2", "a3"]
    assert "the next plan imports it" in choice.not_taken[1].why
    assert [p.live.id for p in choice.refused] == ["a4", "a5", "a7"]
    assert "not a valid JSON Schema" in choice.refused[2].why
    assert [(t.key, t.live.id) for t in choice.taken] == [("theirs-2", "a6")]


def test_choose_filters_and_checks_ids() -> None:
    account = [
        live("a1", name="Alpha", metadata={"team": "x"}),
        live("a2", name="Beta", metadata={"team": "x"}),
    ]
    lock = Lock(lineage="")
    picked = choose(account, Criteria(names=("B*",), metadata=(("team", "x"),)), lock, set(), None)
    assert [t.live.id for t in picked.taken] == ["a2"]
    with pytest.raises(AssistsyncError, match="no assistant with id nope"):
        choose(account, Criteria(ids=("nope",)), lock, set(), None)
    with pytest.raises(AssistsyncError, match="choose the assistants"):
        choose(account, Criteria(), lock, set(), None)


def test_another_environments_tag_is_not_taken() -> None:
    account = [live("a1", name="Bot", metadata={"assistsync_key": "bot@prod"})]
    choice = choose(account, Criteria(all=True), Lock(lineage=""), set(), "staging")
    assert [p.live.id for p in choice.not_taken] == ["a1"]


def test_literal_reads_back_unchanged() -> None:
    for text in ("${HOME}", "$${x}", "a $ b", "${", "cost: $$${X}"):
        data, problems = read_yaml(f"v: {literal(text)!r}\n".replace("'", '"'), {})
        assert not problems, (text, problems)
        assert data["v"] == text


def test_safe_filenames() -> None:
    assert safe_filename("Q&A (2024).pdf", "f") == "Q-A-2024-.pdf"
    assert safe_filename("../../etc/passwd", "f") == "passwd"
    assert safe_filename(".env", "f") == "env"
    assert safe_filename("*?[", "file-1") == "file-1"


def test_globs_cover_the_paths_written() -> None:
    assert covered("assistants/a.yaml", ("assistants/**/*.yaml",))
    assert covered("assistants/x/a.yaml", ("assistants/**/*.yaml",))
    assert not covered("other/a.yaml", ("assistants/*.yaml",))
    assert manifest_dir(("infra/*/x/*.yaml",)) == "infra"
    assert manifest_dir(("*.yaml",)) == ""


def test_manifests_are_written_and_appended_with_comments_kept(tmp_path: Path) -> None:
    entry = {"name": "yes", "model": "1.0", "metadata": {"a": "null"}}
    text = new_manifest({"k": entry}, "Imported")
    assert text.startswith("# Imported\n")
    data, problems = read_yaml(text, {})
    assert not problems
    assert dict(data["assistants"]["k"]) == {
        "name": "yes",
        "model": "1.0",
        "metadata": {"a": "null"},
    }
    original = "# top\nassistants: {}  # none yet\n"
    grown = appended(tmp_path / "m.yaml", original, {"k": entry}, "m.yaml")
    assert grown.startswith("# top\nassistants:")
    assert "# none yet" in grown
    with pytest.raises(AssistsyncError, match="not a mapping"):
        appended(tmp_path / "m.yaml", "- a\n", {"k": entry}, "m.yaml")
