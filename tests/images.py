"""Image files made by the tests: good patches and every kind of bad input."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from PIL import Image


def rgb_array(seed: int, size: int = 224) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(size, size, 3), dtype=np.uint8)


def encode(image: Image.Image, fmt: str, **params: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **params)
    return buffer.getvalue()


def rgb_tiff(seed: int = 0, size: int = 224) -> bytes:
    return encode(Image.fromarray(rgb_array(seed, size)), "TIFF")


def rgb_png(seed: int = 0, size: int = 224) -> bytes:
    return encode(Image.fromarray(rgb_array(seed, size)), "PNG")


def rgb_jpeg(seed: int = 0, size: int = 224) -> bytes:
    return encode(Image.fromarray(rgb_array(seed, size)), "JPEG", quality=90)


def truncated_tiff(seed: int = 0) -> bytes:
    data = rgb_tiff(seed)
    return data[: len(data) // 3]


def sixteen_bit_png() -> bytes:
    array = np.random.default_rng(1).integers(0, 65535, size=(224, 224), dtype=np.uint16)
    return encode(Image.fromarray(array), "PNG")  # mode I;16


def rgba_png() -> bytes:
    array = np.random.default_rng(2).integers(0, 256, size=(224, 224, 4), dtype=np.uint8)
    return encode(Image.fromarray(array, mode="RGBA"), "PNG")


def grey_tiff() -> bytes:
    array = np.random.default_rng(3).integers(0, 256, size=(224, 224), dtype=np.uint8)
    return encode(Image.fromarray(array, mode="L"), "TIFF")


def _chunk(kind: bytes, body: bytes) -> bytes:
    return (
        struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
    )


def png_declaring(width: int, height: int) -> bytes:
    """A tiny file whose header claims a huge RGB image: a decompression bomb's header."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(b""))
        + _chunk(b"IEND", b"")
    )


def png_chunk_types(data: bytes) -> list[bytes]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    types, offset = [], 8
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        types.append(data[offset + 4 : offset + 8])
        offset += 12 + length
    return types


def png_size(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as image:
        return image.size
