"""A damaged lock file or saved plan is one clear error, never a crash."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assistsync.errors import AssistsyncError
from assistsync.lockfile import read_lock
from assistsync.planfile import load_plan

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(["version", "lineage", "serial", "assistants", "files", "kind", "plan"])
            | st.text(max_size=6),
            inner,
            max_size=4,
        )
    ),
    max_leaves=10,
)
texts = json_values.map(json.dumps) | st.text(max_size=60)
EXAMPLES = int(os.environ.get("ASSISTSYNC_FUZZ_EXAMPLES", "300"))


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=texts)
def test_damaged_lock_is_a_clear_error(text: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "assistsync.lock"
        path.write_text(text, encoding="utf-8", errors="replace")
        try:
            read_lock(path)
        except AssistsyncError as exc:
            assert str(path) in exc.message  # noqa: PT017


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    text=texts | json_values.map(lambda v: json.dumps({"kind": "assistsync-saved-plan", "plan": v}))
)
def test_damaged_saved_plan_is_a_clear_error(text: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "plan.json"
        path.write_text(text, encoding="utf-8", errors="replace")
        try:
            load_plan(path)
        except AssistsyncError as exc:
            assert str(path) in exc.message  # noqa: PT017
