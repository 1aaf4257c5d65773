"""Commit the lock file back to the branch the apply ran on (``commit-lock: true``).

Only the lock is committed, as github-actions[bot], with ``[skip ci]`` in the message. The push
relies on the credentials ``actions/checkout`` leaves in the repository (its default). When the
branch moved meanwhile (another merge landed), the commit is rebased onto it and pushed again.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from assistsync.errors import AssistsyncError

BOT_NAME = "github-actions[bot]"
BOT_EMAIL = "41898282+github-actions[bot]@users.noreply.github.com"
PUSH_ATTEMPTS = 3


class GitError(AssistsyncError):
    """A git command failed while committing or pushing the lock."""


def _git(cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    identity = ("-c", f"user.name={BOT_NAME}", "-c", f"user.email={BOT_EMAIL}")
    proc = subprocess.run(
        ["git", *identity, *args], cwd=cwd, capture_output=True, text=True, check=False
    )
    if check and proc.returncode != 0:
        raise GitError(f"git {' '.join(args)} failed: {(proc.stderr or proc.stdout).strip()}")
    return proc


def commit_lock(lock: Path, message: str, branch: str = "") -> str | None:
    """Commit ``lock`` if it differs from ``HEAD`` and push it; the new commit's sha, or None.

    ``branch`` is the branch to push to (``GITHUB_REF_NAME``); empty means the checked-out one.
    """
    cwd = lock.parent
    if not _git(cwd, "status", "--porcelain", "--", lock.name).stdout.strip():
        return None
    if not branch:
        branch = _git(cwd, "symbolic-ref", "--quiet", "--short", "HEAD", check=False).stdout
        branch = branch.strip()
        if not branch:
            raise GitError("cannot tell which branch to push the lock to (detached HEAD).")
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
