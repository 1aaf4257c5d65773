"""``assistsync [COMMAND] --help`` is click's help, stored, printed without importing click
where click would print exactly it, and left to click everywhere else."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from assistsync.cli import helptext
from assistsync.cli.help_generated import HELP, NAMES

COMMANDS = sorted(name for name in HELP if name)

# Runs an entry point with the arguments in argv[1] (JSON), reporting on stderr whether click
# was imported and the exit code. FAST is the console script's (assistsync.__main__.run); CLICK
# is click answering, as the CLI did before the fast path (and does where the fast path declines).
SCRIPT = """
import json, sys
{setup}
sys.argv = ["assistsync", *json.loads(sys.argv[1])]
from {module} import {function} as start
try:
    start()
except SystemExit as exc:
    code = exc.code
sys.stdout.flush()
sys.stderr.write(f"[click imported: {{'click' in sys.modules}}, exit {{code}}]\\n")
"""
FAST = ("assistsync.__main__", "run")
CLICK = ("assistsync.cli.main", "entry")


def _env(**changes: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    for name, value in changes.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def _run(
    entry: tuple[str, str],
    argv: list[str],
    *,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    setup: str = "",
    stdout: int | None = None,
) -> tuple[str, str]:
    import json

    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            SCRIPT.format(setup=setup, module=entry[0], function=entry[1]),
            json.dumps(argv),
        ],
        stdout=subprocess.PIPE if stdout is None else stdout,
        stderr=subprocess.PIPE,
        text=True,
        env=env if env is not None else _env(),
        cwd=cwd,
        timeout=60,
        check=False,
    )
    return proc.stdout or "", proc.stderr


def _both(
    argv: list[str], *, env: dict[str, str] | None = None, setup: str = ""
) -> tuple[tuple[str, str], tuple[str, str]]:
    """(stdout, stderr) of the fast path and of click, run the same way."""
    return _run(FAST, argv, env=env, setup=setup), _run(CLICK, argv, env=env, setup=setup)


def test_stored_help_is_what_click_renders_from_the_command_tree() -> None:
    # Rendered in a fresh interpreter, as the CLI runs: click caches a command's help option
    # on first use, so a test that invoked a command on its own (without the group's "-h")
    # would change what this process renders.
    import json

    rendered, names = json.loads(
        subprocess.run(
            [
                sys.executable,
                "-c",
                "import json; from assistsync.cli import helptext; "
                "print(json.dumps(helptext.render()))",
            ],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout
    )
    stale = sorted(
        name or "(the group)"
        for name in rendered.keys() | HELP.keys()
        if rendered.get(name) != HELP.get(name)
    )
    assert not stale, (
        f"the stored --help of {', '.join(stale)} no longer matches the commands; "
        f"regenerate it: {helptext.REGENERATE}"
    )
    assert names == {name: list(options) for name, options in NAMES.items()}, (
        f"the help options changed; regenerate the stored help: {helptext.REGENERATE}"
    )
    generated = Path(helptext.generated_path()).read_text(encoding="utf-8")
    assert generated == helptext.module_text(rendered, names), (
        f"assistsync/cli/help_generated.py was edited by hand; regenerate it: {helptext.REGENERATE}"
    )


def test_every_command_has_its_stored_help() -> None:
    assert set(HELP) == {"", "apply", "import", "plan", "server", "test", "validate"}


@pytest.mark.parametrize("encoding", ["ascii", "latin-1"])
def test_text_beyond_ascii_on_a_stream_not_utf8_is_left_to_click(encoding: str) -> None:
    (text,) = [name for name, text in HELP.items() if not text.isascii()]  # validate: a dash
    (out, err), (click_out, click_err) = _both(
        [text, "--help"], env=_env(PYTHONIOENCODING=encoding)
    )
    assert (out, err) == (click_out, click_err)
    assert "[click imported: True" in err
    # the ASCII ones are printed alike on any stream
    (out, err), (click_out, _) = _both(["plan", "--help"], env=_env(PYTHONIOENCODING=encoding))
    assert err == "[click imported: False, exit 0]\n"
    assert out == click_out


@pytest.mark.parametrize(
    "argv",
    [["--help"], ["-h"], *([name, "--help"] for name in COMMANDS), ["plan", "-h"]],
    ids=" ".join,
)
def test_help_is_printed_without_click_and_is_clicks_text(argv: list[str]) -> None:
    (out, err), (click_out, click_err) = _both(argv)
    assert err == "[click imported: False, exit 0]\n"
    assert click_err == "[click imported: True, exit 0]\n"
    assert out == click_out
    assert out.startswith("Usage: assistsync")


def test_the_installed_command_prints_clicks_help() -> None:
    script = Path(sys.executable).parent / "assistsync"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "assistsync"]
    for argv in (["--help"], ["validate", "--help"]):
        proc = subprocess.run(
            [*command, *argv], capture_output=True, text=True, env=_env(), timeout=60, check=True
        )
        assert proc.stdout == _run(CLICK, argv)[0] == HELP[argv[0] if len(argv) == 2 else ""]
        assert proc.stderr == ""


@pytest.mark.parametrize(
    ("columns", "stored"),
    [("200", True), ("80", True), ("79", False), ("60", False), ("0", True), ("wide", True)],
)
def test_columns_below_80_leave_the_help_to_click(columns: str, stored: bool) -> None:
    # click wraps to min(columns, 80) - 2: only 80 and more give the stored text
    for argv in (["--help"], ["plan", "--help"]):
        (out, err), (click_out, _) = _both(argv, env=_env(COLUMNS=columns))
        assert out == click_out
        assert err == f"[click imported: {not stored}, exit 0]\n"
        assert (out == HELP[argv[0] if len(argv) == 2 else ""]) is stored


@pytest.mark.parametrize(
    "argv",
    [
        ["--no-color", "--help"],
        ["plan", "--out", "x", "--help"],
        ["nope", "--help"],
        ["--help", "-h"],
    ],
    ids=" ".join,
)
def test_any_other_argument_leaves_the_help_to_click(argv: list[str]) -> None:
    (out, err), (click_out, click_err) = _both(argv)
    assert (out, err) == (click_out, click_err)  # the fast path's own report says True too


def test_shell_completion_is_left_to_click() -> None:
    env = _env(_ASSISTSYNC_COMPLETE="bash_source")
    (out, err), (click_out, click_err) = _both(["--help"], env=env)
    assert (out, err) == (click_out, click_err)
    assert "complete" in out


def test_a_command_help_in_a_removed_directory_is_clicks_error(tmp_path: Path) -> None:
    # The group checks its default -C . before the command's --help is seen.
    gone = str(tmp_path / "gone")
    setup = f"import os; os.mkdir({gone!r}); os.chdir({gone!r}); os.rmdir({gone!r})"
    (out, err), (click_out, click_err) = _both(["plan", "--help"], setup=setup)
    assert (out, err) == (click_out, click_err)
    assert "cannot use the current directory as the project directory" in err
    assert err.endswith("[click imported: True, exit 1]\n")
    # the group's own --help does not look at the directory
    (out, err), _ = _both(["--help"], setup=setup)
    assert err == "[click imported: False, exit 0]\n"
    assert out == HELP[""]


def test_a_closed_pipe_ends_the_help_as_click_does() -> None:
    # exit 1 and nothing on stderr (no traceback, no "Exception ignored" at shutdown)
    fast = [sys.executable, "-m", "assistsync"]
    click = [sys.executable, "-c", "from assistsync.cli.main import entry; entry()"]
    for argv in (["--help"], ["apply", "-h"]):
        results = []
        for command in (fast, click):
            read, write = os.pipe()
            os.close(read)
            try:
                proc = subprocess.run(
                    [*command, *argv],
                    stdout=write,
                    stderr=subprocess.PIPE,
                    text=True,
                    env=_env(),
                    timeout=60,
                    check=False,
                )
            finally:
                os.close(write)
            results.append((proc.returncode, proc.stderr))
        assert results[0] == results[1] == (1, "")


def _catalog(path: Path, translations: dict[str, str]) -> None:
    """A GNU gettext .mo file (the format ``gettext.GNUTranslations`` reads)."""
    keys = sorted(translations)
    ids = b"".join(k.encode() + b"\0" for k in keys)
    strs = b"".join(translations[k].encode() + b"\0" for k in keys)
    start = 7 * 4 + 16 * len(keys)
    offsets, pos = [], 0
    for k in keys:
        offsets += [len(k.encode()), start + pos]
        pos += len(k.encode()) + 1
    toffsets, pos = [], 0
    for k in keys:
        toffsets += [len(translations[k].encode()), start + len(ids) + pos]
        pos += len(translations[k].encode()) + 1
    header = struct.pack("Iiiiiii", 0x950412DE, 0, len(keys), 7 * 4, 7 * 4 + 8 * len(keys), 0, 0)
    path.parent.mkdir(parents=True)
    path.write_bytes(
        header
        + struct.pack(f"{2 * len(keys)}i", *offsets)
        + struct.pack(f"{2 * len(keys)}i", *toffsets)
        + ids
        + strs
    )


def test_a_translation_click_would_use_leaves_the_help_to_click(tmp_path: Path) -> None:
    _catalog(tmp_path / "de" / "LC_MESSAGES" / "messages.mo", {"Usage:": "Aufruf:"})
    setup = f"import gettext; gettext.bindtextdomain('messages', {str(tmp_path)!r})"
    env = _env(LANGUAGE=None, LC_ALL=None, LC_MESSAGES=None, LANG="de_DE.UTF-8")
    (out, err), (click_out, click_err) = _both(["--help"], env=env, setup=setup)
    assert out.startswith("Aufruf: assistsync")
    assert (out, err) == (click_out, click_err)
    # the same catalog unused (an English environment): the stored text
    english = _env(LANGUAGE=None, LC_ALL=None, LC_MESSAGES=None, LANG="C.UTF-8")
    (out, err), _ = _both(["--help"], env=english, setup=setup)
    assert err == "[click imported: False, exit 0]\n"
    assert out == HELP[""]


@pytest.mark.parametrize("columns", [None, "", "0", "-5", "wide", "79", "80", "300"])
def test_columns_are_shutils(monkeypatch: pytest.MonkeyPatch, columns: str | None) -> None:
    if columns is None:
        monkeypatch.delenv("COLUMNS", raising=False)
    else:
        monkeypatch.setenv("COLUMNS", columns)
    assert helptext._columns() == shutil.get_terminal_size().columns


def _on_terminal(entry: tuple[str, str], argv: list[str], columns: int) -> tuple[str, str]:
    """(what the terminal showed, stderr) of ``entry`` run on a pseudo-terminal this wide."""
    import fcntl
    import json
    import pty
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    try:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                SCRIPT.format(setup="", module=entry[0], function=entry[1]),
                json.dumps(argv),
            ],
            stdout=slave,
            stderr=subprocess.PIPE,
            text=True,
            env=_env(),
        )
        os.close(slave)
        chunks = []
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the terminal's last writer has gone
                break
            if not chunk:
                break
            chunks.append(chunk)
        _, err = proc.communicate(timeout=60)
    finally:
        os.close(master)
    return b"".join(chunks).decode().replace("\r\n", "\n"), err


@pytest.mark.skipif(sys.platform == "win32", reason="a POSIX pseudo-terminal")
@pytest.mark.parametrize(("columns", "stored"), [(120, True), (80, True), (70, False)])
def test_on_a_terminal_its_width_decides(columns: int, stored: bool) -> None:
    shown, err = _on_terminal(FAST, ["--help"], columns)
    click_shown, _ = _on_terminal(CLICK, ["--help"], columns)
    assert shown == click_shown
    assert err == f"[click imported: {not stored}, exit 0]\n"
    assert (shown == HELP[""]) is stored
