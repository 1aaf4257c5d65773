"""``assistsync import``: live assistants -> manifests, prompt, schema and doc files, lock, tags.

The order of work keeps a project consistent whatever stops it (Ctrl-C, a failed call):

1. list the account (the plan's request floor: ``ceil(N/100)`` pages and one /files list);
2. choose the assistants and their keys, decide every path (nothing is written yet); paths
   that exist are refused unless ``--force``, before anything is downloaded;
3. download each distinct attached file once, concurrently (bounded), into ``.assistsync/``;
   identical contents under two file ids are kept once;
4. in batches of ``BATCH`` assistants, each in one section that the caller shields from Ctrl-C:
   move the batch's downloads into place, write its prompt and parameters files and manifests
   (each atomically, concurrently), then record its ids in the lock. Manifests are written
   before the lock, so the lock never names an assistant the manifests lack (a plan would
   destroy it);
5. tag each recorded batch (``assistsync_key``) on a bounded pool while the next batch is
   written. An interrupted import leaves assistants recorded but untagged: the next import
   tags them (and a plan would too).

Nothing here prints: progress and the outcome go to the caller as values.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assistsync.adopt.choose import Choice, Criteria, Passed, Taken, choose, label
from assistsync.adopt.layout import Layout, manifest_entry, plan_layout
from assistsync.adopt.target import NEW_CONFIG, Target, covered, manifest_dir
from assistsync.adopt.yamlio import appended, new_manifest
from assistsync.api import ApiClient
from assistsync.api.download import Downloaded, download_file
from assistsync.errors import ApiError, AssistsyncError
from assistsync.fetch import list_account
from assistsync.lockfile import state_dir, write_atomically, write_lock
from assistsync.manifest import CONFIG_NAME
from assistsync.manifest.files import sha256_file
from assistsync.model import TAG_KEY, LiveAssistant, Lock, LockedAssistant, LockedFile
from assistsync.model.config import tag_value
from assistsync.model.lock import RetiredFile
from assistsync.planner import live_config

DEFAULT_CONCURRENCY = 8
BATCH = 100
"""Assistants written and recorded together; a batch is tagged while the next is written."""

Progress = Callable[[str, int, int], None]
"""Called as ``(phase, done, total)`` from the calling thread: ``download``, ``tag``."""


@dataclass(frozen=True)
class Options:
    """The import's switches: ``--into``, ``--dry-run``, ``--force``, ``--concurrency``."""

    into: Path | None = None
    dry_run: bool = False
    force: bool = False
    concurrency: int = DEFAULT_CONCURRENCY


@dataclass
class ImportResult:
    """What an import did (or, with ``--dry-run``, would do)."""

    choice: Choice
    files: list[Path] = field(default_factory=list)
    """Files written (or to write), absolute."""
    downloads: int = 0
    """Distinct files downloaded (or to download)."""
    download_bytes: int = 0
    tagged: int = 0
    failures: list[str] = field(default_factory=list)
    interrupted: bool = False
    dry_run: bool = False
    new_config: bool = False
    requests: int = 0


def _rel(target: Target, path: Path) -> str:
    return path.relative_to(target.root).as_posix()


class Adopter:
    """One import into ``target``; construct, then call ``run()`` once."""

    def __init__(
        self,
        client: ApiClient,
        target: Target,
        criteria: Criteria,
        options: Options,
        *,
        progress: Progress | None = None,
        shield: Callable[[], contextlib.AbstractContextManager[object]] = contextlib.nullcontext,
    ) -> None:
        self.client = client
        self.target = target
        self.criteria = criteria
        self.options = options
        self.progress = progress or (lambda phase, done, total: None)
        self.shield = shield

    # ------------------------------------------------------------------ the steps
    def run(self) -> ImportResult:
        start = self.client.stats.requests
        assistants, files = list_account(self.client)
        choice = choose(
            assistants,
            self.criteria,
            self.target.lock,
            set(self.target.declared),
            self.target.environment,
        )
        result = ImportResult(choice, dry_run=self.options.dry_run)
        result.new_config = self.target.new_config
        if choice.taken:
            layout = plan_layout(
                self.target.root,
                choice.taken,
                {f.id: f for f in files},
                self._manifests(choice.taken),
                known={i: self.target.root / p for i, p in self.target.known_files.items()},
            )
            self._refuse_existing(layout)
            if self.options.dry_run:
                self._describe(layout, result)
            else:
                self._adopt(choice.taken, layout, result)
        if choice.retag and not self.options.dry_run and not result.interrupted:
            self._tag([(key, a) for key, a in choice.retag], result)
        result.requests = self.client.stats.requests - start
        return result

    def _manifests(self, taken: list[Taken]) -> dict[str, Path]:
        """The manifest file of each key: ``--into``, else ``<dir>/<key>.yaml``; each must be
        one the project's globs load, or the next plan would not see what was imported."""
        root, globs = self.target.root, self.target.globs
        into = self.options.into
        if into is not None:
            path = (into if into.is_absolute() else root / into).resolve()
            if not path.is_relative_to(root):
                raise AssistsyncError(f"--into {into}: the file must be inside the project {root}.")
            if not covered(_rel(self.target, path), globs):
                raise AssistsyncError(
                    f"--into {into}: the project's manifest globs ({', '.join(globs)}) do not "
                    "include it, so plan would not read it. Choose a file they include, or add "
                    f"a glob for it to {CONFIG_NAME}."
                )
            return {t.key: path for t in taken}
        directory = manifest_dir(globs)
        out: dict[str, Path] = {}
        for t in taken:
            rel = f"{directory}/{t.key}.yaml" if directory else f"{t.key}.yaml"
            if not covered(rel, globs):
                raise AssistsyncError(
                    f"the project's manifest globs ({', '.join(globs)}) do not include {rel}, "
                    "where the import would write; choose a manifest they include with "
                    "--into FILE."
                )
            out[t.key] = root / rel
        return out

    def _refuse_existing(self, layout: Layout) -> None:
        """Existing files the import would replace (prompt and parameters files with other
        content): refused unless ``--force``. A manifest that exists is appended to, never
        replaced: the project loaded it, so it is valid, and it may hold other assistants."""
        if self.options.force:
            return
        clash: list[Path] = []
        for path, text in layout.texts.items():
            if path.exists() and _read(path) != text.encode():
                clash.append(path)
        # an existing doc is compared by content once downloaded (see _commit)
        clash += [p for p in layout.doc_of.values() if p.exists() and not p.is_file()]
        if clash:
            self._clash(clash)

    def _clash(self, paths: list[Path]) -> None:
        shown = sorted(_rel(self.target, p) for p in set(paths))
        more = f" (and {len(shown) - 20} more)" if len(shown) > 20 else ""
        raise AssistsyncError(
            f"the import would overwrite {len(shown)} existing file"
            f"{'s' if len(shown) != 1 else ''}: {', '.join(shown[:20])}{more}. Nothing was "
            "written. Move them away, or pass --force to overwrite them."
        )

    def _describe(self, layout: Layout, result: ImportResult) -> None:
        paths = set(layout.manifest_of.values()) | set(layout.texts) | set(layout.doc_of.values())
        if self.target.new_config:
            paths.add(self.target.root / CONFIG_NAME)
        result.files = sorted(paths)
        result.downloads = len(layout.doc_of)
        result.download_bytes = sum(
            layout.file_names[i].bytes for i in layout.doc_of if i in layout.file_names
        )

    def _adopt(self, taken: list[Taken], layout: Layout, result: ImportResult) -> None:
        """Download, then commit batch after batch, each batch's tags sent while the next one
        is written (a batch is tagged only once the lock records it)."""
        scratch = Path(tempfile.mkdtemp(prefix="import-", dir=state_dir(self.target.root)))
        parts = {file_id: scratch / f"{n}.part" for n, file_id in enumerate(layout.doc_of)}
        try:
            got = self._download(parts, result)
            failed = set(parts) - set(got)
            if failed:
                taken, layout = self._without(taken, layout, failed, result)
                parts = {file_id: parts[file_id] for file_id in layout.doc_of}
            placed = self._place(layout, got)
            step = len(taken) if self.options.into is not None else BATCH
            batches = [taken[i : i + step] for i in range(0, len(taken), step)]
            with _Tagger(self, result, len(taken)) as tagger:
                lock = self.target.lock.with_lineage()
                for n, batch in enumerate(batches):
                    with self.shield():
                        lock = self._commit(batch, layout, placed, parts, lock, n == 0, result)
                    tagger.submit([(t.key, t.live) for t in batch])
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def _without(
        self, taken: list[Taken], layout: Layout, failed: set[str], result: ImportResult
    ) -> tuple[list[Taken], Layout]:
        """The assistants whose every attached file was downloaded, laid out again without
        the others, which are reported as not imported (their files are under Failed)."""
        kept: list[Taken] = []
        for t in taken:
            missing = sorted(failed & set(t.live.file_ids))
            if missing:
                why = f"its file {', '.join(missing)} could not be downloaded (see Failed)"
                result.choice.refused.append(Passed(t.live, why, refused=True))
            else:
                kept.append(t)
        result.choice.taken = kept
        keys = {t.key for t in kept}
        manifests = {k: p for k, p in layout.manifest_of.items() if k in keys}
        return kept, plan_layout(layout.root, kept, layout.file_names, manifests, layout.known)

    def _download(self, parts: dict[str, Path], result: ImportResult) -> dict[str, Downloaded]:
        """Each distinct attached file, downloaded once into its scratch file."""
        got = self._downloads(parts, result)
        result.downloads = len(got)
        result.download_bytes = sum(d.size for d in got.values())
        return got

    def _place(self, layout: Layout, got: dict[str, Downloaded]) -> _Placed:
        """Where each downloaded file ends up and what the lock records for it; an existing
        doc with other content is refused here, before anything is written."""
        placed = _Placed(doc_path=dict(layout.known), sha_by_id=self.target.lock.sha_by_file_id())
        path_by_sha: dict[str, Path] = {}
        for file_id, planned in layout.doc_of.items():
            d = got[file_id]
            placed.sha_by_id[file_id] = d.sha256
            path = path_by_sha.get(d.sha256)
            if path is not None:
                # the same content under another file id: named once, this id kept as owned
                placed.doc_path[file_id] = path
                rel = _rel(self.target, path)
                placed.retired[file_id] = RetiredFile(path=rel, sha256=d.sha256, size=d.size)
                continue
            path_by_sha[d.sha256] = placed.doc_path[file_id] = planned
            if not planned.exists():
                placed.moves.add(file_id)
            elif sha256_file(planned)[0] != d.sha256:
                if not self.options.force:
                    self._clash([planned])
                placed.moves.add(file_id)
            placed.uploads[file_id] = LockedFile(id=file_id, sha256=d.sha256, size=d.size)
        return placed

    def _commit(
        self,
        batch: list[Taken],
        layout: Layout,
        placed: _Placed,
        parts: dict[str, Path],
        lock: Lock,
        first: bool,
        result: ImportResult,
    ) -> Lock:
        """One batch: its docs, texts and manifests, then the lock (see the module docs)."""
        root = self.target.root
        keys = {t.key for t in batch}
        if first and self.target.new_config:
            write_atomically(root / CONFIG_NAME, NEW_CONFIG)
            result.files.append(root / CONFIG_NAME)
        for file_id in (i for i in layout.doc_of if layout.owner_of[i] in keys):
            path = placed.doc_path[file_id]
            if file_id in placed.moves:
                path.parent.mkdir(parents=True, exist_ok=True)
                parts[file_id].replace(path)  # the scratch directory is in the project
                result.files.append(path)
            if file_id in placed.uploads:
                lock = lock.with_upload((_rel(self.target, path),), placed.uploads[file_id])
            else:
                retired = {**lock.retired, file_id: placed.retired[file_id]}
                lock = lock.model_copy(update={"retired": retired})
        texts = layout.texts_of(keys)
        pending = {p: t for p, t in texts.items() if _read(p) != t.encode()}
        pending.update(self._manifest_texts(batch, layout, placed.doc_path))
        self._write_all(pending)
        result.files += pending
        for t in batch:
            applied = live_config(t.live, placed.sha_by_id).digest()
            lock = lock.with_assistant(t.key, LockedAssistant(id=t.live.id, applied=applied))
        lock = lock.model_copy(update={"serial": lock.serial + 1})
        write_lock(self.target.lock_path, lock)
        return lock

    def _write_all(self, texts: dict[Path, str]) -> None:
        """Write every file atomically (temporary file, fsync, rename); the fsyncs, which cost
        the most, run concurrently."""
        for path in texts:
            path.parent.mkdir(parents=True, exist_ok=True)

        def write(item: tuple[Path, str]) -> None:
            write_atomically(*item)

        try:
            with ThreadPoolExecutor(max_workers=self.options.concurrency) as pool:
                list(pool.map(write, texts.items()))
        except OSError as exc:
            where = exc.filename or "a file of the project"
            raise AssistsyncError(
                f"cannot write {where}: {exc.strerror or exc}. The lock was not changed; "
                "fix the cause and import again (files written so far are reused)."
            ) from exc

    def _manifest_texts(
        self, taken: list[Taken], layout: Layout, doc_path: dict[str, Path]
    ) -> dict[Path, str]:
        """The text of every manifest the import writes or appends to."""
        out: dict[Path, str] = {}
        by_file: dict[Path, dict[str, dict[str, Any]]] = {}
        for t in taken:
            by_file.setdefault(layout.manifest_of[t.key], {})[t.key] = manifest_entry(
                t, layout, doc_path
            )
        env = f" (environment {self.target.environment})" if self.target.environment else ""
        for path, entries in by_file.items():
            rel = _rel(self.target, path)
            if path.exists():
                text = appended(path, path.read_text(encoding="utf-8"), entries, rel)
            else:
                first = next(t.live for t in taken if t.key in entries)
                header = (
                    f"Imported by assistsync from {label(first)}{env}"
                    if len(entries) == 1
                    else f"Imported by assistsync{env}"
                )
                text = new_manifest(entries, header)
            out[path] = text
        return out

    def _tag_one(self, key: str, a: LiveAssistant) -> None:
        """Set the ownership tag of ``a`` to ``key``, keeping its other metadata."""
        metadata = {k: v for k, v in a.metadata.items() if k != TAG_KEY}
        tag = tag_value(key, self.target.environment)
        self.client.modify_assistant(a.id, {"metadata": {**metadata, TAG_KEY: tag}})

    def _tag(self, pairs: list[tuple[str, LiveAssistant]], result: ImportResult) -> None:
        with _Tagger(self, result, len(pairs)) as tagger:
            tagger.submit(pairs)

    # ------------------------------------------------------------------ machinery
    def _downloads(self, parts: dict[str, Path], result: ImportResult) -> dict[str, Downloaded]:
        """Download every file id of ``parts`` into its scratch file, ``concurrency`` at once;
        failures go to ``result.failures``. Ctrl-C lets the downloads in flight finish, drops
        the rest and re-raises: nothing was written to the project yet."""
        out: dict[str, Downloaded] = {}
        if not parts:
            return out
        pool = ThreadPoolExecutor(
            max_workers=min(self.options.concurrency, len(parts)),
            thread_name_prefix="assistsync-download",
        )
        futures = {pool.submit(download_file, self.client, i, p): i for i, p in parts.items()}
        try:
            for future in as_completed(futures):
                file_id = futures[future]
                try:
                    out[file_id] = future.result()
                except ApiError as exc:
                    result.failures.append(f"file {file_id}: {exc.message}")
                except OSError as exc:
                    result.failures.append(f"file {file_id}: {exc.strerror or exc}")
                self.progress("download", len(out) + len(result.failures), len(parts))
        except KeyboardInterrupt:
            pool.shutdown(wait=True, cancel_futures=True)
            result.interrupted = True
            raise
        pool.shutdown(wait=True)
        return out


@dataclass
class _Placed:
    """The outcome of ``Adopter._place``."""

    doc_path: dict[str, Path]
    """file id -> the project file holding its content."""
    sha_by_id: dict[str, str]
    moves: set[str] = field(default_factory=set)
    """file ids whose download is moved into place (not already there with that content)."""
    uploads: dict[str, LockedFile] = field(default_factory=dict)
    retired: dict[str, RetiredFile] = field(default_factory=dict)


class _Tagger:
    """Tags assistants on a bounded pool while the caller goes on; leaving the ``with`` block
    waits for every tag. Ctrl-C (in the block or while waiting) lets the calls in flight
    finish, drops the rest and marks the result interrupted."""

    def __init__(self, adopter: Adopter, result: ImportResult, total: int) -> None:
        self.adopter = adopter
        self.result = result
        self.total = total
        self.pool = ThreadPoolExecutor(
            max_workers=adopter.options.concurrency, thread_name_prefix="assistsync-tag"
        )
        self.futures: dict[Future[None], tuple[str, LiveAssistant]] = {}

    def submit(self, pairs: list[tuple[str, LiveAssistant]]) -> None:
        for pair in pairs:
            self.futures[self.pool.submit(self.adopter._tag_one, *pair)] = pair

    def __enter__(self) -> _Tagger:
        return self

    def __exit__(self, kind: type[BaseException] | None, *rest: object) -> bool:
        if kind is None:
            try:
                for future in as_completed(self.futures):
                    self._settle(future)
                    done = self.result.tagged + len(self.result.failures)
                    self.adopter.progress("tag", done, self.total)
            except KeyboardInterrupt:
                kind = KeyboardInterrupt
        if kind is KeyboardInterrupt:
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.result.interrupted = True
            self.result.tagged = sum(
                1 for f in self.futures if f.done() and not f.cancelled() and not f.exception()
            )
            return True  # the project is consistent: report, exit 130
        self.pool.shutdown(wait=True, cancel_futures=kind is not None)
        return False

    def _settle(self, future: Future[None]) -> None:
        try:
            future.result()
            self.result.tagged += 1
        except ApiError as exc:
            self.result.failures.append(f"{label(self.futures[future][1])}: {exc.message}")


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None
