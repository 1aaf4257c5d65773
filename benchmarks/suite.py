"""The cases: each workload run by assistsync (the real CLI) and by the SDK baseline, each
against its own fresh server subprocess, with the floor computed from the workload."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import re
import shutil
import statistics
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.floors import Floor, apply_floor, plan_floor
from benchmarks.measure import Run, run_measured
from benchmarks.runs import measure as measure_runs
from benchmarks.server import API_KEY, ServerProcess, ServerStats
from benchmarks.workload import BASELINE_TAG, Workload, edit, generate, write_large_project
from benchmarks.workload import write_project as write_workload

REPO = Path(__file__).resolve().parent.parent
TAG = "assistsync_key"

Log = Callable[[str], None]


@dataclass(frozen=True)
class Options:
    """What to run (``python -m benchmarks --help`` documents each)."""

    sizes: tuple[int, ...] = (100, 1000)
    latency_ms: float = 25.0
    rate_limit_rpm: int = 3000
    concurrency: int = 8
    large_file_mb: int = 200
    startup_runs: int = 5
    repeats: int = 3
    """Runs of each read-only case (plans, validate); the median is reported."""
    seed: int = 1
    baseline: bool = True
    growth: tuple[int, ...] = ()
    """Sizes of the growth rows (assistsync only: apply from empty and plan, CPU per assistant)."""
    server_load: int = 2000
    """Requests per server-throughput case (0: no server rows)."""
    server_before: Path | None = None
    """Another checkout whose server is measured beside this one's (the "before")."""
    only_growth: bool = False
    """Run the growth rows alone (a separate, long run)."""
    only_server: bool = False
    """Run the server-throughput rows alone (with ``server_before``: the before/after)."""
    threads: int = 8
    """Pool size of the second SDK baseline (the same calls on a ``ThreadPoolExecutor``)."""


@dataclass
class Side:
    """One client's measurement of one case (``note`` says why a value is missing)."""

    wall_s: float | None = None
    span_s: float | None = None
    requests: int | None = None
    rate_limited: int = 0
    maxrss_bytes: int | None = None
    cpu_s: float | None = None
    """The client's own CPU time (user + system)."""
    failures: int = 0
    ok: bool = True
    note: str = ""
    server_ms_per_request: float | None = None
    """Mean time a request spent in the server, injected latency included."""
    samples: int = 1
    """Runs measured; the row shows the one with the median wall time."""


@dataclass
class CaseResult:
    """One row of the table."""

    case: str
    n: int
    changes: int | None
    floor: Floor | None
    ours: Side
    baseline: Side
    kind: str = ""
    """``plan``, ``apply-empty``, ``apply-edit``, ``apply-rate``, ``local-validate``,
    ``local-plan``, ``large``, ``help``, ``version``, ``plan-fresh``, ``growth-apply``,
    ``growth-plan``, ``server``: the targets find their rows by it."""
    extra: dict[str, float] = field(default_factory=dict)
    threaded: Side = field(default_factory=lambda: Side(note="n/a"))
    """The SDK script with a thread pool (``Options.threads``); apply rows only."""


def baseline_status() -> str | None:
    """None when the SDK baseline can run, otherwise why not (shown in its columns)."""
    if importlib.util.find_spec("openai") is None:
        return "not installed"
    version = importlib.metadata.version("openai")
    if version != "1.20.0":
        return f"openai {version} installed; the baseline needs 1.20.0"
    return None


def _env(base_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    env.update({"OPENAI_BASE_URL": base_url, "OPENAI_API_KEY": API_KEY, "NO_COLOR": "1"})
    env.pop("PYTHONPROFILEIMPORTTIME", None)
    return env


_FAILED = re.compile(r"Apply failed: (\d+) change")


class Suite:
    """Runs every case into ``results``; ``work`` holds projects and every run's output."""

    def __init__(self, options: Options, work: Path, log: Log) -> None:
        self.o = options
        self.work = work
        self.log = log
        self.lat = options.latency_ms / 1000
        self.results: list[CaseResult] = []
        self.baseline_missing = None if options.baseline else "skipped (--no-baseline)"
        if self.baseline_missing is None:
            self.baseline_missing = baseline_status()
        self.runs: list[dict[str, object]] = []
        """The runs case (:mod:`benchmarks.runs`): one dict per (mode, concurrency)."""

    # -- running one client -------------------------------------------------------------------

    def _ours(self, server: ServerProcess, root: Path, label: str, *args: str) -> Run:
        argv = [sys.executable, "-m", "assistsync", "-C", str(root), *args]
        run = run_measured(
            argv, env=_env(server.base_url), cwd=REPO, out_dir=self.work / "logs", label=label
        )
        if "Traceback" in run.stderr:
            raise RuntimeError(f"assistsync crashed in {label}:\n{run.stderr[-3000:]}")
        return run

    def _baseline(
        self, server: ServerProcess, root: Path, label: str, mode: str, threads: int = 1
    ) -> Run:
        argv = [sys.executable, "-m", "benchmarks.baseline", str(root), mode]
        if threads > 1:
            argv += ["--threads", str(threads)]
        run = run_measured(
            argv, env=_env(server.base_url), cwd=REPO, out_dir=self.work / "logs", label=label
        )
        if "Traceback" in run.stderr:
            raise RuntimeError(f"the baseline crashed in {label}:\n{run.stderr[-3000:]}")
        return run

    def _measure(
        self,
        server: ServerProcess,
        go: Callable[[], Run],
        check: Callable[[Run], tuple[bool, int, str]],
        *,
        repeats: int = 1,
    ) -> Side:
        """Run ``go`` (``repeats`` times for read-only cases) and keep the median run."""
        sides = []
        for _ in range(max(1, repeats)):
            server.reset()
            run = go()
            stats: ServerStats = server.stats()
            ok, failures, note = check(run)
            sides.append(
                Side(
                    wall_s=run.wall_s,
                    span_s=stats.span_s,
                    requests=stats.requests,
                    rate_limited=stats.rate_limited,
                    maxrss_bytes=run.maxrss_bytes,
                    cpu_s=run.cpu_s,
                    failures=failures,
                    ok=ok,
                    note=note,
                    server_ms_per_request=(
                        stats.handler_s / stats.requests * 1000 if stats.requests else None
                    ),
                    samples=max(1, repeats),
                )
            )
        sides.sort(key=lambda s: s.wall_s or 0.0)
        middle = sides[len(sides) // 2]
        if not all(s.ok for s in sides):
            bad = next(s for s in sides if not s.ok)
            middle.ok, middle.note = False, bad.note
        return middle

    @staticmethod
    def _apply_check(
        expect: tuple[int, int] | None,
        server: ServerProcess,
        tag: str,
        failures_of: Callable[[Run], int],
    ) -> Callable[[Run], tuple[bool, int, str]]:
        """A run is ok when it exits 0 and the server holds what the workload expects."""

        def check(run: Run) -> tuple[bool, int, str]:
            failures = failures_of(run)
            notes = []
            if run.returncode != 0:
                notes.append(f"exit {run.returncode}, {failures} failed")
            if expect is not None:
                census = server.census(tag)
                if census != expect:
                    notes.append(f"server holds {census}, expected {expect}")
            return (not notes, failures, "; ".join(notes))

        return check

    @staticmethod
    def _ours_apply_check(
        expect: tuple[int, int] | None, server: ServerProcess
    ) -> Callable[[Run], tuple[bool, int, str]]:
        def failures_of(run: Run) -> int:
            m = _FAILED.search(run.stderr)
            return int(m.group(1)) if m else 0

        return Suite._apply_check(expect, server, TAG, failures_of)

    @staticmethod
    def _base_apply_check(
        expect: tuple[int, int] | None, server: ServerProcess
    ) -> Callable[[Run], tuple[bool, int, str]]:
        def failures_of(run: Run) -> int:
            lines = run.stdout.strip().splitlines()
            return int((json.loads(lines[-1]) if lines else {}).get("failed", 0))

        return Suite._apply_check(expect, server, BASELINE_TAG, failures_of)

    @staticmethod
    def _ours_plan_check(run: Run) -> tuple[bool, int, str]:
        if run.returncode != 0 or "No changes." not in run.stdout:
            return (False, 0, f"exit {run.returncode}; expected 'No changes.'")
        return (True, 0, "")

    @staticmethod
    def _base_plan_check(run: Run) -> tuple[bool, int, str]:
        counts = json.loads(run.stdout.strip().splitlines()[-1])
        pending = sum(v for k, v in counts.items() if k != "failed")
        return (pending == 0, 0, "" if pending == 0 else f"saw {pending} changes")

    def _unavailable(self) -> Side:
        return Side(ok=True, note=self.baseline_missing or "")

    # -- the cases ------------------------------------------------------------------------------

    def run(self) -> list[CaseResult]:
        if self.o.only_server:
            self.server_rows()
            return self.results
        if self.o.only_growth:
            for n in self.o.growth:
                self.growth(n)
            return self.results
        for n in self.o.sizes:
            self.size(n)
        for n in self.o.growth:
            self.growth(n)
        if self.o.server_load:
            self.server_rows()
        self.large()
        self.startup()
        self.runs = measure_runs(self.work, self.log, self.o.sizes, baseline_status())
        return self.results

    def _copy(self, template: Path, dest: Path) -> Path:
        if dest.exists():
            shutil.rmtree(dest)
        shutil.copytree(template, dest)
        return dest

    def size(self, n: int) -> None:
        """Plan, apply from empty, apply an edit, apply under a rate limit, local cost."""
        o = self.o
        wl = generate(n, seed=o.seed)
        base = self.work / f"n{n}"
        template = base / "template"
        self.log(f"N={n}: writing the project")
        if template.exists():
            shutil.rmtree(template)
        write_workload(wl, template)
        used = len(wl.used_files)
        p = o.concurrency
        empty = apply_floor(0, [used, n], latency_s=self.lat, parallelism=p)
        plan = plan_floor(n, self.lat)
        local = plan_floor(n, 0)
        rated = apply_floor(
            0, [used, n], latency_s=self.lat, parallelism=p, rate_limit_rpm=o.rate_limit_rpm
        )

        # Edits are computed on a scratch copy so that both clients see the same edit.
        scratch = self._copy(template, base / "scratch")
        ed = edit(wl, scratch)
        edit_phases = [len(ed.changed_files), len(ed.updated), len(ed.changed_files)]
        edited = apply_floor(n, edit_phases, latency_s=self.lat, parallelism=p)
        shutil.rmtree(scratch)

        rows = {
            "apply-empty": CaseResult(
                "apply from empty", n, used + n, empty, Side(), Side(), "apply-empty"
            ),
            "plan": CaseResult(
                "plan, no changes, same checkout again", n, 0, plan, Side(), Side(), "plan"
            ),
            "plan-fresh": CaseResult(
                "plan, no changes, fresh checkout", n, 0, plan, Side(), Side(), "plan-fresh"
            ),
            "apply-edit": CaseResult(
                f"apply: {len(ed.edited)} edited, {len(ed.changed_files)} files changed",
                n,
                sum(edit_phases),
                edited,
                Side(),
                Side(),
                "apply-edit",
            ),
            "apply-rate": CaseResult(
                f"apply from empty, {o.rate_limit_rpm} req/min limit",
                n,
                used + n,
                rated,
                Side(),
                Side(),
                "apply-rate",
            ),
            "local-validate": CaseResult(
                "validate (local)", n, None, None, Side(), Side(), "local-validate"
            ),
            "local-plan": CaseResult(
                "plan, 0 ms latency (validate + fetch + plan)",
                n,
                0,
                local,
                Side(),
                Side(),
                "local-plan",
            ),
        }
        for side in ("ours", "baseline", "threaded"):
            if side != "ours" and self.baseline_missing:
                for row in rows.values():
                    if side == "baseline":
                        row.baseline = self._unavailable()
                    else:
                        row.threaded = self._unavailable()
                continue
            self._size_side(side, n, wl, template, base, used, rows)
        rows["plan-fresh"].baseline = Side(note="as above (no cache)")
        self.results.extend(rows.values())

    def _size_side(
        self,
        side: str,
        n: int,
        wl: Workload,
        template: Path,
        base: Path,
        used: int,
        rows: dict[str, CaseResult],
    ) -> None:
        o = self.o
        ours = side == "ours"
        threads = o.threads if side == "threaded" else 1
        root = self._copy(template, base / side)
        tag = f"n{n}-{side}"

        def apply(server: ServerProcess, where: Path, label: str, expect: tuple[int, int]) -> Side:
            if ours:
                return self._measure(
                    server,
                    lambda: self._ours(
                        server,
                        where,
                        label,
                        "apply",
                        "--auto-approve",
                        "--concurrency",
                        str(o.concurrency),
                    ),
                    self._ours_apply_check(expect, server),
                )
            return self._measure(
                server,
                lambda: self._baseline(server, where, label, "apply", threads),
                self._base_apply_check(expect, server),
            )

        def plan(server: ServerProcess, label: str) -> Side:
            if ours:
                return self._measure(
                    server,
                    lambda: self._ours(server, root, label, "plan"),
                    self._ours_plan_check,
                    repeats=o.repeats,
                )
            return self._measure(
                server,
                lambda: self._baseline(server, root, label, "plan"),
                self._base_plan_check,
                repeats=o.repeats,
            )

        def put(kind: str, value: Side) -> None:
            if ours:
                rows[kind].ours = value
            elif threads > 1:
                rows[kind].threaded = value
            else:
                rows[kind].baseline = value

        if threads > 1:
            with ServerProcess(self.work / "logs" / tag, latency_ms=o.latency_ms) as server:
                self.log(f"N={n} SDK x{threads}: apply from empty")
                put("apply-empty", apply(server, root, f"{tag}-apply-empty", (n, used)))
                self.log(f"N={n} SDK x{threads}: apply an edit")
                edit(wl, root)
                put("apply-edit", apply(server, root, f"{tag}-apply-edit", (n, used)))
            return

        with ServerProcess(self.work / "logs" / tag, latency_ms=o.latency_ms) as server:
            self.log(f"N={n} {side}: apply from empty")
            put("apply-empty", apply(server, root, f"{tag}-apply-empty", (n, used)))
            self.log(f"N={n} {side}: plan with no changes")
            put("plan", plan(server, f"{tag}-plan"))
            if ours:
                self.log(f"N={n} {side}: plan with no changes, fresh checkout")
                fresh = base / f"{side}-fresh"

                def fresh_plan() -> Run:
                    # what a clone holds: the manifests and the lock, no .assistsync/
                    self._copy(root, fresh)
                    shutil.rmtree(fresh / ".assistsync", ignore_errors=True)
                    return self._ours(server, fresh, f"{tag}-plan-fresh", "plan")

                put(
                    "plan-fresh",
                    self._measure(server, fresh_plan, self._ours_plan_check, repeats=o.repeats),
                )
                shutil.rmtree(fresh, ignore_errors=True)
            self.log(f"N={n} {side}: local cost (0 ms latency)")
            server.set_faults(latency_ms=0, rate_limit_rpm=0)
            if ours:
                put(
                    "local-validate",
                    self._measure(
                        server,
                        lambda: self._ours(server, root, f"{tag}-validate", "validate"),
                        lambda r: (r.returncode == 0, 0, "" if r.returncode == 0 else "invalid"),
                        repeats=o.repeats,
                    ),
                )
            else:
                put("local-validate", Side(note="n/a (reads JSON)"))
            put("local-plan", plan(server, f"{tag}-plan-local"))
            server.set_faults(latency_ms=o.latency_ms, rate_limit_rpm=0)
            self.log(f"N={n} {side}: apply an edit")
            edit(wl, root)
            put("apply-edit", apply(server, root, f"{tag}-apply-edit", (n, used)))

        rated_root = self._copy(template, base / f"{side}-rated")
        with ServerProcess(
            self.work / "logs" / f"{tag}-rated",
            latency_ms=o.latency_ms,
            rate_limit_rpm=o.rate_limit_rpm,
        ) as server:
            self.log(f"N={n} {side}: apply from empty under {o.rate_limit_rpm} req/min")
            put("apply-rate", apply(server, rated_root, f"{tag}-apply-rate", (n, used)))
        shutil.rmtree(rated_root)

    def large(self) -> None:
        """One assistant with one large knowledge file: the client's peak memory."""
        o = self.o
        mb = o.large_file_mb
        template = self.work / "large" / "template"
        self.log(f"large: writing a {mb} MB file")
        if template.exists():
            shutil.rmtree(template)
        write_large_project(template, mb, seed=o.seed)
        floor = apply_floor(0, [1, 1], latency_s=self.lat, parallelism=o.concurrency)
        row = CaseResult(f"apply 1 file of {mb} MB", 1, 2, floor, Side(), Side(), "large")
        for side in ("ours", "baseline"):
            if side == "baseline" and self.baseline_missing:
                row.baseline = self._unavailable()
                continue
            root = self._copy(template, self.work / "large" / side)
            with ServerProcess(
                self.work / "logs" / f"large-{side}", latency_ms=o.latency_ms
            ) as server:
                self.log(f"large {side}: apply")
                if side == "ours":
                    row.ours = self._measure(
                        server,
                        lambda s=server, r=root: self._ours(  # type: ignore[misc]
                            s, r, "large-ours", "apply", "--auto-approve"
                        ),
                        self._ours_apply_check((1, 1), server),
                    )
                else:
                    row.baseline = self._measure(
                        server,
                        lambda s=server, r=root: self._baseline(  # type: ignore[misc]
                            s, r, "large-baseline", "apply"
                        ),
                        self._base_apply_check((1, 1), server),
                    )
                row.extra[f"{side}_server_maxrss_bytes"] = server.stats().maxrss_kb * 1024
            shutil.rmtree(root)
        shutil.rmtree(template)
        self.results.append(row)

    def startup(self) -> None:
        """``assistsync --help`` / ``--version``; floor: a bare interpreter; baseline: the
        import a hand-written SDK script pays before its first call."""
        script = Path(sys.executable).parent / "assistsync"
        command = [str(script)] if script.exists() else [sys.executable, "-m", "assistsync"]
        runs = max(1, self.o.startup_runs)

        def median(argv: list[str], label: str) -> Side:
            samples = [
                run_measured(argv, cwd=REPO, out_dir=self.work / "logs", label=f"{label}-{i}")
                for i in range(runs)
            ]
            bad = [r for r in samples if r.returncode != 0]
            return Side(
                wall_s=statistics.median(r.wall_s for r in samples),
                maxrss_bytes=max(r.maxrss_bytes for r in samples),
                cpu_s=statistics.median(r.cpu_s for r in samples),
                ok=not bad,
                note=f"exit {bad[0].returncode}" if bad else "",
            )

        self.log("start-up: interpreter, assistsync --help/--version, import openai")
        bare = median([sys.executable, "-c", "pass"], "python-bare")
        baseline = (
            median([sys.executable, "-c", "import openai, httpx"], "import-openai")
            if not self.baseline_missing
            else self._unavailable()
        )
        for flag, kind in (("--help", "help"), ("--version", "version")):
            ours = median([*command, flag], f"assistsync{flag}")
            floor = Floor(requests=0, seconds=bare.wall_s or 0.0)
            row = CaseResult(f"assistsync {flag}", 0, None, floor, ours, baseline, kind)
            row.extra["floor_cpu_s"] = bare.cpu_s or 0.0
            self.results.append(row)

    def growth(self, n: int) -> None:
        """assistsync alone at size ``n``: apply from empty and plan, CPU per assistant."""
        o = self.o
        wl = generate(n, seed=o.seed)
        root = self.work / f"growth{n}"
        self.log(f"growth N={n}: writing the project")
        if root.exists():
            shutil.rmtree(root)
        write_workload(wl, root)
        used = len(wl.used_files)
        p = o.concurrency
        empty = apply_floor(0, [used, n], latency_s=self.lat, parallelism=p)
        apply_row = CaseResult(
            "growth: apply from empty", n, used + n, empty, Side(), Side(), "growth-apply"
        )
        plan_row = CaseResult(
            "growth: plan, no changes", n, 0, plan_floor(n, self.lat), Side(), Side(), "growth-plan"
        )
        with ServerProcess(self.work / "logs" / f"growth{n}", latency_ms=o.latency_ms) as server:
            self.log(f"growth N={n}: apply from empty")
            apply_row.ours = self._measure(
                server,
                lambda: self._ours(
                    server,
                    root,
                    f"growth{n}-apply",
                    "apply",
                    "--auto-approve",
                    "--concurrency",
                    str(p),
                ),
                self._ours_apply_check((n, used), server),
            )
            self.log(f"growth N={n}: plan")
            plan_row.ours = self._measure(
                server,
                lambda: self._ours(server, root, f"growth{n}-plan", "plan"),
                self._ours_plan_check,
            )
        for row in (apply_row, plan_row):
            row.baseline = Side(note="not run (growth rows)")
            row.threaded = Side(note="not run (growth rows)")
        shutil.rmtree(root, ignore_errors=True)
        self.results += [apply_row, plan_row]

    def server_rows(self) -> None:
        """The server's throughput: GET and POST /assistants at concurrency 8 and 128, driven by
        the load generator (``benchmarks/load.py``) in a process of its own, each side's CPU
        shown apart; with ``server_before``, the same against that checkout's server first."""
        total = self.o.server_load
        trees: list[tuple[str, Path | None]] = [("", None)]
        if self.o.server_before is not None:
            trees.insert(0, ("before", self.o.server_before))
        for name, tree in trees:
            logs = self.work / "logs" / f"server-load{name}"
            with ServerProcess(logs, latency_ms=0, tree=tree) as server:
                # something to list: a page of 20 (the API's default) of real assistants
                self._load(server, "POST", 8, 40, f"server-seed{name}")
                for method in ("GET", "POST"):
                    for concurrency in (8, 128):
                        self.log(f"server{name and ' ' + name}: {method} at {concurrency}")
                        row = self._load(server, method, concurrency, total, name=name)
                        self.results.append(row)

    def _load(
        self,
        server: ServerProcess,
        method: str,
        concurrency: int,
        total: int,
        label: str = "",
        name: str = "",
    ) -> CaseResult:
        server.reset()
        before = server.stats().cpu_s
        run = run_measured(
            [
                sys.executable,
                "-m",
                "benchmarks.load",
                server.base_url,
                method,
                "/assistants",
                str(concurrency),
                str(total),
            ],
            cwd=REPO,
            out_dir=self.work / "logs",
            label=label or f"server{name}-{method}-{concurrency}",
        )
        stats = server.stats()
        lines = run.stdout.strip().splitlines()
        out = json.loads(lines[-1]) if lines else {"errors": total, "wall_s": 0.0}
        errors = int(out["errors"])
        side = Side(
            wall_s=float(out["wall_s"]),
            requests=stats.requests,
            cpu_s=run.cpu_s,
            maxrss_bytes=run.maxrss_bytes,
            failures=errors,
            ok=run.returncode == 0 and errors == 0,
            note=f"{errors} errors ({out.get('first_error', '')})" if errors else "",
        )
        row = CaseResult(
            f"server{f' ({name})' if name else ''}: {method} /assistants, "
            f"concurrency {concurrency}",
            0,
            None,
            None,
            side,
            Side(note="–"),
            "server",
        )
        row.extra = {
            "before": float(bool(name)),
            "method_post": float(method == "POST"),
            "concurrency": float(concurrency),
            "rps": total / side.wall_s if side.wall_s else 0.0,
            "server_cpu_s": stats.cpu_s - before,
            "server_cpu_ms_per_request": (stats.cpu_s - before) / total * 1000,
            "generator_cpu_ms_per_request": run.cpu_s / total * 1000,
        }
        return row
