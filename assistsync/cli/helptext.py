"""``assistsync --help`` without importing click: click's own help text, rendered and stored.

Importing click alone costs as much again as a bare interpreter, and the help is what people
and CI templates run first. The help of the command group and of every command is rendered by
click from the live command tree and kept in ``assistsync/cli/help_generated.py``;
:func:`stored_help` hands it out only where click would print exactly that text, and says
"ask click" (None) everywhere else: any other argument, a terminal narrower than 80 columns or
a ``COLUMNS`` below 80 (click wraps to ``min(columns, 80) - 2``), a translation catalog click
would use, shell completion, a current directory the group would refuse.

After changing any command, option or help text, regenerate the stored text::

    python -m assistsync.cli.helptext

``tests/unit/test_helptext.py`` fails, naming that command, when the stored text is stale.

Only the standard library is imported at module level: this module runs before click is.
"""

from __future__ import annotations

import os
import sys

HELP_OPTIONS = ("--help", "-h")
"""The group's ``help_option_names`` (its context settings; commands inherit them)."""

WIDTH = 78
"""What click wraps help to when it has 80 columns or more: ``min(columns, 80) - 2``."""

COMPLETION_VARIABLE = "_ASSISTSYNC_COMPLETE"
"""click's shell-completion switch for the program name ``assistsync``."""

REGENERATE = "python -m assistsync.cli.helptext"


def stored_help(argv: list[str]) -> str | None:
    """What ``assistsync ARGV`` prints, stored, when ``argv`` (the arguments after the program
    name) is ``--help``/``-h`` or ``COMMAND --help``/``COMMAND -h`` and click would print
    exactly the stored text; otherwise None, and the caller lets click answer.

    The conditions are click's own inputs to the help it renders (see the module docstring).
    """
    if sys.platform == "win32" or len(argv) not in (1, 2) or argv[-1] not in HELP_OPTIONS:
        return None
    from assistsync.cli.help_generated import HELP, NAMES

    command = argv[0] if len(argv) == 2 else ""
    text = HELP.get(command)
    if text is None or argv[-1] not in NAMES[command] or not _written_as_is(text):
        return None
    if os.environ.get(COMPLETION_VARIABLE):
        return None
    if command and not _directory_accepted():
        return None
    if _columns() < WIDTH + 2 or _translated():
        return None
    return text


def _written_as_is(text: str) -> bool:
    """Whether ``sys.stdout`` takes ``text`` as it is, as click's ``echo`` gives it there.

    click writes to ``sys.stdout`` itself unless its encoding is ASCII (then it re-wraps the
    stream); ASCII text is written alike either way, and any text can be encoded in UTF-8.
    Other encodings (where click could fail, or re-wrap) are left to click.
    """
    if text.isascii():
        return True
    import codecs

    encoding = getattr(sys.stdout, "encoding", None)
    if not isinstance(encoding, str):
        return False
    try:
        return codecs.lookup(encoding).name == "utf-8"
    except LookupError:
        return False


def _columns() -> int:
    """``shutil.get_terminal_size().columns``, what click's help formatter wraps by:
    ``COLUMNS`` when it is a positive number, else the terminal's width, else 80.

    Not shutil itself: importing it (with the compression modules it imports) costs a tenth
    of a bare interpreter's start-up. A test holds the two equal.
    """
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns <= 0:
        stdout = sys.__stdout__  # None when the interpreter started without one
        try:
            columns = os.get_terminal_size(stdout.fileno()).columns if stdout else 0
        except (AttributeError, ValueError, OSError):
            columns = 0
        columns = columns or 80
    return columns


def _translated() -> bool:
    """Whether click's messages ("Usage:", "Options:") would come from a translation catalog:
    click translates them with ``gettext.gettext``, i.e. the current domain's catalog for the
    language the environment names."""
    if not any(os.environ.get(name) for name in ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG")):
        return False  # gettext's language is then "C", which has no catalog
    if "gettext" not in sys.modules and not os.path.isdir(
        os.path.join(sys.base_prefix, "share", "locale")
    ):
        # Nothing has bound a domain elsewhere yet, and gettext's default directory (this one)
        # does not exist: no catalog can be found. Importing gettext (and locale) to find that
        # out costs a sixth of a bare interpreter's start-up.
        return False
    import gettext

    domain = gettext.textdomain()
    return gettext.find(domain, gettext.bindtextdomain(domain)) is not None


def _directory_accepted() -> bool:
    """Whether the group accepts its default ``-C .`` (it runs before a command's ``--help``):
    click's ``Path(exists=True, file_okay=False)`` checks, then ``project_directory``'s."""
    import stat

    try:
        if not stat.S_ISDIR(os.stat(".").st_mode) or not os.access(".", os.R_OK):
            return False
        os.path.realpath(".", strict=True)
        with os.scandir("."):
            pass
    except OSError:
        return False
    return True


def write(text: str) -> int:
    """Print ``text`` as click prints help, and the exit code click's main gives: 0, or 1
    without a traceback when the reader has gone (a closed pipe)."""
    import errno

    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except OSError as exc:
        if exc.errno != errno.EPIPE:
            raise
        # What is still buffered goes nowhere, so the interpreter's final flush is quiet too.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return 1
    return 0


# -- rendering (imports click and the whole command tree) -------------------------------------


def render() -> tuple[dict[str, str], dict[str, list[str]]]:
    """click's help, as printed, for the group ("") and every command, at ``WIDTH``; and the
    names of each one's help option (a command's own ``-h`` would take that name from it)."""
    import click

    from assistsync.cli.main import cli

    def help_names(command: click.Command, ctx: click.Context) -> list[str]:
        return command.get_help_option_names(ctx) if command.add_help_option else []

    texts: dict[str, str] = {}
    names: dict[str, list[str]] = {}
    with cli.make_context("assistsync", [], resilient_parsing=True, terminal_width=WIDTH) as ctx:
        texts[""] = cli.get_help(ctx) + "\n"  # click.echo adds the newline
        names[""] = help_names(cli, ctx)
        for name in cli.list_commands(ctx):
            command = cli.get_command(ctx, name)
            assert command is not None, name
            with command.make_context(name, [], parent=ctx, resilient_parsing=True) as sub:
                texts[name] = command.get_help(sub) + "\n"
                names[name] = help_names(command, sub)
    return texts, names


def module_text(texts: dict[str, str], names: dict[str, list[str]]) -> str:
    """The source of ``help_generated.py`` holding ``texts`` and ``names`` (already as
    ``ruff format`` writes it, so that the formatter's check passes on a regenerated file)."""
    out = [
        '"""click\'s help for ``assistsync`` and each of its commands, at 80 columns or more.',
        "",
        f"Generated by ``{REGENERATE}`` from the live command tree: do not edit.",
        "``tests/unit/test_helptext.py`` fails when it no longer matches what click renders.",
        '"""',
        "",
        "# ruff: noqa: E501 - click does not wrap the epilog's examples",
        "",
        "from __future__ import annotations",
        "",
        "NAMES: dict[str, tuple[str, ...]] = {",
    ]
    for name, options in names.items():
        inside = ", ".join(_literal(option) for option in options)
        out.append(f"    {_literal(name)}: ({inside}{',' if len(options) == 1 else ''}),")
    out += [
        "}",
        '"""The names of the help option of the group ("") and of each command."""',
        "",
        "HELP: dict[str, str] = {",
    ]
    for name, text in texts.items():
        out.append(f"    {_literal(name)}: (")
        out.extend(f"        {_literal(line)}" for line in text.splitlines(keepends=True))
        out.append("    ),")
    out += ["}", '"""What click prints for ``assistsync [COMMAND] --help``."""']
    return "\n".join(out) + "\n"


def _literal(text: str) -> str:
    """``text`` as a string literal in the quotes ruff's formatter prefers (double, unless
    single quotes need fewer escapes)."""
    quote = "'" if text.count('"') > text.count("'") else '"'
    body = text.replace("\\", "\\\\").replace(quote, "\\" + quote).replace("\n", "\\n")
    body = "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in body)
    return f"{quote}{body}{quote}"


def generated_path() -> str:
    """Where the stored text lives (beside this module)."""
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "help_generated.py")


def main() -> None:
    """``python -m assistsync.cli.helptext``: render the help and store it."""
    with open(generated_path(), "w", encoding="utf-8", newline="\n") as f:
        f.write(module_text(*render()))
    print(f"Wrote {generated_path()}")


if __name__ == "__main__":
    main()
