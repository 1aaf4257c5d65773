"""``assistsync server --record DIR`` / ``--replay DIR``: a team running the server with a chat
backend records its answers, then replays them with the backend gone (the real server command
in a process of its own, the stand-in chat backend on loopback, runs driven over HTTP)."""

from __future__ import annotations

import json
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from chat_fixtures import KEY, KEY_ENV
from chat_testkit import StandIn, calls, text
from click.testing import CliRunner
from server_testkit import AUTH, BETA, REPO, free_port, server_process

from assistsync.server.command import server_command
from assistsync.server.recording import REPLAY_MISS, digest
from assistsync.server.runs.model import ModelRequest, RunConfig, Turn

LOOKUP = {
    "type": "function",
    "function": {
        "name": "lookup_order",
        "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}}},
    },
}


@contextmanager
def serving(*options: str) -> Iterator[tuple[str, list[str]]]:
    """``assistsync server OPTIONS`` on a free port: its API root, and its stderr lines (filled
    in once it has stopped)."""
    port = free_port()
    argv, env = server_process(port, *options, env={KEY_ENV: KEY})
    lines: list[str] = []
    with subprocess.Popen(
        argv, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, cwd=REPO, env=env
    ) as proc:
        try:
            assert proc.stderr is not None
            for line in proc.stderr:
                lines.append(line)
                if f"http://127.0.0.1:{port}/v1" in line:
                    break
            else:
                raise AssertionError("".join(lines))
            yield f"http://127.0.0.1:{port}/v1", lines
            proc.send_signal(signal.SIGINT)
            _, rest = proc.communicate(timeout=20)
            lines.extend(rest.splitlines(keepends=True))
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    assert proc.returncode == 0, "".join(lines)


def converse(base_url: str, instructions: str) -> list[Any]:
    """One thread of two runs: a question, then a tool-call round trip. What the client saw:
    per run its status, last_error, the calls it was asked for, and the answer's text."""
    seen: list[Any] = []
    with httpx.Client(base_url=base_url, headers={**AUTH, **BETA}, timeout=30) as c:
        assistant = c.post(
            "/assistants",
            json={"model": "gpt-4-turbo", "instructions": instructions, "tools": [LOOKUP]},
        ).json()["id"]
        thread = c.post("/threads").json()["id"]
        for question in ("How long do I have to return an item?", "Where is order 42?"):
            c.post(f"/threads/{thread}/messages", json={"role": "user", "content": question})
            run = c.post(f"/threads/{thread}/runs", json={"assistant_id": assistant}).json()
            path = f"/threads/{thread}/runs/{run['id']}"
            asked = []
            for _ in range(200):
                run = c.get(path, headers={"X-Stainless-Poll-Helper": "true"}).json()
                if run["status"] == "requires_action":
                    pending = run["required_action"]["submit_tool_outputs"]["tool_calls"]
                    asked += [(t["function"]["name"], t["function"]["arguments"]) for t in pending]
                    outputs = [{"tool_call_id": t["id"], "output": "shipped"} for t in pending]
                    c.post(f"{path}/submit_tool_outputs", json={"tool_outputs": outputs})
                elif run["status"] not in ("queued", "in_progress"):
                    break
            messages = c.get(f"/threads/{thread}/messages", params={"run_id": run["id"]})
            answer = [m["content"][0]["text"]["value"] for m in messages.json()["data"]]
            seen.append((run["status"], run["last_error"], asked, answer))
    return seen


def test_record_with_the_backend_then_replay_without_it(tmp_path: Path) -> None:
    recordings = tmp_path / "recordings"
    backend = StandIn()
    backend.script(
        text("You have ", "30 days."),
        calls(("lookup_order", '{"order_id": "42"}')),
        text("Order 42 has shipped."),
    )
    try:
        with serving(
            "--chat-url", backend.url, "--chat-key-env", KEY_ENV, "--record", str(recordings)
        ) as (url, log):
            recorded = converse(url, "Be brief.")
    finally:
        backend.close()
    assert f"recording every model answer in {recordings}" in "".join(log)
    assert recorded == [
        ("completed", None, [], ["You have 30 days."]),
        ("completed", None, [("lookup_order", '{"order_id": "42"}')], ["Order 42 has shipped."]),
    ]
    assert len(backend.requests) == 3
    files = sorted(recordings.glob("*.json"))
    assert len(files) == 3  # one per model request: two answers and one call
    bodies = [json.loads(f.read_text()) for f in files]
    assert {tuple(sorted(b)) for b in bodies} == {("answer", "events", "request")}
    assert sorted(b["answer"] for b in bodies) == ["", "Order 42 has shipped.", "You have 30 days."]
    assert all(KEY not in f.read_text() for f in files)
    # the call streamed in fragments, but only the whole call is kept (a replay streams it
    # in one delta): recordings do not change with how a backend chunks its calls
    call = next(b for b in bodies if b["answer"] == "")
    assert call["events"][0] == {
        "type": "ToolCallRequest",
        "name": "lookup_order",
        "arguments": '{"order_id": "42"}',
    }
    assert [e["type"] for e in call["events"]] == ["ToolCallRequest", "Usage"]
    # the same file a sandbox recording makes: named by the request's digest
    first = next(b for b in bodies if b["answer"] == "You have 30 days.")
    request = ModelRequest(
        RunConfig(**{**first["request"]["config"], "tools": (LOOKUP,)}),
        (Turn("user", "How long do I have to return an item?"),),
    )
    assert (recordings / f"{digest(request)[:24]}.json").exists()

    # the backend is gone: replay answers from the files alone
    with serving(
        "--chat-url", backend.url, "--chat-key-env", KEY_ENV, "--replay", str(recordings)
    ) as (url, log):
        assert converse(url, "Be brief.") == recorded
        changed = converse(url, "Be very brief.")
    assert f"runs answered from the recordings in {recordings}" in "".join(log)
    assert changed[0][:2] == ("failed", {"code": "invalid_prompt", "message": REPLAY_MISS})
    assert sorted(recordings.glob("*.json")) == files  # replay writes nothing


def test_echo_answers_are_recorded_too(tmp_path: Path) -> None:
    """Without a chat backend the server's ``echo`` answers, and is recorded alike."""
    with serving("--record", str(tmp_path / "r")) as (url, _):
        recorded = converse(url, "Be brief.")
    with serving("--replay", str(tmp_path / "r")) as (url, _):
        assert converse(url, "Be brief.") == recorded
    assert recorded[0] == ("completed", None, [], ["echo: How long do I have to return an item?"])


def test_recording_options_that_cannot_work_are_refused(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    cases = [
        (["--record", "a", "--replay", "b"], "--record and --replay exclude each other"),
        (["--replay", str(tmp_path / "none")], "no such directory of recordings"),
        (["--record", str(tmp_path / "file" / "sub")], "--record"),
    ]
    for argv, message in cases:
        result = CliRunner().invoke(server_command, argv)
        assert result.exit_code == 2, result.output
        assert message in result.output
        assert "Traceback" not in result.output


def test_help_lists_the_recording_options() -> None:
    result = CliRunner().invoke(server_command, ["--help"])
    assert "--record DIR" in result.output
    assert "--replay DIR" in result.output
