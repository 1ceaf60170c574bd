"""Decode untrusted image bytes into an 8-bit RGB ``PIL.Image``, safely.

Guards: only PNG and JPEG; the pixel count is checked from the header *before* decoding
(decompression bombs); truncated files are refused, never half-read; every mode is mapped to RGB
the same way in training and serving (grey, palette, alpha, CMYK, 16-bit and float).
"""

from __future__ import annotations

import io
import warnings

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from .errors import PayloadTooLargeError, UnprocessableEntityError, UnsupportedMediaTypeError

ALLOWED_FORMATS = frozenset({"PNG", "JPEG"})
MAX_DICOM_FRAMES = 1024
# 4096 x 4096: above the 2048 x 2048 regions we serve, far below what would exhaust Lambda memory.
DEFAULT_MAX_PIXELS = 4096 * 4096

# Pillow must never silently decode a truncated file as a partly grey image.
ImageFile.LOAD_TRUNCATED_IMAGES = False


def _to_rgb(img: Image.Image) -> Image.Image:
    """Map any Pillow mode to 8-bit RGB."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        # 16-bit and float scans rarely use their full range (12-bit CT in 16-bit containers):
        # stretch min..max to 0..255 so contrast survives, as a radiology viewer would window it.
        arr = np.asarray(img, dtype=np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        scaled = np.zeros_like(arr) if hi <= lo else (arr - lo) * (255.0 / (hi - lo))
        img = Image.fromarray(np.clip(np.rint(scaled), 0, 255).astype(np.uint8), mode="L")
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        # Transparent pixels become white: slide background and paper are white, black is tissue.
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba)
    return img.convert("RGB")  # L, P, CMYK, YCbCr, 1 and RGB(A) all land here


def decode_image(data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS, min_side: int = 1) -> Image.Image:
    """Decode PNG/JPEG ``data`` into an RGB image, EXIF orientation applied.

    Parameters
    ----------
    data:
        The raw file bytes.
    max_pixels:
        Width x height allowed, checked from the header before any pixel is decoded.
    min_side:
        Smallest width or height accepted.

    Raises
    ------
    UnsupportedMediaTypeError
        ``not_an_image`` (unidentifiable bytes) or ``unsupported_image_format`` (not PNG/JPEG).
    PayloadTooLargeError
        ``image_too_large`` when width x height exceeds ``max_pixels``.
    UnprocessableEntityError
        ``corrupt_image`` (truncated or undecodable) or ``image_too_small``.
    """
    if looks_like_dicom(data):  # its preamble often reads as a TIFF header: say what it really is
        raise UnsupportedMediaTypeError("unsupported_image_format", "DICOM is not accepted on this route; send PNG or JPEG.")
    try:
        with warnings.catch_warnings():
            # Pillow's own bomb check warns, then errors at 2x its limit; ours runs first.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise UnsupportedMediaTypeError("not_an_image", "The bytes are not a PNG or JPEG image.")
    except Image.DecompressionBombError:
        raise PayloadTooLargeError("image_too_large", "The image has too many pixels.")
    except (OSError, ValueError, SyntaxError) as exc:
        raise UnprocessableEntityError("corrupt_image", f"The image header cannot be read: {exc}.")
    if img.format not in ALLOWED_FORMATS:
        raise UnsupportedMediaTypeError(
            "unsupported_image_format", f"{img.format} images are not accepted; send PNG or JPEG."
        )
    width, height = img.size
    if width * height > max_pixels:
        raise PayloadTooLargeError(
            "image_too_large", f"The image is {width}x{height} pixels; the limit is {max_pixels} pixels."
        )
    if min(width, height) < min_side:
        raise UnprocessableEntityError(
            "image_too_small", f"The image is {width}x{height}; each side must be at least {min_side} pixels."
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img.load()
            img = ImageOps.exif_transpose(img)
            return _to_rgb(img)
    except Image.DecompressionBombError:
        raise PayloadTooLargeError("image_too_large", "The image has too many pixels.")
    except (OSError, ValueError, SyntaxError) as exc:
        raise UnprocessableEntityError("corrupt_image", f"The image cannot be decoded (truncated?): {exc}.")


def looks_like_dicom(data: bytes) -> bool:
    """A DICOM Part 10 file ("DICM" after the 128-byte preamble, which may itself look like a TIFF
    header), or a bare data set that starts with a group 0008 element in either byte order (files
    written without a file meta header)."""
    return data[128:132] == b"DICM" or data[:2] in (b"\x08\x00", b"\x00\x08")


def to_grey_rgb(image: Image.Image) -> Image.Image:
    """Greyscale replicated to three channels: removes colour cues a scan's source may carry
    (tinted exports, coloured annotations) while keeping the backbone's 3-channel input."""
    return image.convert("L").convert("RGB")
