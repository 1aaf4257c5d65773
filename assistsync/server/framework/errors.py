"""The one error type handlers raise, rendered as the hosted API's error envelope.

Every failure a client can observe leaves the server as
``{"error": {"message", "type", "param", "code"}}`` with an HTTP status; handlers raise
:class:`ApiError` and the HTTP layer renders it, so no handler writes an error body by hand.
"""

from __future__ import annotations

from typing import Any

INVALID_REQUEST = "invalid_request_error"
SERVER_ERROR = "server_error"


class ApiError(Exception):
    """A request the server answers with an error envelope instead of a result.

    ``param`` names the offending request parameter (``"name"``, ``"tools[0].function.name"``,
    ``"limit"``) whenever there is one, so a client can point its user at the exact field.
    ``headers`` are extra response headers (``retry-after`` on 429, ``allow`` on 405).
    """

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = INVALID_REQUEST,  # the envelope's field name
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
        self.headers = headers or {}

    def envelope(self) -> dict[str, Any]:
        """The JSON body the hosted API sent for this error."""
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }


def bad_request(message: str, param: str | None = None, code: str | None = None) -> ApiError:
    """A 400 ``invalid_request_error``: the request can never succeed as sent."""
    return ApiError(400, message, param=param, code=code)


def not_found(message: str, param: str | None = None) -> ApiError:
    """A 404 for an id that does not exist (or no longer exists)."""
    return ApiError(404, message, param=param)
