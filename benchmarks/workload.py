"""Generated projects: N assistants with 2–20 KB instructions, knowledge files from a shared pool.

Everything is derived from ``(n, seed)``, so two copies of a project (one for assistsync, one
for the SDK baseline) are byte-identical, and the floors can be computed from the same values.

A project on disk::

    assistsync.yaml               manifests: [assistants/*.yaml]
    assistants/group-000.yaml     50 assistants per manifest
    prompts/bot-0000.md           one instructions file per assistant (2–20 KB)
    docs/doc-000.txt              the shared pool (1–64 KB each); 0–3 per assistant
    workload.json                 the same desired state as plain JSON, read by the baseline
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MODEL = "gpt-4-turbo"
PER_MANIFEST = 50
BASELINE_TAG = "sync_key"
"""The metadata key the hand-written baseline tags its assistants with."""

_WORD_TEXT = (
    "order refund shipping customer policy return exchange invoice account warranty answer "
    "always never politely quote rule window store credit delivery tracking address support "
    "escalate manager summary product size colour stock payment card receipt discount days "
    "weeks express standard international customs duty fee label package courier damaged "
    "missing replace repair confirm verify email phone chat hours weekend holiday priority"
)
_WORDS = _WORD_TEXT.split()


@dataclass(frozen=True)
class AssistantSpec:
    """One generated assistant, as its manifest declares it."""

    key: str
    name: str
    description: str
    instructions_file: str
    instructions_size: int
    tools: tuple[dict[str, Any], ...]
    files: tuple[str, ...]
    metadata: dict[str, str]


@dataclass(frozen=True)
class Workload:
    """A generated project's content (paths are project-relative POSIX)."""

    n: int
    seed: int
    assistants: tuple[AssistantSpec, ...]
    pool: dict[str, int] = field(default_factory=dict)
    """Pool file path -> size in bytes."""

    @property
    def used_files(self) -> list[str]:
        """Pool files some assistant names: the only ones an apply uploads."""
        return sorted({f for a in self.assistants for f in a.files})


@dataclass(frozen=True)
class Edit:
    """What :func:`edit` changed, to compute the edit case's floor."""

    edited: tuple[str, ...]
    """Assistants whose instructions changed."""
    changed_files: tuple[str, ...]
    """Knowledge files whose content changed (each: one upload, one delete of the old one)."""
    updated: tuple[str, ...]
    """Assistants an apply must modify: edited ones and every user of a changed file."""


def _corpus(rng: random.Random, chars: int) -> str:
    words = rng.choices(_WORDS, k=chars // 5)
    lines = [" ".join(words[i : i + 14]) for i in range(0, len(words), 14)]
    text = ".\n".join(lines)
    while len(text) < chars:
        text += text
    return text


def _function_tool(rng: random.Random, index: int) -> dict[str, Any]:
    params = {
        "type": "object",
        "properties": {
            f"arg_{j}": {"type": rng.choice(["string", "integer", "boolean"]), "description": w}
            for j, w in enumerate(rng.sample(_WORDS, rng.randint(1, 4)))
        },
        "required": ["arg_0"],
    }
    return {
        "type": "function",
        "function": {
            "name": f"{rng.choice(_WORDS)}_{index}",
            "description": " ".join(rng.sample(_WORDS, 6)),
            "parameters": params,
        },
    }


def generate(
    n: int,
    *,
    seed: int = 1,
    instructions_bytes: tuple[int, int] = (2 * 1024, 20 * 1024),
    pool_size: int | None = None,
    function_share: float = 0.3,
) -> Workload:
    """The workload for ``n`` assistants; the pool holds ``max(3, n // 10)`` files by default."""
    rng = random.Random(seed)
    pool_n = pool_size if pool_size is not None else max(3, n // 10)
    pool = {f"docs/doc-{i:03d}.txt": rng.randint(1024, 64 * 1024) for i in range(pool_n)}
    pool_paths = sorted(pool)
    assistants = []
    for i in range(n):
        n_files = rng.randint(0, min(3, pool_n))
        files = tuple(sorted(rng.sample(pool_paths, n_files)))
        tools: list[dict[str, Any]] = []
        if files:
            tools.append({"type": "retrieval"})
        if rng.random() < 0.2:
            tools.append({"type": "code_interpreter"})
        if rng.random() < function_share:
            tools.extend(_function_tool(rng, j) for j in range(rng.randint(1, 3)))
        assistants.append(
            AssistantSpec(
                key=f"bot-{i:04d}",
                name=f"Bot {i}",
                description=" ".join(rng.sample(_WORDS, 8)),
                instructions_file=f"prompts/bot-{i:04d}.md",
                instructions_size=rng.randint(*instructions_bytes),
                tools=tuple(tools),
                files=files,
                metadata={"team": rng.choice(["support", "sales", "ops"]), "tier": str(i % 3)},
            )
        )
    return Workload(n=n, seed=seed, assistants=tuple(assistants), pool=pool)


def _yaml_assistant(a: AssistantSpec) -> list[str]:
    # JSON scalars and flow collections are valid YAML: no quoting rules to get wrong.
    q = json.dumps
    lines = [
        f"  {a.key}:",
        f"    name: {q(a.name)}",
        f"    model: {MODEL}",
        f"    description: {q(a.description)}",
        f"    instructions_file: ../{a.instructions_file}",
    ]
    if a.tools:
        lines.append("    tools:")
        for tool in a.tools:
            if tool["type"] != "function":
                lines.append(f"      - type: {tool['type']}")
                continue
            fn = tool["function"]
            lines += [
                "      - type: function",
                "        function:",
                f"          name: {fn['name']}",
                f"          description: {q(fn['description'])}",
                f"          parameters: {q(fn['parameters'])}",
            ]
    if a.files:
        lines.append("    files:")
        lines += [f"      - ../{f}" for f in a.files]
    lines.append("    metadata:")
    lines += [f"      {k}: {q(v)}" for k, v in a.metadata.items()]
    return lines


def write_project(workload: Workload, root: Path) -> None:
    """Write the project (manifests, prompts, pool, ``workload.json``) into ``root``."""
    rng = random.Random(workload.seed + 7)
    corpus = _corpus(rng, 64 * 1024 + 1)
    (root / "assistants").mkdir(parents=True, exist_ok=True)
    (root / "prompts").mkdir(exist_ok=True)
    (root / "docs").mkdir(exist_ok=True)
    (root / "assistsync.yaml").write_text("manifests:\n  - assistants/*.yaml\n", encoding="utf-8")
    for path, size in workload.pool.items():
        head = f"# {path}\n"
        start = rng.randrange(0, len(corpus) - size)
        (root / path).write_text(head + corpus[start : start + size - len(head)], encoding="utf-8")
    for g in range(math.ceil(len(workload.assistants) / PER_MANIFEST)):
        group = workload.assistants[g * PER_MANIFEST : (g + 1) * PER_MANIFEST]
        lines = ["assistants:"]
        for a in group:
            lines += _yaml_assistant(a)
            head = f"You are {a.name}, key {a.key}. Answer from the attached files only.\n"
            start = rng.randrange(0, len(corpus) - a.instructions_size)
            body = corpus[start : start + a.instructions_size - len(head)]
            (root / a.instructions_file).write_text(head + body, encoding="utf-8")
        text = "\n".join(lines) + "\n"
        (root / "assistants" / f"group-{g:03d}.yaml").write_text(text, encoding="utf-8")
    _write_baseline_spec(workload, root)


def _write_baseline_spec(workload: Workload, root: Path) -> None:
    spec = {
        "model": MODEL,
        "assistants": [
            {
                "key": a.key,
                "name": a.name,
                "description": a.description,
                "instructions_file": a.instructions_file,
                "tools": list(a.tools),
                "files": list(a.files),
                "metadata": a.metadata,
            }
            for a in workload.assistants
        ],
    }
    (root / "workload.json").write_text(json.dumps(spec, indent=1), encoding="utf-8")


def edit(
    workload: Workload,
    root: Path,
    *,
    assistant_share: float = 0.10,
    file_share: float = 0.05,
) -> Edit:
    """Edit the instructions of ``assistant_share`` of the assistants and the content of
    ``file_share`` of the used pool files (at least one of each), in place, deterministically."""
    rng = random.Random(workload.seed + 13)
    keys = [a.key for a in workload.assistants]
    edited = sorted(rng.sample(keys, max(1, math.ceil(len(keys) * assistant_share))))
    used = workload.used_files
    changed = sorted(rng.sample(used, max(1, math.ceil(len(used) * file_share)))) if used else []
    by_key = {a.key: a for a in workload.assistants}
    for key in edited:
        path = root / by_key[key].instructions_file
        with path.open("a", encoding="utf-8") as f:
            f.write("\nRevision 2: mention the new returns window.\n")
    for rel in changed:
        with (root / rel).open("a", encoding="utf-8") as f:
            f.write("\nUpdated: prices changed this quarter.\n")
    changed_set = set(changed)
    updated = sorted(
        set(edited) | {a.key for a in workload.assistants if changed_set.intersection(a.files)}
    )
    return Edit(edited=tuple(edited), changed_files=tuple(changed), updated=tuple(updated))


def write_large_project(root: Path, size_mb: int, *, seed: int = 1) -> Workload:
    """One assistant with one knowledge file of ``size_mb`` MiB (distinct 1 MiB blocks)."""
    # Random bytes: an archive to the server (kept, not read), so code interpreter's file;
    # retrieval would refuse a file it cannot read, as the hosted API did.
    rel = "docs/large.zip"
    workload = Workload(
        n=1,
        seed=seed,
        assistants=(
            AssistantSpec(
                key="big",
                name="Big",
                description="Answers from one large file",
                instructions_file="prompts/big.md",
                instructions_size=64,
                tools=({"type": "code_interpreter"},),
                files=(rel,),
                metadata={"team": "bench"},
            ),
        ),
        pool={rel: size_mb * 1024 * 1024},
    )
    (root / "assistants").mkdir(parents=True, exist_ok=True)
    (root / "prompts").mkdir(exist_ok=True)
    (root / "docs").mkdir(exist_ok=True)
    (root / "assistsync.yaml").write_text("manifests:\n  - assistants/*.yaml\n", encoding="utf-8")
    (root / "prompts/big.md").write_text("Answer from the large file only.\n", encoding="utf-8")
    block = random.Random(seed).randbytes(1024 * 1024)
    with (root / rel).open("wb") as f:
        for i in range(size_mb):
            f.write(i.to_bytes(8, "big") + block[8:])
    lines = ["assistants:", *_yaml_assistant(workload.assistants[0])]
    (root / "assistants/big.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    _write_baseline_spec(workload, root)
    return workload
