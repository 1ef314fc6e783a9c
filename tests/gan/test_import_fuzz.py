"""Property-based tests of the import pipeline: any input is imported or rejected cleanly."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gan import imaging
from gan.sources import ImportSource
from tests import images

LIMIT = 4096 * 4096
VALID = [images.rgb_tiff(1), images.rgb_png(2), images.rgb_jpeg(3)]


@settings(max_examples=150, deadline=None, derandomize=True)
@given(data=st.binary(max_size=4096))
def test_random_bytes_are_rejected_cleanly(data: bytes) -> None:
    try:
        decoded = imaging.decode_patch(data, max_pixels=LIMIT)
    except imaging.ImageRejected:
        return
    assert decoded.image.size == (128, 128) and decoded.image.mode == "RGB"


@settings(max_examples=150, deadline=None, derandomize=True)
@given(
    which=st.sampled_from(range(len(VALID))),
    cut=st.floats(0, 1),
    flips=st.lists(st.integers(0, 10**6), max_size=8),
)
def test_damaged_images_are_imported_or_rejected_never_crash(
    which: int, cut: float, flips: list[int]
) -> None:
    data = bytearray(VALID[which][: max(1, int(len(VALID[which]) * cut))])
    for position in flips:
        data[position % len(data)] ^= 0xFF
    try:
        decoded = imaging.decode_patch(bytes(data), max_pixels=LIMIT)
    except imaging.ImageRejected:
        return
    assert decoded.image.size == (128, 128) and decoded.image.mode == "RGB"


member = st.text(alphabet=st.sampled_from(list("abLYMTU./\\\\:-_ ")), min_size=1, max_size=30)


@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(names=st.lists(member, min_size=1, max_size=6, unique=True))
def test_zip_member_names_never_reach_outside(tmp_path: Path, names: list[str]) -> None:
    # Two levels down, so that a member escaping with "../" or "../../" would land inside tmp_path,
    # where the check below sees it (walking pytest's whole temporary tree made this test slow).
    folder = tmp_path / "a" / "b"
    folder.mkdir(parents=True, exist_ok=True)
    archive = folder / "fuzz.zip"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name in names:
            zf.writestr(name, VALID[0])
    archive.write_bytes(buffer.getvalue())
    before = set(tmp_path.rglob("*"))
    with ImportSource(archive, ("LYM", "TUM")) as source:
        for item in source.files():
            assert ".." not in item.path.split("/") and not item.path.startswith("/")
            assert item.tissue_class in {"LYM", "TUM"}
            source.read(item)
    assert set(tmp_path.rglob("*")) == before  # reading a zip writes nothing anywhere
