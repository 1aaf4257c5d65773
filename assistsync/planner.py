"""(Desired, Live, Lock) -> Plan. Pure: no I/O, no clock, no randomness.

The planner decides everything apply will do; apply never diffs again. Ownership rules live
here and only here:

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

from assistsync.model import (
    TAG_KEY,
    AssistantChange,
    AssistantConfig,
    Desired,
    Drift,
    FileChange,
    Live,
    LiveAssistant,
    Lock,
    Plan,
    canonical_json,
)
from assistsync.model.config import UNKNOWN_FILE_PREFIX


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


def _fingerprint(*parts: bytes) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part)
        digest.update(b"\0")
    return digest.hexdigest()


def desired_fingerprint(desired: Desired) -> str:
    """A hash of what the manifests ask for (source positions excluded: comments don't count).

    Serialised by pydantic (fields in declaration order, mappings in the order the manifests
    give them), which is deterministic for the same manifests and the same assistsync.
    """
    return _fingerprint(
        desired.model_dump_json(exclude={"assistants": {"__all__": {"source"}}}).encode()
    )


def live_fingerprint(live: Live, lock: Lock) -> str:
    """A hash of the live objects a plan depends on: owned or tagged assistants, owned files.

    Unmanaged assistants are excluded so that a colleague's unrelated edit does not make a
    saved plan stale.
    """
    owned_ids = {a.id for a in lock.assistants.values()}
    file_ids = lock.file_ids() | set(live.file_sha256)
    parts = [a.model_dump_json().encode() for a in live.assistants if a.id in owned_ids or a.tag]
    parts += [f.model_dump_json().encode() for f in live.files if f.id in file_ids]
    parts.append(canonical_json([live.file_sha256, lock.lineage, lock.serial]).encode())
    return _fingerprint(*parts)


def _oldest(candidates: list[LiveAssistant]) -> LiveAssistant:
    return min(candidates, key=lambda a: (a.created_at, a.id))


def _plan_files(
    desired: Desired, live: Live, lock: Lock
) -> tuple[list[FileChange], dict[str, str], dict[str, str], dict[str, list[str]]]:
    """File changes by content; the content hash of each known live file id; the live upload
    of each desired hash already on the server; desired paths by hash.

    An upload no manifest needs is deleted, unless an assistant assistsync does not manage has
    it attached: deleting it would change that assistant. It stays in the lock until then.
    """
    owned_assistants = {e.id for e in lock.assistants.values()}
    in_use_elsewhere = {
        file_id
        for a in live.assistants
        if a.id not in owned_assistants and a.tag not in desired.assistants
        for file_id in a.file_ids
    }
    live_file_ids = {f.id for f in live.files}
    sha_by_id = {i: s for i, s in lock.sha_by_file_id().items() if i in live_file_ids}
    known_ids_by_sha: dict[str, str] = {}
    for _, locked_file in sorted(lock.files.items()):
        if locked_file.id in live_file_ids:
            known_ids_by_sha.setdefault(locked_file.sha256, locked_file.id)
    recovered: dict[str, str] = {}
    for file_id, sha in sorted(live.file_sha256.items()):
        if file_id in live_file_ids and file_id not in sha_by_id:
            recovered.setdefault(sha, file_id)
    paths_by_sha: dict[str, list[str]] = defaultdict(list)
    for path, f in sorted(desired.files.items()):
        paths_by_sha[f.sha256].append(path)

    changes: list[FileChange] = []
    for sha, paths in sorted(paths_by_sha.items(), key=lambda kv: kv[1][0]):
        if sha in known_ids_by_sha:
            continue
        f = desired.files[paths[0]]
        adopt = recovered.get(sha)
        if adopt is not None:
            sha_by_id[adopt] = sha
        changes.append(
            FileChange(
                action="create",
                path=f.path,
                sha256=sha,
                size=f.size,
                adopt_id=adopt,
                reason="its content was found already uploaded" if adopt else None,
            )
        )
    deleted_ids: set[str] = set()
    for path, locked_file in sorted(lock.files.items()):
        if locked_file.sha256 in paths_by_sha or locked_file.id not in live_file_ids:
            continue
        if locked_file.id in in_use_elsewhere:
            continue
        if locked_file.id in deleted_ids:
            continue
        deleted_ids.add(locked_file.id)
        changes.append(
            FileChange(
                action="delete",
                path=path.split("@")[0],
                sha256=locked_file.sha256,
                size=locked_file.size,
                id=locked_file.id,
                reason=(
                    "its content changed and the new version replaces it"
                    if path.split("@")[0] in desired.files
                    else "no manifest names it any more"
                ),
            )
        )
    return changes, sha_by_id, known_ids_by_sha, paths_by_sha


def make_plan(desired: Desired, live: Live, lock: Lock) -> Plan:
    """Compute the changes that make the owned live objects match ``desired``.

    Order is deterministic: files by path, assistants by key. Drift is reported for owned
    assistants whose live configuration differs from what the lock says was last applied, when
    it makes a change necessary; drift that already matches the manifests is only recorded
    (``AssistantChange.refresh``), as Terraform only shows drift that affects the plan.
    """
    live_by_id = {a.id: a for a in live.assistants}
    lock_owned_ids = {entry.id for entry in lock.assistants.values()}
    file_changes, sha_by_id, known_ids_by_sha, paths_by_sha = _plan_files(desired, live, lock)

    # --- assistants ----------------------------------------------------------------------
    tagged: dict[str, list[LiveAssistant]] = defaultdict(list)
    for a in live.assistants:
        if a.tag is not None and a.id not in lock_owned_ids:
            tagged[a.tag].append(a)

    changes: list[AssistantChange] = []
    drift: list[Drift] = []
    for key in sorted(desired.assistants):
        after = desired.config_of(key)
        entry = lock.assistants.get(key)
        current: LiveAssistant | None = None
        import_id: str | None = None
        reason: str | None = None
        drifted: tuple[str, ...] = ()
        if entry is not None:
            current = live_by_id.get(entry.id)
            if current is None:
                drift.append(Drift(key=key, id=entry.id, applied=entry.applied, live=None))
                reason = "it was deleted outside assistsync"
            else:
                drifted = entry.applied.differing_fields(live_config(current, sha_by_id).digest())
        if current is None and tagged.get(key):
            current = _oldest(tagged[key])
            import_id = current.id
            reason = f"found by its tag {TAG_KEY}={key}; the lock did not list it"
        if current is None:
            changes.append(AssistantChange(key=key, action="create", after=after, reason=reason))
            continue
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

    names = {sha: paths[0] for sha, paths in paths_by_sha.items()}
    for path, locked_file in lock.files.items():
        names.setdefault(locked_file.sha256, path)

    return Plan(
        assistants=tuple(changes),
        files=tuple(file_changes),
        drift=tuple(drift),
        desired_fingerprint=desired_fingerprint(desired),
        live_fingerprint=live_fingerprint(live, lock),
        lock_lineage=lock.lineage,
        lock_serial=lock.serial,
        file_names=dict(sorted(names.items())),
        file_ids={s: i for s, i in sorted(known_ids_by_sha.items()) if s in paths_by_sha},
        forget_assistants=tuple(forget),
    )
