"""``assistsync import``: live assistants -> manifests, prompt, schema and doc files, lock, tags.

The order of work keeps a project consistent whatever stops it (Ctrl-C, a failed call):

1. list the account (the plan's request floor: ``ceil(N/100)`` pages and one /files list);
2. choose the assistants and their keys, decide every path (nothing is written yet); paths
   that exist are refused unless ``--force``, before anything is downloaded;
3. download each distinct attached file once, concurrently (bounded), into ``.assistsync/``;
   identical contents under two file ids are kept once;
4. in one section that the caller shields from Ctrl-C: move the downloads into place, write the
   prompt and parameters files and the manifests (each atomically), then record every id in the
   lock. Manifests are written before the lock, so the lock never names an assistant the
   manifests lack (a plan would destroy it);
5. tag the assistants (``assistsync_key``), concurrently. An interrupted tagging leaves
   assistants recorded but untagged: the next import tags them (and a plan would too).

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
from typing import Any, TypeVar

from assistsync.adopt.choose import Choice, Criteria, Taken, choose, label
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
from assistsync.model import TAG_KEY, LiveAssistant, LockedAssistant, LockedFile
from assistsync.model.config import tag_value
from assistsync.model.lock import RetiredFile
from assistsync.planner import live_config

DEFAULT_CONCURRENCY = 8
T = TypeVar("T")

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
        """Existing files the import would replace (manifests it does not append to, prompt
        and parameters files with other content): refused unless ``--force``."""
        if self.options.force:
            return
        clash: list[Path] = []
        appending = self.options.into is not None
        if not appending:
            clash += [p for p in set(layout.manifest_of.values()) if p.exists()]
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
            "written. Move them away, import into another manifest with --into FILE, or pass "
            "--force to overwrite them."
        )

    def _describe(self, layout: Layout, result: ImportResult) -> None:
        paths = set(layout.manifest_of.values()) | set(layout.texts) | set(layout.doc_of.values())
        result.files = sorted(paths)
        result.downloads = len(layout.doc_of)
        result.download_bytes = sum(
            layout.file_names[i].bytes for i in layout.doc_of if i in layout.file_names
        )

    def _adopt(self, taken: list[Taken], layout: Layout, result: ImportResult) -> None:
        scratch = Path(tempfile.mkdtemp(prefix="import-", dir=state_dir(self.target.root)))
        parts = {file_id: scratch / f"{n}.part" for n, file_id in enumerate(layout.doc_of)}
        try:
            got = self._download(parts, result)
            with self.shield():
                self._commit(taken, layout, got, parts, result)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        self._tag([(t.key, t.live) for t in taken], result)

    def _download(self, parts: dict[str, Path], result: ImportResult) -> dict[str, Downloaded]:
        """Each distinct attached file, downloaded once into its scratch file."""
        got = self._concurrently(
            "download", list(parts), lambda i: download_file(self.client, i, parts[i]), result
        )
        if result.failures:
            raise AssistsyncError(
                "the import downloaded no file into the project, because:\n  "
                + "\n  ".join(result.failures)
            )
        result.downloads = len(got)
        result.download_bytes = sum(d.size for d in got.values())
        return got

    def _commit(
        self,
        taken: list[Taken],
        layout: Layout,
        got: dict[str, Downloaded],
        parts: dict[str, Path],
        result: ImportResult,
    ) -> None:
        """Docs, texts, manifests, then the lock (see the module docs)."""
        root = self.target.root
        lock = self.target.lock.with_lineage()
        doc_path: dict[str, Path] = dict(layout.known)
        sha_by_id = lock.sha_by_file_id()
        path_by_sha: dict[str, Path] = {}
        moves: list[tuple[Path, Path]] = []
        for file_id, planned in layout.doc_of.items():
            d = got[file_id]
            sha_by_id[file_id] = d.sha256
            path = path_by_sha.get(d.sha256)
            if path is not None:
                # the same content under another file id: named once, this id kept as owned
                doc_path[file_id] = path
                entry = RetiredFile(path=_rel(self.target, path), sha256=d.sha256, size=d.size)
                lock = lock.model_copy(update={"retired": {**lock.retired, file_id: entry}})
                continue
            path_by_sha[d.sha256] = doc_path[file_id] = planned
            if not planned.exists():
                moves.append((parts[file_id], planned))
            elif sha256_file(planned)[0] != d.sha256:
                if not self.options.force:
                    self._clash([planned])
                moves.append((parts[file_id], planned))
            lock = lock.with_upload(
                (_rel(self.target, planned),),
                LockedFile(id=file_id, sha256=d.sha256, size=d.size),
            )
        if self.target.new_config:
            write_atomically(root / CONFIG_NAME, NEW_CONFIG)
            result.files.append(root / CONFIG_NAME)
        for part, path in moves:
            path.parent.mkdir(parents=True, exist_ok=True)
            part.replace(path)  # the scratch directory is inside the project: one rename
            result.files.append(path)
        pending = {p: t for p, t in layout.texts.items() if _read(p) != t.encode()}
        pending.update(self._manifest_texts(taken, layout, doc_path))
        self._write_all(pending)
        result.files += pending
        for t in taken:
            applied = live_config(t.live, sha_by_id).digest()
            lock = lock.with_assistant(t.key, LockedAssistant(id=t.live.id, applied=applied))
        write_lock(self.target.lock_path, lock.model_copy(update={"serial": lock.serial + 1}))

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
            if path.exists() and self.options.into is not None:
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

    def _tag(self, pairs: list[tuple[str, LiveAssistant]], result: ImportResult) -> None:
        env = self.target.environment

        def tag(pair: tuple[str, LiveAssistant]) -> None:
            key, a = pair
            metadata = {k: v for k, v in a.metadata.items() if k != TAG_KEY}
            self.client.modify_assistant(
                a.id, {"metadata": {**metadata, TAG_KEY: tag_value(key, env)}}
            )

        done = self._concurrently("tag", pairs, tag, result, name=lambda p: label(p[1]))
        result.tagged += len(done)

    # ------------------------------------------------------------------ machinery
    def _concurrently(
        self,
        phase: str,
        items: list[Any],
        work: Callable[[Any], T],
        result: ImportResult,
        name: Callable[[Any], str] = str,
    ) -> dict[Any, T]:
        """Run ``work`` on every item with bounded concurrency; failures go to
        ``result.failures``. Ctrl-C lets the calls in flight finish, drops the rest and sets
        ``result.interrupted`` (then re-raises during downloads, where nothing is kept)."""
        out: dict[Any, T] = {}
        if not items:
            return out
        keys = [i if not isinstance(i, tuple) else i[1].id for i in items]
        pool = ThreadPoolExecutor(
            max_workers=min(self.options.concurrency, len(items)),
            thread_name_prefix=f"assistsync-{phase}",
        )
        futures: dict[Future[T], int] = {pool.submit(work, item): n for n, item in enumerate(items)}
        try:
            for future in as_completed(futures):
                n = futures[future]
                try:
                    out[keys[n]] = future.result()
                except ApiError as exc:
                    result.failures.append(f"{name(items[n])}: {exc.message}")
                except OSError as exc:
                    result.failures.append(f"{name(items[n])}: {exc.strerror or exc}")
                self.progress(phase, len(out) + len(result.failures), len(items))
        except KeyboardInterrupt:
            pool.shutdown(wait=True, cancel_futures=True)
            result.interrupted = True
            if phase == "download":
                raise
            return out
        pool.shutdown(wait=True)
        return out


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None
