"""A misbehaving server (429s, 5xx, lost responses, dropped connections) still converges,
with no duplicate and a lock that reflects what really happened."""

from __future__ import annotations

from pathlib import Path

from e2ekit import Api, Project

from assistsync.server import ServerHandle, start_server


def converged(project: Project, api: Api) -> None:
    plan = project.run("plan", "--detailed-exitcode")
    assert plan.code == 0, plan.all
    keys = [a["metadata"].get("assistsync_key") for a in api.assistants()]
    assert sorted(keys) == ["order-helper", "returns-bot"], "duplicate or missing assistant"
    assert len(api.files()) == 2, "duplicate or missing upload"
    lock = project.lock()
    assert {k: v["id"] for k, v in lock["assistants"].items()} == {
        k: a["id"] for k, a in api.by_key().items()
    }


def test_lost_create_responses_make_no_duplicates(
    project: Project, api: Api, server: ServerHandle
) -> None:
    # every create (2 uploads + 2 assistants) is committed, then its connection is dropped
    server.faults.lose_next = 4
    result = project.run("apply", "--auto-approve")
    assert result.code == 0, result.all
    assert server.faults.lose_next == 0
    converged(project, api)


def test_rate_limits_and_server_errors_are_retried(
    project: Project, api: Api, server: ServerHandle
) -> None:
    server.faults.rate_limit_next = 6
    server.faults.fail_next = 2
    result = project.run("apply", "--auto-approve")
    assert result.code == 0, result.all
    assert server.faults.rate_limit_next == 0
    assert server.faults.fail_next == 0
    converged(project, api)


def test_random_faults_converge_across_runs(
    project: Project, api: Api, server: ServerHandle
) -> None:
    server.faults.seed = 7
    server.faults.error_rate = 0.15
    server.faults.lost_response_rate = 0.25
    for _ in range(6):  # a failed run exits 1 and records what succeeded; re-running converges
        if project.run("apply", "--auto-approve").code == 0:
            break
    server.faults.error_rate = 0
    server.faults.lost_response_rate = 0
    converged(project, api)


def test_a_failed_call_does_not_stop_independent_work(tmp_path: Path, project: Project) -> None:
    # a server that refuses uploads over 1,000 bytes: returns-bot's big file fails, so
    # returns-bot is skipped, while order-helper (and its upload) goes through
    with start_server(port=0, max_upload_bytes=1000) as small:
        proj = Project(project.root, small)
        proj.write("docs/big.md", "x" * 5000)
        api = Api(small.base_url)
        try:
            result = proj.run("apply", "--auto-approve")
            assert result.code == 1
            assert "file.docs/big.md" in result.err
            assert "HTTP 400" in result.err
            assert "request id req_" in result.err
            assert "assistant.returns-bot: skipped: its files were not uploaded (docs/big.md)" in (
                result.err
            )
            assert "3 added" in result.err  # order-helper and two uploads
            lock = proj.lock()
            assert sorted(lock["assistants"]) == ["order-helper"]
            assert sorted(api.by_key()) == ["order-helper"]
            assert {f["id"] for f in lock["files"].values()} == {f["id"] for f in api.files()}

            (proj.root / "docs/big.md").unlink()
            assert proj.run("apply", "--auto-approve").code == 0
            converged(proj, api)
        finally:
            api.http.close()
