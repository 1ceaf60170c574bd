"""Whole-slide images: a pyramidal TIFF, read at the resolution the model was trained on, with
glass found on a thumbnail and never scored.

The IDC patches were cut from 40x scans (~0.25 µm/px) downsampled 16:1 (Janowczyk & Madabhushi
2016; Cruz-Roa et al. 2014): 50x50 px at ~4 µm/px, 200 µm a side. A slide states its level-0
microns per pixel in its resolution tags (or Aperio's ``MPP =`` in the description); a request may
state it for a slide that does not. The reader takes the coarsest pyramid level that is still at
least as fine as 4 µm/px and resamples it by area averaging, so no level is ever upsampled.

tifffile reads the pyramid (pure Python, uncompressed and deflate tiles without extra codecs) from
any seekable file: from S3 it fetches the directories and the chosen level's tiles by byte range.
"""

from __future__ import annotations

import re
import struct
import zlib
from dataclasses import dataclass
from typing import BinaryIO, Callable

import numpy as np
from PIL import Image

from region import BACKGROUND_BRIGHTNESS, BACKGROUND_SATURATION

from oncoserve_runtime import PayloadTooLargeError, UnprocessableEntityError, UnsupportedMediaTypeError

MODEL_MPP = 4.0
MIN_MPP, MAX_MPP = 0.05, 20.0  # what a scanner's level 0 can plausibly be
MAX_LEVEL_PIXELS = 120_000_000  # the level read at once: ~360 MB of RGB on a 1,769 MB function
_CENTIMETRE, _INCH = 3, 2
_APERIO_MPP = re.compile(r"MPP\s*=\s*(\d+(?:\.\d+)?)")


@dataclass(frozen=True)
class SlideImage:
    """The slide at the model's scale (or one band of its tile rows), and how it got there."""

    pixels: np.ndarray  # (height, width, 3) uint8 at MODEL_MPP: tile rows ``band`` of the slide's ``rows``
    level0_mpp: float
    mpp_source: str  # "slide" or "request"
    level: int
    level_mpp: float
    level0_size: tuple[int, int]  # width, height
    rows: int  # whole tiles down the slide at MODEL_MPP
    cols: int  # whole tiles across
    band: range  # the tile rows ``pixels`` holds


def _stated_mpp(page) -> float | None:
    """Level 0's µm/px from the resolution tags, else Aperio's description; None when absent."""
    tags = page.tags
    unit = tags.get("ResolutionUnit")
    resolution = tags.get("XResolution")
    if unit is not None and resolution is not None and int(unit.value) in (_CENTIMETRE, _INCH):
        numerator, denominator = resolution.value
        per_unit = numerator / denominator if denominator else 0.0
        if per_unit > 0:
            mpp = (1e4 if int(unit.value) == _CENTIMETRE else 25_400.0) / per_unit
            if MIN_MPP <= mpp <= MAX_MPP:
                return mpp
    match = _APERIO_MPP.search(str(getattr(page, "description", "") or ""))
    return float(match.group(1)) if match and MIN_MPP <= float(match.group(1)) <= MAX_MPP else None


def read_slide(handle: BinaryIO, *, tile: int, mpp: float | None = None,
               band: Callable[[int], range] | None = None) -> SlideImage:
    """The slide's RGB pixels at :data:`MODEL_MPP`, cut to whole ``tile``-px tiles. ``mpp`` (level
    0's µm/px) is required only for a slide that does not state its own, and overrides nothing a
    slide states. ``band`` maps the slide's number of tile rows to the rows wanted (all by default):
    only the level's tiles under them are read and decoded, so each chunk of a slide pays for its
    own band, not for the whole level.

    Raises
    ------
    UnsupportedMediaTypeError
        ``not_a_slide``: not a TIFF, or tiles compressed with a codec not installed here.
    UnprocessableEntityError
        ``slide_without_mpp``: neither the slide nor the request gives its resolution;
        ``slide_too_coarse``: level 0 is coarser than the model's scale (reading it would upsample).
    PayloadTooLargeError
        ``slide_too_large``: the level to read is over :data:`MAX_LEVEL_PIXELS`.
    """
    import tifffile

    try:
        tif = tifffile.TiffFile(handle)
    except (tifffile.TiffFileError, ValueError, OSError, IndexError, struct.error) as exc:
        raise UnsupportedMediaTypeError("not_a_slide", f"Not a TIFF slide ({type(exc).__name__}).") from None
    with tif:
        if not tif.pages or not tif.series:
            raise UnsupportedMediaTypeError("not_a_slide", "The TIFF holds no image.")
        series = tif.series[0]
        levels = list(series.levels)
        stated = _stated_mpp(levels[0].keyframe)
        level0_mpp, source = (stated, "slide") if stated else (mpp, "request")
        if level0_mpp is None:
            raise UnprocessableEntityError(
                "slide_without_mpp", "The slide states no microns per pixel; send \"mpp\" (level 0's µm/px).")
        if level0_mpp > MODEL_MPP * 1.01:  # reading it would mean upsampling: detail the model needs is not there
            raise UnprocessableEntityError(
                "slide_too_coarse", f"Level 0 is {level0_mpp:g} µm/px; the model needs {MODEL_MPP:g} µm/px or finer.")
        widths = [_width_height(level)[0] for level in levels]
        level_mpps = [level0_mpp * widths[0] / width for width in widths]
        # The coarsest level not coarser than the model's scale (a 1% margin for rounded sizes).
        index = max((i for i, value in enumerate(level_mpps) if value <= MODEL_MPP * 1.01), default=0)
        width, height = _width_height(levels[index])
        if width * height > MAX_LEVEL_PIXELS:
            raise PayloadTooLargeError("slide_too_large", f"The slide's level {index} is {width}x{height} px; "
                                       "a pyramid with a level near 4 µm/px is needed.")
        scale = level_mpps[index] / MODEL_MPP
        resampled = abs(scale - 1.0) > 0.01
        # The slide at the model's scale, as a whole-level resize would size it.
        model_width, model_height = (max(1, round(width * scale)), max(1, round(height * scale))) if resampled else (width, height)
        rows, cols = model_height // tile, model_width // tile
        if rows == 0 or cols == 0:
            raise UnprocessableEntityError("image_too_small", f"At {MODEL_MPP:g} µm/px the slide is smaller than one "
                                           f"{tile}x{tile} tile.")
        wanted = band(rows) if band else range(rows)
        top, bottom = wanted.start * tile, wanted.stop * tile  # model-scale pixel rows
        first, last = _level_rows(top, bottom, height, model_height) if resampled else (top, bottom)
        try:
            pixels = _as_rgb(_read_rows(levels[index].pages[0], tif.filehandle, first, last))
        except (ValueError, NotImplementedError, KeyError) as exc:  # e.g. JPEG tiles without imagecodecs
            raise UnsupportedMediaTypeError("not_a_slide", f"The slide's tiles cannot be decoded here ({exc}).") from None
        except (zlib.error, struct.error, OSError, IndexError) as exc:  # truncated or damaged tiles
            raise UnsupportedMediaTypeError("not_a_slide", f"The slide's tiles are damaged ({type(exc).__name__}).") from None
    if resampled and bottom > top:
        pixels = _area_resampled(pixels, first, top, bottom, height, model_height, model_width)
    pixels = pixels[: bottom - top, : cols * tile]
    return SlideImage(pixels, level0_mpp, source, index, level_mpps[index], (widths[0], _width_height(levels[0])[1]),
                      rows, cols, wanted)


# Area resampling by PIL's BOX rule: a source row belongs to the output row whose window holds its centre,
# (2r + 1) / (2 * height) in [j, j + 1) / model_height. Worked in integers for rows, so that any band of
# output rows is exactly those rows of the whole level's (floating-point windows tie differently per band);
# across a row PIL does it, which no band changes.
def _owner_rows(rows: np.ndarray, height: int, model_height: int) -> np.ndarray:
    return ((2 * rows + 1) * model_height) // (2 * height)


def _level_rows(top: int, bottom: int, height: int, model_height: int) -> tuple[int, int]:
    """The level rows [first, last) whose centres fall in model rows [top, bottom)."""
    first = -(-(2 * top * height - model_height) // (2 * model_height))
    last = -(-(2 * bottom * height - model_height) // (2 * model_height))
    return max(0, first), min(height, last)


def _area_resampled(pixels: np.ndarray, first: int, top: int, bottom: int, height: int, model_height: int,
                    model_width: int) -> np.ndarray:
    """Model rows [top, bottom), ``model_width`` wide, from level rows [first, first + len(pixels))."""
    narrow = np.asarray(Image.fromarray(pixels).resize((model_width, pixels.shape[0]), Image.Resampling.BOX))
    owner = _owner_rows(np.arange(first, first + len(narrow)), height, model_height)
    starts = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]])
    if len(starts) != bottom - top or owner[0] != top:  # never: downsampling leaves no output row empty
        raise ValueError("resampling windows do not cover the band")
    sums = np.add.reduceat(narrow.astype(np.uint32), starts, axis=0)
    counts = np.diff(np.r_[starts, len(owner)]).astype(np.uint32)[:, None, None]
    return ((sums + counts // 2) // counts).astype(np.uint8)  # rounded half up, as PIL rounds


def _read_rows(page, handle: BinaryIO, first: int, last: int) -> np.ndarray:
    """Rows [first, last) of a level, decoding only the tiles that hold them (a stripped level whole)."""
    if page.planarconfig != 1 and page.samplesperpixel > 1:  # one plane per colour: not what a scanner writes
        raise ValueError("separate colour planes")
    if not page.is_tiled:
        return page.asarray()[first:last]
    width, height = page.imagewidth, page.imagelength
    tile_height, tile_width = page.tilelength, page.tilewidth
    across = -(-width // tile_width)
    out = np.zeros((max(0, last - first), width, page.samplesperpixel), page.dtype)
    for tile_row in range(first // tile_height, -(-last // tile_height)):
        for tile_col in range(across):
            index = tile_row * across + tile_col
            handle.seek(page.dataoffsets[index])
            segment, indices, _ = page.decode(handle.read(page.databytecounts[index]), index)
            if segment is None:  # a tile the file leaves empty
                continue
            y, x = indices[-3], indices[-2]
            upper, lower, right = max(first, y), min(last, y + tile_height, height), min(x + tile_width, width)
            out[upper - first:lower - first, x:right] = segment[0, upper - y:lower - y, : right - x]
    return out[..., 0] if page.samplesperpixel == 1 else out


def _width_height(level) -> tuple[int, int]:
    axes, shape = level.axes, level.shape
    return shape[axes.index("X")], shape[axes.index("Y")]


def _as_rgb(pixels: np.ndarray) -> np.ndarray:
    if pixels.ndim == 2:
        pixels = np.repeat(pixels[..., None], 3, axis=-1)
    if pixels.ndim != 3 or pixels.shape[-1] not in (3, 4) or pixels.dtype != np.uint8:
        raise UnsupportedMediaTypeError("not_a_slide", f"A slide is 8-bit RGB; this one is {pixels.dtype} {pixels.shape}.")
    return np.ascontiguousarray(pixels[..., :3])


def tissue_fraction(pixels: np.ndarray, tile: int, thumbnail_cells: int = 10) -> np.ndarray:
    """(rows, cols): the share of each whole tile that is tissue, judged on a thumbnail with
    ``thumbnail_cells`` pixels a tile side (as CLAM and TIAToolbox judge tissue on a thumbnail).
    A thumbnail pixel is glass when bright and unsaturated: the region route's own background rule,
    so a slide and a region of it skip the same tiles. Otsu on saturation (CLAM's choice) was
    measured too: on the test slides it dropped 44 of 114 patches as glass, this rule 7."""
    rows, cols = pixels.shape[0] // tile, pixels.shape[1] // tile
    if rows == 0 or cols == 0:
        return np.zeros((rows, cols))
    factor = tile // thumbnail_cells
    whole = Image.fromarray(pixels[: rows * tile, : cols * tile])
    small = np.asarray(whole.reduce(factor), dtype=np.float32)  # box filter in C: 0.09 s for 10 Mpx
    high, low = small.max(axis=-1), small.min(axis=-1)
    saturation = (high - low) / np.maximum(high, 1.0)
    glass = (small.mean(axis=-1) > BACKGROUND_BRIGHTNESS) & (saturation < BACKGROUND_SATURATION)
    side = small.shape[0] // rows
    return (~glass)[: rows * side, : cols * side].reshape(rows, side, cols, side).mean(axis=(1, 3))
