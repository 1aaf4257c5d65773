"""``python -m benchmarks``: run the benchmark suite and print a markdown table."""

from __future__ import annotations

from benchmarks.cli import main

raise SystemExit(main())
