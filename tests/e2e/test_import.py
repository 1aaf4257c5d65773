"""``assistsync import`` end to end: assistants made with plain HTTP, imported by the real CLI
into a project, then planned against the same server. The contract: the next plan is empty."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from e2ekit import API_KEY, Api, Project

from assistsync.server import Faults, ServerHandle, start_server

LONG = "You are the support assistant.\n\nRules:\n" + "".join(
    f"{n}. Answer question kind {n} politely, quoting ${{FAQ}} literally.\n" for n in range(40)
)
PARAMS = {
    "type": "object",
    "properties": {"order_id": {"type": "string", "description": "Der Auftrag — 注文"}},
    "required": ["order_id"],
}


def upload(api: Api, name: str, content: bytes) -> str:
    response = api.http.post(
        "/files", files={"file": (name, content)}, data={"purpose": "assistants"}
    )
    return str(response.raise_for_status().json()["id"])


def tree(root: Path) -> dict[str, bytes]:
    """Every file of the project except assistsync's run-time state."""
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".assistsync" not in p.relative_to(root).parts
    }


@pytest.fixture
def account(api: Api) -> dict[str, dict[str, Any]]:
    """Assistants with every field the API has, made by hand (plain HTTP)."""
    faq = upload(api, "faq.md", b"# FAQ\n\nShipping takes 3 days.\n")
    same_faq = upload(api, "faq-copy.md", b"# FAQ\n\nShipping takes 3 days.\n")
    terms = upload(api, "Terms & Conditions (2024).txt", b"terms\n")
    return {
        "full": api.create(
            {
                "model": "gpt-4-turbo",
                "name": "Support Bot",
                "description": "Answers ${ORDER} questions",
                "instructions": LONG,
                "tools": [
                    {"type": "code_interpreter"},
                    {"type": "retrieval"},
                    {
                        "type": "function",
                        "function": {
                            "name": "lookup_order",
                            "description": "Look up an order",
                            "parameters": PARAMS,
                        },
                    },
                    {"type": "function", "function": {"name": "ping"}},
                ],
                "file_ids": [faq, terms],
                "metadata": {"team": "support", "cost": "${CENTER}"},
            }
        ),
        # its name slugifies like the first one's; shares a file id and identical content
        "collide": api.create(
            {
                "model": "gpt-4",
                "name": "support bot!",
                "instructions": "Be brief.",
                "file_ids": [terms, same_faq],
            }
        ),
        "unicode": api.create(
            {"model": "gpt-4", "name": "Помощник 日本", "instructions": "Отвечай по-русски."}
        ),
        "accents": api.create({"model": "gpt-4", "name": "Café Crème"}),
        "bare": api.create({"model": "gpt-3.5-turbo"}),
    }


def test_every_field_imports_and_the_next_plan_is_empty(
    project_dir: Project, account: dict[str, dict[str, Any]], api: Api, server: ServerHandle
) -> None:
    p = project_dir
    before = server.stats.by_route
    result = p.run("import", "--all")
    assert result.code == 0, result.all
    downloads = server.stats.by_route.get("GET /v1/files/{file_id}/content", 0) - before.get(
        "GET /v1/files/{file_id}/content", 0
    )
    assert downloads == 3  # each distinct file id once, though two assistants share one

    plan = p.run("plan", "--detailed-exitcode")
    assert plan.code == 0, plan.all
    assert "No changes. Your assistants match the configuration." in plan.out

    # keys: slugified, de-duplicated and reported, unicode folded or replaced
    assert "support-bot-2" in result.out
    assert "(key support-bot was taken)" in result.out
    # renaming an imported key later replaces the assistant: the note must not invite it
    assert "renaming one in a manifest later replaces its assistant" in result.out
    lock = p.lock()
    keys = {entry["id"]: key for key, entry in lock["assistants"].items()}
    assert keys[account["full"]["id"]] == "support-bot"
    assert keys[account["collide"]["id"]] == "support-bot-2"
    assert keys[account["accents"]["id"]] == "cafe-creme"
    assert keys[account["unicode"]["id"]] == "assistant"
    assert keys[account["bare"]["id"]] == "assistant-2"

    # every assistant is tagged with its key, its own metadata kept
    live = {a["id"]: a for a in api.assistants()}
    for assistant_id, key in keys.items():
        assert live[assistant_id]["metadata"]["assistsync_key"] == key
    assert live[account["full"]["id"]]["metadata"]["cost"] == "${CENTER}"

    # long instructions in a prompt file, byte for byte; schemas in JSON files; short inline
    assert (p.root / "prompts/support-bot.md").read_text(encoding="utf-8") == LONG
    assert json.loads((p.root / "functions/support-bot/lookup_order.json").read_bytes()) == PARAMS
    manifest = (p.root / "assistants/support-bot-2.yaml").read_text(encoding="utf-8")
    assert "instructions: Be brief." in manifest
    # a shared file is downloaded and named once; identical content is kept once
    docs = sorted(q.relative_to(p.root).as_posix() for q in (p.root / "docs").rglob("*"))
    assert docs == [
        "docs/support-bot",
        "docs/support-bot/Terms-Conditions-2024-.txt",
        "docs/support-bot/faq.md",
    ]
    assert "../docs/support-bot/faq.md" in manifest

    # the project validates, and an apply has nothing to do
    assert p.run("validate").code == 0
    applied = p.run("apply", "--auto-approve")
    assert applied.code == 0, applied.all
    assert "No changes." in applied.out


def test_rerunning_import_changes_nothing(
    project_dir: Project, account: dict[str, dict[str, Any]], api: Api
) -> None:
    p = project_dir
    assert p.run("import", "--all").code == 0
    files, live = tree(p.root), api.assistants()
    again = p.run("import", "--all")
    assert again.code == 0, again.all
    assert "Skipped (already managed):" in again.out
    assert "Nothing to import." in again.out
    assert tree(p.root) == files
    assert api.assistants() == live


def test_a_strangers_tagged_assistant_is_not_taken(project_dir: Project, api: Api) -> None:
    p = project_dir
    theirs = api.create(
        {"model": "gpt-4", "name": "Theirs", "metadata": {"assistsync_key": "theirs"}}
    )
    mine = api.create({"model": "gpt-4", "name": "Mine"})
    result = p.run("import", "--all")
    assert result.code == 0, result.all
    assert f"{theirs['id']} ('Theirs'): tagged assistsync_key=theirs by another project" in (
        result.out
    )
    assert set(p.lock()["assistants"]) == {"mine"}
    assert not (p.root / "assistants/theirs.yaml").exists()
    live = {a["id"]: a for a in api.assistants()}
    assert live[theirs["id"]] == theirs
    assert live[mine["id"]]["metadata"] == {"assistsync_key": "mine"}


def test_an_assistant_with_sixteen_metadata_pairs_is_refused_clearly(
    project_dir: Project, api: Api
) -> None:
    full = api.create(
        {"model": "gpt-4", "name": "Full", "metadata": {f"k{i}": "v" for i in range(16)}}
    )
    api.create({"model": "gpt-4", "name": "Fine"})
    result = project_dir.run("import", "--all")
    assert result.code == 1
    assert f"{full['id']} ('Full'): it has 16 metadata pairs" in result.err
    assert "cannot carry the assistsync_key tag" in result.err
    assert set(project_dir.lock()["assistants"]) == {"fine"}  # the rest was imported
    assert project_dir.run("plan", "--detailed-exitcode").code == 0


def test_comments_in_an_existing_manifest_survive_an_append(project_dir: Project, api: Api) -> None:
    p = project_dir
    original = """\
# Our assistants. Keep this comment.
assistants:
  # the one we made first
  greeter:
    name: "Greeter"   # quoted on purpose
    model: gpt-4
    instructions: Say hello.
"""
    p.write("assistants/main.yaml", original)
    assert p.run("apply", "--auto-approve").code == 0
    api.create({"model": "gpt-4", "name": "Newcomer", "instructions": "Hi."})
    result = p.run("import", "--all", "--into", "assistants/main.yaml")
    assert result.code == 0, result.all
    text = (p.root / "assistants/main.yaml").read_text(encoding="utf-8")
    assert text.startswith(original), text
    assert "  newcomer:\n    name: Newcomer\n" in text
    assert p.run("plan", "--detailed-exitcode").code == 0


def test_existing_files_are_never_overwritten(project_dir: Project, api: Api) -> None:
    p = project_dir
    api.create({"model": "gpt-4", "name": "Writer", "instructions": LONG})
    p.write("prompts/writer.md", "my own notes\n")
    result = p.run("import", "--all")
    assert result.code == 1
    assert "would overwrite 1 existing file: prompts/writer.md" in result.err
    assert "--force" in result.err
    assert tree(p.root) == {"assistsync.yaml": b"", "prompts/writer.md": b"my own notes\n"}
    forced = p.run("import", "--all", "--force")
    assert forced.code == 0, forced.all
    assert (p.root / "prompts/writer.md").read_text(encoding="utf-8") == LONG
    assert p.run("plan", "--detailed-exitcode").code == 0


def test_dry_run_writes_nothing(project_dir: Project, account: dict[str, dict[str, Any]]) -> None:
    p = project_dir
    result = p.run("import", "--all", "--dry-run")
    assert result.code == 0, result.all
    assert "Would write:" in result.out
    assert "prompts/support-bot.md" in result.out
    assert "Would download 3 files" in result.out
    assert tree(p.root) == {"assistsync.yaml": b""}
    assert not (p.root / "assistsync.lock").exists()
    assert not (p.root / ".assistsync").exists()


def test_selection_by_id_name_and_metadata(project_dir: Project, api: Api) -> None:
    p = project_dir
    a = api.create({"model": "gpt-4", "name": "Alpha", "metadata": {"team": "x"}})
    api.create({"model": "gpt-4", "name": "Beta", "metadata": {"team": "y"}})
    api.create({"model": "gpt-4", "name": "Gamma", "metadata": {"team": "x"}})
    assert p.run("import").code == 1  # nothing chosen: says how to choose
    assert p.run("import", "--id", "asst_nope").code == 1
    assert p.run("import", "--id", a["id"]).code == 0
    assert p.run("import", "--name", "G*", "--metadata", "team=y").out.strip() == (
        "No assistant matches."
    )
    assert p.run("import", "--metadata", "team=x").code == 0
    assert set(p.lock()["assistants"]) == {"alpha", "gamma"}


def test_import_into_an_environment(tmp_path: Path, server: ServerHandle, api: Api) -> None:
    p = Project(tmp_path / "envs", server)
    p.write("assistsync.yaml", "environments:\n  staging: {}\n  prod: {}\n")
    made = api.create({"model": "gpt-4", "name": "Bot"})
    result = p.run("import", "--all", "--env", "staging")
    assert result.code == 0, result.all
    lock = json.loads((p.root / "assistsync.staging.lock").read_text(encoding="utf-8"))
    assert lock["assistants"]["bot"]["id"] == made["id"]
    assert api.assistants()[0]["metadata"] == {"assistsync_key": "bot@staging"}
    assert p.run("plan", "--env", "staging", "--detailed-exitcode").code == 0
    assert "will be created" in p.run("plan", "--env", "prod").out  # prod has its own


@pytest.fixture
def project_dir(tmp_path: Path, server: ServerHandle) -> Project:
    p = Project(tmp_path / "proj", server)
    p.write("assistsync.yaml", "")
    return p


@pytest.fixture
def slow_server() -> Iterator[ServerHandle]:
    with start_server(port=0, faults=Faults(latency_ms=60)) as handle:
        yield handle


def interrupted_import(p: Project, at: str) -> tuple[str, str]:
    """``import --all`` one call at a time, sent Ctrl-C when a stderr line starts with ``at``
    (progress lines: no clock involved). Returns its stdout and stderr; it must exit 130."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    env.update({"OPENAI_BASE_URL": p.server.base_url, "OPENAI_API_KEY": API_KEY})
    args = ["-C", str(p.root), "import", "--all", "--concurrency", "1"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "assistsync", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    for line in proc.stderr:
        if line.startswith(at):
            proc.send_signal(signal.SIGINT)
            break
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, out + err
    assert "Traceback" not in err
    return out, err


def test_ctrl_c_mid_import_leaves_a_consistent_project(
    tmp_path: Path, slow_server: ServerHandle
) -> None:
    api = Api(slow_server.base_url)
    doc = upload(api, "faq.md", b"# FAQ\n")
    for n in range(40):
        api.create({"model": "gpt-4", "name": f"Bot {n}", "file_ids": [doc]})
    p = Project(tmp_path / "proj", slow_server)
    p.write("assistsync.yaml", "")
    _, err = interrupted_import(p, "Tagging assistants:")  # the project is written by then
    assert "Interrupted" in err
    assert "Traceback" not in err
    # no half-written file: no scratch downloads, no temporary files
    state = p.root / ".assistsync"
    assert not [q for q in state.iterdir() if q.name.startswith("import-")]
    assert not list(p.root.rglob("*.tmp"))
    # consistent: valid manifests, every assistant in the lock, nothing to create or destroy
    assert p.run("validate").code == 0
    assert len(p.lock()["assistants"]) == 40
    plan = p.run("plan")
    assert "to add" not in plan.out or "0 to add" in plan.out, plan.out
    assert "0 to destroy" in plan.out or "No changes" in plan.out, plan.out
    # running the import again finishes the tagging; then nothing is left to do
    again = p.run("import", "--all")
    assert again.code == 0, again.all
    assert p.run("plan", "--detailed-exitcode").code == 0
    api.http.close()


def test_ctrl_c_while_downloading_writes_nothing(tmp_path: Path, slow_server: ServerHandle) -> None:
    api = Api(slow_server.base_url)
    docs = [upload(api, f"doc{n}.md", f"doc {n}\n".encode()) for n in range(20)]
    api.create({"model": "gpt-4", "name": "Reader", "file_ids": docs[:20]})
    p = Project(tmp_path / "proj", slow_server)
    p.write("assistsync.yaml", "")
    interrupted_import(p, "Downloading files:")
    assert tree(p.root) == {"assistsync.yaml": b""}
    assert not [q for q in (p.root / ".assistsync").iterdir() if q.name.startswith("import-")]
    assert api.assistants()[0]["metadata"] == {}
    api.http.close()


def test_a_large_import_in_batches_ends_with_an_empty_plan(project_dir: Project, api: Api) -> None:
    shared = upload(api, "shared.md", b"shared\n")
    for n in range(230):  # three batches: each written, recorded, then tagged
        api.create({"model": "gpt-4", "name": f"Bot {n % 50}", "file_ids": [shared]})
    result = project_dir.run("import", "--all")
    assert result.code == 0, result.all
    assert "230 imported" in result.out
    assert "Tagging assistants: 230/230" in result.err
    assert len(project_dir.lock()["assistants"]) == 230
    assert project_dir.run("plan", "--detailed-exitcode").code == 0


def test_an_assistant_whose_file_cannot_be_downloaded_is_left_out(tmp_path: Path) -> None:
    with start_server(port=0, db=tmp_path / "state.db") as server:
        api = Api(server.base_url)
        lost = upload(api, "lost.md", b"lost\n")
        kept = upload(api, "kept.md", b"kept\n")
        broken = api.create({"model": "gpt-4", "name": "Broken", "file_ids": [lost, kept]})
        api.create({"model": "gpt-4", "name": "Fine", "file_ids": [kept]})
        (tmp_path / "state.db.files" / lost).unlink()  # its content is gone from the server
        p = Project(tmp_path / "proj", server)
        p.write("assistsync.yaml", "")
        result = p.run("import", "--all")
        assert result.code == 1, result.all
        assert f"{broken['id']} ('Broken'): its file {lost} could not be downloaded" in result.err
        assert f"file {lost}: " in result.err
        assert set(p.lock()["assistants"]) == {"fine"}
        assert p.run("plan", "--detailed-exitcode").code == 0
        assert "broken" not in {q.name for q in (p.root / "assistants").iterdir()}
        api.http.close()


def test_a_manifest_in_the_way_is_appended_to_never_replaced(
    project_dir: Project, api: Api
) -> None:
    p = project_dir
    mine = "# mine\nassistants:\n  other:\n    model: gpt-4\n"
    p.write("assistants/newcomer.yaml", mine)
    assert p.run("apply", "--auto-approve").code == 0
    api.create({"model": "gpt-4", "name": "Newcomer"})
    result = p.run("import", "--all")
    assert result.code == 0, result.all
    text = (p.root / "assistants/newcomer.yaml").read_text(encoding="utf-8")
    assert text.startswith(mine)
    assert "  newcomer:\n" in text
    assert p.run("plan", "--detailed-exitcode").code == 0
