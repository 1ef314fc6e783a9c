from __future__ import annotations

import io
from typing import Any

import numpy as np
import pytest
from PIL import Image

from gan import imaging
from tests import images

LIMIT = 4096 * 4096


def test_rgb_tiff_becomes_a_128px_rgb_derivative() -> None:
    decoded = imaging.decode_patch(images.rgb_tiff(), max_pixels=LIMIT)
    assert decoded.image.mode == "RGB"
    assert decoded.image.size == (128, 128)
    assert decoded.source_format == "TIFF"
    assert decoded.source_size == (224, 224)


def test_derivative_uses_the_documented_lanczos_filter() -> None:
    source = Image.open(io.BytesIO(images.rgb_png(seed=5)))
    expected = source.convert("RGB").resize((128, 128), Image.Resampling.LANCZOS)
    decoded = imaging.decode_patch(images.rgb_png(seed=5), max_pixels=LIMIT)
    assert decoded.image.tobytes() == expected.tobytes()


@pytest.mark.parametrize("make", [images.rgb_tiff, images.rgb_png, images.rgb_jpeg])
def test_each_accepted_format_is_read(make) -> None:
    assert imaging.decode_patch(make(), max_pixels=LIMIT).image.size == (128, 128)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (images.truncated_tiff(), "corrupt or truncated"),
        (b"this is a text file, not a picture", "not an image"),
        (images.sixteen_bit_png(), "16-bit"),
        (images.rgba_png(), "RGB with alpha"),
        (images.grey_tiff(), "greyscale"),
        (images.png_declaring(5000, 5000), "decompression bomb"),
        (images.png_declaring(100_000, 100_000), "decompression bomb"),
        (images.rgb_png(size=100), "smaller than 128x128"),
    ],
    ids=["truncated-tiff", "not-an-image", "16-bit", "rgba", "greyscale", "bomb", "huge-bomb", "too-small"],
)
def test_bad_input_is_rejected_with_a_reason(data: bytes, reason: str) -> None:
    with pytest.raises(imaging.ImageRejected, match=reason):
        imaging.decode_patch(data, max_pixels=LIMIT)


def test_non_square_image_is_rejected() -> None:
    data = images.encode(Image.new("RGB", (300, 200)), "PNG")
    with pytest.raises(imaging.ImageRejected, match="300x200: expected a square"):
        imaging.decode_patch(data, max_pixels=LIMIT)


def test_png_encoding_carries_no_metadata_chunks() -> None:
    source = Image.fromarray(images.rgb_array(1, 128))
    source.info["dpi"] = (300, 300)
    data = imaging.encode_png(source)
    assert set(images.png_chunk_types(data)) == {b"IHDR", b"IDAT", b"IEND"}


def test_png_encoding_is_lossless_and_deterministic() -> None:
    pixels = images.rgb_array(2, 128)
    first = imaging.encode_png(imaging.from_array(pixels))
    assert first == imaging.encode_png(imaging.from_array(pixels.copy()))
    assert np.array_equal(imaging.decode_png_array(first), pixels)


def test_content_hash_depends_on_pixels_not_container() -> None:
    tiff = imaging.decode_patch(images.rgb_tiff(seed=9), max_pixels=LIMIT)
    png = imaging.decode_patch(images.rgb_png(seed=9), max_pixels=LIMIT)
    other = imaging.decode_patch(images.rgb_png(seed=10), max_pixels=LIMIT)
    assert imaging.content_hash(tiff.image) == imaging.content_hash(png.image)
    assert imaging.content_hash(tiff.image) != imaging.content_hash(other.image)


@pytest.mark.parametrize(
    "shape, dtype",
    [((64, 32, 3), np.uint8), ((16, 16, 3), np.uint8), ((64, 64), np.uint8), ((64, 64, 3), np.float32)],
)
def test_from_array_refuses_what_is_not_a_square_rgb_patch(shape: tuple[int, ...], dtype: Any) -> None:
    with pytest.raises(ValueError, match="square uint8 array"):
        imaging.from_array(np.zeros(shape, dtype=dtype))


def test_patches_of_another_size_keep_it_through_the_pipeline() -> None:
    pixels = np.random.default_rng(0).integers(0, 256, (224, 224, 3), dtype=np.uint8)
    decoded = imaging.decode_patch(imaging.encode_png(imaging.from_array(pixels)), max_pixels=10**6, size=224)
    assert decoded.image.size == (224, 224)  # no resampling at its own size
    assert np.array_equal(np.asarray(decoded.image), pixels)
    smaller = imaging.decode_patch(imaging.encode_png(imaging.from_array(pixels)), max_pixels=10**6, size=96)
    assert smaller.image.size == (96, 96)
    with pytest.raises(imaging.ImageRejected, match="smaller than 256x256"):
        imaging.decode_patch(imaging.encode_png(imaging.from_array(pixels)), max_pixels=10**6, size=256)
