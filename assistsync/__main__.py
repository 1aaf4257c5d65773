"""``python -m assistsync`` and the ``assistsync`` command.

``assistsync --version`` and ``assistsync [COMMAND] --help`` are answered here, before click and
the CLI are imported: they are what people, scripts and CI run first, and click alone costs as
much again as a bare interpreter. Both texts are click's own output: ``--version`` is held equal
to it by a test, and the help is click's, rendered from the command tree and stored
(``assistsync.cli.helptext``), printed only where click would print exactly it.
"""

from __future__ import annotations

import sys


def run() -> None:
    """Console-script entry point."""
    argv = sys.argv[1:]
    if argv == ["--version"]:
        from assistsync import __version__

        sys.stdout.write(f"assistsync, version {__version__}\n")
        sys.exit(0)
    if argv and argv[-1] in ("--help", "-h") and sys.stdout is not None:
        from assistsync.cli import helptext

        text = helptext.stored_help(argv)
        if text is not None:
            sys.exit(helptext.write(text))
    from assistsync.cli.main import entry

    entry()


if __name__ == "__main__":
    run()
