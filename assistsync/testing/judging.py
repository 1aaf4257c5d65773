"""Which judge grades ``rubric`` assertions: read from the environment, or none.

``ASSISTSYNC_JUDGE_MODEL`` names the judge model and turns judging on. The judge is an
OpenAI-compatible chat-completions server: ``ASSISTSYNC_JUDGE_URL``, else the sandbox's chat
backend ``ASSISTSYNC_CHAT_URL``; its key is read from the variable that
``ASSISTSYNC_JUDGE_KEY_ENV`` (else ``ASSISTSYNC_CHAT_KEY_ENV``) names, so the key itself never
sits in a setting that might be printed.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from assistsync.api.judge import ChatJudge
from assistsync.errors import ConfigError
from assistsync.testing.assertions import Judge, TurnResult
from assistsync.testing.report import turn_lines

NOT_CONFIGURED = (
    "rubric needs a judge model, and none is configured: set ASSISTSYNC_JUDGE_MODEL and "
    "ASSISTSYNC_JUDGE_URL (an OpenAI-compatible chat-completions endpoint, e.g. "
    "http://127.0.0.1:8000/v1; its key in the variable ASSISTSYNC_JUDGE_KEY_ENV names)"
)


def judge_from_env(env: Mapping[str, str] | None = None) -> tuple[Judge | None, ChatJudge | None]:
    """The judge function and the client to close afterwards, or ``(None, None)``."""
    env = os.environ if env is None else env
    model = env.get("ASSISTSYNC_JUDGE_MODEL", "").strip()
    if not model:
        return None, None
    url = (env.get("ASSISTSYNC_JUDGE_URL") or env.get("ASSISTSYNC_CHAT_URL") or "").strip()
    if not url:
        raise ConfigError(
            "ASSISTSYNC_JUDGE_MODEL is set but no judge URL: set ASSISTSYNC_JUDGE_URL (or "
            "ASSISTSYNC_CHAT_URL) to an OpenAI-compatible chat-completions endpoint"
        )
    key_var = env.get("ASSISTSYNC_JUDGE_KEY_ENV") or env.get("ASSISTSYNC_CHAT_KEY_ENV") or ""
    key = env.get(key_var.strip(), "").strip() if key_var.strip() else ""
    chat = ChatJudge(url, model, key)

    def judge(rubric: str, turn: TurnResult) -> float:
        return chat.grade(rubric, "\n".join(turn_lines(turn)))

    return judge, chat
