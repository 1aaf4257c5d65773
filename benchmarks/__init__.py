"""Benchmarks of assistsync against the embedded server, its request/time floors and the SDK.

Run ``python -m benchmarks --help`` from the repository root. See ``BENCHMARKS.md`` for the
method, the last committed results and what limits each target.

Layout: :mod:`.workload` writes projects, :mod:`.serve` is the server subprocess and
:mod:`.server` its controller, :mod:`.measure` runs a measured subprocess, :mod:`.floors`
computes the floors, :mod:`.baseline` is the hand-written SDK script, :mod:`.runs` is the runs
case (the SDK running assistants on the echo model), :mod:`.suite` runs the cases and
:mod:`.report` prints the markdown.
"""
