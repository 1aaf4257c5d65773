"""The baseline: what a user would hand-write with the official SDK (openai 1.20.0, the last
release on assistants v1). Run as ``python -m benchmarks.baseline DIR plan|apply``.

It is deliberately the straightforward script, written competently but without engineering:

* list everything first: ``client.beta.assistants.list(limit=100, order="asc")`` with the SDK's
  auto-pagination (the maximum page size, so it reads at the same request floor as assistsync;
  the SDK's default of 20 would cost five times the pages), and ``client.files.list()``;
* find each assistant by a ``sync_key`` metadata tag, files by a small state file
  (``.baseline-state.json``: path -> sha256 and file id), hashed with ``hashlib.file_digest``;
* then one call at a time: upload new or changed files, create missing assistants, update
  assistants whose fields differ (the whole body, as ``assistants.update(**body)``), delete the
  file versions replaced;
* the SDK's own retries (2, honouring ``retry-after-ms``); a failed call is counted and the
  script goes on, so the failure count is comparable with assistsync's.

It reads the desired state from ``workload.json`` (plain JSON written beside the manifests), so
it pays no YAML parsing: a small advantage over assistsync, which loads and validates YAML.
Prints one JSON line: counts of what it did and failed.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any

STATE = ".baseline-state.json"
TAG = "sync_key"


def _sha256(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def main(argv: list[str]) -> int:
    import httpx
    import openai

    root = Path(argv[0])
    mode = argv[1]
    spec = json.loads((root / "workload.json").read_text(encoding="utf-8"))
    state_path = root / STATE
    state: dict[str, dict[str, str]] = (
        json.loads(state_path.read_text(encoding="utf-8")) if state_path.exists() else {}
    )
    client = openai.OpenAI(
        base_url=os.environ["OPENAI_BASE_URL"],
        api_key=os.environ["OPENAI_API_KEY"],
        http_client=httpx.Client(),
    )
    counts = {"uploaded": 0, "created": 0, "updated": 0, "deleted_files": 0, "failed": 0}

    live = {
        a.metadata[TAG]: a
        for a in client.beta.assistants.list(limit=100, order="asc")
        if isinstance(a.metadata, dict) and TAG in a.metadata
    }
    live_file_ids = {f.id for f in client.files.list(purpose="assistants")}

    file_ids: dict[str, str] = {}
    replaced: list[str] = []
    wanted = sorted({p for a in spec["assistants"] for p in a["files"]})
    for rel in wanted:
        sha = _sha256(root / rel)
        known = state.get(rel)
        if known and known["sha256"] == sha and known["id"] in live_file_ids:
            file_ids[rel] = known["id"]
            continue
        counts["uploaded"] += 1
        if mode == "plan":
            continue
        try:
            with (root / rel).open("rb") as fh:
                uploaded = client.files.create(file=fh, purpose="assistants")
        except openai.OpenAIError:
            counts["failed"] += 1
            continue
        if known and known["id"] in live_file_ids:
            replaced.append(known["id"])
        file_ids[rel] = uploaded.id
        state[rel] = {"sha256": sha, "id": uploaded.id}

    for a in spec["assistants"]:
        body: dict[str, Any] = {
            "model": spec["model"],
            "name": a["name"],
            "description": a["description"],
            "instructions": (root / a["instructions_file"]).read_text(encoding="utf-8"),
            "tools": a["tools"],
            "file_ids": [file_ids.get(p, "") for p in a["files"]],
            "metadata": {**a["metadata"], TAG: a["key"]},
        }
        current = live.get(a["key"])
        if current is None:
            counts["created"] += 1
            if mode == "apply":
                try:
                    client.beta.assistants.create(**body)
                except openai.OpenAIError:
                    counts["failed"] += 1
            continue
        now = current.model_dump(mode="json")
        if all(now.get(k) == v for k, v in body.items() if k != "file_ids") and sorted(
            now.get("file_ids") or []
        ) == sorted(body["file_ids"]):
            continue
        counts["updated"] += 1
        if mode == "apply":
            try:
                client.beta.assistants.update(current.id, **body)
            except openai.OpenAIError:
                counts["failed"] += 1

    counts["deleted_files"] = len(replaced)
    if mode == "apply":
        for file_id in replaced:
            try:
                client.files.delete(file_id)
            except openai.OpenAIError:
                counts["failed"] += 1
        state_path.write_text(json.dumps(state, indent=1, sort_keys=True), encoding="utf-8")
    print(json.dumps(counts))
    return 1 if counts["failed"] else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
