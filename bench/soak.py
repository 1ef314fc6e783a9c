"""Soak: 50 concurrent experts for 5 minutes against gunicorn + PostgreSQL.

The answer-load benchmark run long: every reader answers at a steady pace (300 answers per second in
all by default, the answer-load target); it prints errors, checks that the answer count is exact, and
samples the resident memory of every gunicorn and PostgreSQL process every 30 seconds.

    python bench/soak.py                      # 5 minutes
    python bench/soak.py --duration 60        # any answer_load.py option may be given
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import answer_load

DEFAULTS = [
    "--experts",
    "50",
    "--duration",
    "300",
    "--rate",
    "300",
    "--answers",
    "1900",  # more than 300 s x 300/s / 50 readers: the run ends by time
    "--memory-every",
    "30",
]

if __name__ == "__main__":
    sys.argv = [sys.argv[0], *DEFAULTS, *sys.argv[1:]]
    answer_load.main()
