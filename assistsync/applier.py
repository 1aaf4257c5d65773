"""Plan -> API calls -> lock updates. Never diffs, never prints.

Apply carries out a ``Plan`` on a bounded pool of threads, in three steps: *build* (uploads,
and each assistant create/update/import as soon as the uploads it needs have settled), then
assistant deletes, then deletes of uploads nothing needs any more. A failed call does not stop
independent work; what depends on it is skipped and reported (an assistant whose file failed to
upload; an old upload an assistant whose update failed may still use).

A plan is enough to apply: the applier needs the client, the plan and a place to save the
lock. It starts from the lock the plan carries (``Plan.lock``) and records each successful
change on it as the plan's change says (``Lock.with_upload``, ``AssistantChange.locked``,
...). It never diffs and never reads the manifests.

Crash safety: the lock is written after every successful remote change (by a writer thread
that always writes the newest lock, so concurrent changes share one write). When a write fails
(a full disk), no new change starts; changes in flight finish, the lock is written once more if
it can be, and the result says how many changes were made and how many are recorded. Ctrl-C
does the same, and so does ``interrupt()`` from another thread (an apply started with
``start()`` runs on a thread of its own while the caller prints the plan). Creates are never
blindly re-sent: when a create's response is lost, the assistant is looked up by its
``assistsync_key`` tag (files: by name, size and content hash) before it is sent again.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Literal, TypeVar

from assistsync.api import ApiClient, ResponseLostError
from assistsync.errors import ApiError, LockWriteError
from assistsync.model import (
    AssistantChange,
    AssistantConfig,
    FileChange,
    LiveAssistant,
    Lock,
    LockedAssistant,
    Plan,
    wire_metadata,
)
from assistsync.model.config import tag_value

T = TypeVar("T")
DEFAULT_CONCURRENCY = 8
RECONCILE_ROUNDS = 3
"""How many times a create whose response was lost is looked up and, if absent, sent again."""


Verb = Literal["create", "update", "delete", "upload", "import", "record"]
"""``record``: a lock-only step (live already matches, the lock learns it); no call."""


@dataclass(frozen=True)
class Event:
    """One step of an apply, for live output (Terraform's ``Creating...`` lines).

    ``phase`` is ``start`` before the call, ``done`` after it succeeded (``id`` is the object's,
    ``elapsed`` the seconds it took by the applier's clock) or ``failed``. ``done`` and
    ``total`` count the plan's steps, for a progress bar.
    """

    address: str
    verb: Verb
    phase: Literal["start", "done", "failed"]
    id: str | None = None
    elapsed: float = 0.0
    done: int = 0
    total: int = 0


@dataclass(frozen=True)
class Failure:
    """One change that did not happen: its address and why (the API's message, request id).

    ``cause`` is what failures of one cause share (the API's message without the call's path
    or request id), so that fifty copies of "cannot reach the server" can be told as one.
    """

    address: str
    message: str
    cause: str = ""


@dataclass
class ApplyResult:
    """What an apply did: counts of successful changes, failures, the final lock, and how
    many changes were made and recorded (they differ only when the lock could not be
    written, see ``lock_error``). ``not_started`` changes were skipped because the apply
    stopped early (a failed lock write, Ctrl-C: ``interrupted``)."""

    lock: Lock
    counts: dict[str, int] = field(
        default_factory=lambda: {"import": 0, "add": 0, "change": 0, "destroy": 0}
    )
    failures: list[Failure] = field(default_factory=list)
    made: int = 0
    recorded: int = 0
    not_started: int = 0
    lock_error: LockWriteError | None = None
    interrupted: bool = False
    elapsed: float = 0.0

    @property
    def ok(self) -> bool:
        """Everything in the plan happened and is recorded."""
        return not (self.failures or self.lock_error or self.interrupted)

    def resources(self) -> str:
        """``Resources: N added, N changed, N destroyed.`` (with imports when there were any)."""
        c = self.counts
        imports = f"{c['import']} imported, " if c["import"] else ""
        return (
            f"Resources: {imports}{c['add']} added, {c['change']} changed, "
            f"{c['destroy']} destroyed."
        )

    def summary(self) -> str:
        """The outcome in one line: Terraform's after-apply line word for word when everything
        happened; otherwise what went wrong, with the resources that did change."""
        if self.ok:
            return f"Apply complete! {self.resources()}"
        if self.interrupted:
            return f"Apply interrupted; {self.resources()}"
        if self.lock_error is not None:
            return f"Apply stopped: the lock file could not be written; {self.resources()}"
        n = len(self.failures)
        return f"Apply failed: {n} change{'s' if n != 1 else ''} did not happen; {self.resources()}"


class LockRecorder:
    """The current lock, persisted by ``save`` after every change, on a writer thread of its own.

    ``update`` changes the lock in memory and wakes the writer; the writer always writes the
    newest lock, so every change is followed by a write that contains it, and concurrent changes
    share one write. Writing on its own thread keeps all API workers sending requests while the
    lock is serialised and fsynced.

    A failed write is kept (``error``), not raised at the workers: the applier stops starting
    changes, and ``close`` tries one last write of everything recorded. ``changes`` counts the
    updates that were remote changes, ``recorded`` how many of them are in a written lock.
    ``flush`` waits until everything recorded is written and raises a write's failure.

    The writer rests between writes for ``REST`` times as long as the last write took (woken at
    once by ``flush`` and ``close``): a write costs the whole lock, so a writer that never
    rested would take an ever larger share of the interpreter from the API workers as the
    project grows. Changes in that pause join the next write; what a kill can catch unwritten
    is still only the last few changes, which the next plan finds by their tags.
    """

    REST = 3.0
    """Pause after a write, as a multiple of how long the write took."""

    def __init__(self, lock: Lock, save: Callable[[Lock], None]) -> None:
        self._lock = lock
        self._assistants: dict[str, LockedAssistant] = {}
        """Assistant entries recorded but not yet merged into ``_lock`` (see ``put_assistant``)."""
        self._save = save
        self._cond = threading.Condition()
        self._dirty = False
        self._writing = False
        self._closed = False
        self._error: BaseException | None = None
        self._serial = lock.serial
        self._changes = 0
        self._recorded = 0
        self._hurry = False
        self._rest = 0.0
        self._thread = threading.Thread(target=self._run, name="assistsync-lock", daemon=True)
        self._thread.start()

    @property
    def lock(self) -> Lock:
        """The lock as it stands (including changes not yet written)."""
        with self._cond:
            return self._merged()

    def _merged(self) -> Lock:
        """``_lock`` with the assistant entries put since the last merge; under ``_cond``."""
        if self._assistants:
            merged = {**self._lock.assistants, **self._assistants}
            self._lock = self._lock.model_copy(update={"assistants": merged})
            self._assistants = {}
        return self._lock

    @property
    def error(self) -> BaseException | None:
        """The first failed write, if any."""
        with self._cond:
            return self._error

    @property
    def changes(self) -> int:
        """Remote changes recorded in memory."""
        with self._cond:
            return self._changes

    @property
    def recorded(self) -> int:
        """Remote changes in a lock that was written."""
        with self._cond:
            return self._recorded

    def update(self, change: Callable[[Lock], Lock], *, counts: bool = True) -> None:
        """Apply ``change`` to the lock and have it written; ``counts`` when it records a
        remote change (not a lock-only edit)."""
        with self._cond:
            self._lock = change(self._merged())
            self._changes += counts
            self._dirty = True
            self._cond.notify_all()

    def put_assistant(self, key: str, entry: LockedAssistant, *, counts: bool = True) -> None:
        """``update`` with ``Lock.with_assistant(key, entry)``, the common change of an apply,
        merged into the lock with the others put before the next write (or read of ``lock``):
        one copy of the assistants for many changes instead of one for each (a copy of a
        10,000-assistant mapping per change made an apply's recording grow with N²)."""
        with self._cond:
            self._assistants[key] = entry
            self._changes += counts
            self._dirty = True
            self._cond.notify_all()

    def _next(self) -> tuple[Lock, int]:
        """The next lock to write (serial bumped) and the changes it holds; under ``_cond``."""
        self._dirty = False
        self._serial += 1
        self._lock = self._merged().model_copy(update={"serial": self._serial})
        return self._lock, self._changes

    def _write(self, snapshot: Lock, changes: int) -> bool:
        try:
            self._save(snapshot)
        except BaseException as exc:  # kept for the applier (see error, close)
            with self._cond:
                self._error = self._error or exc
                self._dirty = True  # not on disk: the last write tries again
            return False
        with self._cond:
            self._recorded = max(self._recorded, changes)
        return True

    def _run(self) -> None:
        while True:
            with self._cond:
                if self._rest > 0 and not (self._closed or self._hurry):
                    self._cond.wait_for(lambda: self._closed or self._hurry, self._rest)
                while not (self._dirty and self._error is None) and not self._closed:
                    self._cond.wait()
                if self._closed and not (self._dirty and self._error is None):
                    return
                snapshot, changes = self._next()
                self._writing = True
            began = time.monotonic()
            try:
                self._write(snapshot, changes)
            finally:
                with self._cond:
                    self._rest = (time.monotonic() - began) * self.REST
                    self._writing = False
                    self._cond.notify_all()

    def flush(self) -> None:
        """Wait until every recorded change is written; raise a write's failure."""
        with self._cond:
            self._hurry = True
            self._cond.notify_all()
            while (self._dirty or self._writing) and self._error is None:
                self._cond.wait()
            self._hurry = False
            if self._error is not None:
                raise self._error

    def close(self) -> None:
        """Write what is left and stop the writer thread. After a failed write, one last
        write is tried (space may have been freed since): what it holds counts as recorded."""
        with self._cond:
            self._hurry = True
            self._cond.notify_all()
            while (self._dirty or self._writing) and self._error is None:
                self._cond.wait()
            self._closed = True
            self._cond.notify_all()
        self._thread.join()
        with self._cond:
            if self._error is None or not self._dirty:
                return
            snapshot, changes = self._next()
        self._write(snapshot, changes)


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

    ``save`` persists the lock (the CLI passes an atomic writer); ``events`` is called with an
    ``Event`` as each change starts and ends, from worker threads; ``clock`` (seconds,
    monotonic) times them, injected so tests see fixed durations.
    """

    def __init__(
        self,
        client: ApiClient,
        plan: Plan,
        *,
        save: Callable[[Lock], None],
        concurrency: int = DEFAULT_CONCURRENCY,
        events: Callable[[Event], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.plan = plan
        self.root = Path(plan.root) if plan.root else Path()
        start = plan.lock.with_lineage()
        self.recorder = LockRecorder(start, save)
        self.concurrency = max(1, concurrency)
        self.events = events
        self.clock = clock
        self.result = ApplyResult(lock=start)
        self._mutex = threading.Lock()
        self._done = 0
        self._total = plan.steps
        self._interrupted = threading.Event()
        self._stop_asked = False
        self._id_by_sha: dict[str, str] = {}
        self._pool: ThreadPoolExecutor | None = None
        # scheduling state of the build phase (see _schedule_puts), guarded by _mutex
        self._waiting: dict[str, tuple[AssistantChange, set[str]]] = {}
        self._dependents: dict[str, list[str]] = {}
        self._lost_puts: list[AssistantChange] = []
        self._put_futures: list[Future[None]] = []

    def interrupt(self) -> None:
        """Stop as Ctrl-C does, from any thread: no new change starts, the changes in flight
        finish and are recorded, and ``run`` returns a result that says it was interrupted."""
        self._stop_asked = True
        self._interrupted.set()

    def start(self) -> Background:
        """Run the apply on a thread of its own and return at once (see ``Background``)."""
        return Background(self)

    def _tag(self, key: str) -> str:
        """The ownership tag of ``key`` in the plan's environment (see ``tag_value``)."""
        return tag_value(key, self.plan.environment or None)

    # --- bookkeeping -------------------------------------------------------------------
    def _emit(
        self,
        address: str,
        verb: Verb,
        phase: Literal["start", "done", "failed"],
        *,
        began: float | None = None,
        id_: str | None = None,
    ) -> None:
        with self._mutex:
            self._done += phase != "start"
            done = self._done
        if self.events is not None:
            elapsed = self.clock() - began if began is not None else 0.0
            self.events(Event(address, verb, phase, id_, max(0.0, elapsed), done, self._total))

    def _stopping(self) -> bool:
        """True once the lock cannot be written, or on Ctrl-C: no new change starts."""
        return self._interrupted.is_set() or self.recorder.error is not None

    def _begin(self, address: str, verb: Verb, id_: str | None = None) -> float | None:
        """Say a change starts and return its start time; ``None`` when the apply is stopping:
        then the change does not start (counted at the end, as neither done nor failed)."""
        if self._stopping():
            return None
        self._emit(address, verb, "start", id_=id_)
        return self.clock()

    def _count(self, kind: str) -> None:
        with self._mutex:
            self.result.counts[kind] += 1

    def _fail(self, address: str, message: str, cause: str = "") -> None:
        with self._mutex:
            self.result.failures.append(Failure(address, message, cause or message))

    def _fail_api(self, address: str, exc: ApiError, prefix: str = "") -> None:
        self._fail(address, prefix + str(exc), prefix + f"{exc.status or ''} {exc.detail}")

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
    def _record_upload(
        self, fc: FileChange, file_id: str, kind: str, verb: Verb, began: float | None = None
    ) -> None:
        """Record a finished upload, count and report it, then release what waits for it.

        Reporting comes before releasing: the assistants that attach the file start on other
        threads as soon as it is settled, and their lines must not come before this one's."""
        with self._mutex:
            self._id_by_sha[fc.sha256] = file_id
        paths = fc.paths or (fc.path,)
        entry = fc.locked(file_id)
        self.recorder.update(lambda lock: lock.with_upload(paths, entry))
        self._count(kind)
        self._emit(fc.address, verb, "done", began=began, id_=file_id)
        self._settle(fc.sha256)

    def _upload_failed(self, fc: FileChange, message: str, cause: str = "") -> None:
        self._fail(fc.address, message, cause)
        self._emit(fc.address, "upload", "failed")
        self._settle(fc.sha256)

    def _upload(self, fc: FileChange, lost: list[FileChange]) -> None:
        verb: Verb = "import" if fc.adopt_id else "upload"
        began = self._begin(fc.address, verb, fc.adopt_id)
        if began is None:
            self._settle(fc.sha256)
            return
        if fc.adopt_id:
            self._record_upload(fc, fc.adopt_id, "import", verb, began)
            return
        try:
            uploaded = self.client.upload_file(self.root / fc.path, filename=Path(fc.path).name)
        except ResponseLostError:
            with self._mutex:
                lost.append(fc)
            return
        except ApiError as exc:
            self._upload_failed(fc, str(exc), f"{exc.status or ''} {exc.detail}")
            return
        except OSError as exc:
            self._upload_failed(fc, f"cannot read {fc.path}: {exc.strerror}")
            return
        self._record_upload(fc, uploaded.id, "add", verb, began)

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
                self._record_upload(fc, found, "add", "upload")
        return missing

    def _upload_phase(self, then: Callable[[], None]) -> None:
        """Upload new content; each assistant waiting for it starts as its last file settles.
        ``then`` runs once the first uploads are queued (ahead of work that needs none)."""
        pending = [f for f in self.plan.files if f.action == "create"]
        for round_ in range(RECONCILE_ROUNDS + 1):
            lost: list[FileChange] = []
            self._run_all(partial(self._upload, lost=lost), pending, then if round_ == 0 else None)
            if not lost or self._stop_asked:
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

    def _record_assistant(self, ac: AssistantChange, assistant_id: str, counts: bool) -> None:
        self.recorder.put_assistant(ac.key, ac.locked(assistant_id), counts=counts)

    def _missing_files(self, config: AssistantConfig) -> str:
        names = [self.plan.file_names.get(s, s) for s in config.files if s not in self._id_by_sha]
        return ", ".join(sorted(names))

    @staticmethod
    def _verb(ac: AssistantChange) -> Verb:
        if ac.action == "create":
            return "create"
        if ac.action == "update":
            return "update"
        return "import" if ac.import_id else "record"

    def _put(self, ac: AssistantChange, lost: list[AssistantChange]) -> None:
        assert ac.after is not None
        if self._stopping():
            return
        verb = self._verb(ac)
        file_ids = self._file_ids(ac.after)
        if file_ids is None:
            self._fail(
                ac.address,
                f"skipped: its files were not uploaded ({self._missing_files(ac.after)})",
            )
            self._emit(ac.address, verb, "failed")
            return
        began = self._begin(ac.address, verb, ac.id)
        if began is None:
            return
        assistant_id = ac.id
        try:
            if ac.action == "create":
                try:
                    created = self.client.create_assistant(
                        _create_body(self._tag(ac.key), ac.after, file_ids)
                    )
                except ResponseLostError:
                    with self._mutex:
                        lost.append(ac)
                    return
                assistant_id = created.id
                self._record_assistant(ac, created.id, counts=True)
                self._count("add")
            else:
                assert ac.id is not None
                remote = ac.action == "update"
                if remote:
                    body = _update_body(self._tag(ac.key), ac, ac.after, file_ids)
                    self.client.modify_assistant(ac.id, body)
                    self._count("change")
                self._record_assistant(ac, ac.id, counts=remote or ac.import_id is not None)
                if ac.import_id:
                    self._count("import")
        except ApiError as exc:
            self._fail_api(ac.address, exc)
            self._emit(ac.address, verb, "failed")
            return
        self._emit(ac.address, verb, "done", began=began, id_=assistant_id)

    def _find_lost_creates(self, lost: list[AssistantChange]) -> list[AssistantChange]:
        """Adopt lost creates that did reach the server (by tag); return those that did not."""
        owned = {e.id for e in self.recorder.lock.assistants.values()}
        try:
            live = self.client.list_assistants()
        except ApiError as exc:
            for ac in lost:
                self._fail_api(
                    ac.address, exc, "create outcome unknown and assistants unlistable: "
                )
                self._emit(ac.address, "create", "failed")
            return []
        by_tag: dict[str, LiveAssistant] = {}
        for a in sorted(live, key=lambda a: (a.created_at, a.id)):
            if a.tag is not None and a.id not in owned:
                by_tag.setdefault(a.tag, a)
        missing: list[AssistantChange] = []
        for ac in lost:
            found = by_tag.get(self._tag(ac.key))
            if found is None:
                missing.append(ac)
                continue
            self._record_assistant(ac, found.id, counts=True)
            self._count("add")
            self._emit(ac.address, "create", "done", id_=found.id)
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
            if not lost or self._stop_asked:
                return
            pending = self._find_lost_creates(lost)
            lost = []
            self._run_all(partial(self._put, lost=lost), pending)
        for ac in self._find_lost_creates(lost) if lost and not self._stop_asked else []:
            self._fail(ac.address, "the server kept dropping the create's response")
            self._emit(ac.address, "create", "failed")

    def _remove(
        self,
        address: str,
        id_: str,
        verb: Verb,
        call: Callable[[], None],
        forget: Callable[[Lock], Lock],
    ) -> None:
        """Delete one remote object; on success, drop it from the lock."""
        began = self._begin(address, verb, id_)
        if began is None:
            return
        try:
            call()
        except ApiError as exc:
            self._fail_api(address, exc)
            self._emit(address, verb, "failed")
            return
        self.recorder.update(forget)
        self._count("destroy")
        self._emit(address, verb, "done", began=began, id_=id_)

    def _destroy(self, ac: AssistantChange) -> None:
        assert ac.id is not None
        self._remove(
            ac.address,
            ac.id,
            "delete",
            partial(self.client.delete_assistant, ac.id),
            lambda lock: lock.without_assistant(ac.key),
        )

    def _delete_file(self, fc: FileChange) -> None:
        assert fc.id is not None
        file_id = fc.id
        holders = self._failed_holders(fc.sha256)
        if holders:
            self._fail(
                fc.address, f"skipped: {', '.join(holders)} did not let go of it (see above)"
            )
            self._emit(fc.address, "delete", "failed")
            return
        self._remove(
            fc.address,
            file_id,
            "delete",
            partial(self.client.delete_file, file_id),
            lambda lock: lock.without_file(file_id),
        )

    def _failed_holders(self, sha: str) -> list[str]:
        """Assistants that used this content and whose change failed: they may still use it."""
        failed = {f.address for f in self.result.failures}
        return sorted(
            a.address
            for a in self.plan.assistants
            if a.address in failed and a.before is not None and sha in a.before.files
        )

    # --- the run -------------------------------------------------------------------------------
    def run(self) -> ApplyResult:
        """Carry out the plan; returns counts, failures and the final lock.

        When a lock write fails, or on Ctrl-C, no new change starts, the changes in flight
        finish and are recorded, the lock is written if it can be, and the result says so
        (``lock_error``, ``interrupted``). Check that the lock can be written at all before
        (``lockfile.check_writable``): then a read-only project changes nothing.
        """
        began = self.clock()
        self._id_by_sha = dict(self.plan.file_ids)
        if self.plan.lock_refresh:  # forgotten and re-filed entries are written even alone
            self.recorder.update(lambda lock: lock, counts=False)
        self._pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="assistsync-apply")
        phases: list[Callable[[], None]] = [
            self._build_phase,
            lambda: self._run_all(
                self._destroy, [a for a in self.plan.assistants if a.action == "delete"]
            ),
            lambda: self._run_all(
                self._delete_file, [f for f in self.plan.files if f.action == "delete"]
            ),
        ]
        try:
            for phase in phases:
                if self._stop_asked:  # interrupt() from another thread: as Ctrl-C here
                    break
                phase()
        except KeyboardInterrupt:
            self.interrupt()
        finally:
            self._interrupted.set()  # anything still queued must not start
            self._pool.shutdown(wait=True, cancel_futures=True)
            self.recorder.close()
        error = self.recorder.error
        if error is not None and not isinstance(error, LockWriteError):
            raise error  # a bug in saving, not the user's disk
        self.result.lock_error = error
        self.result.interrupted = self._stop_asked
        self.result.lock = self.recorder.lock
        self.result.not_started = max(0, self._total - self._done)
        self.result.made = self.recorder.changes
        self.result.recorded = self.recorder.recorded
        self.result.elapsed = max(0.0, self.clock() - began)
        return self.result


class Background:
    """An apply running on a thread of its own (``Applier.start``), so that the caller can do
    something else meanwhile (print the plan). ``result`` waits for it; ``interrupt`` stops it
    as Ctrl-C would. Used as a context manager, leaving on an exception interrupts the apply
    and waits for it: the changes in flight finish and are recorded before the caller goes on
    (and closes the client they use).
    """

    def __init__(self, applier: Applier) -> None:
        self._applier = applier
        self._result: ApplyResult | None = None
        self._error: BaseException | None = None
        # Waited on instead of Thread.join: on Python 3.11 a join interrupted by Ctrl-C marks
        # the thread as finished (bpo-45274), and the next join would not wait at all.
        self._finished = threading.Event()
        # not a daemon: a process that is leaving still waits for the lock to be written
        self._thread = threading.Thread(target=self._run, name="assistsync-applier")
        self._thread.start()

    def _run(self) -> None:
        try:
            self._result = self._applier.run()
        except BaseException as exc:  # handed to the caller by result()
            self._error = exc
        finally:
            self._finished.set()

    def interrupt(self) -> None:
        """No new change starts; those in flight finish and are recorded (any thread)."""
        self._applier.interrupt()

    def result(self) -> ApplyResult:
        """Wait for the apply and return its result (or raise what it raised). Ctrl-C while
        waiting interrupts it as it would an apply run in the foreground."""
        try:
            self._finished.wait()
        except KeyboardInterrupt:
            self.interrupt()
            self._finished.wait()
        if self._error is not None:
            raise self._error
        assert self._result is not None
        return self._result

    def __enter__(self) -> Background:
        return self

    def __exit__(self, kind: type[BaseException] | None, *rest: object) -> None:
        if kind is not None and not self._finished.is_set():
            self.interrupt()
            self._finished.wait()


class HeldEvents:
    """An ``events`` callback that holds every event until ``release(sink)``, then hands them
    to ``sink`` in the order they came, and every later event as it comes.

    It lets an apply start while its plan is still being printed: the plan's lines come first,
    the apply's after them, exactly as when the apply starts after the plan.
    """

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._held: list[Event] = []
        self._sink: Callable[[Event], None] | None = None

    def __call__(self, event: Event) -> None:
        with self._mutex:
            sink = self._sink
            if sink is None:
                self._held.append(event)
                return
        sink(event)

    def release(self, sink: Callable[[Event], None]) -> None:
        """Hand the held events to ``sink``, then let later ones through. Events that come
        while the held ones are handed on are held too, and handed on after them."""
        while True:
            with self._mutex:
                batch, self._held = self._held, []
                if not batch:
                    self._sink = sink
                    return
            for event in batch:
                sink(event)
