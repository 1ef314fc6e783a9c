"""The one image pipeline that every patch passes, real or synthetic. No Django here.

Real patches (224x224 TIFF in NCT-CRC-HE-100K) and generated ones (128x128 tensors) both end as a
128x128 8-bit RGB image (or the square size a dataset is imported at), encoded by `encode_png` with
the same settings and no metadata, so that nothing in the bytes of a patch tells where it came from.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, UnidentifiedImageError
from torchstain.numpy.normalizers import NumpyReinhardNormalizer

PATCH_SIZE = 128  # the paper's size and the default; a dataset may be imported at another (`SIZE_RANGE`)
SIZE_RANGE = (32, 1024)
# Downsampling filter for every real patch (224 -> 128 px): Lanczos (a windowed sinc) keeps the
# fine chromatin texture that pathologists look at, with proper anti-aliasing. One filter for all.
RESAMPLE = Image.Resampling.LANCZOS
RESAMPLE_NAME = "PIL LANCZOS (antialiased), 8-bit RGB"
ACCEPTED_FORMATS = ("TIFF", "PNG", "JPEG")
# Fixed PNG encoder settings: zlib level 6, no optimisation pass, no text/ICC/EXIF chunks.
PNG_COMPRESS_LEVEL = 6
PIPELINE_VERSION = "1"


class ImageRejected(ValueError):
    """The file is not a usable patch; the message says why, for the import report."""


@dataclass(frozen=True)
class DecodedPatch:
    image: Image.Image  # the size x size RGB derivative
    source_format: str
    source_size: tuple[int, int]


def size_problem(size: int) -> str:
    """Why `size` cannot be a dataset's patch size ("" when it can)."""
    low, high = SIZE_RANGE
    return "" if low <= size <= high else f"a patch size must be from {low} to {high} px, got {size}"


def image_size(data: bytes) -> tuple[int, int] | None:
    """An image's (width, height) from its header alone (no pixel decoded); None when it is no image."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                return image.size
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError, ValueError):
        return None


def decode_patch(data: bytes, *, max_pixels: int, size: int = PATCH_SIZE) -> DecodedPatch:
    """Decode one source image and make its size x size RGB derivative, or raise ImageRejected.

    Larger sources are downsampled with the one filter (`RESAMPLE`); smaller ones are refused, never
    upsampled (an upsampled patch carries interpolation traces that a reader could learn)."""
    try:
        # Image.open reads only the header: sizes are checked before any pixel is decoded.
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise ImageRejected("not an image (no TIFF, PNG or JPEG header)") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageRejected("decompression bomb: the image declares too many pixels") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageRejected(f"corrupt image header: {exc}") from None
    with image:
        if image.format not in ACCEPTED_FORMATS:
            raise ImageRejected(f"unsupported format {image.format}: expected TIFF, PNG or JPEG")
        width, height = image.size
        if width * height > max_pixels:
            raise ImageRejected(
                f"decompression bomb: {width}x{height} pixels is over the limit of {max_pixels:,}"
            )
        frames = int(getattr(image, "n_frames", 1))
        if frames > 1:
            raise ImageRejected(f"unexpected multi-page image ({frames} frames)")
        if image.mode != "RGB":
            raise ImageRejected(
                f"unexpected mode {image.mode} ({_describe_mode(image.mode)}): expected 8-bit RGB"
            )
        if width != height:
            raise ImageRejected(f"unexpected size {width}x{height}: expected a square patch")
        if width < size:
            raise ImageRejected(f"unexpected size {width}x{height}: smaller than {size}x{size}")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                image.load()
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombWarning) as exc:
            raise ImageRejected(f"corrupt or truncated image: {exc}") from None
        derivative = image.resize((size, size), RESAMPLE) if image.size != (size, size) else image
        # Rebuild from raw pixels: the derivative carries no info dict, ICC profile or EXIF.
        clean = Image.frombytes("RGB", derivative.size, derivative.tobytes())
        return DecodedPatch(image=clean, source_format=str(image.format), source_size=(width, height))


def _describe_mode(mode: str) -> str:
    return {
        "L": "greyscale",
        "LA": "greyscale with alpha",
        "1": "1-bit",
        "P": "palette",
        "RGBA": "RGB with alpha",
        "CMYK": "CMYK",
        "I;16": "16-bit",
        "I;16B": "16-bit",
        "I;16L": "16-bit",
        "I": "32-bit integer",
        "F": "32-bit float",
    }.get(mode, "not 8-bit RGB")


def from_array(pixels: np.ndarray) -> Image.Image:
    """A [size, size, 3] uint8 array (a generated patch) as an image of the same pipeline."""
    size = pixels.shape[0] if pixels.ndim == 3 else 0
    if pixels.dtype != np.uint8 or pixels.shape != (size, size, 3) or size_problem(size):
        raise ValueError(
            f"expected a square uint8 array of shape (N, N, 3), got {pixels.dtype} {pixels.shape}"
        )
    return Image.frombytes("RGB", (size, size), np.ascontiguousarray(pixels).tobytes())


def content_hash(image: Image.Image) -> str:
    """SHA-256 of the derivative's pixels: the same picture gives the same hash whatever its file."""
    return hashlib.sha256(image.tobytes()).hexdigest()


def _check_patch(image: Image.Image) -> None:
    width, height = image.size
    if image.mode != "RGB" or width != height or size_problem(width):
        raise ValueError(f"expected a square RGB patch, got {image.mode} {image.size}")


def encode_png(image: Image.Image) -> bytes:
    """The one PNG encoding of every patch."""
    _check_patch(image)
    buffer = io.BytesIO()
    Image.frombytes("RGB", image.size, image.tobytes()).save(
        buffer, format="PNG", compress_level=PNG_COMPRESS_LEVEL, optimize=False
    )
    return buffer.getvalue()


def encode_png_blinded(image: Image.Image) -> bytes:
    """The PNG sent to experts: zlib level 0 (stored blocks), so every 128x128 patch has exactly the
    same byte length and neither its size nor its compression ratio tells anything about its source
    (a study's patches all share one size)."""
    _check_patch(image)
    buffer = io.BytesIO()
    Image.frombytes("RGB", image.size, image.tobytes()).save(
        buffer, format="PNG", compress_level=0, optimize=False
    )
    return buffer.getvalue()


def harmonised(pixels: np.ndarray, jpeg_quality: int = 0) -> np.ndarray:
    """A study's final pipeline, the same for real and synthetic patches: with `jpeg_quality` (1-100)
    every patch is JPEG-encoded at that quality (4:4:4, no metadata) and decoded, so that real patches'
    compression traces are matched by synthetic ones; 0 leaves the pixels as they are."""
    if not jpeg_quality:
        return pixels
    buffer = io.BytesIO()
    Image.frombytes("RGB", (pixels.shape[1], pixels.shape[0]), np.ascontiguousarray(pixels).tobytes()).save(
        buffer, format="JPEG", quality=int(jpeg_quality), subsampling=0
    )
    return decode_png_array(buffer.getvalue())


SYMMETRIES = 8  # of a square: four quarter turns, each with or without a mirror


def symmetry(pixels: np.ndarray, k: int) -> np.ndarray:
    """The `k`-th of a square's symmetries (0: as it is): k % 4 quarter turns, mirrored when k >= 4.
    Tissue has no up or down, so every one is as plausible as the original."""
    turned = np.rot90(pixels, k % 4, axes=(0, 1))
    return np.ascontiguousarray(turned[:, ::-1] if k % SYMMETRIES >= 4 else turned)


StainTarget = Sequence[Sequence[float]]  # [[L, a, b] means, [L, a, b] standard deviations]


def stain_target(pixels: np.ndarray) -> list[list[float]]:
    """The Reinhard target of a reference (an [N, N, 3] image, or a mosaic of a pool's patches): the
    means and standard deviations of its L, a and b channels (torchstain's fit)."""
    # torchstain, a maintained implementation of Reinhard (and Macenko), fits and applies the transfer;
    # only its six statistics are kept, so that a study's target is part of its protocol.
    normaliser = NumpyReinhardNormalizer()
    normaliser.fit(np.ascontiguousarray(pixels))
    return [[float(v) for v in normaliser.target_means], [float(v) for v in normaliser.target_stds]]


def stain_normalised(pixels: np.ndarray, target: StainTarget | None) -> np.ndarray:
    """Reinhard stain normalisation to `target` (`stain_target`), the same transfer for every patch, real
    or synthetic; None leaves the pixels as they are. A patch of one flat colour is left as it is (it has
    no spread to match)."""
    if not target:
        return pixels
    normaliser = NumpyReinhardNormalizer()
    normaliser.target_means = np.asarray(target[0], np.float32)
    normaliser.target_stds = np.asarray(target[1], np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = normaliser.normalize(np.ascontiguousarray(pixels))
    return pixels if not np.isfinite(out).all() else out


def blinded_png(
    stored: bytes, jpeg_quality: int = 0, transform: int = 0, stain: StainTarget | None = None
) -> bytes:
    """A stored patch PNG as the bytes experts receive, through the study's final pipeline: its
    symmetry (`transform`, see `symmetry`), its stain normalisation (`stain_normalised`), then
    `harmonised`; made once per study item, never per request."""
    pixels = stain_normalised(symmetry(decode_png_array(stored), transform), stain)
    return encode_png_blinded(from_array(harmonised(pixels, jpeg_quality)))


def decode_png_array(data: bytes, size: int | None = None) -> np.ndarray:
    """A stored patch back to a [size, size, 3] uint8 array: at its own size, or downsampled to `size` by
    the import's one filter (the tissue classifier and the copying check read 128 px whatever a set's
    size); never upsampled."""
    with Image.open(io.BytesIO(data)) as image:
        rgb = image.convert("RGB")
        if size is not None and rgb.size != (size, size):
            if rgb.width < size:
                raise ImageRejected(f"a {rgb.width} px patch is never upsampled to {size} px")
            rgb = rgb.resize((size, size), RESAMPLE)
        return np.asarray(rgb, dtype=np.uint8)
