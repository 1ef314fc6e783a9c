"""The copying check at the paper's scale: 2,534 synthetic patches against 89,434 training patches.

Times the nearest-neighbour search (batched matrix products) in both feature spaces on random features
of the right shapes (pixel space: 16 x 16 x 3 = 768 values; the tissue classifier's features), and the
pixel features themselves on real-sized patches. Prints the figures.

    python bench/copying_scale.py
    python bench/copying_scale.py --synthetic 2534 --training 89434
"""

from __future__ import annotations

import resource
import sys
import time
from argparse import ArgumentParser, RawDescriptionHelpFormatter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from analysis import copying
from gan.sources import PAPER_SYNTHETIC_COUNT


def main() -> None:
    parser = ArgumentParser(description=__doc__, formatter_class=RawDescriptionHelpFormatter)
    parser.add_argument("--synthetic", type=int, default=PAPER_SYNTHETIC_COUNT)
    parser.add_argument("--training", type=int, default=89434)
    parser.add_argument("--classifier-dim", type=int, default=128)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(2048, 128, 128, 3), dtype=np.uint8)
    start = time.perf_counter()
    copying.pixel_features(images)
    per_second = len(images) / (time.perf_counter() - start)
    print(
        f"pixel features: {per_second:,.0f} patches/s, so {args.training / per_second:.1f} s for "
        f"{args.training:,} training patches"
    )
    for space, dim in (("pixels", 768), ("classifier", args.classifier_dim)):
        synthetic = rng.random((args.synthetic, dim), dtype=np.float32)
        training = rng.random((args.training, dim), dtype=np.float32)
        start = time.perf_counter()
        result = copying.check_space(
            space,
            synthetic,
            training,
            synthetic_ids=list(range(args.synthetic)),
            training_ids=list(range(args.training)),
        )
        elapsed = time.perf_counter() - start
        print(
            f"{space} ({dim} values): {args.synthetic:,} synthetic x {args.training:,} training nearest "
            f"neighbours and the 1,000-patch baseline in {elapsed:.1f} s; {result.n_flagged} flagged"
        )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {peak:.0f} MB")


if __name__ == "__main__":
    main()
