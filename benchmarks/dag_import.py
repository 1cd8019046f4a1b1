"""Time the import of each DAG file in a fresh interpreter, the way the DAG processor parses it.

``airflow.sdk`` is imported first and not counted: the DAG processor has it loaded already. Run
with ``python -m benchmarks.dag_import``; ``make bench`` prints it too.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

DAGS = Path(__file__).resolve().parents[1] / "dags"
_PROBE = (
    "import json, runpy, time, airflow.sdk; t = time.perf_counter(); runpy.run_path({path!r}); "
    "print(json.dumps(time.perf_counter() - t))"
)


def time_dag_file(path: Path, repeat: int = 3) -> float:
    """Best of ``repeat`` fresh-process imports, in seconds."""
    runs = []
    for _ in range(repeat):
        out = subprocess.run(
            [sys.executable, "-c", _PROBE.format(path=str(path))], check=True, capture_output=True, text=True
        ).stdout
        runs.append(json.loads(out.strip().splitlines()[-1]))
    return min(runs)


def main() -> int:
    print(f"{'DAG file':<48} {'import (s)':>10}")
    worst = 0.0
    for path in sorted(DAGS.glob("*.py")):
        seconds = time_dag_file(path)
        worst = max(worst, seconds)
        print(f"{path.name:<48} {seconds:>10.3f}")
    print(f"slowest DAG file import: {worst:.3f} s (target: well under 1 s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
