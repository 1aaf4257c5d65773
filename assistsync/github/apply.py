"""``apply`` mode: apply in-process, report from the result, commit the lock.

The apply runs through ``assistsync.pipeline`` as the CLI's does, with the same lines in the
log (the plan, then one line per resource); the outputs, annotations and commit message come
from the returned ``ApplyResult``, never from parsing text. Whatever happened, the lock records
every change that succeeded; with ``commit-lock`` that lock is committed and pushed even when
some changes failed.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from pathlib import Path

from assistsync.cli.context import Settings
from assistsync.errors import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK, AssistsyncError, ManifestError
from assistsync.github import comment as comments
from assistsync.github.commands import (
    append_summary,
    command,
    diagnostic_annotation,
    repo_path,
    write_outputs,
)
from assistsync.github.event import Runner
from assistsync.github.gitlock import GitError, commit_lock
from assistsync.github.plan import Echo

_RESOURCES = re.compile(r"Resources: [^.]*\.")
_LOG_LIMIT = 200_000


@dataclass(frozen=True)
class ApplyInputs:
    """The action's inputs that ``apply`` uses."""

    working_directory: str = "."
    commit_lock: bool = False
    environment: str = ""


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:  # missing or unreadable: either way not a lock to compare
        return None


def commit_message(summary: str, working_directory: str, run_url: str | None) -> str:
    """``assistsync: Apply complete! Resources: ... [skip ci]`` and where it came from."""
    failed = not summary.startswith("Apply complete!")
    resources = _RESOURCES.search(summary)
    if failed and resources:
        subject = f"assistsync: apply partly failed; {resources.group(0)}"
    else:
        subject = f"assistsync: {summary}"
    body = [f"Lock file of {repo_path(working_directory, '.')} after 'assistsync apply'."]
    if failed:
        body.append("Some changes failed; the lock records those that succeeded.")
    if run_url:
        body.append(f"Workflow run: {run_url}")
    return f"{subject} [skip ci]\n\n" + "\n".join(body) + "\n"


def run_apply(inputs: ApplyInputs, runner: Runner, echo: Echo) -> int:
    """Apply, report, commit the lock if asked; return the step's exit code."""
    from assistsync import pipeline
    from assistsync.applier import Event, HeldEvents
    from assistsync.cli.context import open_client
    from assistsync.cli.output import event_line, outcome_lines
    from assistsync.render import render_text

    wd = inputs.working_directory
    root = runner.workspace / wd
    log: list[str] = []

    def say(line: str) -> None:
        log.append(line)
        echo(line)

    def on_event(event: Event) -> None:
        line = event_line(event)
        if line is not None:
            say(line)

    code = EXIT_OK
    lock_file: Path | None = None
    before: bytes | None = None
    try:
        env = inputs.environment or None
        settings = Settings(root=root, environment=env)
        with (
            pipeline.writing(root, env) as lock_file,
            open_client(settings) as client,
            contextlib.ExitStack() as running_apply,
        ):
            before = _read(lock_file)
            plan = pipeline.plan(client, root, environment=env).plan
            held = HeldEvents()
            running = None
            refused: AssistsyncError | None = None
            if plan.has_changes or plan.lock_only:
                # the changes start now, while the plan is rendered into the log; their lines
                # are held until it is there (leaving on an error stops and waits for them)
                try:
                    running = running_apply.enter_context(
                        pipeline.start_apply(client, plan, lock_file, events=held)
                    )
                except AssistsyncError as exc:  # logged after the plan, as it came before
                    refused = exc
            try:
                say(render_text(plan).rstrip("\n"))
            except KeyboardInterrupt:
                if running is None:
                    raise
                running.interrupt()  # as a cancel during the apply: report what finished
            if refused is not None:
                raise refused
            summary = plan.summary()
            if running is not None:
                held.release(on_event)
                result = running.result()
                summary = result.summary()
                for line in outcome_lines(result):  # what the CLI says after the same apply
                    say(line)
                    if line.startswith("Error: "):
                        message = line.removeprefix("Error: ")
                        echo(command("error", message, title="assistsync apply"))
                if result.interrupted:
                    code = EXIT_INTERRUPTED
                elif not result.ok:
                    code = EXIT_ERROR
            say(summary)
    except ManifestError as exc:
        for diagnostic in exc.diagnostics:
            echo(diagnostic_annotation(wd, diagnostic))
        return _finish(runner, wd, EXIT_ERROR, False, "Invalid manifests: nothing was applied.", "")
    except AssistsyncError as exc:
        say(f"Error: {exc.message}")
        code = EXIT_ERROR
        summary = f"assistsync apply failed: {exc.message.splitlines()[0]}"
    if code != EXIT_OK:
        echo(command("error", summary, title="assistsync apply failed"))
    changed = lock_file is not None and _read(lock_file) != before
    if inputs.commit_lock and changed and lock_file is not None:
        try:
            sha = commit_lock(
                lock_file,
                commit_message(summary, wd, runner.run_url),
                runner.ref_name,
                note=lambda text: echo(command("notice", text, title="assistsync")),
            )
        except GitError as exc:
            echo(command("error", exc.message, title="assistsync: the lock was not committed"))
            code = code or EXIT_ERROR
        else:
            if sha:
                echo(f"Committed and pushed {repo_path(wd, lock_file.name)} as {sha[:7]}.")
    return _finish(runner, wd, code, changed, summary, "\n".join(log))


def _finish(runner: Runner, wd: str, code: int, changed: bool, summary: str, log: str) -> int:
    if runner.summary is not None:
        text = "\n".join(
            [
                f"### {comments.title(wd, 'apply')}",
                "",
                f"**{summary}**",
                "",
                "<details><summary>Show output</summary>",
                "",
                "```text",
                log,
                "```",
                "",
                "</details>",
                "",
            ]
        )
        append_summary(runner.summary, comments.shorten(text, _LOG_LIMIT, where="the log"))
    if runner.output is not None:
        write_outputs(
            runner.output,
            {
                "exitcode": str(code),
                "has-changes": "true" if changed else "false",
                "plan-json": "",
                "summary": summary,
            },
        )
    return code
