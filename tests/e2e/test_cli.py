"""The CLI as a newcomer and an impatient user meet it: the quickstart on the sandbox, Ctrl-C,
a busy lock, colour rules."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from e2ekit import API_KEY, Api, Project

from assistsync.server import ServerHandle

EXAMPLE = Path(__file__).parents[2] / "examples" / "quickstart"


def run(argv: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """``argv`` without any OPENAI_* variable and without colour."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    return subprocess.run(
        argv,
        capture_output=True,
        text=True,
        env={**env, "NO_COLOR": "1"},
        cwd=cwd,
        timeout=120,
        check=False,
    )


def cli(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run([sys.executable, "-m", "assistsync", "-C", str(root), *args])


def test_quickstart_on_the_sandbox_persists_between_commands(tmp_path: Path) -> None:
    root = tmp_path / "quickstart"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns(".assistsync", "assistsync.lock*"))
    first = cli(root, "--sandbox", "plan", "--detailed-exitcode")
    assert first.returncode == 2, first.stderr
    assert "Plan: 4 to add, 0 to change, 0 to destroy." in first.stdout
    applied = cli(root, "--sandbox", "apply", "--auto-approve")
    assert applied.returncode == 0, applied.stderr
    assert "Apply complete! Resources: 4 added, 0 changed, 0 destroyed." in applied.stdout
    assert (root / ".assistsync" / "sandbox.db").exists()
    again = cli(root, "--sandbox", "plan", "--detailed-exitcode")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "No changes. Your assistants match the configuration." in again.stdout
    assert cli(root, "validate").returncode == 0


def test_ctrl_c_exits_130_and_the_lock_holds_what_finished(
    project: Project, api: Api, server: ServerHandle
) -> None:
    many = "".join(f"  bot-{i:02d}:\n    model: gpt-4\n" for i in range(40))
    project.write("assistants/many.yaml", "assistants:\n" + many)
    server.faults.latency_ms = 150
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    env.update({"OPENAI_BASE_URL": server.base_url, "OPENAI_API_KEY": API_KEY, "NO_COLOR": "1"})
    proc = subprocess.Popen(
        [sys.executable, "-m", "assistsync", "-C", str(project.root), "apply", "--auto-approve"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    lock_path = project.root / "assistsync.lock"
    deadline = time.monotonic() + 60
    while not lock_path.exists() and time.monotonic() < deadline:  # wait for the first change
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Interrupted" in err
    assert "Traceback" not in err
    server.faults.latency_ms = 0
    lock = project.lock()
    live = api.by_key()
    assert 0 < len(live) < 42, "the interrupt came too late to test anything"
    assert {k: v["id"] for k, v in lock["assistants"].items()} == {
        k: a["id"] for k, a in live.items()
    }
    resumed = project.run("apply", "--auto-approve")
    assert resumed.code == 0, resumed.all
    assert len(api.by_key()) == 42


def test_a_second_apply_is_refused_while_one_holds_the_lock(project: Project) -> None:
    from assistsync.lockfile import exclusive

    with exclusive(project.root / "assistsync.lock"):
        result = project.run("apply", "--auto-approve")
    assert result.code == 1
    assert "another apply is running" in result.err
    assert f"pid {os.getpid()}" in result.err


def test_help_documents_exit_codes_and_environment() -> None:
    result = cli(Path("."), "--help")
    assert result.returncode == 0
    for text in ("130", "--detailed-exitcode", "OPENAI_BASE_URL", "OPENAI_API_KEY", "--sandbox"):
        assert text in result.stdout


def _apply_on_a_terminal(project: Project, answer: str) -> tuple[int, str]:
    """Run apply with its stdin on a pseudo-terminal and type ``answer`` at the prompt."""
    import pty

    leader, follower = pty.openpty()
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    env.update({"OPENAI_BASE_URL": project.server.base_url, "OPENAI_API_KEY": API_KEY})
    with subprocess.Popen(
        [sys.executable, "-m", "assistsync", "-C", str(project.root), "apply"],
        stdin=follower,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**env, "NO_COLOR": "1"},
    ) as proc:
        os.close(follower)
        os.write(leader, f"{answer}\n".encode())
        out, _ = proc.communicate(timeout=60)
    os.close(leader)
    return proc.returncode, out


def test_apply_on_a_terminal_asks_and_only_yes_confirms(project: Project, api: Api) -> None:
    code, out = _apply_on_a_terminal(project, "y")
    assert code == 1
    assert "Only 'yes' will be accepted" in out
    assert "Apply cancelled." in out
    assert api.assistants() == []
    code, out = _apply_on_a_terminal(project, "yes")
    assert code == 0, out
    assert "Apply complete! Resources: 4 added, 0 changed, 0 destroyed." in out
    assert len(api.by_key()) == 2


def test_directory_may_follow_the_command(tmp_path: Path) -> None:
    root = tmp_path / "quickstart"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns(".assistsync", "assistsync.lock*"))
    for args in (["-C", str(root), "validate"], ["validate", "-C", str(root)]):
        result = run([sys.executable, "-m", "assistsync", *args], cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert "Valid: 2 assistants and 2 knowledge files in 1 manifest." in result.stdout


def _on_a_terminal(root: Path, *args: str) -> tuple[int, str]:
    """Run the CLI with stdout and stderr on a pseudo-terminal; what it printed there."""
    import pty

    leader, follower = pty.openpty()
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_") and k != "NO_COLOR"}
    with subprocess.Popen(
        [sys.executable, "-m", "assistsync", "-C", str(root), *args],
        stdin=subprocess.DEVNULL,
        stdout=follower,
        stderr=follower,
        env={**env, "TERM": "xterm"},
    ) as proc:
        os.close(follower)
        chunks = []
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
        code = proc.wait(timeout=60)
    os.close(leader)
    return code, b"".join(chunks).decode("utf-8", errors="replace")


def test_global_options_may_follow_the_command(tmp_path: Path) -> None:
    """pre-commit and CI templates append arguments: ``plan --sandbox --debug --no-color``."""
    root = tmp_path / "quickstart"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns(".assistsync", "assistsync.lock*"))
    planned = cli(root, "plan", "--sandbox", "--debug", "--detailed-exitcode")
    assert planned.returncode == 2, planned.stderr
    assert "Plan: 4 to add, 0 to change, 0 to destroy." in planned.stdout
    assert "debug: " in planned.stderr  # --debug logs every request
    assert (root / ".assistsync" / "sandbox.db").exists()  # --sandbox took effect

    code, coloured = _on_a_terminal(root, "plan", "--sandbox")
    assert code == 0, coloured
    assert "\x1b[" in coloured  # a terminal gets colour
    code, plain = _on_a_terminal(root, "plan", "--sandbox", "--no-color")
    assert code == 0, plain
    assert "Plan: 4 to add" in plain
    assert "\x1b[" not in plain

    applied = cli(root, "apply", "--auto-approve", "--sandbox", "--no-color")
    assert applied.returncode == 0, applied.stderr
    assert "Apply complete! Resources: 4 added" in applied.stdout
    # before the command still works
    again = cli(root, "--sandbox", "--no-color", "plan", "--detailed-exitcode")
    assert again.returncode == 0, again.stdout + again.stderr


def test_sandbox_state_that_cannot_be_used_is_a_plain_error(tmp_path: Path) -> None:
    root = tmp_path / "quickstart"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns(".assistsync", "assistsync.lock*"))
    (root / ".assistsync").write_text("not a directory\n", encoding="utf-8")
    result = cli(root, "--sandbox", "plan")
    assert result.returncode == 1, result.stderr
    assert ".assistsync/: cannot create assistsync's state directory" in result.stderr
    assert str(tmp_path) not in result.stderr  # paths are relative to the project
    assert "internal error" not in result.stderr

    (root / ".assistsync").unlink()
    (root / ".assistsync").mkdir()
    (root / ".assistsync" / "sandbox.db").write_text("garbage " * 100, encoding="utf-8")
    result = cli(root, "--sandbox", "plan")
    assert result.returncode == 1, result.stderr
    assert "is not a usable database" in result.stderr
    assert "Remove it" in result.stderr


def test_a_current_directory_deleted_under_the_shell_is_a_usage_error(tmp_path: Path) -> None:
    gone = tmp_path / "gone"
    gone.mkdir()
    script = 'rmdir "$PWD" && exec "$0" -m assistsync validate'
    result = run(["sh", "-c", script, sys.executable], cwd=gone)
    assert result.returncode == 1, result.stderr
    assert "cannot use the current directory as the project directory" in result.stderr
    assert "internal error" not in result.stderr


def test_a_missing_project_directory_is_exit_1_before_or_after_the_command(tmp_path: Path) -> None:
    missing = str(tmp_path / "no" / "such" / "dir")
    for args in (["-C", missing, "validate"], ["plan", "-C", missing]):
        result = run([sys.executable, "-m", "assistsync", *args])
        assert result.returncode == 1, result.stderr
        assert "does not exist" in result.stderr
        assert "internal error" not in result.stderr
