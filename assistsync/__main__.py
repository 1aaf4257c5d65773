"""``python -m assistsync`` and the ``assistsync`` command.

``assistsync --version`` is answered here, before click and the CLI are imported: it is what
scripts and CI run to check an install, and click alone costs as much again as a bare
interpreter. The text is click's own ``--version`` output (a test holds them equal).
"""

from __future__ import annotations

import sys


def run() -> None:
    """Console-script entry point."""
    if sys.argv[1:] == ["--version"]:
        from assistsync import __version__

        sys.stdout.write(f"assistsync, version {__version__}\n")
        sys.exit(0)
    from assistsync.cli.main import entry

    entry()


if __name__ == "__main__":
    run()
