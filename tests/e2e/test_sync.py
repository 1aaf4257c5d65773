"""The sync lifecycle, end to end: the real CLI against the real embedded server."""

from __future__ import annotations

import json
from pathlib import Path

from e2ekit import API_KEY, Api, Project

from assistsync.server import ServerHandle


def applied(project: Project) -> None:
    result = project.run("apply", "--auto-approve")
    assert result.code == 0, result.all
    assert "Apply complete!" in result.out


def test_create_then_second_plan_is_empty(project: Project, api: Api, server: ServerHandle) -> None:
    plan = project.run("plan", "--detailed-exitcode")
    assert plan.code == 2, plan.all
    assert "Plan: 4 to add, 0 to change, 0 to destroy." in plan.out  # 2 files + 2 assistants
    applied(project)

    live = api.by_key()
    assert sorted(live) == ["order-helper", "returns-bot"]
    helper = live["order-helper"]
    assert helper["instructions"] == "You help customers with their orders.\nBe brief.\n"
    assert helper["metadata"] == {"team": "support", "assistsync_key": "order-helper"}
    assert helper["tools"][1]["function"]["parameters"]["required"] == ["order_id"]
    files = {f["id"]: f for f in api.files()}
    assert len(files) == 2  # faq.md shared between both assistants: uploaded once
    assert len(live["returns-bot"]["file_ids"]) == 2
    assert set(helper["file_ids"]) <= set(live["returns-bot"]["file_ids"])

    lock = project.lock()
    assert lock["assistants"]["order-helper"]["id"] == helper["id"]
    assert {f["id"] for f in lock["files"].values()} == set(files)
    assert sorted(lock["files"]) == ["docs/faq.md", "docs/returns.md"]
    assert lock["serial"] >= 1
    assert lock["lineage"]

    server.stats.reset()
    again = project.run("plan", "--detailed-exitcode")
    assert again.code == 0, again.all
    assert "No changes. Your assistants match the configuration." in again.out
    # the request floor: one page of assistants (limit=100) and one /files list
    assert server.stats.by_route == {"GET /v1/assistants": 1, "GET /v1/files": 1}


def test_instructions_edit_updates_in_place(project: Project, api: Api) -> None:
    applied(project)
    before = api.by_key()["order-helper"]
    project.write("prompts/helper.md", "You help customers with their orders.\nBe warm.\n")
    plan = project.run("plan")
    assert "# assistant.order-helper will be updated in-place" in plan.out
    assert "- Be brief." in plan.out
    assert "+ Be warm." in plan.out
    assert "Plan: 0 to add, 1 to change, 0 to destroy." in plan.out
    applied(project)
    after = api.by_key()["order-helper"]
    assert after["id"] == before["id"]
    assert after["instructions"].endswith("Be warm.\n")


def test_file_content_change_swaps_upload_and_deletes_old(project: Project, api: Api) -> None:
    applied(project)
    old_ids = {f["filename"]: f["id"] for f in api.files()}
    project.write("docs/faq.md", "# FAQ\n\nShipping takes 2 days now.\n")
    plan = project.run("plan")
    assert "Plan: 1 to add, 2 to change, 1 to destroy." in plan.out, plan.out
    applied(project)
    new_ids = {f["filename"]: f["id"] for f in api.files()}
    assert new_ids["faq.md"] != old_ids["faq.md"]
    assert new_ids["returns.md"] == old_ids["returns.md"]
    assert api.http.get(f"/files/{old_ids['faq.md']}").status_code == 404
    assert api.content(new_ids["faq.md"]) == b"# FAQ\n\nShipping takes 2 days now.\n"
    for a in api.by_key().values():
        assert old_ids["faq.md"] not in a["file_ids"]
        assert new_ids["faq.md"] in a["file_ids"]
    assert project.run("plan", "--detailed-exitcode").code == 0


def test_drift_is_shown_apart_and_reverted(project: Project, api: Api) -> None:
    applied(project)
    bot = api.by_key()["returns-bot"]
    api.modify(bot["id"], {"name": "Renamed in a dashboard"})
    plan = project.run("plan")
    assert "Objects have changed outside of assistsync" in plan.out
    drift_part = plan.out.split("assistsync will perform")[0]
    assert '"Returns Bot" -> "Renamed in a dashboard"' in drift_part
    assert '"Renamed in a dashboard" -> "Returns Bot"' in plan.out
    applied(project)
    assert api.by_key()["returns-bot"]["name"] == "Returns Bot"
    assert "Objects have changed" not in project.run("plan").out


def test_stale_saved_plan_is_refused(project: Project, api: Api) -> None:
    saved = project.root / "tfplan.json"
    assert project.run("plan", "--out", str(saved)).code == 0
    project.write("prompts/helper.md", "Changed after the plan was made.\n")
    stale = project.run("apply", str(saved))
    assert stale.code == 1
    assert "Saved plan is stale" in stale.err
    assert api.assistants() == []

    assert project.run("plan", "--out", str(saved)).code == 0
    api.create({"model": "gpt-4", "metadata": {"assistsync_key": "order-helper"}})
    stale_live = project.run("apply", str(saved))
    assert stale_live.code == 1
    assert "live assistants or files changed" in stale_live.err

    assert project.run("plan", "--out", str(saved)).code == 0
    fresh = project.run("apply", str(saved))
    assert fresh.code == 0, fresh.all
    assert len(api.by_key()) == 2


def test_removing_an_assistant_destroys_it(project: Project, api: Api) -> None:
    applied(project)
    bot_id = api.by_key()["returns-bot"]["id"]
    manifest = project.root / "assistants/support.yaml"
    text = manifest.read_text()
    manifest.write_text(text[: text.index("  returns-bot:")])
    plan = project.run("plan")
    assert (
        "# assistant.returns-bot will be destroyed, because it is no longer in any manifest"
        in plan.out
    )
    # returns.md is only used by returns-bot, so its upload goes too
    assert "Plan: 0 to add, 0 to change, 2 to destroy." in plan.out
    applied(project)
    assert api.http.get(f"/assistants/{bot_id}").status_code == 404
    assert "returns-bot" not in project.lock()["assistants"]
    assert [f["filename"] for f in api.files()] == ["faq.md"]


def test_deleted_lock_is_recovered_without_duplicates(project: Project, api: Api) -> None:
    applied(project)
    ids = {k: a["id"] for k, a in api.by_key().items()}
    file_ids = sorted(f["id"] for f in api.files())
    (project.root / "assistsync.lock").unlink()
    plan = project.run("plan", "--detailed-exitcode")
    assert plan.code == 2
    assert "will be imported" in plan.out
    assert "will be created" not in plan.out
    assert "will be uploaded" not in plan.out
    applied(project)
    assert {k: a["id"] for k, a in api.by_key().items()} == ids
    assert sorted(f["id"] for f in api.files()) == file_ids
    assert project.run("plan", "--detailed-exitcode").code == 0


def test_unmanaged_assistants_are_never_touched(project: Project, api: Api) -> None:
    theirs = api.create({"model": "gpt-4", "name": "Someone else's", "instructions": "hands off"})
    applied(project)
    manifest = project.root / "assistants/support.yaml"
    manifest.write_text("assistants: {}\n")
    applied(project)
    assert api.by_key() == {}
    (still,) = api.assistants()
    assert still == theirs
    assert "Someone else" not in project.run("plan").out


def test_apply_without_tty_needs_auto_approve(project: Project, api: Api) -> None:
    result = project.run("apply")
    assert result.code == 1
    assert "--auto-approve" in result.err
    assert api.assistants() == []


def test_missing_key_is_a_clear_error(project: Project) -> None:
    result = project.run("plan", env={"OPENAI_API_KEY": ""})
    assert result.code == 1
    assert "OPENAI_API_KEY is not set" in result.err


def test_wrong_key_is_a_clear_error(tmp_path: Path) -> None:
    from assistsync.server import start_server

    with start_server(port=0, api_key="sk-the-right-one") as strict:
        p = Project(tmp_path / "p", strict)
        p.write("assistsync.yaml", "manifests: [a.yaml]\n")
        p.write("a.yaml", "assistants:\n  x:\n    model: gpt-4\n")
        result = p.run("plan")
    assert result.code == 1
    assert "401" in result.err
    assert "OPENAI_API_KEY" in result.err
    assert API_KEY not in result.err


def test_bad_manifests_give_located_errors(project: Project) -> None:
    project.write(
        "assistants/broken.yaml",
        """\
        assistants:
          Bad Key:
            model: gpt-4
          fine:
            modle: gpt-4
            files: [../../outside.md]
        """,
    )
    for command in ("validate", "plan"):
        result = project.run(command)
        assert result.code == 1, result.all
        assert "assistants/broken.yaml:2:3:" in result.err
        assert "assistants/broken.yaml:5:" in result.err
        assert "model" in result.err
        assert "outside" in result.err


def test_unreachable_server_is_a_clear_error(project: Project) -> None:
    result = project.run("plan", env={"OPENAI_BASE_URL": "http://127.0.0.1:9/v1"})
    assert result.code == 1
    assert "127.0.0.1:9" in result.err


def test_json_and_markdown_plans(project: Project) -> None:
    data = json.loads(project.run("plan", "--format", "json").out)
    actions = {c["address"]: c["change"]["actions"] for c in data["resource_changes"]}
    assert actions["assistant.order-helper"] == ["create"]
    assert data["summary"] == "Plan: 4 to add, 0 to change, 0 to destroy."
    md = project.run("plan", "--format", "markdown").out
    assert "**Plan: 4 to add, 0 to change, 0 to destroy.**" in md
    assert "```diff" in md
