"""Run ``action.yml`` the way the runner does, against a fake GitHub API on loopback.

``ActionRunner`` parses the action with ruamel.yaml and executes each composite step's ``run``
script with ``bash --noprofile --norc -eo pipefail`` (the runner's ``shell: bash``), with the
step's ``env:``, a fresh ``GITHUB_OUTPUT`` / ``GITHUB_STEP_SUMMARY`` per step, and ``${{ }}``
expressions evaluated by a tiny evaluator that knows only the forms the action uses:
``inputs.X``, ``github.action_path``, ``github.token`` and ``steps.ID.outputs.Y``. Anything else
fails the test, which keeps the action simple and this simulation honest.

``FakeGitHub`` is the REST API's issue-comment endpoints (list with ``Link`` pagination, create,
update) on a stdlib ``http.server`` thread; it records every request. ``FaultProxy`` sits in
front of the embedded Assistants server and rejects chosen requests, for partial failures.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parents[2]
ACTION = ROOT / "action.yml"
EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
COMMAND = re.compile(r"^::([a-z-]+)(?: ([^:]*))?::(.*)$")
KEPT_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT")


def load_action(path: Path = ACTION) -> dict[str, Any]:
    data = YAML(typ="safe").load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def _unescape(text: str, prop: bool) -> str:
    if prop:
        text = text.replace("%3A", ":").replace("%2C", ",")
    return text.replace("%0D", "\r").replace("%0A", "\n").replace("%25", "%")


@dataclass(frozen=True)
class Command:
    """A workflow command the step printed, unescaped."""

    name: str
    props: dict[str, str]
    message: str


def parse_commands(log: str) -> list[Command]:
    out = []
    for line in log.splitlines():
        m = COMMAND.match(line)
        if not m:
            continue
        props = {}
        for pair in filter(None, (m.group(2) or "").split(",")):
            key, _, value = pair.partition("=")
            props[key] = _unescape(value, prop=True)
        out.append(Command(m.group(1), props, _unescape(m.group(3), prop=False)))
    return out


def parse_output_file(text: str) -> dict[str, str]:
    """``$GITHUB_OUTPUT`` as the runner reads it: ``k=v`` lines and ``k<<DELIM`` blocks."""
    out: dict[str, str] = {}
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if not line:
            continue
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delimiter = line.split("<<", 1)
            value = []
            while lines[i] != delimiter:
                value.append(lines[i])
                i += 1
            i += 1
            out[name] = "\n".join(value)
        else:
            name, _, value = line.partition("=")
            out[name] = value
    return out


@dataclass
class StepRun:
    id: str
    code: int
    log: str
    outputs: dict[str, str]
    summary: str


@dataclass
class ActionRun:
    """What one run of the action produced."""

    steps: list[StepRun]
    outputs: dict[str, str]

    @property
    def code(self) -> int:
        return next((s.code for s in self.steps if s.code != 0), 0)

    @property
    def log(self) -> str:
        return "".join(s.log for s in self.steps)

    @property
    def summary(self) -> str:
        return "".join(s.summary for s in self.steps)

    @property
    def commands(self) -> list[Command]:
        return parse_commands(self.log)

    def annotations(self, kind: str) -> list[Command]:
        return [c for c in self.commands if c.name == kind]


@dataclass
class ActionRunner:
    """The runner's side of a composite action: environment, expressions, steps in order."""

    workspace: Path
    temp: Path
    env: dict[str, str]
    token: str = "ghs_fake_token"
    action_path: Path = ROOT
    skip: dict[str, dict[str, str]] = field(default_factory=dict)
    """Steps not run, by id, with the outputs they would have set."""

    def _eval(self, text: str, inputs: dict[str, str], steps: dict[str, dict[str, str]]) -> str:
        def value(match: re.Match[str]) -> str:
            expr = match.group(1)
            parts = expr.split(".")
            if len(parts) == 2 and parts[0] == "inputs":
                return inputs[parts[1]]
            if expr == "github.action_path":
                return str(self.action_path)
            if expr == "github.token":
                return self.token
            if len(parts) == 4 and parts[0] == "steps" and parts[2] == "outputs":
                return steps.get(parts[1], {}).get(parts[3], "")
            raise AssertionError(f"the test runner does not evaluate ${{{{ {expr} }}}}")

        return EXPRESSION.sub(value, text)

    def run(
        self, inputs: dict[str, str] | None = None, env: dict[str, str] | None = None
    ) -> ActionRun:
        action = load_action(self.action_path / "action.yml")
        assert action["runs"]["using"] == "composite"
        given = dict(inputs or {})
        unknown = set(given) - set(action["inputs"])
        assert not unknown, f"inputs not declared by the action: {unknown}"
        resolved = {
            name: given[name] if name in given else self._eval(str(spec.get("default", "")), {}, {})
            for name, spec in action["inputs"].items()
        }
        steps: dict[str, dict[str, str]] = {}
        runs: list[StepRun] = []
        for index, step in enumerate(action["runs"]["steps"]):
            step_id = step.get("id", f"step{index}")
            assert "uses" not in step, "keep the action to plain run steps"
            assert "if" not in step, "keep the action to plain run steps"
            if step_id in self.skip:
                steps[step_id] = dict(self.skip[step_id])
                continue
            run = self._step(step, step_id, index, resolved, steps, env or {})
            runs.append(run)
            steps[step_id] = run.outputs
            if run.code != 0:
                break
        outputs = {
            name: self._eval(str(spec["value"]), resolved, steps)
            for name, spec in action.get("outputs", {}).items()
        }
        return ActionRun(runs, outputs)

    def _step(
        self,
        step: dict[str, Any],
        step_id: str,
        index: int,
        inputs: dict[str, str],
        steps: dict[str, dict[str, str]],
        extra_env: dict[str, str],
    ) -> StepRun:
        assert step["shell"] == "bash"
        files = self.temp / f"step-{step_id}-{len(list(self.temp.glob('step-*')))}"
        files.mkdir(parents=True)
        script = files / "script.sh"
        script.write_text(self._eval(step["run"], inputs, steps), encoding="utf-8")
        output, summary = files / "output", files / "summary"
        output.touch()
        summary.touch()
        env = {k: os.environ[k] for k in KEPT_ENV if k in os.environ}
        env.update(self.env)
        env.update(
            {
                "GITHUB_WORKSPACE": str(self.workspace),
                "RUNNER_TEMP": str(self.temp),
                "GITHUB_OUTPUT": str(output),
                "GITHUB_STEP_SUMMARY": str(summary),
                "GITHUB_ACTION_PATH": str(self.action_path),
            }
        )
        env.update(extra_env)
        env.update({k: self._eval(str(v), inputs, steps) for k, v in step.get("env", {}).items()})
        proc = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
            cwd=self.workspace,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        return StepRun(
            step_id,
            proc.returncode,
            proc.stdout + proc.stderr,
            parse_output_file(output.read_text(encoding="utf-8")),
            summary.read_text(encoding="utf-8"),
        )


@dataclass
class FakeGitHub:
    """Issue comments of one repository, paginated ``page_size`` at a time at most."""

    token: str
    repository: str = "octo/assistants"
    page_size: int = 100
    comments: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)
    url: str = ""
    _next_id: int = 1000

    def add(self, issue: int, body: str, user: str = "someone") -> dict[str, Any]:
        self._next_id += 1
        comment = {
            "id": self._next_id,
            "body": body,
            "user": {"login": user},
            "html_url": f"https://github.example/{self.repository}/pull/{issue}#c{self._next_id}",
        }
        self.comments.setdefault(issue, []).append(comment)
        return comment

    def ours(self, issue: int, marker: str) -> list[dict[str, Any]]:
        return [c for c in self.comments.get(issue, []) if c["body"].startswith(marker)]

    def handle(
        self, method: str, target: str, headers: Any, body: bytes
    ) -> tuple[int, dict[str, str], Any]:
        self.requests.append((method, target))
        if headers.get("Authorization") != f"Bearer {self.token}":
            return 401, {}, {"message": "Bad credentials"}
        url = urlsplit(target)
        prefix = f"/repos/{self.repository}/issues/"
        if not url.path.startswith(prefix):
            return 404, {}, {"message": "Not Found"}
        rest = url.path.removeprefix(prefix).split("/")
        if len(rest) == 2 and rest[1] == "comments" and rest[0].isdigit():
            issue = int(rest[0])
            if method == "POST":
                return 201, {}, self.add(issue, json.loads(body)["body"], "github-actions[bot]")
            query = parse_qs(url.query)
            per_page = min(int(query.get("per_page", ["30"])[0]), self.page_size)
            page = int(query.get("page", ["1"])[0])
            items = self.comments.get(issue, [])
            chunk = items[(page - 1) * per_page : page * per_page]
            extra = {}
            if page * per_page < len(items):
                nxt = f"{self.url}{url.path}?per_page={per_page}&page={page + 1}"
                extra["Link"] = f'<{nxt}>; rel="next"'
            return 200, extra, chunk
        if len(rest) == 2 and rest[0] == "comments" and method == "PATCH":
            for comment in (c for cs in self.comments.values() for c in cs):
                if str(comment["id"]) == rest[1]:
                    comment["body"] = json.loads(body)["body"]
                    return 200, {}, comment
        return 404, {}, {"message": "Not Found"}


def _serve(
    handle: Callable[[str, str, Any, bytes], tuple[int, dict[str, str], Any]],
) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _any(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            status, headers, payload = handle(self.command, self.path, self.headers, body)
            data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
            self.send_response(status)
            headers = {"Content-Type": "application/json", **headers}
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PATCH = do_DELETE = _any

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return ThreadingHTTPServer(("127.0.0.1", 0), Handler)


@contextmanager
def serving(
    handle: Callable[[str, str, Any, bytes], tuple[int, dict[str, str], Any]],
) -> Iterator[str]:
    """Serve ``handle`` on a loopback port in a thread; yields ``http://127.0.0.1:PORT``."""
    server = _serve(handle)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


class FaultProxy:
    """Forwards to ``upstream`` (``http://host:port``), answering 400 where ``reject`` says so."""

    def __init__(self, upstream: str, reject: Callable[[str, str, bytes], bool]) -> None:
        self.http = httpx.Client(base_url=upstream)
        self.reject = reject

    def handle(
        self, method: str, target: str, headers: Any, body: bytes
    ) -> tuple[int, dict[str, str], Any]:
        if self.reject(method, target, body):
            error = {"message": "Rejected by the test proxy.", "type": "invalid_request_error"}
            return 400, {}, {"error": {**error, "param": None, "code": None}}
        forwarded = {
            k: v for k, v in headers.items() if k.lower() not in ("host", "content-length")
        }
        response = self.http.request(method, target, headers=forwarded, content=body)
        keep = {
            k: v for k, v in response.headers.items() if k.lower().startswith(("x-", "openai-"))
        }
        return response.status_code, keep, response.content
