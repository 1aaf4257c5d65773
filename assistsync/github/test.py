"""``test`` mode: run the conversation tests; comment, summarise, annotate, set outputs.

The same suite runner as ``assistsync test`` (:func:`assistsync.testing.suite.run_suite`). On a
pull request the results go into a sticky comment of their own (marker
``<!-- assistsync test: DIR -->``, beside the plan's), the job summary gets the same markdown,
and each failing assertion becomes an ``::error file=…,line=…,col=…::`` annotation on the test
file. Outputs: ``tests-passed``, ``tests-failed``, ``exitcode`` and ``summary``. With ``planned``
the tests run against temporary copies of the manifests' assistants (what a pull request should
test: nothing is applied yet).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from assistsync.cli.context import Settings
from assistsync.errors import EXIT_ERROR, EXIT_OK, AssistsyncError, ManifestError
from assistsync.github import comment as comments
from assistsync.github.commands import (
    append_summary,
    command,
    diagnostic_annotation,
    repo_path,
    write_outputs,
)
from assistsync.github.event import Runner
from assistsync.github.rest import GitHubClient, GitHubError

Echo = Callable[[str], None]

NO_KEY_NOTICE = (
    "No OpenAI API key, so the tests did not run. Pull requests from forks get no secrets; the "
    "manifests and test files were validated."
)


@dataclass(frozen=True)
class TestInputs:
    """The action's inputs that ``test`` uses."""

    __test__ = False

    working_directory: str = "."
    comment: bool = True
    github_token: str = ""
    planned: bool = False
    environment: str = ""

    @property
    def where(self) -> str:
        """The working directory, with the environment when one is chosen: names the comment,
        so each environment's results keep a comment of their own."""
        if not self.environment:
            return self.working_directory
        return f"{self.working_directory} (environment {self.environment})"


def marker(working_directory: str) -> str:
    """The hidden first line of this working directory's test comment."""
    return comments.marker(working_directory).replace("assistsync plan:", "assistsync test:", 1)


def run_test(inputs: TestInputs, runner: Runner, echo: Echo) -> int:
    """Run the tests, report everywhere the runner shows things, return the step's exit code."""
    from assistsync import pipeline
    from assistsync.cli.context import open_client
    from assistsync.testing import report
    from assistsync.testing.suite import SuiteOptions, run_suite, select

    wd = inputs.working_directory
    env = inputs.environment or None
    settings = Settings(root=runner.workspace / wd, no_color=True, environment=env)
    from assistsync.testing.judging import judge_from_env

    judge_client = None
    try:
        judge, judge_client = judge_from_env()
        project = pipeline.load(settings.root, env)
        cases = select(project, None, judged=judge is not None)
        if not os.environ.get("OPENAI_API_KEY", "").strip():
            echo(command("notice", NO_KEY_NOTICE, title="assistsync test skipped"))
            _outputs(runner, 0, 0, EXIT_OK, "Skipped: no OpenAI API key.")
            return EXIT_OK
        with open_client(settings) as client:
            results = run_suite(
                client,
                project,
                cases,
                SuiteOptions(planned=inputs.planned, judge=judge),
                lambda r: echo(report.result_line(r)),
                lambda note: echo(command("notice", note, title="assistsync test")),
            )
    except ManifestError as exc:
        for diagnostic in exc.diagnostics:
            echo(diagnostic_annotation(wd, diagnostic))
        n = len(exc.diagnostics)
        _outputs(runner, 0, 0, EXIT_ERROR, f"{n} error{'s' if n != 1 else ''} in {exc.subject}.")
        return EXIT_ERROR
    except AssistsyncError as exc:
        echo(command("error", exc.message, title="assistsync test failed"))
        _outputs(runner, 0, 0, EXIT_ERROR, "The tests could not run.")
        return EXIT_ERROR
    finally:
        if judge_client is not None:
            judge_client.close()
    for line in report.text_report(results):
        echo(line)
    for result in results:
        attempt = result.failed_attempt
        for failure in attempt.failures if attempt is not None else ():
            echo(
                command(
                    "error",
                    failure.message,
                    file=repo_path(wd, failure.where.file),
                    line=failure.where.line,
                    col=failure.where.col,
                    title=f"assistsync test {result.case.key} failed",
                )
            )
    title = comments.title(inputs.where, "test" + (" --planned" if inputs.planned else ""))
    body = report.markdown_report(results, title, lambda path: repo_path(wd, path))
    if runner.summary is not None:
        append_summary(runner.summary, body)
    end = comments.footer(runner.head_sha, runner.run_url, plan=False)
    text = comments.shorten(f"{body}\n{end}", comments.COMMENT_LIMIT - 200)
    _comment(inputs, runner, f"{marker(inputs.where)}\n{text}", echo)
    passed = sum(r.passed for r in results)
    failed = len(results) - passed
    code = EXIT_OK if failed == 0 else EXIT_ERROR
    _outputs(runner, passed, failed, code, report.summary(results))
    return code


def _outputs(runner: Runner, passed: int, failed: int, code: int, summary: str) -> None:
    if runner.output is not None:
        write_outputs(
            runner.output,
            {
                "tests-passed": str(passed),
                "tests-failed": str(failed),
                "exitcode": str(code),
                "summary": summary,
            },
        )


def _comment(inputs: TestInputs, runner: Runner, body: str, echo: Echo) -> None:
    """Create or update this working directory's test comment; a failure is a warning."""
    number = runner.pull_request
    if not inputs.comment or number is None:
        return
    if not inputs.github_token or not runner.repository:
        echo(
            command("warning", "No github-token or GITHUB_REPOSITORY: the tests are not commented.")
        )
        return
    try:
        with GitHubClient(runner.api_url, inputs.github_token, runner.repository) as github:
            posted, created = github.upsert_comment(number, marker(inputs.where), body)
    except GitHubError as exc:
        echo(command("warning", exc.message, title="assistsync: could not comment the tests"))
        return
    verb = "Commented on" if created else "Updated the comment on"
    echo(f"{verb} pull request #{number}: {posted.url}")
