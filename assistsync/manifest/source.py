"""YAML text -> plain Python data that remembers where every key and value was written.

ruamel.yaml composes the node graph (with libyaml's C parser from ``ruamel.yaml.clib`` when it is
installed, else the pure-Python parser; both give the same nodes and marks). We then build the
data ourselves instead of using ruamel's round-trip constructor, for two reasons:

- speed: ``YAML(typ="rt").load`` is pure Python from scanner to constructor and takes about 1.4 s
  of CPU for 1,000 assistants; composing with libyaml and building plain dicts takes about 0.15 s.
  Node marks carry the same 0-based line/column that ``CommentedMap.lc`` exposes.
- control: duplicate keys are reported (with both positions) instead of aborting the file, and
  ``${VAR}`` substitution happens in the same pass, located at the value that uses it.

Scalars resolve as YAML 1.2 (ruamel's default): ``yes``/``no`` stay strings.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.constructor import ConstructorError, SafeConstructor
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from ruamel.yaml.reader import ReaderError
from ruamel.yaml.resolver import VersionedResolver

Pos = tuple[int, int]
"""A 1-based (line, column)."""

_STR_TAG = "tag:yaml.org,2002:str"
_MERGE_TAG = "tag:yaml.org,2002:merge"
_VAR = re.compile(r"\$\$\{|\$\{([^}]*)\}|\$\{")
_VAR_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class YMap(dict[Any, Any]):
    """A mapping with the position of itself, of each key and of each value."""

    __slots__ = ("key_pos", "pos", "value_pos")

    def __init__(self, pos: Pos) -> None:
        super().__init__()
        self.pos = pos
        self.key_pos: dict[Any, Pos] = {}
        self.value_pos: dict[Any, Pos] = {}


class YSeq(list[Any]):
    """A sequence with the position of itself and of each item."""

    __slots__ = ("item_pos", "pos")

    def __init__(self, pos: Pos) -> None:
        super().__init__()
        self.pos = pos
        self.item_pos: list[Pos] = []


@dataclass(frozen=True)
class Problem:
    """A located problem found while reading YAML (line/col 1-based)."""

    line: int
    col: int
    message: str


def offset_pos(text: str, offset: int) -> Pos:
    """The 1-based line and column of character ``offset`` in ``text``."""
    return text.count("\n", 0, offset) + 1, offset - (text.rfind("\n", 0, offset) + 1) + 1


def _pos(node: Node) -> Pos:
    mark = node.start_mark
    return (mark.line + 1, mark.column + 1)


def substitute(text: str, env: Mapping[str, str]) -> tuple[str, list[str]]:
    """Replace ``${VAR}`` by ``env[VAR]`` and ``$${`` by a literal ``${``.

    Returns the new text and the problems (unset or malformed variables); an unset variable
    is left as written so later checks do not pile up on a value that is already reported.
    """
    if "$" not in text:
        return text, []
    problems: list[str] = []

    def repl(m: re.Match[str]) -> str:
        whole = m.group(0)
        if whole == "$${":
            return "${"
        name = m.group(1)
        if name is None:
            problems.append("unterminated '${' (write '$${' for a literal '${')")
            return whole
        if not _VAR_NAME.fullmatch(name):
            problems.append(
                f"invalid variable name {name!r} in '${{{name}}}' "
                "(write '$${' for a literal '${')"
            )
            return whole
        if name not in env:
            problems.append(f"environment variable {name} is not set")
            return whole
        value = env[name]
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:  # undecodable bytes in the environment (surrogateescape)
            problems.append(f"environment variable {name} is not valid UTF-8")
            return whole
        return value

    return _VAR.sub(repl, text), problems


class _Builder:
    """Builds YMap/YSeq/scalars from composed nodes, collecting problems."""

    def __init__(self, env: Mapping[str, str] | None) -> None:
        self.env = env
        self.problems: list[Problem] = []
        # A constructor bound to a YAML instance: ruamel's scalar constructors reach the resolver
        # through it. Only used for non-string scalars (numbers, booleans, null, dates).
        self.scalars: SafeConstructor = YAML(typ="safe", pure=True).constructor
        self.done: dict[int, Any] = {}
        self.building: set[int] = set()

    def problem(self, pos: Pos, message: str) -> None:
        self.problems.append(Problem(pos[0], pos[1], message))

    def build(self, node: Node) -> Any:
        key = id(node)
        if key in self.done:  # an alias: the same node seen again
            return self.done[key]
        if isinstance(node, ScalarNode):
            return self.scalar(node)
        if key in self.building:
            self.problem(_pos(node), "recursive alias: a node may not contain itself")
            return None
        self.building.add(key)
        value: Any
        if isinstance(node, MappingNode):
            value = self.mapping(node)
        elif isinstance(node, SequenceNode):
            value = YSeq(_pos(node))
            for item in node.value:
                value.item_pos.append(_pos(item))
                value.append(self.build(item))
        else:  # pragma: no cover - composer only yields the three kinds
            value = None
        self.building.discard(key)
        self.done[key] = value
        return value

    def scalar(self, node: ScalarNode) -> Any:
        if _tag(node) == _STR_TAG:
            text: str = node.value
            if self.env is not None and "$" in text:
                text, problems = substitute(text, self.env)
                for message in problems:
                    self.problem(_pos(node), message)
            return text
        try:
            return self.scalars.construct_object(node, deep=True)
        except ConstructorError as exc:
            self.problem(_pos(node), f"cannot read this value: {exc.problem}")
            return None

    def scalar_key(self, node: ScalarNode) -> Any:
        """A mapping key's value; keys never take ${VAR} (a key is an identity)."""
        if node.tag == _STR_TAG:
            return node.value
        try:
            return self.scalars.construct_object(node, deep=True)
        except ConstructorError as exc:
            self.problem(_pos(node), f"cannot read this key: {exc.problem}")
            return node.value

    def mapping(self, node: MappingNode) -> YMap:
        result = YMap(_pos(node))
        key_pos, value_pos = result.key_pos, result.value_pos
        merges: list[YMap] = []
        # The loop runs for every key of every manifest: a tag is read once and positions are
        # built in place.
        for key_node, value_node in node.value:
            tag = _tag(key_node)
            if tag == _MERGE_TAG:
                merged = self.build(value_node)
                items = merged if isinstance(merged, list) else [merged]
                if not all(isinstance(m, YMap) for m in items):
                    self.problem(_pos(value_node), "'<<' takes a mapping or a list of mappings")
                    continue
                merges.extend(items)
                continue
            if not isinstance(key_node, ScalarNode):
                self.problem(_pos(key_node), "mapping keys must be plain values, not collections")
                continue
            key = key_node.value if tag == _STR_TAG else self.scalar_key(key_node)
            if key in key_pos:
                line, col = key_pos[key]
                self.problem(
                    _pos(key_node), f"duplicate key {key!r} (first defined at line {line}:{col})"
                )
                continue
            mark = key_node.start_mark
            key_pos[key] = (mark.line + 1, mark.column + 1)
            mark = value_node.start_mark
            value_pos[key] = (mark.line + 1, mark.column + 1)
            result[key] = self.build(value_node)
        # Explicit keys win over merged ones, and earlier merges over later ones (YAML merge spec).
        for merged in merges:
            for key, value in merged.items():
                if key not in result:
                    result[key] = value
                    result.key_pos[key] = merged.key_pos[key]
                    result.value_pos[key] = merged.value_pos[key]
        return result


_UNCLOSED = {
    "while scanning a quoted scalar": "the quoted string opened here is never closed",
    "while parsing a flow sequence": "the '[' opened here is never closed",
    "while parsing a flow mapping": "the '{' opened here is never closed",
}
"""Parser contexts whose opening mark is where an unclosed construct starts."""


def _syntax_problem(exc: MarkedYAMLError, text: str) -> Problem:
    """The parser's error in a user's terms, at the place to fix.

    Two cases get their own words because the parser's are misleading: a tab in indentation
    (the parser says "found character that cannot start any token") and a quote or bracket that
    is never closed (the parser points at the end of the file, far from the opening).
    """
    mark = exc.problem_mark or exc.context_mark
    if mark is None:
        return Problem(1, 1, _syntax_message(exc))
    lines = text.splitlines()
    line = lines[mark.line] if mark.line < len(lines) else ""
    tab = line.find("\t")
    if 0 <= tab <= mark.column and not line[:tab].strip():
        return Problem(mark.line + 1, tab + 1, "tabs are not allowed for indentation in YAML")
    opened = exc.context_mark
    unclosed = _UNCLOSED.get(str(exc.context or "").strip())
    rest = "\n".join([line[mark.column :], *lines[mark.line + 1 :]])
    if unclosed is not None and opened is not None and not rest.strip():
        return Problem(opened.line + 1, opened.column + 1, f"YAML syntax error: {unclosed}")
    return Problem(mark.line + 1, mark.column + 1, _syntax_message(exc))


def _syntax_message(exc: MarkedYAMLError) -> str:
    parts = [p for p in (exc.context, exc.problem) if p]
    text = ": ".join(str(p).strip() for p in parts) or "invalid YAML"
    return f"YAML syntax error: {text}"


ParserFactory = Callable[[], YAML]


def _default_yaml() -> YAML:
    # typ="safe" selects libyaml's CParser when ruamel.yaml.clib is installed; we only compose.
    yaml = YAML(typ="safe")
    yaml.Resolver = _Yaml12Resolver
    return yaml


def _tag(node: Node) -> str | None:
    """``node.tag``, without making it: ruamel builds that string from the node's ``Tag``
    object on every read, while almost every scalar shares the resolver's one plain-string
    ``Tag`` (what a plain or quoted string resolves to)."""
    return _STR_TAG if node.ctag is _PLAIN_STR else node.tag


class _Yaml12Resolver(VersionedResolver):
    """ruamel's resolver, fixed at YAML 1.2 (its default version).

    The stock one asks the parser for the document's ``%YAML`` version on every scalar, through
    an AttributeError when the parser is libyaml's: a third of load time at 1,000 assistants.
    Only a document with a ``%YAML 1.1`` directive is read differently (as 1.2).
    """

    @property
    def processing_version(self) -> Any:
        return (1, 2)


def read_yaml(
    text: str, env: Mapping[str, str] | None, make_yaml: ParserFactory | None = None
) -> tuple[Any, list[Problem]]:
    """Parse one YAML document into located data.

    Returns ``(data, problems)``; ``data`` is ``None`` for an empty document or a syntax error
    (reported as a problem at the parser's own position). ``env=None`` disables ``${VAR}``.
    """
    try:
        node = (make_yaml or _default_yaml)().compose(text)
        if node is None:
            return None, []
        builder = _Builder(env)
        data = builder.build(node)
    except RecursionError:  # both the composer and the builder recurse once per nesting level
        return None, [Problem(1, 1, "YAML nested too deeply to read")]
    except MarkedYAMLError as exc:
        return None, [_syntax_problem(exc, text)]
    except ReaderError as exc:
        # The reader reports a character offset, not a mark.
        line, col = offset_pos(text, exc.position)
        return None, [Problem(line, col, f"YAML syntax error: {exc.reason} ({exc.character!r})")]
    except YAMLError as exc:  # pragma: no cover - every parser error above carries a position
        return None, [Problem(1, 1, f"YAML syntax error: {exc}")]
    return data, builder.problems


_PLAIN_STR = (
    _Yaml12Resolver.DEFAULT_SCALAR_TAG
    if str(_Yaml12Resolver.DEFAULT_SCALAR_TAG) == _STR_TAG
    else None
)
"""The ``Tag`` object the resolver gives every string scalar it does not resolve otherwise."""
