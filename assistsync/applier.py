"""Plan -> API calls -> lock updates. Never diffs, never prints.

Apply carries out a ``Plan`` on a bounded pool of threads, in three steps: *build* (uploads,
and each assistant create/update/import as soon as the uploads it needs have settled), then
assistant deletes, then deletes of uploads nothing needs any more. A failed call does not stop
independent work; what depends on it is skipped and reported (an assistant whose file failed to
upload; an old upload an assistant whose update failed may still use).

Crash safety: the lock is written after every successful remote change (by a writer thread
that always writes the newest lock, so concurrent changes share one write). Creates are never
blindly re-sent: when a create's response is lost, the assistant is looked up by its
``assistsync_key`` tag (files: by name, size and content hash) before it is sent again.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from assistsync.api import ApiClient, ResponseLostError
from assistsync.errors import ApiError
from assistsync.model import (
    AssistantChange,
    AssistantConfig,
    Desired,
    FileChange,
    LiveAssistant,
    Lock,
    LockedAssistant,
    LockedFile,
    Plan,
    wire_metadata,
)

T = TypeVar("T")
DEFAULT_CONCURRENCY = 8
RECONCILE_ROUNDS = 3
"""How many times a create whose response was lost is looked up and, if absent, sent again."""


@dataclass(frozen=True)
class Failure:
    """One change that did not happen: its address and why (the API's message, request id)."""

    address: str
    message: str


@dataclass
class ApplyResult:
    """What an apply did: counts of successful changes, failures, and the final lock."""

    lock: Lock
    counts: dict[str, int] = field(
        default_factory=lambda: {"import": 0, "add": 0, "change": 0, "destroy": 0}
    )
    failures: list[Failure] = field(default_factory=list)

    def resources(self) -> str:
        """``Resources: N added, N changed, N destroyed.`` (with imports when there were any)."""
        c = self.counts
        imports = f"{c['import']} imported, " if c["import"] else ""
        return (
            f"Resources: {imports}{c['add']} added, {c['change']} changed, "
            f"{c['destroy']} destroyed."
        )

    def summary(self) -> str:
        """Terraform's after-apply line, word for word."""
        return f"Apply complete! {self.resources()}"


class LockRecorder:
    """The current lock, persisted by ``save`` after every change, on a writer thread of its own.

    ``update`` changes the lock in memory and wakes the writer; the writer always writes the
    newest lock, so every change is followed by a write that contains it, and concurrent changes
    share one write. Writing on its own thread keeps all API workers sending requests while the
    lock is serialised and fsynced. ``flush`` waits until everything recorded is written and
    raises what a failed write raised.
    """

    def __init__(self, lock: Lock, save: Callable[[Lock], None]) -> None:
        self._lock = lock
        self._save = save
        self._cond = threading.Condition()
        self._dirty = False
        self._writing = False
        self._closed = False
        self._error: BaseException | None = None
        self._serial = lock.serial
        self._thread = threading.Thread(target=self._run, name="assistsync-lock", daemon=True)
        self._thread.start()

    @property
    def lock(self) -> Lock:
        """The lock as it stands (including changes not yet written)."""
        with self._cond:
            return self._lock

    def update(self, change: Callable[[Lock], Lock]) -> None:
        """Apply ``change`` to the lock and have it written."""
        with self._cond:
            if self._error is not None:
                raise self._error
            self._lock = change(self._lock)
            self._dirty = True
            self._cond.notify_all()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._dirty and not self._closed:
                    self._cond.wait()
                if not self._dirty:
                    return
                self._dirty = False
                self._serial += 1
                self._lock = self._lock.model_copy(update={"serial": self._serial})
                snapshot = self._lock
                self._writing = True
            try:
                self._save(snapshot)
            except BaseException as exc:  # handed to the applier by update()/flush()
                with self._cond:
                    self._error = exc
            finally:
                with self._cond:
                    self._writing = False
                    self._cond.notify_all()

    def flush(self) -> None:
        """Wait until every recorded change is written; raise a write's failure."""
        with self._cond:
            while (self._dirty or self._writing) and self._error is None:
                self._cond.wait()
            if self._error is not None:
                raise self._error

    def close(self) -> None:
        """Flush, then stop the writer thread."""
        try:
            self.flush()
        finally:
            with self._cond:
                self._closed = True
                self._cond.notify_all()
            self._thread.join()


def _create_body(key: str, config: AssistantConfig, file_ids: list[str]) -> dict[str, Any]:
    body: dict[str, Any] = {"model": config.model}
    for name in ("name", "description", "instructions"):
        value = getattr(config, name)
        if value is not None:
            body[name] = value
    body["tools"] = [dict(t) for t in config.tools]
    body["file_ids"] = file_ids
    body["metadata"] = wire_metadata(config.metadata, key)
    return body


def _update_body(
    key: str, change: AssistantChange, config: AssistantConfig, file_ids: list[str]
) -> dict[str, Any]:
    body: dict[str, Any] = {}
    for name in change.changed:
        if name == "files":
            body["file_ids"] = file_ids
        elif name == "metadata":
            body["metadata"] = wire_metadata(config.metadata, key)
        elif name == "tools":
            body["tools"] = [dict(t) for t in config.tools]
        else:
            body[name] = getattr(config, name)
    return body


class Applier:
    """Carries out one plan. Construct, call ``run()`` once.

    ``save`` persists the lock (the CLI passes an atomic writer); ``progress`` is called with
    ``(done, total, address)`` after each call finishes, from worker threads.
    """

    def __init__(
        self,
        client: ApiClient,
        plan: Plan,
        desired: Desired,
        lock: Lock,
        root: Path,
        *,
        save: Callable[[Lock], None],
        concurrency: int = DEFAULT_CONCURRENCY,
        progress: Callable[[int, int, str], None] | None = None,
    ) -> None:
        self.client = client
        self.plan = plan
        self.desired = desired
        self.root = root
        self.recorder = LockRecorder(lock, save)
        self.concurrency = max(1, concurrency)
        self.progress = progress
        self.result = ApplyResult(lock=lock)
        self._mutex = threading.Lock()
        self._done = 0
        self._total = plan.steps
        self._id_by_sha: dict[str, str] = {}
        self._pool: ThreadPoolExecutor | None = None
        # scheduling state of the build phase (see _schedule_puts), guarded by _mutex
        self._waiting: dict[str, tuple[AssistantChange, set[str]]] = {}
        self._dependents: dict[str, list[str]] = {}
        self._lost_puts: list[AssistantChange] = []
        self._put_futures: list[Future[None]] = []

    # --- bookkeeping -------------------------------------------------------------------
    def _tick(self, address: str) -> None:
        with self._mutex:
            self._done += 1
            done = self._done
        if self.progress is not None:
            self.progress(done, self._total, address)

    def _count(self, kind: str) -> None:
        with self._mutex:
            self.result.counts[kind] += 1

    def _fail(self, address: str, message: str) -> None:
        with self._mutex:
            self.result.failures.append(Failure(address, message))

    def _run_all(
        self,
        fn: Callable[[T], None],
        items: Iterable[T],
        then: Callable[[], None] | None = None,
    ) -> None:
        """Run ``fn`` on every item on the pool and wait for all of them; ``then`` runs once
        everything is queued, before the wait."""
        assert self._pool is not None
        futures: list[Future[None]] = [self._pool.submit(fn, item) for item in items]
        if then is not None:
            then()
        wait(futures)
        for f in futures:
            f.result()  # re-raise bugs; API errors were already turned into failures

    # --- files -----------------------------------------------------------------------------
    def _record_upload(self, sha: str, size: int, file_id: str) -> None:
        with self._mutex:
            self._id_by_sha[sha] = file_id
        paths = [p for p, f in self.desired.files.items() if f.sha256 == sha]

        def change(lock: Lock) -> Lock:
            files = dict(lock.files)
            for p in paths:
                old = files.get(p)
                if old is not None and old.id != file_id:
                    # the previous upload stays owned until its delete succeeds
                    files[f"{p}@{old.sha256[:12]}"] = old
                files[p] = LockedFile(id=file_id, sha256=sha, size=size)
            return lock.model_copy(update={"files": files})

        self.recorder.update(change)
        self._settle(sha)

    def _upload_failed(self, fc: FileChange, message: str) -> None:
        self._fail(fc.address, message)
        self._tick(fc.address)
        self._settle(fc.sha256)

    def _upload(self, fc: FileChange, lost: list[FileChange]) -> None:
        if fc.adopt_id:
            self._record_upload(fc.sha256, fc.size, fc.adopt_id)
            self._count("import")
            self._tick(fc.address)
            return
        try:
            uploaded = self.client.upload_file(self.root / fc.path, filename=Path(fc.path).name)
        except ResponseLostError:
            with self._mutex:
                lost.append(fc)
            return
        except ApiError as exc:
            self._upload_failed(fc, str(exc))
            return
        except OSError as exc:
            self._upload_failed(fc, f"cannot read {fc.path}: {exc.strerror}")
            return
        self._record_upload(fc.sha256, fc.size, uploaded.id)
        self._count("add")
        self._tick(fc.address)

    def _find_lost_uploads(self, lost: list[FileChange]) -> list[FileChange]:
        """Adopt lost uploads that did reach the server; return those that did not."""
        owned = self.recorder.lock.file_ids()
        try:
            live = self.client.list_files()
        except ApiError as exc:
            for fc in lost:
                self._upload_failed(fc, f"upload outcome unknown and files unlistable: {exc}")
            return []
        missing: list[FileChange] = []
        for fc in lost:
            found = None
            for f in live:
                if f.id in owned or f.filename != Path(fc.path).name or f.bytes != fc.size:
                    continue
                try:
                    if self.client.file_sha256(f.id) == fc.sha256:
                        found = f.id
                        break
                except ApiError:
                    continue
            if found is None:
                missing.append(fc)
            else:
                owned.add(found)
                self._record_upload(fc.sha256, fc.size, found)
                self._count("add")
                self._tick(fc.address)
        return missing

    def _upload_phase(self, then: Callable[[], None]) -> None:
        """Upload new content; each assistant waiting for it starts as its last file settles.
        ``then`` runs once the first uploads are queued (ahead of work that needs none)."""
        pending = [f for f in self.plan.files if f.action == "create"]
        for round_ in range(RECONCILE_ROUNDS + 1):
            lost: list[FileChange] = []
            self._run_all(partial(self._upload, lost=lost), pending, then if round_ == 0 else None)
            if not lost:
                return
            pending = self._find_lost_uploads(lost)
            if round_ == RECONCILE_ROUNDS:
                for fc in pending:
                    self._upload_failed(fc, "the server kept dropping the upload's response")

    # --- scheduling: an assistant starts once every upload it needs has settled ---------------
    def _schedule_puts(
        self, puts: list[AssistantChange], lost: list[AssistantChange]
    ) -> list[AssistantChange]:
        """Register each put to start when the uploads it waits for have settled (succeeded or
        failed), instead of after the whole upload phase; return those that wait for none."""
        uploading = {f.sha256 for f in self.plan.files if f.action == "create"}
        ready: list[AssistantChange] = []
        with self._mutex:
            for ac in puts:
                assert ac.after is not None
                waits = {sha for sha in ac.after.files if sha in uploading}
                if waits:
                    self._waiting[ac.key] = (ac, waits)
                    for sha in waits:
                        self._dependents.setdefault(sha, []).append(ac.key)
                else:
                    ready.append(ac)
            self._lost_puts = lost
        return ready

    def _settle(self, sha: str) -> None:
        released: list[AssistantChange] = []
        with self._mutex:
            for key in self._dependents.pop(sha, []):
                ac, waits = self._waiting[key]
                waits.discard(sha)
                if not waits:
                    del self._waiting[key]
                    released.append(ac)
        self._start_puts(released)

    def _start_puts(self, puts: list[AssistantChange]) -> None:
        assert self._pool is not None
        for ac in puts:
            try:
                future = self._pool.submit(self._put, ac, self._lost_puts)
            except RuntimeError:  # the pool is shutting down (Ctrl-C): nothing new starts
                return
            with self._mutex:
                self._put_futures.append(future)

    def _wait_puts(self) -> None:
        """Wait for every put started so far, including those released while waiting."""
        done = 0
        while True:
            with self._mutex:
                batch = self._put_futures[done:]
            if not batch:
                return
            wait(batch)
            for f in batch:
                f.result()
            done += len(batch)

    # --- assistants --------------------------------------------------------------------------
    def _file_ids(self, config: AssistantConfig) -> list[str] | None:
        with self._mutex:
            ids = [self._id_by_sha.get(sha) for sha in config.files]
        return None if any(i is None for i in ids) else [i for i in ids if i is not None]

    def _record_assistant(self, key: str, assistant_id: str, applied: AssistantConfig) -> None:
        entry = LockedAssistant(id=assistant_id, applied=applied.digest())
        self.recorder.update(
            lambda lock: lock.model_copy(update={"assistants": {**lock.assistants, key: entry}})
        )

    def _missing_files(self, config: AssistantConfig) -> str:
        names = [self.plan.file_names.get(s, s) for s in config.files if s not in self._id_by_sha]
        return ", ".join(sorted(names))

    def _put(self, ac: AssistantChange, lost: list[AssistantChange]) -> None:
        assert ac.after is not None
        file_ids = self._file_ids(ac.after)
        if file_ids is None:
            self._fail(
                ac.address,
                f"skipped: its files were not uploaded ({self._missing_files(ac.after)})",
            )
            self._tick(ac.address)
            return
        try:
            if ac.action == "create":
                try:
                    created = self.client.create_assistant(_create_body(ac.key, ac.after, file_ids))
                except ResponseLostError:
                    with self._mutex:
                        lost.append(ac)
                    return
                self._record_assistant(ac.key, created.id, ac.after)
                self._count("add")
            else:
                assert ac.id is not None
                if ac.action == "update":
                    body = _update_body(ac.key, ac, ac.after, file_ids)
                    self.client.modify_assistant(ac.id, body)
                    self._count("change")
                self._record_assistant(ac.key, ac.id, ac.after)
                if ac.import_id:
                    self._count("import")
        except ApiError as exc:
            self._fail(ac.address, str(exc))
        self._tick(ac.address)

    def _find_lost_creates(self, lost: list[AssistantChange]) -> list[AssistantChange]:
        """Adopt lost creates that did reach the server (by tag); return those that did not."""
        owned = {e.id for e in self.recorder.lock.assistants.values()}
        try:
            live = self.client.list_assistants()
        except ApiError as exc:
            for ac in lost:
                self._fail(ac.address, f"create outcome unknown and assistants unlistable: {exc}")
                self._tick(ac.address)
            return []
        by_tag: dict[str, LiveAssistant] = {}
        for a in sorted(live, key=lambda a: (a.created_at, a.id)):
            if a.tag is not None and a.id not in owned:
                by_tag.setdefault(a.tag, a)
        missing: list[AssistantChange] = []
        for ac in lost:
            found = by_tag.get(ac.key)
            if found is None:
                missing.append(ac)
                continue
            assert ac.after is not None
            self._record_assistant(ac.key, found.id, ac.after)
            self._count("add")
            self._tick(ac.address)
        return missing

    def _build_phase(self) -> None:
        """Uploads, then creates/updates/imports, pipelined: an assistant starts as soon as its
        files are there. Creates whose response was lost are looked up by tag, and only those
        not found are sent again, in up to ``RECONCILE_ROUNDS`` further rounds."""
        puts = [a for a in self.plan.assistants if a.needs_apply and a.action != "delete"]
        lost: list[AssistantChange] = []
        ready = self._schedule_puts(puts, lost)
        self._upload_phase(then=partial(self._start_puts, ready))
        self._wait_puts()
        assert not self._waiting, "every upload settles, so every assistant was started"
        for _ in range(RECONCILE_ROUNDS):
            if not lost:
                return
            pending = self._find_lost_creates(lost)
            lost = []
            self._run_all(partial(self._put, lost=lost), pending)
        for ac in self._find_lost_creates(lost) if lost else []:
            self._fail(ac.address, "the server kept dropping the create's response")
            self._tick(ac.address)

    def _remove(
        self, address: str, call: Callable[[], None], forget: Callable[[Lock], Lock]
    ) -> None:
        """Delete one remote object; on success, drop it from the lock."""
        try:
            call()
        except ApiError as exc:
            self._fail(address, str(exc))
        else:
            self.recorder.update(forget)
            self._count("destroy")
        self._tick(address)

    def _destroy(self, ac: AssistantChange) -> None:
        assert ac.id is not None
        self._remove(
            ac.address,
            partial(self.client.delete_assistant, ac.id),
            lambda lock: lock.model_copy(
                update={"assistants": {k: v for k, v in lock.assistants.items() if k != ac.key}}
            ),
        )

    def _delete_file(self, fc: FileChange) -> None:
        assert fc.id is not None
        holders = self._failed_holders(fc.sha256)
        if holders:
            self._fail(
                fc.address, f"skipped: {', '.join(holders)} did not let go of it (see above)"
            )
            self._tick(fc.address)
            return
        self._remove(
            fc.address,
            partial(self.client.delete_file, fc.id),
            lambda lock: lock.model_copy(
                update={"files": {p: f for p, f in lock.files.items() if f.id != fc.id}}
            ),
        )

    def _failed_holders(self, sha: str) -> list[str]:
        """Assistants that used this content and whose change failed: they may still use it."""
        failed = {f.address for f in self.result.failures}
        return sorted(
            a.address
            for a in self.plan.assistants
            if a.address in failed and a.before is not None and sha in a.before.files
        )

    def _tidy_lock(self, lock: Lock) -> Lock:
        """The lock's final shape: every desired path with its upload; uploads no manifest
        needs whose deletion did not happen (still owned, deleted by a later apply); minus
        paths whose content another desired path still uses, and assistants found gone."""
        desired_shas = {f.sha256 for f in self.desired.files.values()}
        files = {
            p: f
            for p, f in lock.files.items()
            if p not in self.desired.files and f.sha256 not in desired_shas
        }
        with self._mutex:
            ids = dict(self._id_by_sha)
        for path, f in self.desired.files.items():
            if f.sha256 in ids:
                files[path] = LockedFile(id=ids[f.sha256], sha256=f.sha256, size=f.size)
            elif path in lock.files:
                files[path] = lock.files[path]  # its upload failed: keep what was there
        assistants = {
            k: v for k, v in lock.assistants.items() if k not in self.plan.forget_assistants
        }
        return lock.model_copy(
            update={"files": dict(sorted(files.items())), "assistants": assistants}
        )

    # --- the run -------------------------------------------------------------------------------
    def run(self) -> ApplyResult:
        """Carry out the plan; returns counts, failures and the final lock.

        On KeyboardInterrupt, calls not yet started are cancelled, calls in flight finish and
        are recorded, the lock is written, and the interrupt propagates.
        """
        self._id_by_sha = dict(self.plan.file_ids)
        self._pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="assistsync-apply")
        try:
            self._build_phase()
            self._run_all(self._destroy, [a for a in self.plan.assistants if a.action == "delete"])
            self._run_all(self._delete_file, [f for f in self.plan.files if f.action == "delete"])
            tidy = self._tidy_lock(self.recorder.lock)
            if tidy != self.recorder.lock:
                self.recorder.update(self._tidy_lock)
        finally:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self.recorder.close()
        self.result.lock = self.recorder.lock
        return self.result
