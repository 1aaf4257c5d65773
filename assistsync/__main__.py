"""``python -m assistsync``: the same as the ``assistsync`` command."""

from assistsync.cli.main import entry

entry()
