"""Runs and run steps over HTTP: lifecycle, overrides, thread locks, lists, errors, faults.

Every response goes through a checking client: JSON answers are validated against the spec,
streamed answers event by event against the spec's event schemas.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from runs_testkit import FUNCTIONS, RunServer, check_stream
from server_testkit import ServerFactory, create_assistant, upload

from assistsync.server.routes import GROUPS
from assistsync.server.runs.endpoints import RunOptions, configured

Json = dict[str, Any]


@pytest.fixture
def runs(make_server: ServerFactory) -> RunServer:
    return RunServer(make_server)


@pytest.fixture
def c(runs: RunServer) -> Iterator[httpx.Client]:
    with runs.client() as client:
        yield client


def ok(response: httpx.Response) -> Json:
    assert response.status_code == 200, response.text
    body: Json = response.json()
    return body


def new_thread(c: httpx.Client, *texts: str) -> str:
    messages = [{"role": "user", "content": text} for text in texts]
    return str(ok(c.post("/threads", json={"messages": messages}))["id"])


def settle(runs: RunServer, c: httpx.Client, run: Json) -> Json:
    """The run once it rests (a poll-helper GET holds until then)."""
    for _ in range(50):
        got = ok(
            c.get(
                f"/threads/{run['thread_id']}/runs/{run['id']}",
                headers={"X-Stainless-Poll-Helper": "true"},
            )
        )
        if got["status"] in ("requires_action", "completed", "failed", "cancelled", "expired"):
            return got
    raise AssertionError(f"run never came to rest: {got}")


def error_of(response: httpx.Response, status: int = 400) -> Json:
    assert response.status_code == status, response.text
    error: Json = response.json()["error"]
    return error


@pytest.fixture
def assistant(c: httpx.Client) -> Json:
    return create_assistant(c, instructions="Be kind.", tools=[*FUNCTIONS, {"type": "retrieval"}])


def test_a_run_records_what_it_ran_with(c: httpx.Client, runs: RunServer) -> None:
    file = upload(c)
    assistant = create_assistant(
        c, instructions="Be kind.", tools=FUNCTIONS, file_ids=[file["id"]], temperature=0.5
    )
    thread = new_thread(c, "hi")
    run = ok(
        c.post(
            f"/threads/{thread}/runs",
            json={
                "assistant_id": assistant["id"],
                "model": "gpt-4-turbo",
                "additional_instructions": "Answer in French.",
                "instructions": None,
                "metadata": {"ticket": "7"},
                "max_completion_tokens": 300,
                "truncation_strategy": {"type": "last_messages", "last_messages": 3},
                "tool_choice": "none",
            },
        )
    )
    assert run["status"] == "queued"
    assert run["model"] == "gpt-4-turbo"
    # A model override keeps the assistant's tools and files.
    assert run["tools"] == assistant["tools"]
    assert run["file_ids"] == [file["id"]]
    assert run["instructions"] == "Be kind.\n\nAnswer in French."
    assert run["temperature"] == 0.5
    assert run["metadata"] == {"ticket": "7"}
    assert run["max_completion_tokens"] == 300
    assert run["truncation_strategy"] == {"type": "last_messages", "last_messages": 3}
    assert run["tool_choice"] == "none"
    assert run["expires_at"] == run["created_at"] + 600
    assert run["started_at"] is None
    assert run["usage"] is None
    assert run["required_action"] is None
    done = settle(runs, c, run)
    assert done["status"] == "completed"
    assert done["expires_at"] is None
    assert done["usage"]["total_tokens"] > 0

    bare = create_assistant(c)
    thread = new_thread(c, "hi")
    run = ok(
        c.post(
            f"/threads/{thread}/runs",
            json={"assistant_id": bare["id"], "instructions": "Override.", "tools": []},
        )
    )
    assert run["instructions"] == "Override."
    assert run["tools"] == []
    assert run["model"] == bare["model"]
    settle(runs, c, run)
    thread = new_thread(c, "hi")
    run = ok(c.post(f"/threads/{thread}/runs", json={"assistant_id": bare["id"]}))
    assert run["instructions"] == ""  # never null


def test_additional_messages_come_first_and_the_answer_is_listed(
    c: httpx.Client, runs: RunServer, assistant: Json
) -> None:
    thread = new_thread(c, "first")
    run = ok(
        c.post(
            f"/threads/{thread}/runs",
            json={
                "assistant_id": assistant["id"],
                "additional_messages": [{"role": "user", "content": "second"}],
            },
        )
    )
    settle(runs, c, run)
    messages = ok(c.get(f"/threads/{thread}/messages", params={"order": "asc"}))["data"]
    texts = [m["content"][0]["text"]["value"] for m in messages]
    assert texts == ["first", "second", "echo: second"]
    answer = messages[-1]
    assert answer["role"] == "assistant"
    assert answer["run_id"] == run["id"]
    assert answer["assistant_id"] == assistant["id"]
    assert answer["status"] == "completed"
    by_run = ok(c.get(f"/threads/{thread}/messages", params={"run_id": run["id"]}))["data"]
    assert [m["id"] for m in by_run] == [answer["id"]]
    [step] = ok(c.get(f"/threads/{thread}/runs/{run['id']}/steps"))["data"]
    assert step["step_details"] == {
        "type": "message_creation",
        "message_creation": {"message_id": answer["id"]},
    }
    assert ok(c.get(f"/threads/{thread}/runs/{run['id']}/steps/{step['id']}")) == step


def test_tool_calls_then_outputs(c: httpx.Client, runs: RunServer, assistant: Json) -> None:
    thread = new_thread(c, 'call lookup_order {"order_id": "42"}\ncall refund {"amount": 1}')
    run = settle(
        runs, c, ok(c.post(f"/threads/{thread}/runs", json={"assistant_id": assistant["id"]}))
    )
    assert run["status"] == "requires_action"
    calls = run["required_action"]["submit_tool_outputs"]["tool_calls"]
    ids = [call["id"] for call in calls]
    assert len(set(ids)) == 2
    path = f"/threads/{thread}/runs/{run['id']}/submit_tool_outputs"

    missing = error_of(
        c.post(path, json={"tool_outputs": [{"tool_call_id": ids[0], "output": "x"}]})
    )
    assert missing["param"] == "tool_outputs"
    assert ids[1] in missing["message"]
    unknown = error_of(
        c.post(
            path,
            json={
                "tool_outputs": [
                    {"tool_call_id": ids[0], "output": "x"},
                    {"tool_call_id": "call_unknown", "output": "y"},
                ]
            },
        )
    )
    assert unknown["param"] == "tool_outputs[1].tool_call_id"
    no_id = error_of(c.post(path, json={"tool_outputs": [{"output": "y"}]}))
    assert no_id["param"] == "tool_outputs[0].tool_call_id"

    outputs = [
        {"tool_call_id": ids[0], "output": "shipped"},
        {"tool_call_id": ids[1], "output": "ok"},
    ]
    queued = ok(c.post(path, json={"tool_outputs": outputs}))
    assert queued["status"] == "queued"
    done = settle(runs, c, queued)
    assert done["status"] == "completed"
    tool_step, message_step = ok(
        c.get(f"/threads/{thread}/runs/{run['id']}/steps", params={"order": "asc"})
    )["data"]
    assert [call["function"]["output"] for call in tool_step["step_details"]["tool_calls"]] == [
        "shipped",
        "ok",
    ]
    message_id = message_step["step_details"]["message_creation"]["message_id"]
    answer = ok(c.get(f"/threads/{thread}/messages/{message_id}"))
    assert answer["content"][0]["text"]["value"] == (
        "echo: lookup_order returned shipped; refund returned ok"
    )
    late = error_of(c.post(path, json={"tool_outputs": outputs}))
    assert late["message"] == 'Runs in status "completed" do not accept tool outputs.'


def test_the_thread_lock_word_for_word(c: httpx.Client, runs: RunServer, assistant: Json) -> None:
    thread = new_thread(c, "call refund {}")
    run = settle(
        runs, c, ok(c.post(f"/threads/{thread}/runs", json={"assistant_id": assistant["id"]}))
    )
    message = error_of(c.post(f"/threads/{thread}/messages", json={"role": "user", "content": "x"}))
    assert (
        message["message"] == f"Can't add messages to {thread} while a run {run['id']} is active."
    )
    assert message["type"] == "invalid_request_error"
    again = error_of(c.post(f"/threads/{thread}/runs", json={"assistant_id": assistant["id"]}))
    assert again["message"] == f"Thread {thread} already has an active run {run['id']}."
    # Nothing of the refused run was kept: not even its additional messages.
    refused = c.post(
        f"/threads/{thread}/runs",
        json={
            "assistant_id": assistant["id"],
            "additional_messages": [{"role": "user", "content": "sneaked"}],
        },
    )
    assert refused.status_code == 400
    texts = [
        m["content"][0]["text"]["value"] for m in ok(c.get(f"/threads/{thread}/messages"))["data"]
    ]
    assert "sneaked" not in texts
    cancelled = ok(c.post(f"/threads/{thread}/runs/{run['id']}/cancel"))
    assert cancelled["status"] == "cancelled"
    # The cancel freed the thread in the same request.
    ok(c.post(f"/threads/{thread}/messages", json={"role": "user", "content": "now"}))


def test_runs_expire_by_the_clock(c: httpx.Client, runs: RunServer, assistant: Json) -> None:
    thread = new_thread(c, "call refund {}")
    run = settle(
        runs, c, ok(c.post(f"/threads/{thread}/runs", json={"assistant_id": assistant["id"]}))
    )
    runs.advance(599)
    assert ok(c.get(f"/threads/{thread}/runs/{run['id']}"))["status"] == "requires_action"
    runs.advance(1)
    expired = ok(c.get(f"/threads/{thread}/runs/{run['id']}"))
    assert expired["status"] == "expired"
    assert expired["expires_at"] is None
    [step] = ok(c.get(f"/threads/{thread}/runs/{run['id']}/steps"))["data"]
    assert step["status"] == "expired"
    assert step["expired_at"] == run["expires_at"]


def test_cancel_in_progress(c: httpx.Client, runs: RunServer, assistant: Json) -> None:
    thread = new_thread(c, "echo:sleep 60\nslowly")
    run = ok(c.post(f"/threads/{thread}/runs", json={"assistant_id": assistant["id"]}))
    path = f"/threads/{thread}/runs/{run['id']}"
    for _ in range(50):
        if ok(c.get(path))["status"] == "in_progress":
            break
        runs.engine.wait_for(thread, run["id"], lambda r: r["status"] != "queued", 30)
    assert ok(c.post(path + "/cancel"))["status"] == "cancelling"
    done = settle(runs, c, run)
    assert done["status"] == "cancelled"
    assert done["started_at"] is not None
    cancel_again = error_of(c.post(path + "/cancel"))
    assert cancel_again["message"] == "Cannot cancel run with status 'cancelled'."


def test_lists_page_both_ways(c: httpx.Client, runs: RunServer, assistant: Json) -> None:
    thread = new_thread(c, "hi")
    made = []
    for _ in range(3):
        made.append(
            settle(
                runs,
                c,
                ok(c.post(f"/threads/{thread}/runs", json={"assistant_id": assistant["id"]})),
            )
        )
    ids = [r["id"] for r in made]
    page = ok(c.get(f"/threads/{thread}/runs", params={"limit": 2, "order": "asc"}))
    assert [r["id"] for r in page["data"]] == ids[:2]
    assert page["has_more"] is True
    assert page["first_id"] == ids[0]
    rest = ok(c.get(f"/threads/{thread}/runs", params={"order": "asc", "after": page["last_id"]}))
    assert [r["id"] for r in rest["data"]] == ids[2:]
    assert rest["has_more"] is False
    back = ok(c.get(f"/threads/{thread}/runs", params={"order": "asc", "before": ids[2]}))
    assert [r["id"] for r in back["data"]] == ids[:2]
    newest = ok(c.get(f"/threads/{thread}/runs"))
    assert [r["id"] for r in newest["data"]] == ids[::-1]
    assert ok(c.get(f"/threads/{thread}/runs/{ids[0]}")) == made[0]
    bad = error_of(c.get(f"/threads/{thread}/runs", params={"after": "run_nope"}))
    assert bad["param"] == "after"
    empty = ok(c.get(f"/threads/{new_thread(c)}/runs"))
    assert empty == {
        "object": "list",
        "data": [],
        "first_id": None,
        "last_id": None,
        "has_more": False,
    }


def test_modify_metadata(c: httpx.Client, runs: RunServer, assistant: Json) -> None:
    thread = new_thread(c, "hi")
    run = settle(
        runs, c, ok(c.post(f"/threads/{thread}/runs", json={"assistant_id": assistant["id"]}))
    )
    changed = ok(c.post(f"/threads/{thread}/runs/{run['id']}", json={"metadata": {"a": "b"}}))
    assert changed["metadata"] == {"a": "b"}
    assert {**changed, "metadata": {}} == {**run, "metadata": {}}
    # Nothing (or null) given: unchanged.
    for body in ({}, {"metadata": None}):
        assert ok(c.post(f"/threads/{thread}/runs/{run['id']}", json=body)) == changed
    cleared = ok(c.post(f"/threads/{thread}/runs/{run['id']}", json={"metadata": {}}))
    assert cleared["metadata"] == {}


def test_not_found(c: httpx.Client, runs: RunServer, assistant: Json) -> None:
    thread = new_thread(c, "hi")
    run = settle(
        runs, c, ok(c.post(f"/threads/{thread}/runs", json={"assistant_id": assistant["id"]}))
    )
    other = new_thread(c)
    cases = [
        (
            "POST",
            "/threads/thread_nope/runs",
            {"assistant_id": assistant["id"]},
            "No thread found with id 'thread_nope'.",
        ),
        (
            "POST",
            f"/threads/{thread}/runs",
            {"assistant_id": "asst_nope"},
            "No assistant found with id 'asst_nope'.",
        ),
        (
            "POST",
            "/threads/runs",
            {"assistant_id": "asst_nope"},
            "No assistant found with id 'asst_nope'.",
        ),
        ("GET", "/threads/thread_nope/runs", None, "No thread found with id 'thread_nope'."),
        ("GET", f"/threads/{thread}/runs/run_nope", None, "No run found with id 'run_nope'."),
        ("GET", f"/threads/{other}/runs/{run['id']}", None, f"No run found with id '{run['id']}'."),
        (
            "POST",
            f"/threads/{thread}/runs/run_nope",
            {"metadata": {}},
            "No run found with id 'run_nope'.",
        ),
        (
            "POST",
            f"/threads/{thread}/runs/run_nope/cancel",
            None,
            "No run found with id 'run_nope'.",
        ),
        (
            "POST",
            f"/threads/{thread}/runs/run_nope/submit_tool_outputs",
            {"tool_outputs": []},
            "No run found with id 'run_nope'.",
        ),
        ("GET", f"/threads/{thread}/runs/run_nope/steps", None, "No run found with id 'run_nope'."),
        (
            "GET",
            f"/threads/{thread}/runs/{run['id']}/steps/step_nope",
            None,
            "No run step found with id 'step_nope'.",
        ),
    ]
    for method, path, body, message in cases:
        error = error_of(c.request(method, path, json=body), 404)
        assert error["message"] == message, (method, path)


def test_polling_headers(c: httpx.Client, runs: RunServer, assistant: Json) -> None:
    thread = new_thread(c, "hi")
    run = ok(c.post(f"/threads/{thread}/runs", json={"assistant_id": assistant["id"]}))
    # A poller's GET is held until the run comes to rest (at most a second, so a slow run
    # may take a few); how much sooner pollers see the end is measured by the benchmark.
    for _ in range(50):
        held = c.get(
            f"/threads/{thread}/runs/{run['id']}", headers={"X-Stainless-Poll-Helper": "true"}
        )
        assert held.headers["openai-poll-after-ms"] == "10"
        if held.json()["status"] == "completed":
            break
    assert held.json()["status"] == "completed"
    plain_get = c.get(f"/threads/{thread}/runs/{run['id']}")
    assert plain_get.headers["openai-poll-after-ms"] == "10"


def test_streaming_a_run(c: httpx.Client, runs: RunServer, assistant: Json) -> None:
    thread = new_thread(c, "stream this please")
    with c.stream(
        "POST", f"/threads/{thread}/runs", json={"assistant_id": assistant["id"], "stream": True}
    ) as response:
        events = check_stream(response)
    names = [name for name, _ in events]
    assert names[:3] == ["thread.run.created", "thread.run.queued", "thread.run.in_progress"]
    assert names[3:7] == [
        "thread.run.step.created",
        "thread.run.step.in_progress",
        "thread.message.created",
        "thread.message.in_progress",
    ]
    deltas = [
        d["delta"]["content"][0]["text"]["value"] for n, d in events if n == "thread.message.delta"
    ]
    assert len(deltas) >= 3
    assert names[-3:] == [
        "thread.message.completed",
        "thread.run.step.completed",
        "thread.run.completed",
    ]
    final_message = events[-3][1]
    assert (
        "".join(deltas)
        == final_message["content"][0]["text"]["value"]
        == "echo: stream this please"
    )
    run = events[-1][1]
    assert ok(c.get(f"/threads/{thread}/runs/{run['id']}")) == run


def test_streaming_create_thread_and_run_and_tool_outputs(
    c: httpx.Client, runs: RunServer, assistant: Json
) -> None:
    body = {
        "assistant_id": assistant["id"],
        "stream": True,
        "thread": {
            "messages": [{"role": "user", "content": "call refund {}"}],
            "metadata": {"k": "v"},
        },
    }
    with c.stream("POST", "/threads/runs", json=body) as response:
        events = check_stream(response)
    assert events[0][0] == "thread.created"
    thread = events[0][1]
    assert thread["metadata"] == {"k": "v"}
    assert [n for n, _ in events][1:4] == [
        "thread.run.created",
        "thread.run.queued",
        "thread.run.in_progress",
    ]
    # The call streams in fragments ("{" then "}"), the first carrying its id.
    assert [n for n, _ in events][-5:] == [
        "thread.run.step.created",
        "thread.run.step.in_progress",
        "thread.run.step.delta",
        "thread.run.step.delta",
        "thread.run.requires_action",
    ]
    run = events[-1][1]
    assert run["thread_id"] == thread["id"]
    [call] = run["required_action"]["submit_tool_outputs"]["tool_calls"]
    delta_call = events[-3][1]["delta"]["step_details"]["tool_calls"][0]
    assert delta_call["id"] == call["id"]
    path = f"/threads/{thread['id']}/runs/{run['id']}/submit_tool_outputs"
    with c.stream(
        "POST",
        path,
        json={"tool_outputs": [{"tool_call_id": call["id"], "output": "done"}], "stream": True},
    ) as response:
        events = check_stream(response)
    names = [n for n, _ in events]
    assert names[:3] == ["thread.run.step.completed", "thread.run.queued", "thread.run.in_progress"]
    assert names[-1] == "thread.run.completed"
    assert events[0][1]["step_details"]["tool_calls"][0]["function"]["output"] == "done"


def test_a_failing_run_streams_failed_then_error(
    c: httpx.Client, runs: RunServer, assistant: Json
) -> None:
    thread = new_thread(c, "echo:fail rate_limit_exceeded")
    with c.stream(
        "POST", f"/threads/{thread}/runs", json={"assistant_id": assistant["id"], "stream": True}
    ) as response:
        events = check_stream(response)
    assert [n for n, _ in events][-2:] == ["thread.run.failed", "error"]
    run, error = events[-2][1], events[-1][1]
    assert run["last_error"]["code"] == "rate_limit_exceeded"
    assert error["code"] == "rate_limit_exceeded"
    assert error["message"] == run["last_error"]["message"]


def test_a_client_leaving_a_stream_does_not_stop_the_run(
    c: httpx.Client, runs: RunServer, assistant: Json
) -> None:
    thread = new_thread(c, "echo:sleep 5\nstill here")
    body = {"assistant_id": assistant["id"], "stream": True}
    with (
        httpx.Client(base_url=runs.handle.base_url, headers=dict(c.headers)) as raw,
        raw.stream("POST", f"/threads/{thread}/runs", json=body) as response,
    ):
        seen: list[str] = []
        for line in response.iter_lines():  # keep-alive comments may come in between
            if line.startswith("event:"):
                seen.append(line)
            if len(seen) == 3:
                break
    # The connection is closed here, mid-run.
    assert seen[:3] == [
        "event: thread.run.created",
        "event: thread.run.queued",
        "event: thread.run.in_progress",
    ]
    run_id = ok(c.get(f"/threads/{thread}/runs"))["data"][0]["id"]
    runs.advance(5)
    done = settle(runs, c, {"id": run_id, "thread_id": thread})
    assert done["status"] == "completed"
    answer = ok(c.get(f"/threads/{thread}/messages", params={"run_id": run_id}))["data"][0]
    assert answer["content"][0]["text"]["value"] == "echo: echo:sleep 5\nstill here"


def test_faults_apply_to_runs(c: httpx.Client, runs: RunServer, assistant: Json) -> None:
    thread = new_thread(c, "hi")
    runs.handle.faults.fail_next = 1
    assert (
        c.post(f"/threads/{thread}/runs", json={"assistant_id": assistant["id"]}).status_code == 500
    )
    runs.handle.faults.rate_limit_next = 1
    assert c.get(f"/threads/{thread}/runs").status_code == 429
    runs.handle.faults.lose_next = 1
    with pytest.raises(httpx.RemoteProtocolError):
        c.post(f"/threads/{thread}/runs", json={"assistant_id": assistant["id"]})
    # The lost response's run was committed all the same.
    [run] = ok(c.get(f"/threads/{thread}/runs"))["data"]
    assert settle(runs, c, run)["status"] == "completed"
    # A stream whose response is lost: the run goes on without its client.
    runs.handle.faults.lose_next = 1
    body = {"assistant_id": assistant["id"], "stream": True}
    with pytest.raises(httpx.RemoteProtocolError):
        c.post(f"/threads/{thread}/runs", json=body)
    latest = ok(c.get(f"/threads/{thread}/runs"))["data"][0]
    assert latest["id"] != run["id"]
    assert settle(runs, c, latest)["status"] == "completed"


def test_a_restart_keeps_waiting_runs_and_fails_running_ones(
    make_server: ServerFactory, tmp_path: Path
) -> None:
    db = tmp_path / "runs.db"
    first = RunServer(make_server, db=db)
    with first.client() as c:
        assistant = create_assistant(c, tools=FUNCTIONS)
        waiting_thread = new_thread(c, "call refund {}")
        waiting = settle(
            first,
            c,
            ok(c.post(f"/threads/{waiting_thread}/runs", json={"assistant_id": assistant["id"]})),
        )
        busy_thread = new_thread(c, "echo:sleep 100\nhi")
        busy = ok(c.post(f"/threads/{busy_thread}/runs", json={"assistant_id": assistant["id"]}))
        first.engine.wait_for(busy_thread, busy["id"], lambda r: r["status"] == "in_progress", 30)
    first.handle.stop()
    second = RunServer(make_server, db=db)
    with second.client() as c:
        failed = ok(c.get(f"/threads/{busy_thread}/runs/{busy['id']}"))
        assert failed["status"] == "failed"
        assert failed["last_error"] == {
            "code": "server_error",
            "message": "the server restarted during this run",
        }
        kept = ok(c.get(f"/threads/{waiting_thread}/runs/{waiting['id']}"))
        assert kept["status"] == "requires_action"
        assert kept["expires_at"] == waiting["expires_at"]
        # Messages may be added again to the thread whose run failed.
        ok(c.post(f"/threads/{busy_thread}/messages", json={"role": "user", "content": "again"}))


def test_deleting_a_thread_takes_its_runs(make_server: ServerFactory) -> None:
    # One worker: the second run starts only once the worker has let the first one go.
    runs = RunServer(make_server, groups=configured(GROUPS, RunOptions(max_concurrent_runs=1)))
    with runs.client() as c:
        assistant = create_assistant(c)
        thread = new_thread(c, "echo:sleep 5\nhi")
        run = ok(c.post(f"/threads/{thread}/runs", json={"assistant_id": assistant["id"]}))
        runs.engine.wait_for(thread, run["id"], lambda r: r["status"] == "in_progress", 30)
        ok(c.delete(f"/threads/{thread}"))
        missing = error_of(c.get(f"/threads/{thread}/runs/{run['id']}"), 404)
        assert missing["message"] == f"No run found with id '{run['id']}'."
        runs.advance(5)  # the worker wakes to a run that is gone
        other = new_thread(c, "hi")
        made = ok(c.post(f"/threads/{other}/runs", json={"assistant_id": assistant["id"]}))
        assert settle(runs, c, made)["status"] == "completed"
    assert runs.engine.errors == []
