"""Saved plans: ``plan --out FILE`` writes one, ``apply FILE`` reads it back."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import ValidationError

from assistsync.errors import AssistsyncError, StalePlanError
from assistsync.model import Plan

SAVED_PLAN_KIND = "assistsync-saved-plan"


def save_plan(path: Path, plan: Plan) -> None:
    """Write ``plan`` to ``path`` as JSON (it holds no secret)."""
    data = {"kind": SAVED_PLAN_KIND, "plan": plan.model_dump(mode="json")}
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def load_plan(path: Path) -> Plan:
    """Read a saved plan, with a clear message when the file is not one."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise AssistsyncError(f"{path}: cannot read the saved plan: {exc.strerror}.") from exc
    except json.JSONDecodeError as exc:
        raise AssistsyncError(
            f"{path}: not a saved plan (invalid JSON). Create one with 'assistsync plan --out'."
        ) from exc
    if not isinstance(data, dict) or data.get("kind") != SAVED_PLAN_KIND:
        raise AssistsyncError(
            f"{path}: not a saved plan. Create one with 'assistsync plan --out {path}'."
        )
    try:
        return Plan.model_validate(data["plan"])
    except ValidationError as exc:
        raise AssistsyncError(
            f"{path}: the saved plan is damaged or from another assistsync version. "
            "Make a new one with 'assistsync plan --out'."
        ) from exc


def check_fresh(saved: Plan, current: Plan) -> None:
    """Refuse a saved plan whose inputs changed since it was made."""
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
