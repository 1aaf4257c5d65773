"""Test results -> text (pytest's shape), JUnit XML and JSON. Pure: values in, strings out."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any
from xml.etree import ElementTree as ET

from assistsync.testing.assertions import TurnResult
from assistsync.testing.runner import Attempt, TestResult


def result_line(result: TestResult) -> str:
    """The line printed as a test finishes: ``PASSED key (assistant)``, with the pass rate of
    a repeated test."""
    word = "PASSED" if result.passed else "FAILED"
    case = result.case
    rate = ""
    if case.repeat > 1:
        rate = f" [{result.passes}/{len(result.attempts)} passed, {case.needed} needed]"
    return f"{word} {case.key} ({case.assistant}){rate}"


def transcript(attempt: Attempt) -> list[str]:
    """The conversation of an attempt: user, tool calls and outputs, assistant, citations."""
    lines: list[str] = []
    for turn in attempt.turns:
        lines += turn_lines(turn)
    return lines


def turn_lines(turn: TurnResult) -> list[str]:
    """One turn as transcript lines (what failures show, and what the judge grades)."""
    lines = [f"  user: {turn.user}"]
    for call in turn.calls:
        output = call.output if call.output is not None else "(no stub output)"
        lines.append(f"  tool call: {call.name}({call.arguments}) -> {output}")
    if turn.text:
        first, *rest = turn.text.splitlines() or [""]
        lines.append(f"  assistant: {first}")
        lines += [f"             {line}" for line in rest]
    if turn.citations:
        lines.append(f"  citations: {', '.join(turn.citations)}")
    status = turn.status + (f" ({turn.error})" if turn.error else "")
    tokens = f", {turn.tokens} tokens" if turn.tokens is not None else ""
    lines.append(f"  run: {status}{tokens}, {turn.seconds:.2f} s")
    return lines


def failure_lines(result: TestResult) -> list[str]:
    """The block shown for a failed test: a header, the transcript, the failing assertions."""
    attempt = result.failed_attempt
    lines = [f"___ {result.case.key} ___"]
    if attempt is None:  # every attempt passed but too few ran (interrupted)
        return [*lines, f"  only {len(result.attempts)} of {result.case.repeat} attempts ran"]
    lines += transcript(attempt)
    for failure in attempt.failures:
        what = f" ({failure.assertion})" if failure.assertion else ""
        lines.append(f"{failure.where}: {failure.message}{what}")
    return lines


def summary(results: Sequence[TestResult]) -> str:
    """The last line: ``N passed, N failed`` (plus the repeats' pass rate when any repeat)."""
    passed = sum(r.passed for r in results)
    failed = len(results) - passed
    line = f"{passed} passed, {failed} failed"
    repeated = [r for r in results if r.case.repeat > 1]
    if repeated:
        runs = sum(len(r.attempts) for r in repeated)
        ok = sum(r.passes for r in repeated)
        line += f" ({ok}/{runs} repeats passed)"
    return line


def text_report(results: Sequence[TestResult]) -> list[str]:
    """Everything after the per-test lines: failures, then the summary."""
    lines: list[str] = []
    failed = [r for r in results if not r.passed]
    if failed:
        lines += ["", "=== FAILURES ==="]
        for result in failed:
            lines += failure_lines(result)
        lines.append("")
    lines.append(summary(results))
    return lines


def _attempt_json(attempt: Attempt) -> dict[str, Any]:
    return {
        "passed": attempt.passed,
        "failures": [
            {
                "file": f.where.file,
                "line": f.where.line,
                "col": f.where.col,
                "message": f.message,
                "assertion": f.assertion,
            }
            for f in attempt.failures
        ],
        "turns": [
            {
                "user": t.user,
                "assistant": t.text,
                "status": t.status,
                "error": t.error,
                "calls": [
                    {"name": c.name, "arguments": c.arguments, "output": c.output} for c in t.calls
                ],
                "citations": list(t.citations),
                "tokens": t.tokens,
                "seconds": round(t.seconds, 3),
            }
            for t in attempt.turns
        ],
    }


def json_report(results: Sequence[TestResult]) -> str:
    """Machine-readable results: per test its key, outcome, attempts and failures."""
    passed = sum(r.passed for r in results)
    body = {
        "format_version": "1",
        "passed": passed,
        "failed": len(results) - passed,
        "tests": [
            {
                "key": r.case.key,
                "assistant": r.case.assistant,
                "file": r.case.where.file,
                "line": r.case.where.line,
                "passed": r.passed,
                "repeat": r.case.repeat,
                "needed": r.case.needed,
                "passes": r.passes,
                "attempts": [_attempt_json(a) for a in r.attempts],
            }
            for r in sorted(results, key=lambda r: r.case.key)
        ],
    }
    return json.dumps(body, indent=2, ensure_ascii=False) + "\n"


def junit_report(results: Sequence[TestResult]) -> str:
    """JUnit XML: one ``testcase`` per test (classname: the test file), failures with the
    transcript."""
    ordered = sorted(results, key=lambda r: r.case.key)
    failed = sum(not r.passed for r in ordered)
    suite = ET.Element(
        "testsuite",
        name="assistsync",
        tests=str(len(ordered)),
        failures=str(failed),
        errors="0",
        time=f"{sum(r.seconds for r in ordered):.3f}",
    )
    for result in ordered:
        case = ET.SubElement(
            suite,
            "testcase",
            classname=result.case.where.file,
            name=result.case.key,
            file=result.case.where.file,
            line=str(result.case.where.line),
            time=f"{result.seconds:.3f}",
        )
        if not result.passed:
            attempt = result.failed_attempt
            first = attempt.failures[0] if attempt and attempt.failures else None
            message = f"{first.where}: {first.message}" if first else "too few attempts passed"
            failure = ET.SubElement(case, "failure", message=message)
            failure.text = "\n".join(failure_lines(result))
    ET.indent(suite)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(suite, "unicode") + "\n"


def markdown_report(results: Sequence[TestResult], title: str, where: Callable[[str], str]) -> str:
    """The results for a pull-request comment or a job summary: the summary line in bold, a
    table of tests, and each failure's transcript in a collapsible block. ``where`` maps a
    project-relative path to what readers should see (the repository-relative path)."""
    lines = [f"### {title}", "", f"**{summary(results)}**", ""]
    lines += ["| test | assistant | result |", "| --- | --- | --- |"]
    for r in sorted(results, key=lambda r: (r.passed, r.case.key)):
        mark = "passed" if r.passed else "**failed**"
        rate = f" ({r.passes}/{len(r.attempts)})" if r.case.repeat > 1 else ""
        lines.append(f"| `{r.case.key}` | `{r.case.assistant}` | {mark}{rate} |")
    for r in sorted(results, key=lambda r: r.case.key):
        if r.passed:
            continue
        attempt = r.failed_attempt
        lines += ["", f"<details><summary>{r.case.key}: why it failed</summary>", "", "```text"]
        if attempt is not None:
            lines += transcript(attempt)
            for f in attempt.failures:
                what = f" ({f.assertion})" if f.assertion else ""
                lines.append(
                    f"{where(f.where.file)}:{f.where.line}:{f.where.col}: {f.message}{what}"
                )
        lines += ["```", "</details>"]
    return "\n".join(lines) + "\n"
