"""``python -m benchmarks``: run every benchmark and write benchmarks/results/README.md."""

from __future__ import annotations

from benchmarks.run import main

raise SystemExit(main())
