"""``assistsync test``: run the project's conversation tests against assistants.

Chains: load the manifests and the test files -> pick the assistants (the live ones the lock
names, or temporary copies with ``--planned``) -> run the tests -> print, one line per test as
it finishes, then the failures with their transcripts and ``N passed, N failed``. Exit 0 when
every test passes, 1 otherwise.
"""

from __future__ import annotations

import contextlib
import fnmatch
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import click

from assistsync.cli.context import Settings, pass_settings
from assistsync.errors import (
    EXIT_ERROR,
    EXIT_OK,
    AssistsyncError,
    ConfigError,
    Diagnostic,
    ManifestError,
)

if TYPE_CHECKING:
    from assistsync.api import ApiClient
    from assistsync.manifest import Project
    from assistsync.testing.copies import Copies
    from assistsync.testing.loader import TestCase

RECORDINGS = "tests/recordings"


@click.command("test")
@click.option("--planned", is_flag=True, help="Test temporary copies of the manifests' assistants.")
@click.option(
    "--record", is_flag=True, help=f"Store every model answer under {RECORDINGS}/ (sandbox)."
)
@click.option(
    "--replay", is_flag=True, help=f"Answer from {RECORDINGS}/ instead of the model (sandbox)."
)
@click.option("-k", "pattern", metavar="PATTERN", help="Only tests whose key matches (glob).")
@click.option(
    "--concurrency",
    type=click.IntRange(1, 64),
    default=4,
    show_default=True,
    help="Tests run at once (the turns of a test always run in order).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="text for people, json for scripts.",
)
@click.option(
    "--junit",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write JUnit XML (one testcase per test) to FILE.",
)
@pass_settings
def test_command(
    settings: Settings,
    planned: bool,
    record: bool,
    replay: bool,
    pattern: str | None,
    concurrency: int,
    fmt: str,
    junit: Path | None,
) -> int:
    """Run the conversation tests (tests/**/*.yaml) against the assistants.

    Test files are found by the tests: globs of assistsync.yaml.
    Without --planned the tests run against the live assistants the lock names (and say so
    first when the plan is not empty). With --planned they run against temporary copies of the
    manifests' assistants, deleted afterwards (also on failure and Ctrl-C). Exit 0 when every
    test passes, 1 when one fails or on error.
    """
    from assistsync.cli.stages import load
    from assistsync.testing.loader import load_tests

    if record and replay:
        raise click.UsageError("--record and --replay exclude each other")
    if (record or replay) and not settings.sandbox:
        raise ConfigError(
            "--record and --replay need the model to run in the embedded server: add "
            "--sandbox (or run 'assistsync server' with recordings and point OPENAI_BASE_URL "
            "at it)"
        )
    project = load(settings)
    suite = load_tests(project)
    cases = [c for c in suite.tests if _selected(c.key, pattern)]
    if not cases:
        where = f" matching -k {pattern!r}" if pattern else ""
        raise ConfigError(
            f"no tests{where}: write test files under tests/ (or list globs under 'tests:' in "
            "assistsync.yaml); 'assistsync validate' checks them"
        )
    _require_judge(cases)
    mode = "record" if record else "replay" if replay else None
    with _client(settings, project, mode) as client:
        session = _Session(settings, project, client, cases, concurrency, fmt, junit)
        return _run_planned(session) if planned else _run_live(session)


@dataclass(frozen=True)
class _Session:
    """What one ``assistsync test`` works with: settings, project, client, chosen tests and
    output options."""

    settings: Settings
    project: Project
    client: ApiClient
    cases: list[TestCase]
    concurrency: int
    fmt: str
    junit: Path | None


def _selected(key: str, pattern: str | None) -> bool:
    if not pattern:
        return True
    if any(c in pattern for c in "*?["):
        return fnmatch.fnmatchcase(key, pattern)
    return pattern in key


def _require_judge(cases: list[TestCase]) -> None:
    """A ``rubric`` needs a judge model; none can be configured yet, so say where, up front."""
    problems = [
        Diagnostic(
            check.where.file,
            check.where.line,
            check.where.col,
            "rubric needs a judge model, and none is configured; grade with the other "
            "assertions for now",
        )
        for case in cases
        for turn in case.turns
        for check in turn.checks
        if check.kind == "rubric" or (check.inner is not None and check.inner.kind == "rubric")
    ]
    if problems:
        raise ManifestError(problems, "the test files")


@contextmanager
def _client(settings: Settings, project: Project, mode: str | None) -> Iterator[ApiClient]:
    from assistsync.cli.context import open_client

    if mode is None:
        with open_client(settings) as client:
            yield client
        return
    yield from _recording_sandbox(project, mode)


def _recording_sandbox(project: Project, mode: str) -> Iterator[ApiClient]:
    """The sandbox server with its model wrapped by the recorder (``record``/``replay``)."""
    from assistsync.api import ApiClient
    from assistsync.cli.context import SANDBOX_KEY
    from assistsync.lockfile import state_dir
    from assistsync.server import start_server
    from assistsync.server.recording import Recorder
    from assistsync.server.routes import GROUPS
    from assistsync.server.runs.echo import EchoModel
    from assistsync.server.runs.endpoints import RunOptions, configured

    echo = EchoModel()
    recorder = Recorder(
        lambda name: echo, project.root / RECORDINGS, "record" if mode == "record" else "replay"
    )
    groups = configured(GROUPS, RunOptions(models=recorder))
    db = state_dir(project.root) / "sandbox.db"
    with (
        start_server(host="127.0.0.1", port=0, db=db, groups=groups) as server,
        ApiClient(server.base_url, SANDBOX_KEY) as client,
    ):
        yield client


def _run_live(session: _Session) -> int:
    from assistsync import pipeline
    from assistsync.cli.stages import endpoint

    cases, settings, client = session.cases, session.settings, session.client
    planned = pipeline.plan(
        client,
        settings.root,
        endpoint=endpoint(settings, client.base_url),
        project=session.project,
    )
    if planned.plan.has_changes:
        click.echo(
            "Note: the plan is not empty, so you are testing what is live, not what your "
            "manifests say ('assistsync plan' shows the difference; 'assistsync test "
            "--planned' tests the manifests).",
            err=True,
        )
    lock = planned.lock
    missing = sorted({c.assistant for c in cases if c.assistant not in lock.assistants})
    if missing:
        raise ConfigError(
            f"no live assistant for {', '.join(missing)}: the lock does not name "
            f"{'it' if len(missing) == 1 else 'them'}. Run 'assistsync apply' first, or test "
            "the manifests with 'assistsync test --planned'."
        )
    ids = {key: lock.assistants[key].id for key in {c.assistant for c in cases}}
    return _execute(session, ids, None)


def _run_planned(session: _Session) -> int:
    from assistsync.lockfile import read_lock
    from assistsync.testing.copies import Copies

    project = session.project
    lock = read_lock(project.lock_path)
    copies = Copies(session.client, project.desired, lock, project.root)
    try:
        ids = copies.create(sorted({c.assistant for c in session.cases}))
        return _execute(session, ids, copies)
    finally:
        for problem in copies.close():
            click.echo(f"Warning: could not delete the {problem}", err=True)


def _execute(session: _Session, ids: dict[str, str], copies: Copies | None) -> int:
    from assistsync.api.runs import Conversations
    from assistsync.lockfile import read_lock
    from assistsync.testing import report
    from assistsync.testing.loader import Attachment
    from assistsync.testing.runner import Files, Runner, TestResult

    project, client, fmt = session.project, session.client, session.fmt
    lock = read_lock(project.lock_path)
    known = {path: f.id for path, f in lock.files.items()}
    names: dict[str, tuple[str, ...]] = {}
    for path, locked in sorted(lock.files.items()):
        names[locked.id] = (*names.get(locked.id, ()), path)
    if copies is not None:
        by_sha = {f.sha256: path for path, f in project.desired.files.items()}
        for sha, file_id in copies.uploads.items():
            names[file_id] = (*names.get(file_id, ()), by_sha[sha])
        for path, desired in project.desired.files.items():
            for locked in lock.files.values():
                if locked.sha256 == desired.sha256 and path not in names.get(locked.id, ()):
                    names[locked.id] = (*names.get(locked.id, ()), path)

    def upload(attachment: Attachment) -> str:
        return client.upload_file(attachment.path, attachment.path.name).id

    files = Files(known=known, upload=upload, names=names)
    runner = Runner(Conversations(client), ids, files, concurrency=session.concurrency)
    text = fmt == "text"

    def show(result: TestResult) -> None:
        if text:
            click.echo(report.result_line(result))
            sys.stdout.flush()

    try:
        results = runner.run(session.cases, show)
    finally:
        for file_id in files.uploaded.values():
            with contextlib.suppress(AssistsyncError):  # the outcome matters more
                client.delete_file(file_id)
    junit = session.junit
    if junit is not None:
        try:
            junit.write_text(report.junit_report(results), encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot write --junit {junit}: {exc.strerror or exc}") from exc
    if text:
        for line in report.text_report(results):
            click.echo(line)
    else:
        click.echo(report.json_report(results), nl=False)
    return EXIT_OK if all(r.passed for r in results) else EXIT_ERROR
