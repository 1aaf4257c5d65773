"""``assistsync test``: run the project's conversation tests against assistants.

Chains: load the manifests and the test files -> pick the assistants (the live ones the lock
names, or temporary copies with ``--planned``) -> run the tests -> print, one line per test as
it finishes, then the failures with their transcripts and ``N passed, N failed``. Exit 0 when
every test passes, 1 otherwise.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import click

from assistsync.cli.context import Settings, pass_settings
from assistsync.errors import EXIT_ERROR, EXIT_OK, ConfigError

if TYPE_CHECKING:
    from assistsync.api import ApiClient
    from assistsync.manifest import Project
    from assistsync.server.runs.model import ModelSource
    from assistsync.testing.loader import TestCase
    from assistsync.testing.suite import SuiteOptions

RECORDINGS = "tests/recordings"
JUDGE_RECORDINGS = f"{RECORDINGS}/judge"


@click.command("test")
@click.option("--planned", is_flag=True, help="Test temporary copies of the manifests' assistants.")
@click.option(
    "--record",
    is_flag=True,
    help=f"Store every model answer (and judge's grade) under {RECORDINGS}/ (sandbox).",
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
    from assistsync.testing.suite import SuiteOptions, select

    if record and replay:
        raise click.UsageError("--record and --replay exclude each other")
    if (record or replay) and not settings.sandbox:
        raise ConfigError(
            "--record and --replay need the model to run in the embedded server: add "
            "--sandbox, or run 'assistsync server --record DIR' (or '--replay DIR') and "
            "point OPENAI_BASE_URL at it without these options"
        )
    from assistsync.testing.assertions import Judge
    from assistsync.testing.judging import RecordedJudge, judge_from_env

    project = load(settings)
    mode = "record" if record else "replay" if replay else None
    # A replay grades from the recorded grades, so it needs no judge (and calls none).
    live_judge, judge_client = judge_from_env() if mode != "replay" else (None, None)
    judge: Judge | None = live_judge
    recorded: RecordedJudge | None = None
    if replay or (record and live_judge is not None):
        judge = recorded = RecordedJudge(
            project.root / JUDGE_RECORDINGS, "replay" if replay else "record", live_judge
        )
    try:
        cases = select(project, pattern, judged=judge is not None)
        options = SuiteOptions(
            planned=planned, concurrency=concurrency, pattern=pattern, judge=judge
        )
        with _client(settings, project, mode, prune=pattern is None) as client:
            code = _run(settings, project, client, cases, options, fmt, junit)
        if recorded is not None and mode == "record" and pattern is None:
            _removed(recorded.prune(), "judge's grade")
        return code
    finally:
        if judge_client is not None:
            judge_client.close()


@contextmanager
def _client(
    settings: Settings, project: Project, mode: str | None, *, prune: bool
) -> Iterator[ApiClient]:
    from assistsync.cli.context import open_client

    if mode is None:
        with open_client(settings) as client:
            yield client
        return
    yield from _recording_sandbox(project, mode, prune)


def _recording_sandbox(project: Project, mode: str, prune: bool) -> Iterator[ApiClient]:
    """The sandbox server with its model wrapped by the recorder (``record``/``replay``).

    A ``record`` of every test (no ``-k``) that completes deletes the recordings it did not
    write, so the committed directory holds the answers of today's tests only."""
    from assistsync.api import ApiClient
    from assistsync.cli.context import SANDBOX_KEY, sandbox
    from assistsync.server.recording import Recorder

    recorders: list[Recorder] = []

    def record(source: ModelSource) -> ModelSource:
        recorder = Recorder(
            source, project.root / RECORDINGS, "record" if mode == "record" else "replay"
        )
        recorders.append(recorder)
        return recorder

    with (
        sandbox(project.root, wrap=record, environment=project.environment) as server,
        ApiClient(server.base_url, SANDBOX_KEY) as client,
    ):
        yield client
    if mode == "record" and prune:
        _removed([path for recorder in recorders for path in recorder.prune()], "recording")


def _removed(paths: list[Path], what: str) -> None:
    if paths:
        n = len(paths)
        click.echo(
            f"Removed {n} {what}{'s' if n != 1 else ''} no test asks for any more.", err=True
        )


def _run(
    settings: Settings,
    project: Project,
    client: ApiClient,
    cases: list[TestCase],
    options: SuiteOptions,
    fmt: str,
    junit: Path | None,
) -> int:
    from assistsync.cli.output import use_color
    from assistsync.cli.stages import endpoint
    from assistsync.testing import report
    from assistsync.testing.runner import TestResult
    from assistsync.testing.suite import run_suite

    text = fmt == "text"
    color = use_color(settings, sys.stdout)

    def show(result: TestResult) -> None:
        if text:
            line = report.result_line(result)
            word, rest = line.split(" ", 1)
            styled = click.style(word, fg="green" if result.passed else "red", bold=True)
            click.echo(f"{styled} {rest}" if color else line)
            sys.stdout.flush()

    def note(message: str) -> None:
        click.echo(f"Note: {message}.", err=True)

    options = dataclasses.replace(options, endpoint=endpoint(settings, client.base_url))
    results = run_suite(client, project, cases, options, show, note)
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
