"""The sticky pull-request comment: marker, plan or error body, and the size limit. Pure.

GitHub rejects comments over 65,536 characters; :data:`COMMENT_LIMIT` stays well under. A plan
that does not fit keeps the head and the tail of its diff block, with a line saying how many
lines were cut; the full plan is in the job summary (1 MiB per step), whose limit
:data:`SUMMARY_LIMIT` is counted in characters that are at most 4 bytes each.
"""

from __future__ import annotations

from collections.abc import Sequence

from assistsync.errors import Diagnostic
from assistsync.github.commands import repo_path
from assistsync.model import Plan
from assistsync.render import render_markdown

COMMENT_LIMIT = 60_000
"""Characters a comment may have (GitHub's limit is 65,536)."""
SUMMARY_LIMIT = 250_000
"""Characters of plan in the job summary (1 MiB / 4 bytes per character, with room to spare)."""
_RESERVE = 600
"""Room kept for the cut notices when a plan is shortened."""


def marker(working_directory: str) -> str:
    """The hidden line that identifies this working directory's comment on a pull request."""
    return f"<!-- assistsync plan: {working_directory.replace('-->', '--&gt;')} -->"


def title(working_directory: str, verb: str = "plan") -> str:
    """``assistsync plan`` for the repository root, ``assistsync plan: `dir``` otherwise."""
    if working_directory in ("", "."):
        return f"assistsync {verb}"
    return f"assistsync {verb}: `{working_directory}`"


def footer(commit: str | None, run_url: str | None, *, plan: bool = True) -> str:
    """Which commit and run the comment shows, so a reader can tell it is current."""
    bits = []
    if commit:
        bits.append(f"commit {commit[:7]}")
    if run_url:
        bits.append(
            f"[workflow run]({run_url})" + (" (full plan in its job summary)" if plan else "")
        )
    return f"<sub>{' · '.join(bits)}</sub>\n" if bits else ""


def plan_comment(
    plan: Plan,
    working_directory: str,
    *,
    commit: str | None = None,
    run_url: str | None = None,
    limit: int = COMMENT_LIMIT,
) -> str:
    """The comment for a plan: marker, summary line, destroys above the fold, diff in details."""
    end = footer(commit, run_url)
    body = render_markdown(plan, title=title(working_directory))
    where = (
        "the job summary of the [workflow run](" + run_url + ")" if run_url else "the job summary"
    )
    body = shorten(body, limit - len(marker(working_directory)) - len(end) - 2, where=where)
    return f"{marker(working_directory)}\n{body}\n{end}"


def error_comment(
    working_directory: str,
    headline: str,
    details: Sequence[str],
    *,
    commit: str | None = None,
    run_url: str | None = None,
    limit: int = COMMENT_LIMIT,
) -> str:
    """The comment when there is no plan: what failed, and each problem in a text block."""
    parts = [f"### {title(working_directory)}", "", f"**:x: {headline}**", ""]
    if details:
        parts += ["```text", *details, "```", ""]
    end = footer(commit, run_url, plan=False)
    body = shorten("\n".join(parts), limit - len(marker(working_directory)) - len(end) - 2)
    return f"{marker(working_directory)}\n{body}\n{end}"


def diagnostic_lines(working_directory: str, diagnostics: Sequence[Diagnostic]) -> list[str]:
    """``FILE:LINE:COL: message`` per manifest problem, with paths relative to the repository."""
    return [
        f"{repo_path(working_directory, d.file)}:{d.line}:{d.col}: {d.message}" for d in diagnostics
    ]


def error_summary(
    working_directory: str, headline: str, details: Sequence[str], commit: str | None
) -> str:
    """The job summary when there is no plan: the error comment without its marker."""
    text = error_comment(working_directory, headline, details, commit=commit, limit=SUMMARY_LIMIT)
    return text.split("\n", 1)[1]


def shorten(markdown: str, limit: int, *, where: str = "the job summary") -> str:
    """``markdown`` cut to at most ``limit`` characters, keeping the head and tail of its code.

    The first fenced block (``diff`` or ``text``) loses its middle lines, replaced by one
    ``@@ ... @@`` line that counts them; a note above the block says so and points to
    ``where`` the full text is. Without a block that can be cut, whole lines are kept from the
    start.
    """
    if len(markdown) <= limit:
        return markdown
    lines = markdown.split("\n")
    opening = next((i for i, line in enumerate(lines) if line.startswith("```")), None)
    closing = None
    if opening is not None:
        closing = next((i for i in range(opening + 1, len(lines)) if lines[i] == "```"), None)
    if opening is None or closing is None:
        return _head(lines, limit, where)
    head, code, tail = lines[: opening + 1], lines[opening + 1 : closing], lines[closing:]
    fixed = sum(len(line) + 1 for line in head + tail) + _RESERVE
    budget = limit - fixed
    if budget <= 0:
        return _head(lines, limit, where)
    kept_head: list[str] = []
    used = 0
    for line in code:
        if used + len(line) + 1 > budget // 2:
            break
        kept_head.append(line)
        used += len(line) + 1
    kept_tail: list[str] = []
    for line in reversed(code[len(kept_head) :]):
        if used + len(line) + 1 > budget:
            break
        kept_tail.append(line)
        used += len(line) + 1
    kept_tail.reverse()
    cut = len(code) - len(kept_head) - len(kept_tail)
    note = (
        f"> [!NOTE]\n> This plan is too long for a comment: {cut:,} of {len(code):,} lines are "
        f"cut from the middle below. The full plan is in {where}.\n"
    )
    at = next((i for i, line in enumerate(head) if line.startswith("<details>")), len(head) - 1)
    head = [*head[:at], *note.split("\n"), *head[at:]]
    cut_line = f"@@ … {cut:,} lines cut here; the full plan is in the job summary … @@"
    return "\n".join([*head, *kept_head, cut_line, *kept_tail, *tail])


def _head(lines: list[str], limit: int, where: str) -> str:
    """Whole lines from the start, then a line saying the rest is cut."""
    notice = f"\n\n*… cut: the text is too long for a comment; all of it is in {where}.*\n"
    kept: list[str] = []
    used = len(notice)
    in_fence = False
    for line in lines:
        if used + len(line) + 1 + 4 > limit:
            break
        kept.append(line)
        used += len(line) + 1
        if line.startswith("```"):
            in_fence = not in_fence
    if in_fence:
        kept.append("```")
    return "\n".join(kept) + notice
