"""Commit the lock file back to the branch the apply ran on (``commit-lock: true``).

Only the lock is committed, as github-actions[bot], with ``[skip ci]`` in the message. The push
relies on the credentials ``actions/checkout`` leaves in the repository (its default). When the
branch moved meanwhile (another merge landed), the commit is rebased onto it and pushed again.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

from assistsync.errors import AssistsyncError

BOT_NAME = "github-actions[bot]"
BOT_EMAIL = "41898282+github-actions[bot]@users.noreply.github.com"
PUSH_ATTEMPTS = 3


class GitError(AssistsyncError):
    """A git command failed while committing or pushing the lock."""


def _git(cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    identity = ("-c", f"user.name={BOT_NAME}", "-c", f"user.email={BOT_EMAIL}")
    try:
        proc = subprocess.run(
            ["git", *identity, *args],
            cwd=cwd,
            capture_output=True,
            text=True,
            errors="replace",  # a path in a legacy encoding must not crash the report
            check=False,
        )
    except OSError as exc:  # no git on the runner, or the directory is gone
        raise GitError(f"cannot run git to commit the lock: {exc.strerror or exc}.") from exc
    if check and proc.returncode != 0:
        raise GitError(f"git {' '.join(args)} failed: {(proc.stderr or proc.stdout).strip()}")
    return proc


def ignore_rule(lock: Path) -> str | None:
    """The ``.gitignore`` rule that ignores ``lock`` (``FILE:LINE: PATTERN``), or None."""
    found = _git(lock.parent, "check-ignore", "--verbose", "--", lock.name, check=False)
    if found.returncode != 0:
        return None
    source, _, pattern = found.stdout.partition("\t")[0].rpartition(":")
    return f"{source}: {pattern}" if source else found.stdout.strip()


def commit_lock(
    lock: Path, message: str, branch: str = "", note: Callable[[str], None] | None = None
) -> str | None:
    """Commit ``lock`` if it differs from ``HEAD`` and push it; the new commit's sha, or None.

    ``branch`` is the branch to push to (``GITHUB_REF_NAME``); empty means the checked-out one.
    A lock that git ignores is committed all the same (``git add -f``): the user asked for it,
    and an uncommitted lock makes the next apply re-import everything by tag. ``note`` is told
    so, for the log.
    """
    cwd = lock.parent
    status = _git(cwd, "status", "--porcelain", "--ignored", "--", lock.name).stdout
    if not status.strip():
        return None
    if not branch:
        branch = _git(cwd, "symbolic-ref", "--quiet", "--short", "HEAD", check=False).stdout
        branch = branch.strip()
        if not branch:
            raise GitError("cannot tell which branch to push the lock to (detached HEAD).")
    if status.startswith("!!"):
        rule = ignore_rule(lock) or "a .gitignore rule"
        if note is not None:
            note(
                f"git ignores {lock.name} ({rule}); committing it anyway (git add -f) because "
                "commit-lock is true. Remove that rule so the lock is tracked like any file."
            )
        _git(cwd, "add", "--force", "--", lock.name)
    else:
        _git(cwd, "add", "--", lock.name)
    _git(cwd, "commit", "--quiet", "--message", message, "--", lock.name)
    for attempt in range(PUSH_ATTEMPTS):
        pushed = _git(cwd, "push", "--quiet", "origin", f"HEAD:refs/heads/{branch}", check=False)
        if pushed.returncode == 0:
            break
        if attempt == PUSH_ATTEMPTS - 1:
            raise GitError(f"git push failed: {pushed.stderr.strip()}")
        _git(cwd, "pull", "--quiet", "--rebase", "origin", branch)
    return _git(cwd, "rev-parse", "HEAD").stdout.strip()
