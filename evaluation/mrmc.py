"""`python -m evaluation.mrmc FILE.csv [--json] [--margin 0.1]`, the command users know: the analysis
itself is `analysis.mrmc`."""

from __future__ import annotations

import sys

from analysis.mrmc import main

if __name__ == "__main__":
    sys.exit(main())
