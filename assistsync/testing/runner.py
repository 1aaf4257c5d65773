"""Runs test cases against live assistants: threads, streamed runs, stubbed function calls.

The runner owns no output: it hands each :class:`TestResult` to a callback as the test
finishes (the CLI prints it), and returns them all. Tests run in parallel on a bounded pool;
the turns of one test run in order in one thread of the API. Time comes from an injected
clock, so ``max_seconds`` can be tested without waiting.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from assistsync.api.runs import Conversations, PendingCall, StreamedRun
from assistsync.errors import AssistsyncError
from assistsync.manifest.files import sha256_file
from assistsync.model.testfile import Stub
from assistsync.testing.assertions import CallRecord, Judge, TurnResult, evaluate, subset
from assistsync.testing.loader import Attachment, Check, TestCase, Where

Clock = Callable[[], float]


@dataclass(frozen=True)
class Failure:
    """Why an attempt failed: where (an assertion, or the turn) and what happened."""

    where: Where
    message: str
    assertion: str = ""


@dataclass(frozen=True)
class Attempt:
    """One run of a test: the turns it got through and its first failure (None: passed)."""

    turns: tuple[TurnResult, ...]
    failures: tuple[Failure, ...] = ()

    @property
    def passed(self) -> bool:
        return not self.failures


@dataclass(frozen=True)
class TestResult:
    """A test's attempts (``repeat`` of them) and whether enough passed."""

    __test__ = False

    case: TestCase
    attempts: tuple[Attempt, ...]
    seconds: float = 0.0

    @property
    def passes(self) -> int:
        return sum(a.passed for a in self.attempts)

    @property
    def passed(self) -> bool:
        return self.passes >= self.case.needed

    @property
    def failed_attempt(self) -> Attempt | None:
        """The first failed attempt, to show."""
        return next((a for a in self.attempts if not a.passed), None)


class MissingStub(AssistsyncError):
    """A function call the turn has no stub output for."""


def stub_output(stubs: Iterable[Stub], call: PendingCall) -> str | None:
    """The output for ``call``: the first stub whose ``when`` is a subset of the arguments,
    else the first stub without ``when`` (the fallback), else None. A non-string output is
    sent as JSON."""
    try:
        arguments: Any = json.loads(call.arguments or "{}")
    except ValueError:
        arguments = None
    stubs = list(stubs)
    chosen = next((s for s in stubs if s.when is not None and subset(s.when, arguments)), None)
    if chosen is None:
        chosen = next((s for s in stubs if s.when is None), None)
    if chosen is None:
        return None
    if isinstance(chosen.output, str):
        return chosen.output
    return json.dumps(chosen.output, ensure_ascii=False)


@dataclass
class Files:
    """File ids for message attachments and names for cited ids.

    ``known`` maps a sha256 to the id of an upload with that content (from the lock): an
    attachment with the same content is sent by that id, whatever its path. Anything else is
    uploaded once, on first use, by ``upload`` (and listed in ``uploaded`` so the caller can
    delete it afterwards).
    """

    known: Mapping[str, str]
    upload: Callable[[Attachment], str]
    names: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    uploaded: dict[str, str] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def id_of(self, attachment: Attachment) -> str:
        try:
            sha, _ = sha256_file(attachment.path)
        except OSError as exc:
            raise AssistsyncError(
                f"cannot read the attachment {attachment.name}: {exc.strerror or exc}"
            ) from exc
        if sha in self.known:
            return self.known[sha]
        with self._lock:
            if attachment.name not in self.uploaded:
                self.uploaded[attachment.name] = self.upload(attachment)
            return self.uploaded[attachment.name]

    def cited(self, file_ids: Iterable[str]) -> tuple[str, ...]:
        out: list[str] = []
        for file_id in file_ids:
            names = self.names.get(file_id) or (
                tuple(n for n, i in self.uploaded.items() if i == file_id) or (file_id,)
            )
            out.extend(n for n in names if n not in out)
        return tuple(out)


@dataclass
class Runner:
    """Runs tests (see the module docstring). ``assistants`` maps manifest keys to ids."""

    conversations: Conversations
    assistants: Mapping[str, str]
    files: Files
    clock: Clock = time.monotonic
    judge: Judge | None = None
    concurrency: int = 4
    stop: threading.Event = field(default_factory=threading.Event)

    def run(
        self, cases: Iterable[TestCase], on_result: Callable[[TestResult], None] = lambda r: None
    ) -> list[TestResult]:
        """Run every case, at most ``concurrency`` at once; ``on_result`` gets each result as
        its test finishes (in the calling thread). Ctrl-C stops starting tests, lets the
        running turns end, and re-raises."""
        results: list[TestResult] = []
        pending = list(cases)
        width = max(1, self.concurrency)
        pool = ThreadPoolExecutor(max_workers=width, thread_name_prefix="assistsync-test")
        running: set[Future[TestResult]] = set()
        try:
            while pending or running:
                while pending and len(running) < width:
                    running.add(pool.submit(self.run_test, pending.pop(0)))
                done, running = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    result = future.result()
                    results.append(result)
                    on_result(result)
        except BaseException:
            # Ctrl-C: start nothing more and do not wait for turns in flight (a model may
            # take minutes); the caller cleans up, and closing its client ends their streams.
            self.stop.set()
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown()
        return results

    def run_test(self, case: TestCase) -> TestResult:
        start = self.clock()
        attempts = []
        for _ in range(case.repeat):
            if self.stop.is_set():
                break
            attempts.append(self.attempt(case))
        return TestResult(case, tuple(attempts), self.clock() - start)

    def attempt(self, case: TestCase) -> Attempt:
        assistant_id = self.assistants[case.assistant]
        turns: list[TurnResult] = []
        thread_id: str | None = None
        try:
            for turn in case.turns:
                start = self.clock()
                # Two paths with one content are one upload, attached once.
                file_ids = list(dict.fromkeys(self.files.id_of(a) for a in turn.files))
                if thread_id is None:
                    streamed = self.conversations.start(assistant_id, turn.user, file_ids)
                else:
                    streamed = self.conversations.reply(
                        thread_id, assistant_id, turn.user, file_ids
                    )
                thread_id = streamed.thread_id
                result, missing = self.finish(streamed, turn.user, turn.stubs, start)
                turns.append(result)
                if missing is not None:
                    return Attempt(tuple(turns), (Failure(turn.where, missing),))
                failures = self.check(turn.checks, result, turn.where)
                if failures:
                    return Attempt(tuple(turns), tuple(failures))
        except AssistsyncError as exc:
            where = case.turns[len(turns)].where if len(turns) < len(case.turns) else case.where
            return Attempt(tuple(turns), (Failure(where, str(exc)),))
        finally:
            if thread_id:
                # A thread left behind holds no assistant or file of the user's.
                with contextlib.suppress(AssistsyncError):
                    self.conversations.delete_thread(thread_id)
        return Attempt(tuple(turns))

    def finish(
        self, streamed: StreamedRun, user: str, stubs: Mapping[str, tuple[Stub, ...]], start: float
    ) -> tuple[TurnResult, str | None]:
        """Answer function calls from the stubs until the run ends; the turn's result and,
        when a call had no stub, why the turn stopped."""
        calls: list[CallRecord] = []
        texts: list[str] = []
        citations: list[str] = []
        tokens = 0
        missing = None
        while True:
            if streamed.text:
                texts.append(streamed.text)
            citations.extend(streamed.citations)
            tokens += streamed.usage or 0
            if streamed.status != "requires_action":
                break
            outputs: list[tuple[str, str]] = []
            for call in streamed.calls:
                output = stub_output(stubs.get(call.name, ()), call)
                calls.append(CallRecord(call.name, call.arguments, output))
                if output is None and missing is None:
                    missing = (
                        f"the assistant called {call.name} with arguments {call.arguments}, "
                        f"and this turn has no stub output for it: add one under "
                        f"'tools: {call.name}:' (a stub without 'when' answers any arguments)"
                    )
                if output is not None:
                    outputs.append((call.id, output))
            if missing is not None:
                self.conversations.cancel(streamed.thread_id, streamed.run_id)
                break
            streamed = self.conversations.submit(streamed.thread_id, streamed.run_id, outputs)
        status = (
            "incomplete"
            if streamed.incomplete and streamed.status == "completed"
            else (streamed.status)
        )
        result = TurnResult(
            user=user,
            text="\n\n".join(texts),
            status=status,
            calls=tuple(calls),
            citations=self.files.cited(citations),
            tokens=tokens if streamed.usage is not None or tokens else None,
            seconds=self.clock() - start,
            error=streamed.error,
        )
        return result, missing

    def check(self, checks: Iterable[Check], result: TurnResult, turn: Where) -> list[Failure]:
        from assistsync.testing.assertions import describe

        failures = []
        for check in checks:
            message = evaluate(check, result, self.judge)
            if message is not None:
                failures.append(Failure(check.where, message, describe(check)))
        if result.status not in ("completed", "incomplete") and not any(
            c.kind == "status" for c in checks
        ):
            why = f": {result.error}" if result.error else ""
            failures.insert(0, Failure(turn, f"the run ended {result.status}{why}"))
        return failures
