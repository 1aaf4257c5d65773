"""What apply says as it goes, as a Terraform user expects: one line per resource, timed by an
injected clock; failures of one cause told once; Ctrl-C and Ctrl-D say what happened."""

from __future__ import annotations

import itertools
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

from e2ekit import Api, Project, cli_env

from assistsync import pipeline
from assistsync.api import ApiClient
from assistsync.applier import Applier, Event
from assistsync.cli.output import event_line, failure_lines
from assistsync.model import Lock
from assistsync.server import ServerHandle, start_server


def test_apply_prints_one_line_per_resource_as_terraform_does(project: Project) -> None:
    created = project.run("apply", "--auto-approve")
    assert created.code == 0, created.all
    out = created.out
    assert "file.docs/faq.md: Uploading...\n" in out
    assert re.search(r"file\.docs/faq\.md: Upload complete after \d+\.\ds \[id=file-\w+\]", out)
    assert "assistant.order-helper: Creating...\n" in out
    assert re.search(
        r"assistant\.order-helper: Creation complete after \d+\.\ds \[id=asst_\w+\]", out
    )
    assert re.search(
        r"\nApply complete! Resources: 4 added, 0 changed, 0 destroyed\. Elapsed: \d+\.\ds\.\n$",
        out,
    )
    assert out.index("Creating...") < out.index("Apply complete!")

    project.write("prompts/helper.md", "Be warm.\n")
    manifest = project.root / "assistants/support.yaml"
    text = manifest.read_text()
    manifest.write_text(text[: text.index("  returns-bot:")])
    changed = project.run("apply", "--auto-approve")
    assert changed.code == 0, changed.all
    assert re.search(r"assistant\.order-helper: Modifying\.\.\. \[id=asst_\w+\]\n", changed.out)
    assert re.search(
        r"assistant\.order-helper: Modifications complete after \d+\.\ds \[id=asst_\w+\]",
        changed.out,
    )
    assert re.search(r"assistant\.returns-bot: Destroying\.\.\. \[id=asst_\w+\]\n", changed.out)
    assert re.search(r"assistant\.returns-bot: Destruction complete after \d+\.\ds\n", changed.out)
    assert re.search(r"file\.docs/returns\.md: Destruction complete after", changed.out)


def _project(root: Path, n: int, files: bool = True) -> None:
    (root / "docs").mkdir(parents=True)
    (root / "assistsync.yaml").write_text("manifests: [bots.yaml]\n")
    (root / "docs" / "a.md").write_text("a\n")
    text = "assistants:\n"
    for i in range(n):
        text += f"  bot-{i}:\n    model: gpt-4\n" + ("    files: [docs/a.md]\n" if files else "")
    (root / "bots.yaml").write_text(text)


def test_events_are_timed_by_the_injected_clock(tmp_path: Path) -> None:
    _project(tmp_path, 2)
    ticks = itertools.count()
    events: list[Event] = []
    with start_server(port=0) as server, ApiClient(server.base_url, "sk-x") as client:
        plan = pipeline.plan(client, tmp_path).plan
        saved: list[Lock] = []
        result = Applier(
            client,
            plan,
            save=saved.append,
            concurrency=1,
            events=events.append,
            clock=lambda: next(ticks) * 0.5,
        ).run()
    assert result.ok
    lines = [event_line(e) for e in events]
    assert lines[0] == "file.docs/a.md: Uploading..."
    assert re.fullmatch(r"file\.docs/a\.md: Upload complete after 0\.5s \[id=file-\w+\]", lines[1])
    assert lines[2] == "assistant.bot-0: Creating..."
    assert re.fullmatch(
        r"assistant\.bot-0: Creation complete after 0\.5s \[id=asst_\w+\]", lines[3]
    )
    assert [e.done for e in events if e.phase == "done"] == [1, 2, 3]
    assert result.elapsed == 0.5 * (2 * 3 + 1)  # two ticks per change, plus the run's end
    assert saved[-1].assistants.keys() == {"bot-0", "bot-1"}


def test_an_upload_is_told_complete_before_what_attaches_it_starts(tmp_path: Path) -> None:
    # Assistants that attach a file start on other threads the moment its upload settles; the
    # upload's line must come first, or the output reads as if they ran without it.
    _project(tmp_path, 8)
    events: list[Event] = []
    with start_server(port=0) as server, ApiClient(server.base_url, "sk-x") as client:
        plan = pipeline.plan(client, tmp_path).plan
        result = Applier(client, plan, save=lambda lock: None, events=events.append).run()
    assert result.ok
    uploaded = next(
        i for i, e in enumerate(events) if e.address == "file.docs/a.md" and e.phase == "done"
    )
    starts = [i for i, e in enumerate(events) if e.address.startswith("assistant.")]
    assert len(starts) == 16
    assert uploaded < min(starts)


def test_many_failures_of_one_cause_are_told_once(tmp_path: Path) -> None:
    _project(tmp_path, 6, files=False)
    with start_server(port=0) as server, ApiClient(server.base_url, "sk-x") as client:
        plan = pipeline.plan(client, tmp_path).plan
    # the server is gone now: every create fails the same way
    with ApiClient(server.base_url, "sk-x") as client:
        result = Applier(client, plan, save=lambda _: None).run()
    assert len(result.failures) == 6
    lines = failure_lines(result.failures)
    assert len(lines) == 1, lines
    assert lines[0].startswith("Error: 6 changes failed the same way: ")
    assert "cannot reach" in lines[0]
    assert (
        "(assistant.bot-0, assistant.bot-1, assistant.bot-2, assistant.bot-3, "
        "assistant.bot-4 and 1 more)" in lines[0]
    )


def test_ctrl_c_says_how_many_changes_finished_and_are_recorded(
    project: Project, api: Api, server: ServerHandle
) -> None:
    many = "".join(f"  bot-{i:02d}:\n    model: gpt-4\n" for i in range(40))
    project.write("assistants/support.yaml", "assistants:\n" + many)
    server.faults.latency_ms = 100
    proc = subprocess.Popen(
        [sys.executable, "-m", "assistsync", "-C", str(project.root), "apply", "--auto-approve"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(server.base_url),
    )
    assert proc.stdout is not None
    for line in proc.stdout:  # wait until a change has finished, then press Ctrl-C
        if "Creation complete" in line:
            break
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    server.faults.latency_ms = 0
    match = re.search(
        r"Interrupted: (\d+) changes? finished and (?:are|is) recorded in the lock; (\d+) did "
        r"not start\. Run 'assistsync apply' again to finish the job\.",
        err,
    )
    assert match, err
    finished, not_started = int(match.group(1)), int(match.group(2))
    assert len(api.by_key()) == len(project.lock()["assistants"]) == finished
    assert finished + not_started == 40
    assert "Traceback" not in err
    assert project.run("apply", "--auto-approve").code == 0
    assert len(api.by_key()) == 40


def test_ctrl_d_at_the_prompt_cancels(project: Project, api: Api, server: ServerHandle) -> None:
    import pty

    leader, follower = pty.openpty()
    with subprocess.Popen(
        [sys.executable, "-m", "assistsync", "-C", str(project.root), "apply"],
        stdin=follower,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=cli_env(server.base_url),
    ) as proc:
        os.close(follower)
        os.write(leader, b"\x04")
        out, _ = proc.communicate(timeout=60)
    os.close(leader)
    assert proc.returncode == 1, out
    assert "Apply cancelled." in out
    assert "Interrupted" not in out
    assert api.assistants() == []


def test_on_a_terminal_the_lines_come_with_a_live_progress_bar(
    project: Project, api: Api, server: ServerHandle
) -> None:
    import pty

    many = "".join(f"  bot-{i:02d}:\n    model: gpt-4\n" for i in range(8))
    project.write("assistants/support.yaml", "assistants:\n" + many)
    leader, follower = pty.openpty()
    env = cli_env(server.base_url)
    env.pop("NO_COLOR")
    env["TERM"] = "xterm"
    with subprocess.Popen(
        [sys.executable, "-m", "assistsync", "-C", str(project.root), "apply", "--auto-approve"],
        stdin=subprocess.DEVNULL,
        stdout=follower,
        stderr=follower,
        env=env,
    ) as proc:
        os.close(follower)
        chunks = []
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the terminal closed: the process is done
                break
            if not chunk:
                break
            chunks.append(chunk)
        proc.wait(timeout=60)
    os.close(leader)
    out = b"".join(chunks).decode("utf-8", "replace")
    assert proc.returncode == 0, out
    assert "assistant.bot-07: Creation complete after" in out
    assert re.search(r"apply .*\d/8", out), out  # the bar's live summary: done/total
    assert "Apply complete! Resources: 8 added, 0 changed, 0 destroyed." in out
    assert "Traceback" not in out
    assert len(api.by_key()) == 8


def test_after_a_failed_lock_write_no_new_change_starts(tmp_path: Path) -> None:
    from assistsync.errors import LockWriteError

    _project(tmp_path, 12, files=False)
    writes: list[Lock] = []

    def save(lock: Lock) -> None:  # the disk fills up after the third write
        if len(writes) == 3:
            raise LockWriteError("assistsync.lock: cannot write", reason="No space left on device")
        writes.append(lock)

    with start_server(port=0) as server, ApiClient(server.base_url, "sk-x") as client:
        plan = pipeline.plan(client, tmp_path).plan
        result = Applier(client, plan, save=save, concurrency=1).run()
        live = Api(server.base_url)
        try:
            created = len(live.by_key())
        finally:
            live.http.close()
    assert result.lock_error is not None
    assert not result.ok
    assert result.made == created == len(result.lock.assistants)
    assert result.recorded == len(writes[-1].assistants) < result.made
    assert result.not_started == 12 - result.made > 0  # it stopped: the rest never started
