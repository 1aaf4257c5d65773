"""The database layer on its own: migrations per group, transactions, change notification."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from assistsync.server.db import Database, Schema

WAIT = 10  # seconds: only ever reached when a test is about to fail

NOTES_V1 = Schema("notes", ("CREATE TABLE notes (seq INTEGER PRIMARY KEY, text TEXT);",))
NOTES_V2 = Schema(
    "notes", (*NOTES_V1.steps, "ALTER TABLE notes ADD COLUMN author TEXT DEFAULT 'me';")
)


def test_each_migration_step_runs_once_and_later_steps_are_added(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    first = Database(path, [NOTES_V1])
    with first.write() as db:
        db.execute("INSERT INTO notes (text) VALUES ('kept')")
    first.close()
    Database(path, [NOTES_V1]).close()  # step 1 again would fail: the table exists
    second = Database(path, [NOTES_V2])
    with second.read() as db:
        rows = db.execute("SELECT text, author FROM notes").fetchall()
        assert [tuple(row) for row in rows] == [("kept", "me")]
        versions = db.execute("SELECT name, version FROM schema_versions").fetchall()
        assert [tuple(v) for v in versions] == [("notes", 2)]
    second.close()


def test_a_failing_write_rolls_back_everything() -> None:
    database = Database(None, [NOTES_V1])

    def insert_twice() -> None:
        with database.write() as db:
            db.execute("INSERT INTO notes (seq, text) VALUES (1, 'a')")
            db.execute("INSERT INTO notes (seq, text) VALUES (1, 'duplicate')")

    with pytest.raises(sqlite3.IntegrityError):
        insert_twice()
    with database.read() as db:
        assert db.execute("SELECT count(*) FROM notes").fetchone()[0] == 0
    with database.write() as db:  # and the connection is usable again
        db.execute("INSERT INTO notes (text) VALUES ('b')")
    database.close()


def test_a_waiter_wakes_when_a_write_commits() -> None:
    database = Database(None, [NOTES_V1])
    seen = database.generation
    woke: list[int] = []
    ready = threading.Event()

    def wait() -> None:
        ready.set()
        woke.append(database.wait_for_change(seen, WAIT))

    waiter = threading.Thread(target=wait)
    waiter.start()
    assert ready.wait(WAIT)
    with database.write() as db:
        db.execute("INSERT INTO notes (text) VALUES ('x')")
    waiter.join(WAIT)
    assert woke == [seen + 1]
    # Already changed since `seen`: returns at once.
    assert database.wait_for_change(seen, WAIT) == seen + 1
    database.close()


def test_the_clock_is_injected() -> None:
    database = Database(None, [], clock=lambda: 1_700_000_000.9)
    assert database.now() == 1_700_000_000
    database.close()
