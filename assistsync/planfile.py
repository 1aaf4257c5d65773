"""Saved plans: ``plan --out FILE`` writes one, ``apply FILE`` reads it back and checks it.

A saved plan is JSON (it holds no secret), written atomically as the lock is. It records what
it was computed from (fingerprints of the manifests, the live state and the lock) and the API
endpoint it was made against, so that applying it later, or elsewhere, is refused with the
reason instead of doing something nobody reviewed.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import ValidationError

from assistsync.errors import AssistsyncError, StalePlanError
from assistsync.lockfile import write_atomically
from assistsync.model import Plan

SAVED_PLAN_KIND = "assistsync-saved-plan"


def save_plan(path: Path, plan: Plan) -> None:
    """Write ``plan`` to ``path`` atomically; an unwritable place is one clear error."""
    data = {"kind": SAVED_PLAN_KIND, "plan": plan.model_dump(mode="json")}
    try:
        write_atomically(path, json.dumps(data, indent=2, sort_keys=True) + "\n")
    except OSError as exc:
        where = path.parent if not path.parent.is_dir() else path
        problem = (
            "the directory does not exist"
            if not path.parent.is_dir()
            else (exc.strerror or str(exc)).lower()
        )
        raise AssistsyncError(
            f"{where}: cannot save the plan: {problem}. Choose another path with --out."
        ) from exc


def load_plan(path: Path) -> Plan:
    """Read a saved plan, with a clear message when the file is not one."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise AssistsyncError(
            f"{path}: no such saved plan. Create one with 'assistsync plan --out {path}'."
        ) from exc
    except OSError as exc:
        raise AssistsyncError(
            f"{path}: cannot read the saved plan: {exc.strerror or exc}."
        ) from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise AssistsyncError(
            f"{path}: not a saved plan (invalid JSON). Create one with 'assistsync plan --out'."
        ) from exc
    if not isinstance(data, dict) or data.get("kind") != SAVED_PLAN_KIND:
        raise AssistsyncError(
            f"{path}: not a saved plan. Create one with 'assistsync plan --out {path}'."
        )
    try:
        return Plan.model_validate(data["plan"])
    except (ValidationError, KeyError) as exc:
        raise AssistsyncError(
            f"{path}: the saved plan is damaged or from another assistsync version. "
            "Make a new one with 'assistsync plan --out'."
        ) from exc


def check_fresh(saved: Plan, current: Plan) -> Plan:
    """The saved plan to carry out, or ``StalePlanError`` when its inputs changed since it was
    made. ``current`` is a plan made now from the same project, lock and endpoint.

    A plan made against another endpoint is refused for that reason alone (its live state is
    another server's). The saved plan reads its files from where the project is now: the
    manifests' fingerprint covers their content.
    """
    if saved.endpoint != current.endpoint:
        raise StalePlanError(
            f"The saved plan was made against {saved.endpoint or 'another endpoint'}, and this "
            f"apply uses {current.endpoint or 'another endpoint'}. Apply it against the endpoint "
            "it was made for, or make a new plan here with 'assistsync plan --out FILE'."
        )
    reasons = []
    if saved.desired_fingerprint != current.desired_fingerprint:
        reasons.append("the manifests or their files changed")
    if saved.live_fingerprint != current.live_fingerprint:
        reasons.append("the live assistants or files changed")
    if (saved.lock_lineage, saved.lock_serial) != (current.lock_lineage, current.lock_serial):
        reasons.append("the lock file changed")
    if reasons:
        raise StalePlanError(
            "Saved plan is stale: " + "; ".join(reasons) + " since it was made. "
            "Run 'assistsync plan --out FILE' again and review the new plan."
        )
    return saved.model_copy(update={"root": current.root})
