"""``apply`` mode: run ``assistsync apply --auto-approve``, report it, commit the lock.

The command runs as a child process of the same interpreter (the CLI users run), its output
streamed to the log. Whatever happened, the lock records every change that succeeded; with
``commit-lock`` that lock is committed and pushed even when some changes failed.
"""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from assistsync.cli.context import Settings
from assistsync.errors import EXIT_ERROR, ManifestError
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

_SUMMARY = re.compile(r"^(Apply complete! .*|Apply failed: .*|No changes\. .*)$")
_RESOURCES = re.compile(r"Resources: [^.]*\.")
_LOG_LIMIT = 200_000


@dataclass(frozen=True)
class ApplyInputs:
    """The action's inputs that ``apply`` uses."""

    working_directory: str = "."
    commit_lock: bool = False


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def commit_message(summary: str, working_directory: str, run_url: str | None) -> str:
    """``assistsync: Apply complete! Resources: ... [skip ci]`` and where it came from."""
    failed = summary.startswith("Apply failed")
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
    from assistsync.cli.stages import load

    wd = inputs.working_directory
    root = runner.workspace / wd
    try:
        lock_path = load(Settings(root=root)).lock_path
    except ManifestError as exc:
        for diagnostic in exc.diagnostics:
            echo(diagnostic_annotation(wd, diagnostic))
        return _finish(runner, wd, EXIT_ERROR, False, "Invalid manifests: nothing was applied.", "")
    before = _read(lock_path)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "assistsync",
            "-C",
            str(root),
            "--no-color",
            "apply",
            "--auto-approve",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        encoding="utf-8",
        errors="replace",
    )
    assert proc.stdout is not None
    log: list[str] = []
    for raw in proc.stdout:
        line = raw.rstrip("\n")
        log.append(line)
        echo(line)
    code = proc.wait()
    summary = next((m.group(1) for m in map(_SUMMARY.match, reversed(log)) if m), "")
    if code != 0:
        for line in log:
            if line.startswith("Error: "):
                echo(command("error", line.removeprefix("Error: "), title="assistsync apply"))
        summary = summary or f"assistsync apply failed (exit code {code}); see the log."
        echo(command("error", summary, title="assistsync apply failed"))
    changed = _read(lock_path) != before
    if inputs.commit_lock and changed:
        try:
            sha = commit_lock(
                lock_path,
                commit_message(summary, wd, runner.run_url),
                runner.ref_name,
                note=lambda text: echo(command("notice", text, title="assistsync")),
            )
        except GitError as exc:
            echo(command("error", exc.message, title="assistsync: the lock was not committed"))
            code = code or EXIT_ERROR
        else:
            if sha:
                echo(f"Committed and pushed {repo_path(wd, lock_path.name)} as {sha[:7]}.")
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
