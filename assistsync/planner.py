"""(Desired, Live, Lock) -> Plan. Pure: no I/O, no clock, no randomness.

The planner decides everything apply will do, including what the lock records: the lock apply
starts from (``Plan.lock``: owned objects found gone forgotten, uploads no manifest needs
retired, desired paths whose content is uploaded recorded) and, per change, what it records
when it succeeds. Apply never diffs again. Ownership rules live here and only here:

* an assistant is *owned* when the lock names its id, or when it carries
  ``metadata.assistsync_key`` equal to a manifest key and no lock entry claims it (it is then
  imported: the lock was lost, or an apply died between a create and its lock write);
* a file is owned when the lock names its id, or when lock recovery proved by content that it is
  the upload of a desired file (``Live.file_sha256``);
* nothing else on the account is ever modified or deleted.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from itertools import chain
from typing import Any

from pydantic import TypeAdapter

from assistsync.model import (
    TAG_KEY,
    AssistantChange,
    AssistantConfig,
    Desired,
    DesiredAssistant,
    DesiredFile,
    Drift,
    FileChange,
    Live,
    LiveAssistant,
    Lock,
    LockedFile,
    Plan,
    RetiredFile,
    canonical_json,
)
from assistsync.model.config import UNKNOWN_FILE_PREFIX
from assistsync.model.lock import LOCK_VERSION


def live_config(assistant: LiveAssistant, sha_by_id: dict[str, str]) -> AssistantConfig:
    """The comparable configuration of a live assistant.

    Attached file ids become content hashes where assistsync knows them, ``id:<file-id>``
    otherwise, so a file attached outside assistsync shows up as a difference.
    """
    metadata = {k: v for k, v in assistant.metadata.items() if k != TAG_KEY}
    return AssistantConfig(
        name=assistant.name,
        model=assistant.model,
        description=assistant.description,
        instructions=assistant.instructions,
        tools=assistant.tools,
        files=tuple(sha_by_id.get(i, UNKNOWN_FILE_PREFIX + i) for i in assistant.file_ids),
        metadata=metadata,
    )


def _fingerprint(parts: Iterable[Iterable[bytes]]) -> str:
    """SHA-256 over the parts, each followed by a NUL byte. A part is given in pieces, and
    the parts may come from a generator: the hash is the same as of the joined bytes, while
    only one piece is held at a time (the pieces hold instructions in full)."""
    digest = hashlib.sha256()
    for part in parts:
        for piece in part:
            digest.update(piece)
        digest.update(b"\0")
    return digest.hexdigest()


@cache
def _json(kind: Any) -> TypeAdapter[Any]:
    """pydantic's JSON serializer of ``kind``: the bytes ``model_dump_json`` gives as text."""
    return TypeAdapter(kind)


def _desired_json(desired: Desired) -> Iterator[bytes]:
    """``desired.model_dump_json(exclude=<sources>)``, byte for byte, one assistant at a time:
    the whole document at once is every instruction twice more at the planner's peak."""
    key_json, assistant_json = _json(str), _json(DesiredAssistant)
    yield b'{"assistants":{'
    for i, (key, assistant) in enumerate(desired.assistants.items()):
        yield (b"," if i else b"") + key_json.dump_json(key) + b":"
        yield assistant_json.dump_json(assistant, exclude={"source"})
    yield b'},"files":' + _json(dict[str, DesiredFile]).dump_json(desired.files) + b"}"


def desired_fingerprint(desired: Desired) -> str:
    """A hash of what the manifests ask for (source positions excluded: comments don't count).

    Serialised by pydantic (fields in declaration order, mappings in the order the manifests
    give them), which is deterministic for the same manifests and the same assistsync.
    """
    return _fingerprint([_desired_json(desired)])


def live_fingerprint(live: Live, lock: Lock) -> str:
    """A hash of the live objects a plan depends on: owned or tagged assistants, owned files.

    Unmanaged assistants are excluded so that a colleague's unrelated edit does not make a
    saved plan stale.
    """
    owned_ids = {a.id for a in lock.assistants.values()}
    file_ids = lock.file_ids() | set(live.file_sha256)
    tail = canonical_json([live.file_sha256, lock.lineage, lock.serial]).encode()
    return _fingerprint(
        chain(
            ([a.model_dump_json().encode()] for a in live.assistants if a.id in owned_ids or a.tag),
            ([f.model_dump_json().encode()] for f in live.files if f.id in file_ids),
            [[tail]],
        )
    )


def _oldest(candidates: list[LiveAssistant]) -> LiveAssistant:
    return min(candidates, key=lambda a: (a.created_at, a.id))


@dataclass(frozen=True)
class _Files:
    """The file side of a plan, before the deletes (which depend on the assistant changes)."""

    creates: list[FileChange]
    sha_by_id: dict[str, str]
    """Content hash of every owned (or adopted) live upload."""
    known_ids_by_sha: dict[str, str]
    """The owned live upload used for each content hash."""
    paths_by_sha: dict[str, list[str]]
    """Desired paths by content hash."""
    files: dict[str, LockedFile]
    """The lock's ``files`` as apply starts: desired paths whose content is uploaded."""
    retired: dict[str, RetiredFile]
    """Owned live uploads no desired path holds (deleted by this plan where possible)."""


def _plan_files(desired: Desired, live: Live, lock: Lock) -> _Files:
    """Uploads by content, and the lock's file sections as apply starts from them.

    Every owned upload (under a path or retired) still on the server is considered; one that is
    gone is forgotten. An owned upload of desired content is used instead of uploading again,
    so content that comes back is never uploaded twice; lock recovery (``Live.file_sha256``)
    adopts an upload the lock does not know.
    """
    live_ids = {f.id for f in live.files}
    paths_by_sha: dict[str, list[str]] = defaultdict(list)
    for path, wanted in sorted(desired.files.items()):
        paths_by_sha[wanted.sha256].append(path)

    # owned live uploads, with where they came from; uploads the lock names but the server no
    # longer has are forgotten here (a delete whose lock write was lost, or one done by hand)
    origin: dict[str, tuple[str, int, str]] = {}
    for path, entry in sorted(lock.files.items()):
        if entry.id in live_ids:
            origin.setdefault(entry.id, (entry.sha256, entry.size, path))
    for file_id, r in sorted(lock.retired.items()):
        if file_id in live_ids:
            origin.setdefault(file_id, (r.sha256, r.size, r.path))
    sha_by_id = {i: sha for i, (sha, _, _) in origin.items()}

    # the upload to use for each content: the one a desired path already records, else any
    known_ids_by_sha: dict[str, str] = {}
    for path, entry in sorted(lock.files.items()):
        want = desired.files.get(path)
        if entry.id in origin and want is not None and want.sha256 == entry.sha256:
            known_ids_by_sha.setdefault(entry.sha256, entry.id)
    for file_id, (sha, _, _) in sorted(origin.items()):
        known_ids_by_sha.setdefault(sha, file_id)

    recovered: dict[str, str] = {}
    for file_id, sha in sorted(live.file_sha256.items()):
        if file_id in live_ids and file_id not in origin:
            recovered.setdefault(sha, file_id)

    creates: list[FileChange] = []
    for sha, paths in sorted(paths_by_sha.items(), key=lambda kv: kv[1][0]):
        if sha in known_ids_by_sha:
            continue
        f = desired.files[paths[0]]
        adopt = recovered.get(sha)
        if adopt is not None:
            sha_by_id[adopt] = sha
        creates.append(
            FileChange(
                action="create",
                path=f.path,
                paths=tuple(paths),
                sha256=sha,
                size=f.size,
                adopt_id=adopt,
                reason="its content was found already uploaded" if adopt else None,
            )
        )
    files = {
        path: LockedFile(id=known_ids_by_sha[f.sha256], sha256=f.sha256, size=f.size)
        for path, f in sorted(desired.files.items())
        if f.sha256 in known_ids_by_sha
    }
    held = {f.id for f in files.values()}
    retired = {
        file_id: RetiredFile(path=path, sha256=sha, size=size)
        for file_id, (sha, size, path) in sorted(origin.items())
        if file_id not in held
    }
    return _Files(creates, sha_by_id, known_ids_by_sha, paths_by_sha, files, retired)


def _plan_deletes(
    desired: Desired, live: Live, retired: dict[str, RetiredFile], changes: list[AssistantChange]
) -> list[FileChange]:
    """Delete each retired upload that no assistant will hold after apply.

    An assistant apply destroys, or updates with new files, lets go of its uploads; any other
    live assistant (one assistsync does not manage above all) keeps them attached, and deleting
    the upload would change it. Such an upload stays retired in the lock until then.
    """
    letting_go = {
        c.id
        for c in changes
        if c.action == "delete" or (c.action == "update" and "files" in c.changed)
    }
    still_attached = {
        file_id for a in live.assistants if a.id not in letting_go for file_id in a.file_ids
    }
    desired_shas = {f.sha256 for f in desired.files.values()}
    deletes: list[FileChange] = []
    for file_id, r in sorted(retired.items(), key=lambda kv: (kv[1].path, kv[0])):
        if file_id in still_attached:
            continue
        if r.sha256 in desired_shas:
            reason = "another upload holds the same content"
        elif r.path in desired.files:
            reason = "its content changed and the new version replaces it"
        else:
            reason = "no manifest names it any more"
        deletes.append(
            FileChange(
                action="delete",
                path=r.path,
                sha256=r.sha256,
                size=r.size,
                id=file_id,
                reason=reason,
            )
        )
    return deletes


@dataclass(frozen=True)
class Prepared:
    """The part of a plan that depends on the manifests alone (``prepare``): a caller can
    compute it while the live state is still being read, then hand it to ``make_plan``."""

    desired: Desired
    fingerprint: str
    configs: dict[str, AssistantConfig]
    """The comparable configuration of every desired assistant, by key."""


def prepare(desired: Desired) -> Prepared:
    """What ``make_plan`` computes from ``desired`` alone, ahead of time."""
    configs = {key: desired.config_of(key) for key in desired.assistants}
    return Prepared(desired, desired_fingerprint(desired), configs)


def make_plan(
    desired: Desired,
    live: Live,
    lock: Lock,
    *,
    root: str = "",
    endpoint: str = "",
    prepared: Prepared | None = None,
) -> Plan:
    """Compute the changes that make the owned live objects match ``desired``, and the lock
    apply starts from (see ``Plan.lock``). ``root`` and ``endpoint`` are recorded in the plan:
    where its paths are read from and which API it was made against. ``prepared`` is
    ``prepare(desired)`` when the caller has it already (it is ignored for another desired
    state).

    Order is deterministic: files by path, assistants by key. Drift is reported for owned
    assistants whose live configuration differs from what the lock says was last applied, when
    it makes a change necessary; drift that already matches the manifests is only recorded
    (``AssistantChange.refresh``), as Terraform only shows drift that affects the plan.
    """
    if prepared is None or prepared.desired is not desired:
        prepared = prepare(desired)
    live_by_id = {a.id: a for a in live.assistants}
    lock_owned_ids = {entry.id for entry in lock.assistants.values()}
    planned_files = _plan_files(desired, live, lock)
    sha_by_id = planned_files.sha_by_id

    # --- assistants ----------------------------------------------------------------------
    tagged: dict[str, list[LiveAssistant]] = defaultdict(list)
    for a in live.assistants:
        if a.tag is not None and a.id not in lock_owned_ids:
            tagged[a.tag].append(a)

    changes: list[AssistantChange] = []
    drift: list[Drift] = []
    for key in sorted(desired.assistants):
        after = prepared.configs[key]
        entry = lock.assistants.get(key)
        current: LiveAssistant | None = None
        import_id: str | None = None
        reason: str | None = None
        drifted: tuple[str, ...] = ()
        before: AssistantConfig | None = None
        if entry is not None:
            current = live_by_id.get(entry.id)
            if current is None:
                drift.append(Drift(key=key, id=entry.id, applied=entry.applied, live=None))
                reason = "it was deleted outside assistsync"
            else:
                before = live_config(current, sha_by_id)
                drifted = entry.applied.differing_fields(before.digest())
        if current is None and tagged.get(key):
            current = _oldest(tagged[key])
            import_id = current.id
            reason = f"found by its tag {TAG_KEY}={key}; the lock did not list it"
        if current is None:
            changes.append(AssistantChange(key=key, action="create", after=after, reason=reason))
            continue
        if before is None:
            before = live_config(current, sha_by_id)
        changed = list(after.differing_fields(before))
        if current.tag != key and "metadata" not in changed:
            changed.append("metadata")  # the ownership tag was removed or edited outside
        if drifted and changed and entry is not None:
            drift.append(
                Drift(key=key, id=entry.id, applied=entry.applied, live=before, changed=drifted)
            )
        changes.append(
            AssistantChange(
                key=key,
                action="update" if changed else "no-op",
                id=current.id,
                before=before,
                after=after,
                changed=tuple(changed),
                import_id=import_id,
                reason=reason,
                # live already matches the manifests, but not what the lock says was applied
                # (e.g. an update whose response was lost): apply records it, quietly
                refresh=bool(drifted) and not changed,
            )
        )

    forget: list[str] = []
    for key, entry in sorted(lock.assistants.items()):
        if key in desired.assistants:
            continue
        current = live_by_id.get(entry.id)
        if current is None:
            forget.append(key)
            continue
        changes.append(
            AssistantChange(
                key=key,
                action="delete",
                id=entry.id,
                before=live_config(current, sha_by_id),
                reason="it is no longer in any manifest",
            )
        )

    deletes = _plan_deletes(desired, live, planned_files.retired, changes)
    paths_by_sha = planned_files.paths_by_sha
    names = {sha: paths[0] for sha, paths in paths_by_sha.items()}
    for path, locked_file in sorted(lock.files.items()):
        names.setdefault(locked_file.sha256, path)
    for retired in sorted(lock.retired.values(), key=lambda r: r.path):
        names.setdefault(retired.sha256, retired.path)
    start = lock.model_copy(
        update={
            "version": LOCK_VERSION,
            "assistants": {k: v for k, v in lock.assistants.items() if k not in forget},
            "files": planned_files.files,
            "retired": planned_files.retired,
        }
    )

    return Plan(
        assistants=tuple(changes),
        files=(*planned_files.creates, *deletes),
        drift=tuple(drift),
        desired_fingerprint=prepared.fingerprint,
        live_fingerprint=live_fingerprint(live, lock),
        lock_lineage=lock.lineage,
        lock_serial=lock.serial,
        file_names=dict(sorted(names.items())),
        file_ids={
            s: i for s, i in sorted(planned_files.known_ids_by_sha.items()) if s in paths_by_sha
        },
        lock=start,
        lock_refresh=start != lock,
        root=root,
        endpoint=endpoint,
    )
