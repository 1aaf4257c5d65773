"""The Assistants API v1 client: typed calls, pagination, retries and error mapping.

Everything above this package talks to the API through :class:`ApiClient` and sees failures only
as :class:`~assistsync.errors.ApiError` (or its subclass :class:`ResponseLostError`); no httpx
exception escapes. Importing it loads httpx and the models, nothing heavier.
"""

from __future__ import annotations

from assistsync.api.client import DEFAULT_TIMEOUT, ApiClient, ApiStats
from assistsync.api.errors import ResponseLostError
from assistsync.api.retry import RetryPolicy, parse_retry_after
from assistsync.api.secrets import Redactor, header_problem

__all__ = [
    "DEFAULT_TIMEOUT",
    "ApiClient",
    "ApiStats",
    "Redactor",
    "ResponseLostError",
    "RetryPolicy",
    "header_problem",
    "parse_retry_after",
]
