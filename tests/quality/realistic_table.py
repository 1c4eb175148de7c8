"""Print the variant-kind table of the realistic-output suite (docs/metrics.md).

Usage: ``python tests/quality/realistic_table.py [SHARED_DATA_DIR]``.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from quality.realistic import kind_table  # noqa: E402
from quality.test_realistic_outputs import TASKS, suite  # noqa: E402

if __name__ == "__main__":
    data = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[3] / "shared" / "data"
    print(kind_table({task: suite(task, data)[1] for task in TASKS}))
