"""The judge model for ``rubric`` assertions: one chat-completions call per graded turn.

Any OpenAI-compatible ``POST {base}/chat/completions`` server will do (the same kind of server
the embedded server's chat backends talk to). The judge is asked for a JSON object
``{"grade": 0..1, "reason": "..."}`` with ``temperature: 0``; anything else is an
:class:`~assistsync.errors.ApiError` naming the judge, never a silent pass.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from assistsync.api.secrets import Redactor
from assistsync.errors import ApiError, ConfigError

SYSTEM = (
    "You grade one turn of a conversation between a user and an assistant against a rubric. "
    "Answer with a JSON object only: "
    '{"grade": a number from 0 (fails the rubric) to 1 (meets it fully), "reason": "one sentence"}.'
)


class ChatJudge:
    """Grades turns with ``model`` at the chat-completions server ``base_url``."""

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str = "",
        *,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 120.0,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ConfigError(
                f"the judge's URL must be an http(s) URL such as http://127.0.0.1:8000/v1, "
                f"got {base_url!r}"
            )
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        self._redact = Redactor(api_key)
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(headers=headers, timeout=timeout, transport=transport)

    def close(self) -> None:
        self._http.close()

    def grade(self, rubric: str, transcript: str) -> float:
        """The judge's grade (0-1) of ``transcript`` against ``rubric``."""
        body: dict[str, Any] = {
            "model": self.model,
            "temperature": 0,
            "response_format": {"type": "json_object"},
            "messages": [
                {"role": "system", "content": SYSTEM},
                {"role": "user", "content": f"Rubric:\n{rubric}\n\nConversation:\n{transcript}"},
            ],
        }
        try:
            response = self._http.post(self.url, json=body)
        except httpx.HTTPError as exc:
            raise self._error(f"cannot be reached ({type(exc).__name__})") from exc
        if response.status_code != 200:
            raise self._error(f"answered HTTP {response.status_code}: {response.text[:300]}")
        try:
            content = response.json()["choices"][0]["message"]["content"]
            grade = float(json.loads(content)["grade"])
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise self._error(
                f'answered something other than {{"grade": 0..1}} ({response.text[:300]})'
            ) from exc
        return min(1.0, max(0.0, grade))

    def _error(self, what: str) -> ApiError:
        return ApiError(self._redact(f"the judge model {self.model} at {self.url} {what}"))
