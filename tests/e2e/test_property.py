"""Property: for generated manifests and live states, apply then plan is empty.

Manifests are written as files and read by the real loader, so what is generated goes through
the same path as a user's YAML.

Each example starts a fresh embedded server, applies a generated "previous" configuration,
disturbs the live state the way people do (edits in a dashboard, deleted assistants, a lost
lock, assistants nobody manages), then applies a generated "next" configuration with the real
fetch -> plan -> apply stages. The next plan must be empty, and unmanaged assistants untouched.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from assistsync.api import ApiClient
from assistsync.applier import Applier
from assistsync.errors import ApiError
from assistsync.fetch import fetch_live
from assistsync.manifest import load_project
from assistsync.model import Desired, Lock
from assistsync.planner import make_plan
from assistsync.render import render_json, render_markdown, render_text
from assistsync.server import Faults, start_server

POOL = {f"docs/{n}.md": f"# {n}\n\ncontent of {n}\n" for n in ("a", "b", "c", "d")}
POOL["docs/copy-of-a.md"] = POOL["docs/a.md"]  # same content under two paths
KEYS = ["alpha", "beta", "gamma", "delta"]

tools = st.lists(
    st.sampled_from(
        [
            {"type": "retrieval"},
            {"type": "code_interpreter"},
            {
                "type": "function",
                "function": {"name": "f1", "parameters": {"type": "object", "properties": {}}},
            },
            {
                "type": "function",
                "function": {
                    "name": "f2",
                    "description": "two",
                    "parameters": {"type": "object", "properties": {"x": {"type": "integer"}}},
                },
            },
        ]
    ),
    max_size=3,
    unique_by=lambda t: t.get("function", {}).get("name", t["type"]),
)
# no "$": "${X}" would read the environment (covered by the manifest tests)
text = st.text(
    st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"], exclude_characters="$"),
    max_size=30,
)
assistant = st.fixed_dictionaries(
    {
        "name": st.none() | text,
        "model": st.sampled_from(["gpt-4", "gpt-4-turbo"]),
        "description": st.none() | text,
        "instructions": st.none()
        | st.text(st.characters(codec="utf-8", exclude_characters="$"), max_size=200),
        "tools": tools,
        "files": st.lists(st.sampled_from(sorted(POOL)), max_size=3, unique=True),
        "metadata": st.dictionaries(st.sampled_from(["team", "tier", "x"]), text, max_size=2),
    }
)
configs = st.dictionaries(st.sampled_from(KEYS), assistant, max_size=4)
disturbance = st.fixed_dictionaries(
    {
        "rename": st.lists(st.sampled_from(KEYS), max_size=2, unique=True),
        "delete": st.lists(st.sampled_from(KEYS), max_size=1),
        "lose_lock": st.booleans(),
        "strangers": st.integers(0, 2),
    }
)


def desired_of(root: Path, config: dict[str, dict[str, Any]]) -> Desired:
    """Write ``config`` as a real manifest and load it the way the CLI does."""
    manifest = {
        "assistants": {
            key: {
                **{f: v for f, v in a.items() if f != "files" and v not in (None, [], {})},
                **({"files": [f"../{p}" for p in a["files"]]} if a["files"] else {}),
            }
            for key, a in config.items()
        }
    }
    (root / "assistsync.yaml").write_text("manifests: [assistants/*.yaml]\n", encoding="utf-8")
    (root / "assistants").mkdir(exist_ok=True)
    yaml = YAML(typ="safe", pure=True)  # its emitter escapes what YAML cannot hold raw
    yaml.allow_unicode = True
    yaml.default_flow_style = False
    with (root / "assistants" / "generated.yaml").open("w", encoding="utf-8") as f:
        yaml.dump(manifest, f)
    return load_project(root).desired


def converge(client: ApiClient, root: Path, desired: Desired, lock: Lock) -> Lock:
    """Plan and apply until an apply has no failure (a faulty server may need a few runs)."""
    failures: list[object] = []
    for _ in range(8):
        try:  # a read can fail too: 500s beyond the retries end that run, as they would a plan
            plan = make_plan(desired, fetch_live(client, desired, lock), lock, root=str(root))
        except ApiError as exc:
            failures = [exc]
            continue
        for render in (render_text, render_markdown, render_json):  # any content renders
            assert plan.summary() in render(plan) or render is render_json
        result = Applier(client, plan, save=lambda _: None).run()
        lock = result.lock
        if not result.failures:
            return lock
        failures = list(result.failures)
    raise AssertionError(f"no convergence: {failures}")


@settings(
    # 40 keeps CI quick; ASSISTSYNC_PROPERTY_EXAMPLES=400 for a deeper search
    max_examples=int(os.environ.get("ASSISTSYNC_PROPERTY_EXAMPLES", "40")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    before=configs,
    after=configs,
    noise=disturbance,
    edited=st.sampled_from(sorted(POOL)),
    faults=st.sampled_from([(0.0, 0.0), (0.2, 0.0), (0.0, 0.3), (0.1, 0.2)]),
    seed=st.integers(0, 2**16),
)
def test_apply_then_plan_is_empty(
    before: dict[str, dict[str, Any]],
    after: dict[str, dict[str, Any]],
    noise: dict[str, Any],
    edited: str,
    faults: tuple[float, float],
    seed: int,
) -> None:
    """...and no assistant or upload is duplicated, even when the server answers 500s and
    drops responses after committing (the second apply runs against such a server)."""
    with (
        tempfile.TemporaryDirectory() as tmp,
        start_server(port=0, faults=Faults(seed=seed)) as server,
    ):
        root = Path(tmp)
        contents = dict(POOL)
        for path, content in contents.items():
            (root / path).parent.mkdir(parents=True, exist_ok=True)
            (root / path).write_text(content, encoding="utf-8")
        headers = {"Authorization": "Bearer sk-p", "OpenAI-Beta": "assistants=v1"}
        with (
            ApiClient(server.base_url, "sk-p") as client,
            httpx.Client(base_url=server.base_url, headers=headers) as raw,
        ):
            lock = converge(client, root, desired_of(root, before), Lock(lineage="p"))
            strangers = [
                raw.post("/assistants", json={"model": "gpt-4", "name": f"theirs {i}"}).json()
                for i in range(noise["strangers"])
            ]
            for key in noise["rename"]:
                if key in lock.assistants:
                    raw.post(f"/assistants/{lock.assistants[key].id}", json={"name": "by hand"})
            for key in noise["delete"]:
                if key in lock.assistants:
                    raw.delete(f"/assistants/{lock.assistants[key].id}")
            if noise["lose_lock"]:
                lock = Lock(lineage="p2")
            contents[edited] = contents[edited] + "edited\n"
            (root / edited).write_text(contents[edited], encoding="utf-8")

            want = desired_of(root, after)
            server.faults.error_rate, server.faults.lost_response_rate = faults
            lock = converge(client, root, want, lock)
            server.faults.error_rate = server.faults.lost_response_rate = 0.0

            final = make_plan(want, fetch_live(client, want, lock), lock)
            assert not final.has_changes, final.summary()
            assert final.drift == ()
            live = raw.get("/assistants", params={"limit": 100}).json()["data"]
            tagged = [
                a["metadata"]["assistsync_key"] for a in live if "assistsync_key" in a["metadata"]
            ]
            for key in after:
                assert tagged.count(key) == 1, f"{key}: a duplicate or a missing assistant"
            if not noise["lose_lock"]:
                # with the lock lost, an assistant dropped from the manifests in the same
                # change cannot be told apart from another project's, so it is left alone
                assert sorted(tagged) == sorted(after), "a leftover assistant"
            for s in strangers:
                assert raw.get(f"/assistants/{s['id']}").json() == s
            files = raw.get("/files", params={"purpose": "assistants"}).json()["data"]
            used = {f.sha256 for f in want.files.values()}
            assert len(files) >= len(used)
            owned = lock.file_ids()  # under a path or retired
            unowned = [f for f in files if f["id"] not in owned]
            assert not unowned or noise["lose_lock"], f"uploads nobody owns: {unowned}"
