"""assistsync inside GitHub Actions: what the composite ``action.yml`` runs.

``python -m assistsync.github plan|apply`` is the action's one entry point (see
:mod:`assistsync.github.__main__`). It plans once — one fetch of the live state — and renders the
markdown comment, the job summary and the JSON plan from that same ``Plan`` value; apply runs
the ``assistsync apply`` command itself and reports its outcome.

Modules: :mod:`.commands` (workflow commands, outputs, job summary: the runner's text
protocols), :mod:`.comment` (the sticky pull-request comment, pure), :mod:`.rest` (the GitHub
REST calls, httpx), :mod:`.event` (the runner's environment), :mod:`.plan` and :mod:`.apply`
(the two modes), :mod:`.gitlock` (committing the lock file back).
"""
