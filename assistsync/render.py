"""Plan -> text, markdown and JSON. Pure: rendering never decides anything apply does.

The text form follows Terraform's plan output (see the README): a drift section, one header
per resource, field diffs with ``+``/``~``/``-``, instructions as a line diff, function schemas
as field-level diffs, and the summary line word for word. Lines are produced as ``Line`` values so
that the terminal can colour them and markdown can move the symbol to column 0 for a ```diff
block.
"""

from __future__ import annotations

import difflib
import functools
import json
from collections.abc import Iterable, Iterator
from typing import Any, NamedTuple

from assistsync.model import AssistantChange, AssistantConfig, Drift, FileChange, Plan
from assistsync.model.config import (
    DIGEST_PREFIX,
    UNKNOWN_FILE_PREFIX,
    canonical_json,
    normalize_tool,
)

SCALAR_FIELDS = ("name", "model", "description")


class Line(NamedTuple):
    """One output line: ``sym`` is ``+``, ``-``, ``~``, ``#`` or a space; ``depth`` indents."""

    sym: str
    depth: int
    text: str


def _q(value: Any) -> str:
    if value is None:
        return "null"
    return json.dumps(value, ensure_ascii=False)


def _file_name(plan: Plan, ref: str) -> str:
    if ref.startswith(UNKNOWN_FILE_PREFIX):
        return f"{ref[len(UNKNOWN_FILE_PREFIX) :]} (attached outside assistsync)"
    return plan.file_names.get(ref, ref[:12])


def _is_block(text: str | None) -> bool:
    return text is not None and ("\n" in text or len(text) > 80)


def _heredoc(sym: str, depth: int, label: str, text: str) -> list[Line]:
    lines = [Line(sym, depth, f"{label} = <<-EOT")]
    lines += [Line(sym, depth + 2, t) for t in text.splitlines()]
    lines.append(Line(" ", depth, "  EOT"))
    return lines


def _tool_lines(sym: str, depth: int, tool: dict[str, Any]) -> list[Line]:
    return [Line(sym, depth, t) for t in _indented(canonical_json(normalize_tool(tool)))]


@functools.lru_cache(maxsize=4096)
def _indented(compact: str) -> tuple[str, ...]:
    """A tool's JSON as printed (indented, keys sorted), from its compact JSON: projects share
    a few tools among many assistants, and indented output takes the json module's pure-Python
    encoder, which made tools a large part of printing a plan."""
    text = json.dumps(json.loads(compact), indent=2, sort_keys=True, ensure_ascii=False)
    return tuple(text.splitlines())


def _config_lines(plan: Plan, sym: str, depth: int, config: AssistantConfig) -> list[Line]:
    """Every set field of a configuration, for creates and destroys."""
    out: list[Line] = []
    for field in SCALAR_FIELDS:
        value = getattr(config, field)
        if value is not None:
            out.append(Line(sym, depth, f"{field:<12} = {_q(value)}"))
    if config.instructions is not None:
        if _is_block(config.instructions):
            out += _heredoc(sym, depth, f"{'instructions':<12}", config.instructions)
        else:
            out.append(Line(sym, depth, f"{'instructions':<12} = {_q(config.instructions)}"))
    if config.tools:
        out.append(Line(sym, depth, f"{'tools':<12} = ["))
        for tool in config.tools:
            out += _tool_lines(sym, depth + 2, tool)
        out.append(Line(" ", depth, "  ]"))
    if config.files:
        out.append(Line(sym, depth, f"{'files':<12} = ["))
        names = sorted(_file_name(plan, ref) for ref in config.files)
        out += [Line(sym, depth + 2, _q(name)) for name in names]
        out.append(Line(" ", depth, "  ]"))
    if config.metadata:
        out.append(Line(sym, depth, f"{'metadata':<12} = {{"))
        width = _key_width(config.metadata)
        out += [Line(sym, depth + 2, f"{k:<{width}} = {_q(v)}") for k, v in config.metadata.items()]
        out.append(Line(" ", depth, "  }"))
    return out


def _key_width(keys: Iterable[str]) -> int:
    """The width that aligns the ``=`` of a block's keys, as Terraform aligns attributes."""
    return max((len(k) for k in keys), default=0)


def _deepdiff_path(path: str) -> str:
    """``root[1]['function']['name']`` -> ``tools[1].function.name``."""
    out = path.replace("root", "tools", 1)
    return out.replace("['", ".").replace("']", "")


def _tools_diff(
    depth: int, before: tuple[dict[str, Any], ...], after: tuple[dict[str, Any], ...]
) -> list[Line]:
    """Field-level differences between two tool lists (function schemas included)."""
    from deepdiff import DeepDiff  # lazy: only plans with tool changes need it

    old = [normalize_tool(t) for t in before]
    new = [normalize_tool(t) for t in after]
    diff = DeepDiff(old, new, verbose_level=2)
    entries: list[tuple[str, Line]] = []
    for kind in ("values_changed", "type_changes"):
        for path, change in diff.get(kind, {}).items():
            old_new = f"{_q(change['old_value'])} -> {_q(change['new_value'])}"
            entries.append((path, Line("~", depth + 2, f"{_deepdiff_path(path)}: {old_new}")))
    for kind, sym in (
        ("dictionary_item_added", "+"),
        ("iterable_item_added", "+"),
        ("dictionary_item_removed", "-"),
        ("iterable_item_removed", "-"),
    ):
        for path, value in diff.get(kind, {}).items():
            entries.append((path, Line(sym, depth + 2, f"{_deepdiff_path(path)}: {_q(value)}")))
    out = [Line("~", depth, f"{'tools':<12} = [")]
    out += [line for _, line in sorted(entries, key=lambda e: e[0])]
    out.append(Line(" ", depth, "  ]"))
    return out


def _text_diff(depth: int, label: str, before: str | None, after: str | None) -> list[Line]:
    """Instructions (or any long text) as a line diff with three lines of context."""
    old = (before or "").splitlines()
    new = (after or "").splitlines()
    out = [Line("~", depth, f"{label:<12} = <<-EOT")]
    for hunk_line in list(difflib.unified_diff(old, new, lineterm="", n=3))[2:]:
        if hunk_line.startswith("@@"):
            out.append(Line(" ", depth + 2, f"# {hunk_line}"))
        elif hunk_line.startswith("+"):
            out.append(Line("+", depth + 2, hunk_line[1:]))
        elif hunk_line.startswith("-"):
            out.append(Line("-", depth + 2, hunk_line[1:]))
        else:
            out.append(Line(" ", depth + 2, hunk_line[1:]))
    out.append(Line(" ", depth, "  EOT"))
    return out


def _field_diff(
    plan: Plan, depth: int, field: str, before: AssistantConfig, after: AssistantConfig
) -> list[Line]:
    """The lines for one changed field of an update (or of drift)."""
    old, new = getattr(before, field), getattr(after, field)
    if field == "instructions" and old is not None and old.startswith(DIGEST_PREFIX):
        # the lock keeps only a digest of what was applied: say that it changed, not how
        return [Line("~", depth, f"{'instructions':<12} = (edited outside assistsync)")]
    if field == "instructions" and (_is_block(old) or _is_block(new)):
        return _text_diff(depth, field, old, new)
    if field in (*SCALAR_FIELDS, "instructions"):
        return [Line("~", depth, f"{field:<12} = {_q(old)} -> {_q(new)}")]
    if field == "tools":
        return _tools_diff(depth, old, new)
    if field == "files":
        out = [Line("~", depth, f"{'files':<12} = [")]
        refs = sorted(set(old) | set(new), key=lambda r: (_file_name(plan, r), r in new))
        names = [_file_name(plan, r) for r in refs]
        for ref, name in zip(refs, names, strict=True):
            sym = " " if ref in old and ref in new else ("+" if ref in new else "-")
            shown = _q(name)
            if names.count(name) > 1:  # same path, new content: tell the versions apart
                shown += f" (sha256 {ref[:12]}…)"
            out.append(Line(sym, depth + 2, shown))
        out.append(Line(" ", depth, "  ]"))
        return out
    # metadata
    out = [Line("~", depth, f"{'metadata':<12} = {{")]
    keys = [k for k in sorted(set(old) | set(new)) if k not in old or old[k] != new.get(k)]
    width = _key_width(keys)
    for k in keys:
        if k not in old:
            out.append(Line("+", depth + 2, f"{k:<{width}} = {_q(new[k])}"))
        elif k not in new:
            out.append(Line("-", depth + 2, f"{k:<{width}} = {_q(old[k])}"))
        else:
            out.append(Line("~", depth + 2, f"{k:<{width}} = {_q(old[k])} -> {_q(new[k])}"))
    if old == new:  # only the ownership tag differs
        out.append(Line("+", depth + 2, "assistsync_key (ownership tag restored)"))
    out.append(Line(" ", depth, "  }"))
    return out


_HEADERS = {
    "create": "will be created",
    "update": "will be updated in-place",
    "delete": "will be destroyed",
}
_SYMBOLS = {"create": "+", "update": "~", "delete": "-", "no-op": " "}


def _assistant_lines(plan: Plan, change: AssistantChange) -> list[Line]:
    if not _assistant_shown(change):
        return []
    if change.import_id and change.action == "no-op":
        header = f"will be imported (id {change.import_id})"
    elif change.import_id:
        header = f"will be imported (id {change.import_id}) and updated in-place"
    else:
        header = _HEADERS[change.action]
    if change.reason and not change.import_id:
        header += f", because {change.reason}"
    sym = _SYMBOLS[change.action]
    out = [
        Line("#", 1, f"assistant.{change.key} {header}"),
        Line(sym, 1, f'assistant "{change.key}" {{'),
    ]
    if change.id:
        out.append(Line(" ", 3, f"{'id':<12} = {_q(change.id)}"))
    if change.action == "create" and change.after is not None:
        out += _config_lines(plan, "+", 3, change.after)
    elif change.action == "delete" and change.before is not None:
        out += _config_lines(plan, "-", 3, change.before)
    elif change.before is not None and change.after is not None:
        for field in change.changed:
            out += _field_diff(plan, 3, field, change.before, change.after)
    out.append(Line(" ", 1, "}"))
    out.append(Line(" ", 0, ""))
    return out


def _file_lines(change: FileChange) -> list[Line]:
    if change.adopt_id:
        header = f"will be adopted (id {change.adopt_id}), because {change.reason}"
        sym = " "
    elif change.action == "create":
        header, sym = "will be uploaded", "+"
    else:
        header, sym = f"will be destroyed, because {change.reason}", "-"
    out = [Line("#", 1, f"file.{change.path} {header}"), Line(sym, 1, f'file "{change.path}" {{')]
    if change.id:
        out.append(Line(" ", 3, f"{'id':<6} = {_q(change.id)}"))
    out.append(Line(sym, 3, f"{'sha256':<6} = {_q(change.sha256)}"))
    out.append(Line(sym, 3, f"{'size':<6} = {change.size}"))
    out.append(Line(" ", 1, "}"))
    out.append(Line(" ", 0, ""))
    return out


def _drift_lines(plan: Plan, drift: Drift) -> list[Line]:
    if drift.live is None:
        return [
            Line("#", 1, f"assistant.{drift.key} has been deleted"),
            Line("-", 1, f'assistant "{drift.key}" {{'),
            Line(" ", 3, f"{'id':<12} = {_q(drift.id)}"),
            Line(" ", 1, "}"),
            Line(" ", 0, ""),
        ]
    out = [
        Line("#", 1, f"assistant.{drift.key} has changed"),
        Line("~", 1, f'assistant "{drift.key}" {{'),
        Line(" ", 3, f"{'id':<12} = {_q(drift.id)}"),
    ]
    for field in drift.changed:
        out += _field_diff(plan, 3, field, drift.applied, drift.live)
    out += [Line(" ", 1, "}"), Line(" ", 0, "")]
    return out


def _assistant_shown(change: AssistantChange) -> bool:
    """Whether a change has a block of its own in the plan (imports do, other no-ops not)."""
    return change.action != "no-op" or bool(change.import_id)


def iter_plan_lines(plan: Plan) -> Iterator[Line]:
    """The whole plan as lines, lazily: the environment (when the project has them), drift
    section, actions, summary line last.

    One resource is rendered at a time, when the consumer asks for its lines, so a printer
    that writes as it goes holds one resource's lines at once, not the whole plan's (an
    assistant's block is its instructions in full: ~13 KB per assistant at scale).
    """
    if plan.environment:
        yield Line(" ", 0, f"Environment: {plan.environment}")
        yield Line(" ", 0, "")
    if plan.drift:
        yield Line(" ", 0, "Objects have changed outside of assistsync:")
        yield Line(" ", 0, "")
        for drift in plan.drift:
            yield from _drift_lines(plan, drift)
        yield Line(
            " ", 0, "Unless the manifests are changed to match, apply will undo these changes."
        )
        yield Line(" ", 0, "")
    # the heading only above a non-empty body, decided without rendering the body
    if plan.files or any(_assistant_shown(a) for a in plan.assistants):
        yield Line(" ", 0, "assistsync will perform the following actions:")
        yield Line(" ", 0, "")
        for f in plan.files:
            if f.action == "create":
                yield from _file_lines(f)
        for a in plan.assistants:
            yield from _assistant_lines(plan, a)
        for f in plan.files:
            if f.action == "delete":
                yield from _file_lines(f)
    yield Line(" ", 0, plan.summary())


def plan_lines(plan: Plan) -> list[Line]:
    """The whole plan as a list of lines (``iter_plan_lines``, all at once)."""
    return list(iter_plan_lines(plan))


def _prefix(sym: str, depth: int) -> str:
    if sym == "#":
        return "  " * depth + "# "
    return "  " * depth + sym + " " if depth else ""


_PREFIXES: dict[tuple[str, int], str] = {}


def line_text(line: Line) -> str:
    """A line as the terminal shows it: symbol after the indentation, as Terraform does."""
    sym, depth, text = line
    if not text and sym == " ":
        return ""
    # a plan has ~150 lines per assistant and a handful of (symbol, depth) pairs
    prefix = _PREFIXES.get((sym, depth))
    if prefix is None:
        prefix = _PREFIXES[sym, depth] = _prefix(sym, depth)
    return prefix + text


def render_text(plan: Plan) -> str:
    """The plan as plain text (no colour)."""
    return "".join(line_text(line) + "\n" for line in iter_plan_lines(plan))


def _diff_line(line: Line) -> str:
    """A line for a ```diff block: the symbol in column 0 so GitHub colours it."""
    sym = {"~": "!", "#": "#", "+": "+", "-": "-"}.get(line.sym, " ")
    if not line.text:
        return ""
    return f"{sym} {'  ' * line.depth}{line.text}"


def destroyed(plan: Plan) -> list[tuple[str, str]]:
    """Addresses destroyed by the plan, with the reason, for callouts above the fold."""
    out = [(a.address, a.reason or "") for a in plan.assistants if a.action == "delete"]
    out += [(f.address, f.reason or "") for f in plan.files if f.action == "delete"]
    return out


def render_markdown(plan: Plan, *, title: str = "assistsync plan") -> str:
    """The plan for a pull-request comment or job summary.

    The summary line is always visible, destroys are called out above the fold, and the full
    plan sits in a collapsible ``<details>`` block as a ```diff code block.
    """
    parts = [f"### {title}", ""]
    if plan.environment:
        parts += [f"Environment: `{plan.environment}`", ""]
    parts += [f"**{plan.summary()}**", ""]
    gone = destroyed(plan)
    if gone:
        noun = "resource" if len(gone) == 1 else "resources"
        parts.append(f"> [!CAUTION]\n> **{len(gone)} {noun} will be destroyed:**")
        parts += [f"> - `{addr}` ({reason})" for addr, reason in gone]
        parts.append("")
    if plan.drift:
        parts.append(
            f"> [!WARNING]\n> **{len(plan.drift)} assistant(s) changed outside assistsync**; "
            "apply will undo those changes."
        )
        parts.append("")
    if plan.has_changes or plan.drift:
        body = "\n".join(_diff_line(line) for line in plan_lines(plan)[:-1]).rstrip("\n")
        parts += [
            "<details><summary>Show plan</summary>",
            "",
            "```diff",
            body,
            "```",
            "",
            "</details>",
            "",
        ]
    return "\n".join(parts)


def _resource(
    address: str, kind: str, name: str, actions: list[str], before: Any, after: Any, **extra: Any
) -> dict[str, Any]:
    return {
        "address": address,
        "type": kind,
        "name": name,
        "change": {"actions": actions, "before": before, "after": after},
        **{k: v for k, v in extra.items() if v is not None},
    }


def _config_json(plan: Plan, config: AssistantConfig | None) -> dict[str, Any] | None:
    if config is None:
        return None
    data = config.model_dump(mode="json")
    data["files"] = sorted(_file_name(plan, ref) for ref in config.files)
    return data


def plan_json(plan: Plan) -> dict[str, Any]:
    """Machine-readable plan in Terraform's shape (``format_version``, ``resource_changes``)."""
    changes: list[dict[str, Any]] = []
    for f in plan.files:
        file_data = {"path": f.path, "sha256": f.sha256, "size": f.size}
        if f.action == "create":
            actions = ["no-op"] if f.adopt_id else ["create"]
            changes.append(
                _resource(
                    f.address,
                    "file",
                    f.path,
                    actions,
                    None,
                    file_data,
                    importing={"id": f.adopt_id} if f.adopt_id else None,
                )
            )
        else:
            changes.append(
                _resource(
                    f.address,
                    "file",
                    f.path,
                    ["delete"],
                    {**file_data, "id": f.id},
                    None,
                    action_reason=f.reason,
                )
            )
    for a in plan.assistants:
        changes.append(
            _resource(
                a.address,
                "assistant",
                a.key,
                [a.action],
                _config_json(plan, a.before),
                _config_json(plan, a.after),
                id=a.id,
                importing={"id": a.import_id} if a.import_id else None,
                action_reason=a.reason,
                changed_fields=list(a.changed) if a.action == "update" else None,
            )
        )
    drift = [
        _resource(
            d.address,
            "assistant",
            d.key,
            ["delete"] if d.live is None else ["update"],
            _config_json(plan, d.applied),
            _config_json(plan, d.live),
            id=d.id,
        )
        for d in plan.drift
    ]
    counts = plan.counts
    environment = {"environment": plan.environment} if plan.environment else {}
    return {
        **environment,
        "format_version": plan.format_version,
        "summary": plan.summary(),
        "has_changes": plan.has_changes,
        "counts": counts,
        "resource_changes": sorted(changes, key=lambda c: c["address"]),
        "resource_drift": drift,
    }


def render_json(plan: Plan) -> str:
    """``plan_json`` as deterministic text."""
    return json.dumps(plan_json(plan), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
