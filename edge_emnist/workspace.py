"""Where a user's own work goes by default, and where the committed models and results live.

A user's runs, exports, measurements and reports go under `runs/` (ignored by git). The shipped models
(`exported/`) and the committed results (`benchmarks/`) change only when a command is pointed at them
explicitly; the read-only commands (`report`, `pick`) read the committed measurements by default.
"""

from pathlib import Path

WORKSPACE = Path("runs")
USER_EXPORTS = WORKSPACE / "exported"
USER_RESULTS = WORKSPACE / "bench.jsonl"
USER_REPORT = WORKSPACE / "report"
USER_ROBUSTNESS = WORKSPACE / "robustness.jsonl"
USER_PROFILES = WORKSPACE / "profiles.jsonl"

SHIPPED_EXPORTS = Path("exported")
COMMITTED_RESULTS = Path("benchmarks/results/bench.jsonl")
NOT_SHIPPED = Path("benchmarks/results/not-shipped")  # measured artifacts too big to ship: their cards stay here
COMMITTED_REPORT = Path("benchmarks/report")
COMMITTED_ROBUSTNESS = Path("benchmarks/results/robustness.jsonl")
COMMITTED_PROFILES = Path("benchmarks/results/profiles.jsonl")
