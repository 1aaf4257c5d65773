"""The planner's promises, as pure data in and data out."""

from __future__ import annotations

import hashlib
from typing import Any

from assistsync.fetch import recovery_candidates
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
    RetiredFile,
    SourceLocation,
)
from assistsync.planner import (
    desired_fingerprint,
    live_config,
    live_fingerprint,
    make_plan,
    prepare,
)
from assistsync.render import render_text

SRC = SourceLocation(file="assistants/a.yaml", line=2, col=3)
SHA_A = "a" * 64
SHA_B = "b" * 64


def desired(*assistants: DesiredAssistant, files: dict[str, DesiredFile] | None = None) -> Desired:
    return Desired(assistants={a.key: a for a in assistants}, files=files or {})


def want(key: str, **fields: Any) -> DesiredAssistant:
    fields.setdefault("model", "gpt-4-turbo")
    fields.setdefault("name", key.title())
    return DesiredAssistant(key=key, source=SRC, **fields)


def live_of(
    a: DesiredAssistant, id_: str, file_ids: tuple[str, ...] = (), **over: Any
) -> LiveAssistant:
    data: dict[str, Any] = {
        "id": id_,
        "name": a.name,
        "model": a.model,
        "description": a.description,
        "instructions": a.instructions,
        "tools": a.tools,
        "file_ids": file_ids,
        "metadata": {**a.metadata, TAG_KEY: a.key},
    }
    data.update(over)
    return LiveAssistant(**data)


def owned(d: Desired, key: str, id_: str) -> LockedAssistant:
    return LockedAssistant(id=id_, applied=d.config_of(key).digest())


def test_everything_new_is_created_files_first() -> None:
    f = DesiredFile(path="docs/faq.md", sha256=SHA_A, size=10)
    d = desired(want("bot", files=("docs/faq.md",)), files={"docs/faq.md": f})
    plan = make_plan(d, Live(), Lock(lineage=""))
    assert [(c.action, c.path) for c in plan.files] == [("create", "docs/faq.md")]
    assert [(c.action, c.key) for c in plan.assistants] == [("create", "bot")]
    assert plan.summary() == "Plan: 2 to add, 0 to change, 0 to destroy."


def test_matching_state_is_no_changes_and_key_order_of_schemas_is_irrelevant() -> None:
    tool = {
        "type": "function",
        "function": {"name": "f", "parameters": {"type": "object", "properties": {}}},
    }
    a = want("bot", tools=(tool,), instructions="Be kind.")
    d = desired(a)
    reordered = {
        "function": {
            "parameters": {"properties": {}, "type": "object"},
            "name": "f",
            "description": None,
        },
        "type": "function",
    }
    live = Live(assistants=(live_of(a, "asst_1", tools=(reordered,)),))
    lock = Lock(lineage="x", assistants={"bot": owned(d, "bot", "asst_1")})
    plan = make_plan(d, live, lock)
    assert not plan.has_changes
    assert plan.summary() == "No changes. Your assistants match the configuration."
    assert plan.drift == ()


def test_edit_is_an_update_of_only_the_changed_field() -> None:
    old = want("bot", instructions="v1")
    new = want("bot", instructions="v2")
    d_old, d_new = desired(old), desired(new)
    lock = Lock(lineage="x", assistants={"bot": owned(d_old, "bot", "asst_1")})
    plan = make_plan(d_new, Live(assistants=(live_of(old, "asst_1"),)), lock)
    (change,) = plan.assistants
    assert (change.action, change.id, change.changed) == ("update", "asst_1", ("instructions",))
    assert plan.drift == ()


def test_drift_is_reported_apart_and_reverted() -> None:
    a = want("bot", description="orig")
    d = desired(a)
    lock = Lock(lineage="x", assistants={"bot": owned(d, "bot", "asst_1")})
    live = Live(assistants=(live_of(a, "asst_1", description="edited by hand"),))
    plan = make_plan(d, live, lock)
    (drift,) = plan.drift
    assert drift.changed == ("description",)
    (change,) = plan.assistants
    assert change.action == "update"
    assert change.after is not None
    assert change.after.description == "orig"


def test_assistant_deleted_outside_is_drift_and_recreated() -> None:
    a = want("bot")
    d = desired(a)
    lock = Lock(lineage="x", assistants={"bot": owned(d, "bot", "asst_gone")})
    plan = make_plan(d, Live(), lock)
    assert plan.drift[0].live is None
    assert plan.assistants[0].action == "create"


def test_removed_from_manifests_is_destroyed_unmanaged_untouched() -> None:
    a = want("bot")
    d_old = desired(a)
    stranger = LiveAssistant(id="asst_theirs", model="gpt-4", name="Not ours")
    lock = Lock(lineage="x", assistants={"bot": owned(d_old, "bot", "asst_1")})
    plan = make_plan(desired(), Live(assistants=(live_of(a, "asst_1"), stranger)), lock)
    assert [(c.action, c.id) for c in plan.assistants] == [("delete", "asst_1")]
    assert plan.assistants[0].reason == "it is no longer in any manifest"


def test_lost_lock_adopts_tagged_assistant_instead_of_creating() -> None:
    a = want("bot")
    twin = live_of(a, "asst_newer", created_at=20)
    plan = make_plan(
        desired(a), Live(assistants=(twin, live_of(a, "asst_old", created_at=10))), Lock(lineage="")
    )
    (change,) = plan.assistants
    assert (change.action, change.import_id) == ("no-op", "asst_old")
    assert plan.has_changes  # the lock must learn the id
    assert plan.summary() == "Plan: 1 to import, 0 to add, 0 to change, 0 to destroy."


def test_tag_removed_outside_is_restored() -> None:
    a = want("bot")
    d = desired(a)
    lock = Lock(lineage="x", assistants={"bot": owned(d, "bot", "asst_1")})
    plan = make_plan(d, Live(assistants=(live_of(a, "asst_1", metadata={}),)), lock)
    assert plan.assistants[0].changed == ("metadata",)


def test_file_content_change_uploads_swaps_and_deletes_old() -> None:
    new_file = DesiredFile(path="docs/faq.md", sha256=SHA_B, size=5)
    a = want("bot", files=("docs/faq.md",))
    d_new = desired(a, files={"docs/faq.md": new_file})
    d_old = desired(a, files={"docs/faq.md": new_file.model_copy(update={"sha256": SHA_A})})
    lock = Lock(
        lineage="x",
        assistants={"bot": owned(d_old, "bot", "asst_1")},
        files={"docs/faq.md": LockedFile(id="file-old", sha256=SHA_A, size=4)},
    )
    live = Live(
        assistants=(live_of(a, "asst_1", file_ids=("file-old",)),),
        files=(LiveFile(id="file-old", bytes=4, filename="faq.md", purpose="assistants"),),
    )
    plan = make_plan(d_new, live, lock)
    assert [(f.action, f.id) for f in plan.files] == [("create", None), ("delete", "file-old")]
    assert plan.assistants[0].changed == ("files",)
    assert plan.summary() == "Plan: 1 to add, 1 to change, 1 to destroy."


def test_shared_content_is_uploaded_once() -> None:
    files = {p: DesiredFile(path=p, sha256=SHA_A, size=3) for p in ("a/x.md", "b/x.md")}
    d = desired(want("one", files=("a/x.md",)), want("two", files=("b/x.md",)), files=files)
    plan = make_plan(d, Live(), Lock(lineage=""))
    assert len([f for f in plan.files if f.action == "create"]) == 1


def test_foreign_attachment_shows_as_files_change() -> None:
    a = want("bot")
    d = desired(a)
    lock = Lock(lineage="x", assistants={"bot": owned(d, "bot", "asst_1")})
    live = Live(assistants=(live_of(a, "asst_1", file_ids=("file-theirs",)),))
    plan = make_plan(d, live, lock)
    assert plan.assistants[0].changed == ("files",)
    assert plan.drift[0].live is not None
    assert plan.drift[0].live.files == ("id:file-theirs",)


def test_recovered_file_is_adopted_not_uploaded() -> None:
    f = DesiredFile(path="docs/faq.md", sha256=SHA_A, size=3)
    a = want("bot", files=("docs/faq.md",))
    live = Live(
        assistants=(live_of(a, "asst_1", file_ids=("file-1",)),),
        files=(LiveFile(id="file-1", bytes=3, filename="faq.md", purpose="assistants"),),
        file_sha256={"file-1": SHA_A},
    )
    plan = make_plan(desired(a, files={"docs/faq.md": f}), live, Lock(lineage=""))
    assert plan.files[0].adopt_id == "file-1"
    assert plan.assistants[0].action == "no-op"


def test_plans_are_deterministic_and_fingerprints_ignore_source_positions() -> None:
    d = desired(want("b"), want("a"))
    moved = Desired(
        assistants={
            k: v.model_copy(update={"source": SourceLocation(file="x.yaml", line=9)})
            for k, v in d.assistants.items()
        }
    )
    assert make_plan(d, Live(), Lock(lineage="")) == make_plan(d, Live(), Lock(lineage=""))
    assert desired_fingerprint(d) == desired_fingerprint(moved)
    assert [c.key for c in make_plan(d, Live(), Lock(lineage="")).assistants] == ["a", "b"]


def test_live_config_strips_tag_and_maps_known_files() -> None:
    a = want("bot", metadata={"team": "x"})
    cfg = live_config(live_of(a, "asst_1", file_ids=("file-1",)), {"file-1": SHA_A})
    assert cfg.metadata == {"team": "x"}
    assert cfg.files == (SHA_A,)


def test_live_matching_manifests_but_not_lock_is_a_quiet_lock_refresh() -> None:
    # e.g. an update whose response was lost: the server has the new value, the lock the old
    old, new = want("bot", description="v1"), want("bot", description="v2")
    lock = Lock(lineage="x", assistants={"bot": owned(desired(old), "bot", "asst_1")})
    plan = make_plan(desired(new), Live(assistants=(live_of(new, "asst_1"),)), lock)
    (change,) = plan.assistants
    assert (change.action, change.refresh, change.needs_apply) == ("no-op", True, True)
    assert plan.drift == ()
    assert not plan.has_changes
    assert plan.lock_only
    assert plan.summary() == "No changes. Your assistants match the configuration."


def test_an_upload_an_unmanaged_assistant_uses_is_not_deleted() -> None:
    stranger = LiveAssistant(id="asst_theirs", model="gpt-4", file_ids=("file-old",))
    lock = Lock(lineage="x", files={"docs/old.md": LockedFile(id="file-old", sha256=SHA_A, size=1)})
    live = Live(
        assistants=(stranger,),
        files=(LiveFile(id="file-old", bytes=1, filename="old.md", purpose="assistants"),),
    )
    assert make_plan(desired(), live, lock).files == ()
    unused = live.model_copy(update={"assistants": ()})
    assert [f.action for f in make_plan(desired(), unused, lock).files] == ["delete"]


def _live_file(file_id: str, name: str, size: int) -> LiveFile:
    return LiveFile(id=file_id, bytes=size, filename=name, purpose="assistants")


def test_uploads_the_server_no_longer_has_are_forgotten() -> None:
    # an apply killed after DELETE /files/<old> but before its lock write
    f = DesiredFile(path="docs/faq.md", sha256=SHA_B, size=5)
    a = want("bot", files=("docs/faq.md",))
    d = desired(a, files={"docs/faq.md": f})
    lock = Lock(
        lineage="x",
        assistants={"bot": owned(d, "bot", "asst_1")},
        files={"docs/faq.md": LockedFile(id="file-new", sha256=SHA_B, size=5)},
        retired={"file-old": RetiredFile(path="docs/faq.md", sha256=SHA_A, size=4)},
    )
    live = Live(
        assistants=(live_of(a, "asst_1", file_ids=("file-new",)),),
        files=(_live_file("file-new", "faq.md", 5),),
    )
    plan = make_plan(d, live, lock)
    assert plan.summary() == "No changes. Your assistants match the configuration."
    assert plan.lock.retired == {}
    assert plan.lock.files == lock.files
    assert plan.lock_only  # apply writes the lock without the gone upload


def test_content_that_comes_back_reuses_its_retired_upload() -> None:
    f = DesiredFile(path="docs/faq.md", sha256=SHA_A, size=4)
    a = want("bot", files=("docs/faq.md",))
    lock = Lock(
        lineage="x",
        files={"docs/faq.md": LockedFile(id="file-new", sha256=SHA_B, size=5)},
        retired={"file-old": RetiredFile(path="docs/faq.md", sha256=SHA_A, size=4)},
    )
    live = Live(files=(_live_file("file-new", "faq.md", 5), _live_file("file-old", "faq.md", 4)))
    plan = make_plan(desired(a, files={"docs/faq.md": f}), live, lock)
    assert [f.action for f in plan.files if f.action == "create"] == []
    assert plan.file_ids == {SHA_A: "file-old"}
    assert plan.lock.files == {"docs/faq.md": LockedFile(id="file-old", sha256=SHA_A, size=4)}
    assert [(c.action, c.id) for c in plan.files] == [("delete", "file-new")]


def test_recovery_considers_content_whose_locked_upload_is_gone() -> None:
    f = DesiredFile(path="docs/faq.md", sha256=SHA_A, size=4)
    lock = Lock(
        lineage="x", retired={"file-gone": RetiredFile(path="docs/faq.md", sha256=SHA_A, size=4)}
    )
    files = [_live_file("file-reupload", "faq.md", 4)]
    assert recovery_candidates(desired(files={"docs/faq.md": f}), lock, files) == ["file-reupload"]


def test_a_path_with_an_at_sign_is_a_path() -> None:
    lock = Lock(
        lineage="x", files={"docs/team@acme.md": LockedFile(id="file-1", sha256=SHA_A, size=1)}
    )
    plan = make_plan(desired(), Live(files=(_live_file("file-1", "team@acme.md", 1),)), lock)
    (delete,) = plan.files
    assert delete.address == "file.docs/team@acme.md"
    assert "# file.docs/team@acme.md will be destroyed" in render_text(plan)


def test_the_plan_says_what_each_change_records() -> None:
    shared = {p: DesiredFile(path=p, sha256=SHA_B, size=5) for p in ("a/x.md", "b/x.md")}
    a = want("bot", files=("a/x.md", "b/x.md"))
    d_old = desired(a, files={p: f.model_copy(update={"sha256": SHA_A}) for p, f in shared.items()})
    lock = Lock(
        lineage="x",
        assistants={"bot": owned(d_old, "bot", "asst_1")},
        files={p: LockedFile(id="file-old", sha256=SHA_A, size=5) for p in shared},
    )
    live = Live(
        assistants=(live_of(a, "asst_1", file_ids=("file-old",)),),
        files=(_live_file("file-old", "x.md", 5),),
    )
    plan = make_plan(desired(a, files=shared), live, lock, root="/p", endpoint="http://e/v1")
    upload, delete = plan.files
    assert upload.paths == ("a/x.md", "b/x.md")
    assert (delete.action, delete.id) == ("delete", "file-old")
    assert plan.lock.files == {}
    assert plan.lock.retired == {"file-old": RetiredFile(path="a/x.md", sha256=SHA_A, size=5)}
    after_upload = plan.lock.with_upload(upload.paths, upload.locked("file-new"))
    assert {p: f.id for p, f in after_upload.files.items()} == {
        "a/x.md": "file-new",
        "b/x.md": "file-new",
    }
    assert after_upload.without_file("file-old").retired == {}
    (change,) = plan.assistants
    assert change.locked("asst_1") == LockedAssistant(
        id="asst_1", applied=desired(a, files=shared).config_of("bot").digest()
    )
    assert (plan.root, plan.endpoint) == ("/p", "http://e/v1")


def _sha256_parts(*parts: bytes) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part + b"\0")
    return digest.hexdigest()


def test_fingerprints_are_the_hashes_saved_plans_were_made_with() -> None:
    # a plan saved before the fingerprints were streamed must still be fresh: the same bytes
    # (pydantic's JSON of each object, NUL-separated) are hashed, one object at a time
    from assistsync.model import canonical_json

    a = want("bot", instructions="Line one.\nLigne «deux».\n", metadata={"team": "x"})
    d = desired(
        a,
        want("other"),
        files={"docs/faq.md": DesiredFile(path="docs/faq.md", sha256=SHA_A, size=5)},
    )
    old_desired = d.model_dump_json(exclude={"assistants": {"__all__": {"source"}}}).encode()
    assert desired_fingerprint(d) == _sha256_parts(old_desired)
    assert desired_fingerprint(Desired()) == _sha256_parts(Desired().model_dump_json().encode())

    mine = live_of(a, "asst_1", file_ids=("file-1",))
    stranger = LiveAssistant(id="asst_theirs", model="gpt-4", name="Not ours")
    upload = _live_file("file-1", "faq.md", 5)
    live = Live(assistants=(mine, stranger), files=(upload, _live_file("file-x", "x", 1)))
    lock = Lock(
        lineage="l",
        serial=3,
        assistants={"bot": owned(d, "bot", "asst_1")},
        files={"docs/faq.md": LockedFile(id="file-1", sha256=SHA_A, size=5)},
    )
    tail = canonical_json([live.file_sha256, lock.lineage, lock.serial]).encode()
    expected = _sha256_parts(
        mine.model_dump_json().encode(), upload.model_dump_json().encode(), tail
    )
    assert live_fingerprint(live, lock) == expected


def test_a_plan_prepared_ahead_is_the_same_plan() -> None:
    # prepare() runs while the live state is read; the plan must not depend on when
    d = desired(want("a", instructions="Be brief."), want("b"), want("c"))
    lock = Lock(
        lineage="x", assistants={"a": owned(d, "a", "asst_a"), "c": owned(d, "c", "asst_c")}
    )
    live = Live(
        assistants=(
            live_of(d.assistants["a"], "asst_a", instructions="Edited outside."),
            live_of(d.assistants["c"], "asst_c"),
        )
    )
    plain = make_plan(d, live, lock, root="/r", endpoint="e")
    assert make_plan(d, live, lock, root="/r", endpoint="e", prepared=prepare(d)) == plain
    assert [c.action for c in plain.assistants] == ["update", "create", "no-op"]
    # prepared for other manifests, it is not used
    other = prepare(desired(want("a", instructions="Other.")))
    assert make_plan(d, live, lock, root="/r", endpoint="e", prepared=other) == plain
