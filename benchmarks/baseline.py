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

``--threads K`` (``python -m benchmarks.baseline DIR apply --threads 8``) is the script a strong
engineer writes in ten minutes: the very same calls, each phase (uploads, then creates and
updates, then deletes) submitted to a ``concurrent.futures.ThreadPoolExecutor(K)`` sharing the
one SDK client (httpx's pool is thread-safe; its default limit of 100 connections is above K).
No shortcuts a user would not take: it still lists first, hashes every file, reads every
instructions file and sends whole bodies.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

STATE = ".baseline-state.json"
TAG = "sync_key"

T = TypeVar("T")


def _each(threads: int, work: Callable[[T], None], items: Iterable[T]) -> None:
    """``work`` for every item: one at a time, or on a pool of ``threads``."""
    if threads <= 1:
        for item in items:
            work(item)
        return
    with ThreadPoolExecutor(threads) as pool:
        for future in [pool.submit(work, item) for item in items]:
            future.result()


def _sha256(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def main(argv: list[str]) -> int:
    import httpx
    import openai

    root = Path(argv[0])
    mode = argv[1]
    threads = int(argv[3]) if len(argv) > 3 and argv[2] == "--threads" else 1
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
    uploads: list[tuple[str, str, dict[str, str] | None]] = []
    wanted = sorted({p for a in spec["assistants"] for p in a["files"]})
    for rel in wanted:
        sha = _sha256(root / rel)
        known = state.get(rel)
        if known and known["sha256"] == sha and known["id"] in live_file_ids:
            file_ids[rel] = known["id"]
            continue
        counts["uploaded"] += 1
        if mode == "apply":
            uploads.append((rel, sha, known))

    def upload(item: tuple[str, str, dict[str, str] | None]) -> None:
        rel, sha, known = item
        try:
            with (root / rel).open("rb") as fh:
                uploaded = client.files.create(file=fh, purpose="assistants")
        except openai.OpenAIError:
            counts["failed"] += 1
            return
        if known and known["id"] in live_file_ids:
            replaced.append(known["id"])
        file_ids[rel] = uploaded.id
        state[rel] = {"sha256": sha, "id": uploaded.id}

    _each(threads, upload, uploads)

    calls: list[tuple[str | None, dict[str, Any]]] = []
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
            calls.append((None, body))
            continue
        now = current.model_dump(mode="json")
        if all(now.get(k) == v for k, v in body.items() if k != "file_ids") and sorted(
            now.get("file_ids") or []
        ) == sorted(body["file_ids"]):
            continue
        counts["updated"] += 1
        calls.append((current.id, body))

    def put(call: tuple[str | None, dict[str, Any]]) -> None:
        assistant_id, body = call
        try:
            if assistant_id is None:
                client.beta.assistants.create(**body)
            else:
                client.beta.assistants.update(assistant_id, **body)
        except openai.OpenAIError:
            counts["failed"] += 1

    if mode == "apply":
        _each(threads, put, calls)

    def delete(file_id: str) -> None:
        try:
            client.files.delete(file_id)
        except openai.OpenAIError:
            counts["failed"] += 1

    counts["deleted_files"] = len(replaced)
    if mode == "apply":
        _each(threads, delete, replaced)
        state_path.write_text(json.dumps(state, indent=1, sort_keys=True), encoding="utf-8")
    print(json.dumps(counts))
    return 1 if counts["failed"] else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
