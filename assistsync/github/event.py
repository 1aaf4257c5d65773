"""What the runner tells a step: workspace, event, repository, API address, output files."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assistsync.errors import AssistsyncError

DEFAULT_API_URL = "https://api.github.com"
DEFAULT_SERVER_URL = "https://github.com"


@dataclass(frozen=True)
class Runner:
    """The ``GITHUB_*`` / ``RUNNER_*`` environment of one step, read once.

    Every field has a fallback so the entry point also runs on a laptop: outputs and summary are
    then skipped, and temporary files go to the system temp directory.
    """

    workspace: Path
    event_name: str = ""
    event: Mapping[str, Any] = field(default_factory=dict)
    repository: str = ""
    api_url: str = DEFAULT_API_URL
    server_url: str = DEFAULT_SERVER_URL
    run_id: str = ""
    sha: str = ""
    ref_name: str = ""
    output: Path | None = None
    summary: Path | None = None
    temp: Path = field(default_factory=lambda: Path(tempfile.gettempdir()))

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Runner:
        """Read the runner's variables (``os.environ`` by default)."""
        env = os.environ if env is None else env
        event: Mapping[str, Any] = {}
        event_path = env.get("GITHUB_EVENT_PATH", "")
        if event_path and Path(event_path).is_file():
            loaded = _read_event(Path(event_path))
            event = loaded if isinstance(loaded, dict) else {}
        return cls(
            workspace=Path(env.get("GITHUB_WORKSPACE") or os.getcwd()),
            event_name=env.get("GITHUB_EVENT_NAME", ""),
            event=event,
            repository=env.get("GITHUB_REPOSITORY", ""),
            api_url=(env.get("GITHUB_API_URL") or DEFAULT_API_URL).rstrip("/"),
            server_url=(env.get("GITHUB_SERVER_URL") or DEFAULT_SERVER_URL).rstrip("/"),
            run_id=env.get("GITHUB_RUN_ID", ""),
            sha=env.get("GITHUB_SHA", ""),
            ref_name=env.get("GITHUB_REF_NAME", ""),
            output=Path(env["GITHUB_OUTPUT"]) if env.get("GITHUB_OUTPUT") else None,
            summary=Path(env["GITHUB_STEP_SUMMARY"]) if env.get("GITHUB_STEP_SUMMARY") else None,
            temp=Path(env.get("RUNNER_TEMP") or tempfile.gettempdir()),
        )

    @property
    def pull_request(self) -> int | None:
        """The pull request's number, for ``pull_request``-like events; ``None`` otherwise."""
        pr = self.event.get("pull_request")
        number = pr.get("number") if isinstance(pr, dict) else None
        return number if isinstance(number, int) and not isinstance(number, bool) else None

    @property
    def head_sha(self) -> str:
        """The commit the plan is for: the PR's head (``GITHUB_SHA`` is a merge commit there)."""
        pr = self.event.get("pull_request")
        if isinstance(pr, dict):
            head = pr.get("head")
            if isinstance(head, dict) and isinstance(head.get("sha"), str):
                return str(head["sha"])
        return self.sha

    @property
    def run_url(self) -> str | None:
        """The workflow run's page, where the job summary is shown."""
        if not (self.repository and self.run_id):
            return None
        return f"{self.server_url}/{self.repository}/actions/runs/{self.run_id}"


class EventError(AssistsyncError):
    """The runner's event file (``GITHUB_EVENT_PATH``) cannot be read."""


def _read_event(path: Path) -> Any:
    """The event payload; an unreadable or malformed file is an error that names it."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise EventError(
            f"cannot read the event file GITHUB_EVENT_PATH={path}: {reason}. The runner writes "
            "it; outside GitHub Actions, unset GITHUB_EVENT_PATH or point it at a JSON file."
        ) from exc
