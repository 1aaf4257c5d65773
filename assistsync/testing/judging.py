"""Which judge grades ``rubric`` assertions: read from the environment, or none.

``ASSISTSYNC_JUDGE_MODEL`` names the judge model and turns judging on. The judge is an
OpenAI-compatible chat-completions server: ``ASSISTSYNC_JUDGE_URL``, else the sandbox's chat
backend ``ASSISTSYNC_CHAT_URL``; its key is read from the variable that
``ASSISTSYNC_JUDGE_KEY_ENV`` (else ``ASSISTSYNC_CHAT_KEY_ENV``) names, so the key itself never
sits in a setting that might be printed.

With ``assistsync test --record`` the judge's grades are stored beside the model's answers
(:class:`RecordedJudge`, under ``tests/recordings/judge/``), and ``--replay`` grades from them,
so a replayed suite with rubrics needs neither a model nor a judge.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from assistsync.api.judge import ChatJudge
from assistsync.errors import ConfigError
from assistsync.lockfile import write_atomically
from assistsync.testing.assertions import Judge, TurnResult, Ungraded
from assistsync.testing.report import turn_lines

JUDGE_REPLAY_MISS = (
    "the judge's grade of this turn was not recorded (the rubric or the turn changed since "
    "--record); re-record with --record"
)

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


def _graded(rubric: str, turn: TurnResult) -> dict[str, Any]:
    """What a grade depends on, as plain JSON: the rubric and the turn as the judge sees it,
    without the turn's wall time (which differs on every run and is no part of the grade)."""
    return {
        "rubric": rubric,
        "turn": {
            "user": turn.user,
            "calls": [
                {"name": c.name, "arguments": c.arguments, "output": c.output} for c in turn.calls
            ],
            "answer": turn.text,
            "citations": list(turn.citations),
            "status": turn.status,
            "error": turn.error,
            "tokens": turn.tokens,
        },
    }


class RecordedJudge:
    """A :data:`~assistsync.testing.assertions.Judge` that records the grades of ``judge``
    (``record``) or grades from what was recorded (``replay``, no judge needed).

    One readable JSON file per graded turn in ``directory``, named by a digest of the rubric
    and the turn; the file holds both and the grade (sorted keys, no ids, no timings, no model
    name, no key), so recording the same grades twice gives the same bytes."""

    def __init__(
        self, directory: Path, mode: Literal["record", "replay"], judge: Judge | None = None
    ) -> None:
        if mode == "record" and judge is None:
            raise ValueError("recording grades needs a judge")
        self.directory = directory
        self.mode = mode
        self.judge = judge
        self.written: set[Path] = set()
        self._lock = threading.Lock()

    def __call__(self, rubric: str, turn: TurnResult) -> float:
        graded = _graded(rubric, turn)
        canonical = json.dumps(graded, sort_keys=True, separators=(",", ":"))
        path = self.directory / f"{hashlib.sha256(canonical.encode()).hexdigest()[:24]}.json"
        if self.mode == "replay":
            try:
                return float(json.loads(path.read_text(encoding="utf-8"))["grade"])
            except (OSError, ValueError, KeyError, TypeError):
                raise Ungraded(JUDGE_REPLAY_MISS) from None
        assert self.judge is not None
        grade = self.judge(rubric, turn)
        text = json.dumps({**graded, "grade": grade}, indent=2, sort_keys=True, ensure_ascii=False)
        self.directory.mkdir(parents=True, exist_ok=True)
        write_atomically(path, text + "\n")
        with self._lock:
            self.written.add(path)
        return grade

    def prune(self) -> list[Path]:
        """After a complete ``record``: delete the grades no turn of this run asked for."""
        stale = [p for p in sorted(self.directory.glob("*.json")) if p not in self.written]
        for path in stale:
            path.unlink(missing_ok=True)
        return stale
