"""``plan`` mode: one fetch, one Plan, rendered as comment, job summary, JSON and outputs.

On a pull request the comment for this working directory is found by its marker and updated in
place (created the first time). Without an API key — a pull request from a fork, which gets no
secrets — the manifests are still validated locally and the step succeeds with a notice.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from assistsync.cli.context import Settings
from assistsync.errors import EXIT_CHANGES, EXIT_ERROR, EXIT_OK, AssistsyncError, ManifestError
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
from assistsync.model import Plan
from assistsync.render import destroyed, render_json, render_markdown, render_text

Echo = Callable[[str], None]

NO_KEY_NOTICE = (
    "No OpenAI API key, so the live assistants were not read and there is no plan. Pull "
    "requests from forks get no secrets; the manifests were validated, and the plan runs on "
    "pull requests from branches of this repository."
)


@dataclass(frozen=True)
class PlanInputs:
    """The action's inputs that ``plan`` uses."""

    working_directory: str = "."
    comment: bool = True
    github_token: str = ""
    environment: str = ""

    @property
    def where(self) -> str:
        """The working directory, with the environment when one is chosen: what names this
        plan's comment (its marker and title) and its JSON file, so that each environment of
        one project keeps a comment of its own."""
        if not self.environment:
            return self.working_directory
        return f"{self.working_directory} (environment {self.environment})"


def plan_json_path(runner: Runner, working_directory: str) -> Path:
    """Where the JSON plan of one working directory goes: under ``$RUNNER_TEMP``."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", repo_path(working_directory, ".")).strip("_") or "root"
    return runner.temp / "assistsync" / slug / "plan.json"


def run_plan(inputs: PlanInputs, runner: Runner, echo: Echo) -> int:
    """Plan, report everywhere the runner shows things, and return the step's exit code."""
    wd = inputs.working_directory
    settings = Settings(
        root=runner.workspace / wd, no_color=True, environment=inputs.environment or None
    )
    if not os.environ.get("OPENAI_API_KEY", "").strip():
        return _without_key(inputs, runner, settings, echo)
    from assistsync import pipeline
    from assistsync.cli.context import open_client

    try:
        with open_client(settings) as client:
            plan = pipeline.plan(client, settings.root, environment=settings.environment).plan
    except ManifestError as exc:
        for diagnostic in exc.diagnostics:
            echo(diagnostic_annotation(wd, diagnostic))
        n = len(exc.diagnostics)
        headline = f"The plan failed: {n} error{'s' if n != 1 else ''} in {exc.subject}."
        details = [
            f"{repo_path(wd, d.file)}:{d.line}:{d.col}: {d.message}" for d in exc.diagnostics
        ]
        return _failed(inputs, runner, echo, headline, details)
    except AssistsyncError as exc:
        echo(command("error", exc.message, title="assistsync plan failed"))
        return _failed(inputs, runner, echo, "The plan failed.", exc.message.splitlines())
    return _report(inputs, runner, plan, echo)


def _report(inputs: PlanInputs, runner: Runner, plan: Plan, echo: Echo) -> int:
    echo(render_text(plan).rstrip("\n"))
    gone = destroyed(plan)
    if gone:
        listed = "\n".join(f"{address} ({reason})" for address, reason in gone)
        echo(command("warning", listed, title=f"assistsync: {len(gone)} to destroy"))
    json_path = plan_json_path(runner, inputs.where)
    try:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(render_json(plan), encoding="utf-8")
    except OSError as exc:
        raise AssistsyncError(
            f"{json_path}: cannot write the JSON plan: {exc.strerror or exc}. Is RUNNER_TEMP "
            "writable?"
        ) from exc
    if runner.summary is not None:
        full = render_markdown(plan, title=comments.title(inputs.where))
        append_summary(runner.summary, comments.shorten(full, comments.SUMMARY_LIMIT))
    body = comments.plan_comment(plan, inputs.where, commit=runner.head_sha, run_url=runner.run_url)
    _comment(inputs, runner, body, echo)
    if runner.output is not None:
        write_outputs(
            runner.output,
            {
                "exitcode": str(EXIT_CHANGES if plan.has_changes else EXIT_OK),
                "has-changes": "true" if plan.has_changes else "false",
                "plan-json": str(json_path),
                "summary": plan.summary(),
            },
        )
    return EXIT_OK


def _failed(
    inputs: PlanInputs, runner: Runner, echo: Echo, headline: str, details: list[str]
) -> int:
    body = comments.error_comment(
        inputs.where, headline, details, commit=runner.head_sha, run_url=runner.run_url
    )
    if runner.summary is not None:
        append_summary(runner.summary, body.split("\n", 1)[1])
    _comment(inputs, runner, body, echo)
    if runner.output is not None:
        write_outputs(
            runner.output,
            {
                "exitcode": str(EXIT_ERROR),
                "has-changes": "false",
                "plan-json": "",
                "summary": headline,
            },
        )
    return EXIT_ERROR


def _without_key(inputs: PlanInputs, runner: Runner, settings: Settings, echo: Echo) -> int:
    from assistsync import pipeline

    try:
        pipeline.load(settings.root, settings.environment)
    except ManifestError as exc:
        for diagnostic in exc.diagnostics:
            echo(diagnostic_annotation(inputs.working_directory, diagnostic))
        n = len(exc.diagnostics)
        summary = f"{n} error{'s' if n != 1 else ''} in {exc.subject}."
        if runner.summary is not None:  # a fork's pull request: no comment, but the summary
            wd = inputs.working_directory
            lines = comments.diagnostic_lines(wd, exc.diagnostics)
            text = comments.error_summary(inputs.where, summary, lines, runner.head_sha)
            append_summary(runner.summary, text)
        if runner.output is not None:
            write_outputs(
                runner.output,
                {
                    "exitcode": str(EXIT_ERROR),
                    "has-changes": "false",
                    "plan-json": "",
                    "summary": summary,
                },
            )
        return EXIT_ERROR
    echo(command("notice", NO_KEY_NOTICE, title="assistsync plan skipped"))
    summary = "Skipped: no OpenAI API key (the manifests are valid)."
    if runner.summary is not None:
        append_summary(
            runner.summary,
            f"### {comments.title(inputs.working_directory)}\n\n**{summary}**\n\n{NO_KEY_NOTICE}\n",
        )
    if runner.output is not None:
        write_outputs(
            runner.output,
            {"exitcode": str(EXIT_OK), "has-changes": "false", "plan-json": "", "summary": summary},
        )
    return EXIT_OK


def _comment(inputs: PlanInputs, runner: Runner, body: str, echo: Echo) -> None:
    """Create or update this working directory's comment; a failure is a warning, not an error.

    The plan itself is in the job summary, so a missing permission should not fail the check.
    """
    number = runner.pull_request
    if not inputs.comment or number is None:
        return
    if not inputs.github_token or not runner.repository:
        echo(command("warning", "No github-token or GITHUB_REPOSITORY: the plan is not commented."))
        return
    try:
        with GitHubClient(runner.api_url, inputs.github_token, runner.repository) as github:
            posted, created = github.upsert_comment(number, comments.marker(inputs.where), body)
    except GitHubError as exc:
        echo(command("warning", exc.message, title="assistsync: could not comment the plan"))
        return
    verb = "Commented on" if created else "Updated the comment on"
    echo(f"{verb} pull request #{number}: {posted.url}")
