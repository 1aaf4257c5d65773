"""One test run, for both front ends (the CLI's ``assistsync test`` and the Action's ``test``).

:func:`run_suite` takes a client and a loaded project and returns the results; it prints
nothing (notes go to ``on_note``, each finished test to ``on_result``). Live: the plan is made
first (a note when it is not empty: what is live differs from the manifests) and the lock names
the assistants. Planned: :class:`~assistsync.testing.copies.Copies` of the manifests'
assistants, deleted afterwards whatever happens. Uploads made for message attachments are
deleted afterwards too.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import assistsync.pipeline as pipeline
from assistsync.api import ApiClient
from assistsync.api.runs import Conversations
from assistsync.errors import AssistsyncError, ConfigError, Diagnostic, ManifestError
from assistsync.lockfile import read_lock
from assistsync.manifest import Project
from assistsync.model import Lock
from assistsync.testing.assertions import Judge
from assistsync.testing.copies import Copies
from assistsync.testing.judging import NOT_CONFIGURED
from assistsync.testing.loader import Attachment, TestCase, load_tests
from assistsync.testing.runner import Clock, Files, Runner, TestResult

PLAN_NOT_EMPTY = (
    "the plan is not empty, so you are testing what is live, not what your manifests say "
    "('assistsync plan' shows the difference; 'assistsync test --planned' tests the manifests)"
)

Note = Callable[[str], None]


@dataclass(frozen=True)
class SuiteOptions:
    """How to run: against copies (``planned``), how many at once, the pattern of ``-k``."""

    planned: bool = False
    concurrency: int = 4
    pattern: str | None = None
    endpoint: str = ""
    clock: Clock = field(default=time.monotonic)
    judge: Judge | None = None
    """Grades ``rubric`` assertions (see :mod:`assistsync.testing.judging`)."""


def select(project: Project, pattern: str | None, judged: bool = False) -> list[TestCase]:
    """The project's tests whose key matches ``pattern`` (a substring, or a glob), checked:
    none found, and a ``rubric`` when no judge is configured (``judged``), are errors."""
    import fnmatch

    suite = load_tests(project)

    def chosen(key: str) -> bool:
        if not pattern:
            return True
        if any(c in pattern for c in "*?["):
            return fnmatch.fnmatchcase(key, pattern)
        return pattern in key

    cases = [c for c in suite.tests if chosen(c.key)]
    if not cases:
        where = f" matching -k {pattern!r}" if pattern else ""
        raise ConfigError(
            f"no tests{where}: write test files under tests/ (or list globs under 'tests:' in "
            "assistsync.yaml); 'assistsync validate' checks them"
        )
    problems = [
        Diagnostic(
            check.where.file,
            check.where.line,
            check.where.col,
            NOT_CONFIGURED,
        )
        for case in cases
        for turn in case.turns
        for check in turn.checks
        if check.kind == "rubric" or (check.inner is not None and check.inner.kind == "rubric")
    ]
    if problems and not judged:
        raise ManifestError(problems, "the test files")
    return cases


def run_suite(
    client: ApiClient,
    project: Project,
    cases: Sequence[TestCase],
    options: SuiteOptions,
    on_result: Callable[[TestResult], None] = lambda r: None,
    on_note: Note = lambda note: None,
) -> list[TestResult]:
    """Run ``cases`` against the live assistants or, with ``options.planned``, copies."""
    if not options.planned:
        planned = pipeline.plan(client, project.root, endpoint=options.endpoint, project=project)
        lock = planned.lock
        missing = sorted({c.assistant for c in cases if c.assistant not in lock.assistants})
        if missing:
            raise ConfigError(
                f"no live assistant for {', '.join(missing)}: the lock does not name "
                f"{'it' if len(missing) == 1 else 'them'}. Run 'assistsync apply' first, or "
                "test the manifests with 'assistsync test --planned'."
            )
        if planned.plan.has_changes:
            on_note(PLAN_NOT_EMPTY)
        ids = {c.assistant: lock.assistants[c.assistant].id for c in cases}
        return _run(client, project, lock, ids, None, cases, options, on_result)
    lock = read_lock(project.lock_path)
    copies = Copies(client, project.desired, lock, project.root)
    try:
        ids = copies.create(sorted({c.assistant for c in cases}))
        return _run(client, project, lock, ids, copies, cases, options, on_result)
    finally:
        for problem in copies.close():
            on_note(f"could not delete the {problem}")


def _names(project: Project, lock: Lock, copies: Copies | None) -> dict[str, tuple[str, ...]]:
    """The project paths of each file id a citation may name."""
    names: dict[str, tuple[str, ...]] = {}

    def add(file_id: str, path: str) -> None:
        if path not in names.get(file_id, ()):
            names[file_id] = (*names.get(file_id, ()), path)

    for path, locked in sorted(lock.files.items()):
        add(locked.id, path)
    if copies is not None:
        for path, desired in sorted(project.desired.files.items()):
            if desired.sha256 in copies.uploads:
                add(copies.uploads[desired.sha256], path)
            for locked in lock.files.values():
                if locked.sha256 == desired.sha256:
                    add(locked.id, path)
    return names


def _run(
    client: ApiClient,
    project: Project,
    lock: Lock,
    ids: dict[str, str],
    copies: Copies | None,
    cases: Sequence[TestCase],
    options: SuiteOptions,
    on_result: Callable[[TestResult], None],
) -> list[TestResult]:
    def upload(attachment: Attachment) -> str:
        return client.upload_file(attachment.path, attachment.path.name).id

    files = Files(
        known={f.sha256: f.id for f in lock.files.values()},
        upload=upload,
        names=_names(project, lock, copies),
    )
    runner = Runner(
        Conversations(client),
        ids,
        files,
        clock=options.clock,
        judge=options.judge,
        concurrency=options.concurrency,
    )
    try:
        return runner.run(cases, on_result)
    finally:
        for file_id in files.uploaded.values():
            with contextlib.suppress(AssistsyncError):  # the outcome matters more
                client.delete_file(file_id)
