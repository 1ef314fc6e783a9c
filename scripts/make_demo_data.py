"""Rebuild demo/data from the 224 px TIFF sample: 128 px PNGs made by the project's own pipeline.

Usage: python scripts/make_demo_data.py ../shared/data/crc-he-sample
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gan import imaging


def main(source: Path, target: Path) -> None:
    count = 0
    for tif in sorted(source.rglob("*.tif")):
        relative = tif.relative_to(source).with_suffix(".png")
        decoded = imaging.decode_patch(tif.read_bytes(), max_pixels=4096 * 4096)
        out = target / relative
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(imaging.encode_png(decoded.image))
        count += 1
    print(f"wrote {count} patches under {target}")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(__file__).resolve().parent.parent / "demo" / "data")
