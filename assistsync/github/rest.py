"""The few GitHub REST calls the action makes: find, create and update one issue comment.

httpx errors are converted here into :class:`GitHubError`; nothing above this module sees them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from assistsync import __version__
from assistsync.api import Redactor, header_problem
from assistsync.errors import AssistsyncError

PER_PAGE = 100


class GitHubError(AssistsyncError):
    """A GitHub API call failed (no permission, no such pull request, network)."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Comment:
    """An issue comment, as far as the action cares."""

    id: int
    body: str
    url: str


class GitHubClient:
    """Issue comments of one repository, at ``api_url`` (``GITHUB_API_URL`` on a runner).

    ``transport`` is the seam for tests; by default the real network is used.
    """

    def __init__(
        self,
        api_url: str,
        token: str,
        repository: str,
        *,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.repository = repository
        problem = header_problem(token)
        if problem:
            raise GitHubError(
                f"the github-token {problem}, so it cannot be sent (its value is not shown)."
            )
        self._redact = Redactor(token)
        self._http = httpx.Client(
            base_url=api_url.rstrip("/"),
            headers={
                "Authorization": f"Bearer {token}",
                "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": "2022-11-28",
                "User-Agent": f"assistsync/{__version__}",
            },
            transport=transport,
            timeout=timeout,
        )

    def __enter__(self) -> GitHubClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def _request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, url, **kwargs)
        except httpx.HTTPError as exc:
            raise GitHubError(self._redact(f"{method} {url}: {exc}")) from exc
        if response.is_error:
            try:
                detail = str(response.json().get("message", ""))
            except (ValueError, AttributeError):
                detail = response.text[:200]
            hint = ""
            if response.status_code in (401, 403, 404):
                hint = (
                    " Give the workflow 'permissions: pull-requests: write' (and pass "
                    "github-token if you replaced the default)."
                )
            raise GitHubError(
                self._redact(
                    f"{method} {response.url.path}: HTTP {response.status_code}: {detail}.{hint}"
                ),
                status=response.status_code,
            )
        return response

    def comments(self, issue: int) -> list[Comment]:
        """Every comment on an issue or pull request, following ``Link: rel="next"``."""
        out: list[Comment] = []
        url: str | None = f"/repos/{self.repository}/issues/{issue}/comments"
        params: dict[str, Any] | None = {"per_page": PER_PAGE}
        while url is not None:
            response = self._request("GET", url, params=params)
            items = _body(response)
            if not isinstance(items, list):
                raise GitHubError(f"GET {response.url.path}: the answer is not a list of comments.")
            out += [_comment(item) for item in items]
            url = response.links.get("next", {}).get("url")
            params = None  # the next link carries its own query
        return out

    def find_comment(self, issue: int, marker: str) -> Comment | None:
        """The first comment whose body starts with ``marker``."""
        return next((c for c in self.comments(issue) if c.body.startswith(marker)), None)

    def upsert_comment(self, issue: int, marker: str, body: str) -> tuple[Comment, bool]:
        """Update the comment found by ``marker`` in place, or create it; ``(comment, created)``."""
        found = self.find_comment(issue, marker)
        if found is not None:
            patched = self._request(
                "PATCH", f"/repos/{self.repository}/issues/comments/{found.id}", json={"body": body}
            )
            return _comment(_body(patched)), False
        created = self._request(
            "POST", f"/repos/{self.repository}/issues/{issue}/comments", json={"body": body}
        )
        return _comment(_body(created)), True


def _body(response: httpx.Response) -> Any:
    """A successful call's JSON body; a body that is not JSON is a ``GitHubError``."""
    try:
        return response.json()
    except ValueError as exc:
        raise GitHubError(
            f"{response.request.method} {response.url.path}: GitHub answered HTTP "
            f"{response.status_code} with a body that is not JSON."
        ) from exc


def _comment(item: Any) -> Comment:
    if not isinstance(item, dict) or not isinstance(item.get("id"), int):
        raise GitHubError("GitHub answered with something that is not a comment.")
    return Comment(
        id=item["id"], body=str(item.get("body") or ""), url=str(item.get("html_url") or "")
    )
