"""The one family of errors assistsync reports to people.

Every error a user can cause or meet (bad manifest, missing key, API failure, stale plan) is an
``AssistsyncError`` carrying the exit code the CLI returns; the CLI has one handler for them
(``assistsync.cli.main``). Anything else that escapes is a bug and exits 3.
"""

from __future__ import annotations

from dataclasses import dataclass

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_CHANGES = 2
EXIT_BUG = 3
EXIT_INTERRUPTED = 130


class AssistsyncError(Exception):
    """A failure with a message a person can act on; ``exit_code`` is what the CLI returns."""

    exit_code: int = EXIT_ERROR

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class Diagnostic:
    """One located problem in a user's file: ``FILE:LINE:COL: message`` (1-based line/col)."""

    file: str
    line: int
    col: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}: {self.message}"


class ManifestError(AssistsyncError):
    """The project's configuration or manifests are invalid; carries every problem found.

    ``subject`` names where the problems are, for the closing line ("3 errors in the
    manifests."), e.g. "the project file (assistsync.yaml)".
    """

    def __init__(self, diagnostics: list[Diagnostic], subject: str = "the manifests") -> None:
        self.diagnostics = sorted(diagnostics, key=lambda d: (d.file, d.line, d.col, d.message))
        self.subject = subject
        count = len(self.diagnostics)
        lines = [str(d) for d in self.diagnostics]
        lines.append(f"{count} error{'s' if count != 1 else ''} in {subject}.")
        super().__init__("\n".join(lines))


class ConfigError(AssistsyncError):
    """The environment or command line is incomplete (e.g. no API key)."""


class ApiError(AssistsyncError):
    """The API answered with an error, or could not be reached after retries."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        request_id: str | None = None,
        code: str | None = None,
        param: str | None = None,
        method: str = "",
        path: str = "",
    ) -> None:
        self.detail = message
        """The API's (or the transport's) own message, without method, path or request id:
        what many failures of one cause have in common."""
        self.status = status
        self.request_id = request_id
        self.code = code
        self.param = param
        self.method = method
        self.path = path
        where = f"{method} {path}".strip()
        detail = f"{where}: " if where else ""
        status_text = f"HTTP {status}: " if status is not None else ""
        rid = f" (request id {request_id})" if request_id else ""
        super().__init__(f"{detail}{status_text}{message}{rid}")


class StalePlanError(AssistsyncError):
    """A saved plan no longer matches the manifests or the live state."""


class LockBusyError(AssistsyncError):
    """Another assistsync process holds the lock file."""


class LockWriteError(AssistsyncError):
    """The lock file, or the project's ``.assistsync/`` directory, cannot be written.

    ``reason`` is the operating system's word for it (``No space left on device``).
    """

    def __init__(self, message: str, *, reason: str = "") -> None:
        super().__init__(message)
        self.reason = reason
