"""Turning HTTP failures into :class:`~assistsync.errors.ApiError` with actionable messages.

This is the edge where httpx's exceptions and error responses stop: everything above
``assistsync.api`` sees only ``ApiError`` (and its subclass :class:`ResponseLostError`). Messages
never contain the API key; :class:`~assistsync.api.secrets.Redactor` scrubs every form of it
from any text that came from the server or the transport.
"""

from __future__ import annotations

import errno
import json
from typing import Any

import httpx

from assistsync.api.secrets import Redactor
from assistsync.errors import ApiError


class ResponseLostError(ApiError):
    """A non-idempotent call (create, upload) may have been carried out, but no answer came.

    Raised instead of re-sending after a 5xx, 408/409, a timeout after sending, or a connection
    that broke before the response. The API has no idempotency key, so re-sending could make a
    duplicate: the caller must look for the object it tagged (reconcile) before trying again.
    ``status`` is the HTTP status when a response did arrive (e.g. 500), else None.
    """


def display_url(url: httpx.URL) -> str:
    """``url`` as safe to show: no user info, no query, no fragment."""
    return str(url.copy_with(username=None, password=None, query=None, fragment=None))


def error_fields(response: httpx.Response, body: bytes) -> tuple[str, str | None, str | None]:
    """The API's ``error.message``, ``code`` and ``param`` from an error body.

    Bodies that are not the documented envelope (a proxy's HTML page, plain text, empty) give
    a short excerpt or the status phrase, so the user still sees what came back.
    """
    try:
        data: Any = json.loads(body) if body else None
    except ValueError:
        data = None
    if isinstance(data, dict):
        err = data.get("error")
        if isinstance(err, dict):
            message = err.get("message")
            code = err.get("code")
            param = err.get("param")
            return (
                str(message) if message else response.reason_phrase or "error",
                str(code) if code is not None else None,
                str(param) if param is not None else None,
            )
        if isinstance(err, str):
            return err, None, None
    text = body.decode("utf-8", errors="replace").strip()
    if not text:
        return response.reason_phrase or "no error message in the response", None, None
    excerpt = " ".join(text.split())[:200]
    return (
        f"unexpected {response.headers.get('content-type', 'non-JSON')} body: {excerpt}",
        None,
        None,
    )


def _with_outcome(message: str, retries: int, lost: bool) -> str:
    """``message`` plus how many retries were spent and, when lost, why it was not re-sent."""
    if retries:
        message += f" (after {retries} retr{'y' if retries == 1 else 'ies'})"
    if lost:
        message += (
            ". The request may have been carried out; it was not re-sent because that could "
            "create a duplicate"
        )
    return message


def _status_message(status: int, api_message: str, base: str) -> str:
    """The sentence telling the user what a status means and what to do about it."""
    api_message = api_message.rstrip(". ")
    if status == 401:
        return f"the API rejected the key: {api_message}. Check OPENAI_API_KEY."
    if status == 403:
        return (
            f"the API refused access: {api_message}. Check the key's permissions and "
            "OPENAI_ORG_ID / OPENAI_PROJECT_ID."
        )
    if status == 404:
        return f"not found: {api_message}{_v1_hint(base)}"
    if status == 429:
        return f"rate limited: {api_message}. Lower the concurrency or wait, then run again."
    if status >= 500:
        return f"the server at {base} failed: {api_message}"
    return api_message


def _v1_hint(base: str) -> str:
    """For a base URL that does not end in ``/v1``: the likely fix, as a question.

    Assistants-compatible servers serve the API under ``/v1``; a base URL without it answers
    404 to every call, which otherwise reads like a missing object.
    """
    if base.rstrip("/").endswith("/v1"):
        return ""
    return f". Did you mean OPENAI_BASE_URL={base.rstrip('/')}/v1?"


def response_error(
    response: httpx.Response,
    body: bytes,
    *,
    base: str,
    redact: Redactor,
    retries: int,
    lost: bool = False,
) -> ApiError:
    """The error for a failed response (``body`` already read; ``lost`` picks ResponseLostError)."""
    request = response.request
    api_message, code, param = error_fields(response, body)
    message = _status_message(response.status_code, redact(api_message), base)
    message = _with_outcome(message, retries, lost)
    cls = ResponseLostError if lost else ApiError
    return cls(
        message,
        status=response.status_code,
        request_id=response.headers.get("x-request-id"),
        code=code,
        param=param,
        method=request.method,
        path=request.url.path,
    )


def _connection_refused(exc: BaseException) -> bool:
    """Whether a connect error was a refusal (nothing listening), looking through its causes."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ConnectionRefusedError):
            return True
        if isinstance(seen, OSError) and seen.errno == errno.ECONNREFUSED:
            return True
        if "connection refused" in str(seen).lower():
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def transport_error(
    exc: httpx.HTTPError,
    request: httpx.Request,
    *,
    base: str,
    timeout: httpx.Timeout,
    redact: Redactor,
    retries: int,
    lost: bool = False,
) -> ApiError:
    """The error for a request that got no (complete) response: refused, timed out, cut off."""
    if isinstance(exc, httpx.ConnectTimeout):
        message = (
            f"cannot reach {base}: no connection within {timeout.connect} s. "
            "Is the server running / OPENAI_BASE_URL right?"
        )
    elif isinstance(exc, httpx.ConnectError):
        if _connection_refused(exc):
            reason = "connection refused"
        else:
            reason = redact(str(exc)) or type(exc).__name__
        message = f"cannot reach {base}: {reason}. Is the server running / OPENAI_BASE_URL right?"
    elif isinstance(exc, httpx.PoolTimeout):
        message = f"no free connection to {base} within {timeout.pool} s"
    elif isinstance(exc, httpx.ReadTimeout):
        message = f"no response from {base} within {timeout.read} s"
    elif isinstance(exc, httpx.TimeoutException):
        message = f"timed out talking to {base}: {type(exc).__name__}"
    elif isinstance(exc, (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)):
        detail = redact(str(exc)) or type(exc).__name__
        message = f"the connection to {base} broke before a complete response: {detail}"
    else:
        detail = redact(str(exc)) or type(exc).__name__
        message = f"request to {base} failed: {detail}"
    message = _with_outcome(message, retries, lost)
    cls = ResponseLostError if lost else ApiError
    return cls(message, method=request.method, path=request.url.path)
